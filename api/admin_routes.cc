#include <spdlog/spdlog.h>

#include <utility>

#include "api/routes.h"

namespace caseledger::api {

void Routes::RevokeToken(const HttpRequest& req,
                         const Router::Respond& respond) {
  auto actor = AuthorizeAdmin(req, respond);
  if (!actor) return;
  auto body = ReadBody(req, respond);
  if (!body) return;
  const bool has_token = body->contains("token");
  const bool has_actor = body->contains("actor_id");
  if (!body->is_object() || has_token == has_actor || body->size() != 1 ||
      !(has_token ? (*body)["token"] : (*body)["actor_id"]).is_string()) {
    respond(WithPointer(
        Problem(400, "Bad Request",
                "name exactly one of \"token\" or \"actor_id\", a string"),
        has_token ? "/token" : (has_actor ? "/actor_id" : "")));
    return;
  }
  std::string token = has_token ? (*body)["token"].get<std::string>() : "";
  std::string actor_id =
      has_actor ? (*body)["actor_id"].get<std::string>() : "";
  d_.workers.Post(
      [this, token = std::move(token), actor_id = std::move(actor_id),
       by = actor->id, respond]() mutable {
        auto revoked = service::RevokeTokens(d_.store, d_.service.catalog(),
                                             token, actor_id, by);
        if (!revoked.ok()) {
          respond(ProblemFromStatus(revoked.status()));
          return;
        }
        // Take it into account now, not at the next request.
        (void)d_.tokens.Refresh();
        respond(JsonResponse(200, {{"revoked", *revoked}}));
      },
      req.request_id);
}

void Routes::CreateBackup(const HttpRequest& req,
                          const Router::Respond& respond) {
  auto actor = AuthorizeAdmin(req, respond);
  if (!actor || !NoParameters(req, "a backup", respond)) return;
  if (!d_.backup) {
    respond(Problem(503, "Service Unavailable",
                    "backups are not configured on this server"));
    return;
  }
  // A checkpoint flushes and links files: not on an I/O thread.
  d_.workers.Post(
      [this, by = actor->id, respond]() mutable {
        auto made = d_.backup();
        if (!made.ok()) {
          respond(ProblemFromStatus(made.status()));
          return;
        }
        d_.logger->info("backup by {}: {}", by, made->dump());
        respond(JsonResponse(201, *made));
      },
      req.request_id);
}

void Routes::ResumeStore(const HttpRequest& req,
                         const Router::Respond& respond) {
  auto actor = AuthorizeAdmin(req, respond);
  if (!actor || !NoParameters(req, "resuming", respond)) return;
  // Resuming flushes RocksDB's memtables: not on an I/O thread.
  d_.workers.Post(
      [this, by = actor->id, respond]() mutable {
        Status s = d_.store.Resume();
        d_.logger->info("store resume by {}: {}", by, s.ToString());
        if (!s.ok()) {
          respond(ProblemFromStatus(s));
          return;
        }
        respond(JsonResponse(
            200, {{"writable", true},
                  {"log_position", d_.store.committed_position().value()}}));
      },
      req.request_id);
}

void Routes::ListNotifications(const HttpRequest& req,
                               const Router::Respond& respond) {
  auto actor = AuthorizeAdmin(req, respond);
  if (!actor) return;
  if (d_.notifier == nullptr) {
    respond(Problem(503, "Service Unavailable",
                    "alerting is not configured on this server (the "
                    "configuration's \"notify\" section)"));
    return;
  }
  auto q = QueryParams(req.target);
  notify::ListQuery query;
  for (const auto& [key, value] : q) {
    if (key != "status" && key != "before" && key != "limit") {
      respond(WithPointer(
          Problem(400, "Bad Request",
                  "unknown parameter; use status, before and limit"),
          key));
      return;
    }
  }
  if (q.count("status")) {
    query.status = q["status"];
    if (query.status != "pending" && query.status != "delivered" &&
        query.status != "dead" && query.status != "withheld") {
      respond(WithPointer(
          Problem(400, "Bad Request",
                  "status must be pending, delivered, dead or withheld"),
          "status"));
      return;
    }
  }
  if (q.count("before")) query.before = q["before"];
  if (!QueryLimit(q, 500, &query.limit, respond)) return;
  // Reads the outbox: not on an I/O thread.
  d_.workers.Post(
      [this, query = std::move(query), respond]() mutable {
        auto list = d_.notifier->List(query);
        if (!list.ok()) {
          respond(ProblemFromStatus(list.status()));
          return;
        }
        const notify::NotifierStats s = d_.notifier->Stats();
        (*list)["outbox"] = {{"position", s.position},
                             {"lag", s.lag},
                             {"healthy", s.healthy},
                             {"pending", s.pending},
                             {"dead", s.dead}};
        if (!s.error.empty()) (*list)["outbox"]["error"] = s.error;
        respond(JsonResponse(200, *list));
      },
      req.request_id);
}

}  // namespace caseledger::api
