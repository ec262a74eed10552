#include <regex>
#include <utility>

#include "api/routes.h"

namespace caseledger::api {

void Routes::GetGovernance(const HttpRequest& req, const std::string& view,
                           const Router::Respond& respond) {
  auto actor = AuthorizeModelRead(req, Read::kGovernance, respond);
  if (!actor) return;
  auto q = QueryParams(req.target);
  StatusOr<Json> out = Status::OK();
  if (view == "overview") {
    out = d_.models->Overview(d_.store.Now());
  } else if (view == "sample") {
    static const std::regex kMonth(R"(^[0-9]{4}-(0[1-9]|1[0-2])$)");
    if (!q.count("month") || !std::regex_match(q["month"], kMonth)) {
      respond(WithPointer(Problem(400, "Bad Request", "month must be YYYY-MM"),
                          "month"));
      return;
    }
    size_t size = 10;
    if (q.count("size")) {
      bool bad = false;
      auto n = ParseIfMatch(q["size"], &bad);
      if (bad || !n || *n == 0 || *n > 200) {
        respond(WithPointer(
            Problem(400, "Bad Request", "size must be 1 to 200"), "size"));
        return;
      }
      size = static_cast<size_t>(*n);
    }
    out = d_.models->AuditSample(q["month"], size,
                                 q.count("seed") ? q["seed"] : "caseledger");
  } else {
    out = d_.models->Governance(view, d_.store.Now(), 500);
  }
  if (!out.ok()) {
    respond(ProblemFromStatus(out.status()));
    return;
  }
  // A DSL barred from a case does not see it listed.
  for (const char* list : {"items", "cases"}) {
    if (!out->contains(list)) continue;
    Json kept = Json::array();
    for (const auto& item : (*out)[list]) {
      auto doc = d_.models->Case(item.value("case_id", ""));
      if (!doc.ok()) {  // closed: no answer rather than an unchecked one
        respond(ProblemFromStatus(doc.status()));
        return;
      }
      if (doc->has_value() && !projections::BarredFrom(**doc, *actor)) {
        kept.push_back(item);
      }
    }
    (*out)[list] = kept;
  }
  respond(JsonResponse(200, *out));
}

}  // namespace caseledger::api
