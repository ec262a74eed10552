#include <utility>

#include "api/routes.h"

namespace caseledger::api {

bool Routes::QueryLimit(std::map<std::string, std::string>& query, size_t max,
                        size_t* limit, const Router::Respond& respond) {
  if (!query.count("limit")) return true;
  bool bad = false;
  auto n = ParseIfMatch(query["limit"], &bad);
  if (bad || !n || *n == 0 || *n > max) {
    respond(WithPointer(Problem(400, "Bad Request",
                                "limit must be 1 to " + std::to_string(max)),
                        "limit"));
    return false;
  }
  *limit = static_cast<size_t>(*n);
  return true;
}

void Routes::ListCases(const HttpRequest& req, const Router::Respond& respond) {
  auto actor = AuthorizeModelRead(req, Read::kCaseList, respond);
  if (!actor) return;
  auto q = QueryParams(req.target);
  projections::CaseFilter f;
  if (q.count("stage")) f.stage = q["stage"];
  if (q.count("lead")) f.lead = q["lead"];
  if (q.count("urgency")) f.urgency = q["urgency"];
  if (q.count("category")) f.category = q["category"];
  if (q.count("overdue")) {
    if (q["overdue"] != "acknowledgement") {
      respond(WithPointer(
          Problem(400, "Bad Request", "overdue must be 'acknowledgement'"),
          "overdue"));
      return;
    }
    f.ack_overdue = true;
    f.now = d_.store.Now();
  }
  if (actor->role == domain::Role::kReporter) f.reporter = actor->id;
  f.reader = *actor;
  size_t limit = 50;
  if (!QueryLimit(q, 500, &limit, respond)) return;
  if (q.count("after_position")) {
    bool bad = false;
    auto pos = ParseIfMatch(q["after_position"], &bad);
    if (bad || !pos) {
      respond(WithPointer(
          Problem(400, "Bad Request", "after_position must be a log position"),
          "after_position"));
      return;
    }
    if (!d_.models->WaitFor(GlobalPosition(*pos), std::chrono::seconds(2))) {
      HttpResponse r =
          Problem(503, "Service Unavailable",
                  "the read model has not reached that position yet");
      r.headers.emplace_back("Retry-After", "1");
      respond(std::move(r));
      return;
    }
  }
  auto page =
      d_.models->ListCases(f, q.count("cursor") ? q["cursor"] : "", limit);
  if (!page.ok()) {
    respond(ProblemFromStatus(page.status()));
    return;
  }
  Json items = Json::array();
  std::vector<service::CaseShown> listed;
  for (const Json& doc : page->cases) {
    listed.push_back(
        {doc.value("case_id", ""), doc.value("version", uint64_t{0})});
    if (actor->role == domain::Role::kReporter) {
      // As for one case: a reporter sees no more than where it stands.
      items.push_back({{"case_id", doc["case_id"]},
                       {"stage", doc["stage"]},
                       {"version", doc["version"]},
                       {"reported_at", doc["reported_at"]}});
      continue;
    }
    items.push_back({{"case_id", doc["case_id"]},
                     {"stage", doc["stage"]},
                     {"urgent", doc["urgent"]},
                     {"version", doc["version"]},
                     {"lead_actor_id", doc["lead_actor_id"]},
                     {"reported_at", doc["reported_at"]},
                     {"acknowledgement_due_at", doc["acknowledgement_due_at"]},
                     {"categories", doc["categories"]}});
  }
  HttpResponse r = JsonResponse(
      200, {{"cases", items},
            {"next_cursor", page->next_cursor},
            {"projection_position", d_.models->Health().position}});
  if (!page->next_cursor.empty()) {
    std::string next = "/v1/cases?cursor=" + page->next_cursor +
                       "&limit=" + std::to_string(limit);
    for (const char* k : {"stage", "lead", "urgency", "category", "overdue"}) {
      if (q.count(k)) next += std::string("&") + k + "=" + q[k];
    }
    r.headers.emplace_back("Link", "<" + next + ">; rel=\"next\"");
  }
  // A row of a list is a read of the case too.
  RecordThenRespond(*actor, service::CaseReadKind::kList, listed, std::move(r),
                    respond);
}

}  // namespace caseledger::api
