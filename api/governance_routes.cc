#include <regex>
#include <utility>
#include <vector>

#include "api/render.h"
#include "api/routes.h"

namespace caseledger::api {

void Routes::GetGovernance(const HttpRequest& req, const std::string& view,
                           const Router::Respond& respond) {
  auto actor = AuthorizeModelRead(req, Read::kGovernance, respond);
  if (!actor) return;
  auto q = QueryParams(req.target);
  if (view == "overview") {
    auto overview = d_.models->Overview(d_.store.Now());
    if (!overview.ok()) {
      respond(ProblemFromStatus(overview.status()));
      return;
    }
    respond(JsonResponse(200, ToJson(*overview)));
    return;
  }
  if (view == "sample") {
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
    auto sample = d_.models->AuditSample(
        q["month"], size, q.count("seed") ? q["seed"] : "caseledger");
    Status kept =
        sample.ok() ? KeepUnbarred(&sample->cases, *actor) : sample.status();
    if (!kept.ok()) {
      respond(ProblemFromStatus(kept));
      return;
    }
    respond(JsonResponse(200, ToJson(*sample)));
    return;
  }
  auto items = d_.models->Governance(view, d_.store.Now(), 500);
  Status kept =
      items.ok() ? KeepUnbarred(&items->items, *actor) : items.status();
  if (!kept.ok()) {
    respond(ProblemFromStatus(kept));
    return;
  }
  respond(JsonResponse(200, ToJson(*items)));
}

template <typename Item>
Status Routes::KeepUnbarred(std::vector<Item>* items,
                            const domain::Actor& actor) const {
  // A DSL barred from a case does not see it listed.
  std::vector<Item> kept;
  for (Item& item : *items) {
    auto doc = d_.models->Case(item.case_id);
    // Unreadable: no answer rather than an unchecked one.
    if (!doc.ok()) return doc.status();
    if (doc->has_value() && !projections::BarredFrom(**doc, actor)) {
      kept.push_back(std::move(item));
    }
  }
  *items = std::move(kept);
  return Status::OK();
}

}  // namespace caseledger::api
