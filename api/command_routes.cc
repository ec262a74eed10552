#include <chrono>
#include <functional>
#include <utility>

#include "api/routes.h"

namespace caseledger::api {

void Routes::Command(const HttpRequest& req, std::string case_id,
                     std::string command, const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (!actor) return;
  if (!domain::MayCommand(actor->role, command)) {
    respond(domain::EventTypeOf(command).empty()
                ? Problem(404, "Not Found", "no command '" + command + "'")
                : Forbidden());
    return;
  }
  auto body = ReadBody(req, respond);
  if (!body) return;
  bool bad_if_match = false;
  service::CommandOptions options;
  options.expected_version =
      ParseIfMatch(Header(req, "if-match"), &bad_if_match);
  if (bad_if_match) {
    respond(Problem(400, "Bad Request", "If-Match must be a case version"));
    return;
  }
  const bool keyed = req.headers.count("idempotency-key") > 0;
  if (keyed) {
    auto id = IdempotentEventId(*actor, Header(req, "idempotency-key"));
    if (!id) {
      respond(
          WithPointer(Problem(400, "Bad Request",
                              "Idempotency-Key must be 1 to 255 visible ASCII "
                              "characters"),
                      "Idempotency-Key"));
      return;
    }
    options.event_id = *id;
    // A retried report names the same case as the first try.
    if (command == "report") case_id = "case-" + id->ToString();
    // The request the key was first used for: a retry must match it.
    options.causation_id =
        "request:" + Sha256Hex(command + '\n' + case_id + '\n' + body->dump());
  }
  options.correlation_id = Header(req, "x-correlation-id").substr(0, 128);
  options.deadline = (req.received == std::chrono::steady_clock::time_point{}
                          ? std::chrono::steady_clock::now()
                          : req.received) +
                     d_.command_budget;
  const bool created = command == "report";
  // Deciding reads the case: do it on a worker thread. The durable append
  // then joins the store's group commit without holding the worker, and
  // the answer is built on a worker once the fsync is done.
  auto answer = [options, created,
                 respond](StatusOr<service::CommandResult> r) {
    if (!r.ok()) {
      respond(ProblemFromStatus(
          r.status(), ProblemContext{options.expected_version.has_value(),
                                     options.event_id.has_value()}));
      return;
    }
    Json ids = Json::array();
    for (const auto& id : r->event_ids) ids.push_back(id.ToString());
    HttpResponse resp = JsonResponse(created && !r->deduplicated ? 201 : 200,
                                     {{"case_id", r->case_id},
                                      {"version", r->version},
                                      {"position", r->position},
                                      {"deduplicated", r->deduplicated},
                                      {"event_ids", std::move(ids)}});
    resp.headers.emplace_back("ETag", Quote(r->version));
    if (created) {
      resp.headers.emplace_back("Location", "/v1/cases/" + r->case_id);
    }
    respond(std::move(resp));
  };
  d_.workers.Post(
      [this, case_id = std::move(case_id), command = std::move(command),
       body = std::move(*body), actor = *actor, options,
       answer = std::move(answer), request_id = req.request_id]() mutable {
        d_.service.ExecuteAsync(
            std::move(case_id), std::move(command), std::move(body),
            std::move(actor), std::move(options),
            [this, request_id](std::function<void()> work) {
              d_.workers.Post(std::move(work), request_id);
            },
            std::move(answer));
      },
      req.request_id);
}

void Routes::Report(const HttpRequest& req, const Router::Respond& respond) {
  Command(req, "case-" + EventId::NewV7().ToString(), "report", respond);
}

}  // namespace caseledger::api
