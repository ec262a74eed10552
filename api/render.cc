#include "api/render.h"

namespace caseledger::api {

using Json = nlohmann::json;

Json ToJson(const projections::GovernanceView& view) {
  Json items = Json::array();
  for (const projections::GovernanceItem& g : view.items) {
    Json j = {{"case_id", g.case_id}};
    if (!g.item_name.empty()) j[g.item_name] = g.item;
    if (!g.override_id.empty()) j["override_id"] = g.override_id;
    if (!g.event_type.empty()) j["type"] = g.event_type;
    if (!g.due.empty()) j["due"] = g.due;
    if (g.overdue) j["overdue"] = *g.overdue;
    items.push_back(std::move(j));
  }
  return {{"view", view.view},
          {"as_of", FormatTimestamp(view.as_of)},
          {"items", std::move(items)}};
}

Json ToJson(const projections::GovernanceOverview& o) {
  Json out = {{"as_of", FormatTimestamp(o.as_of)},
              {"cases_by_stage", o.cases_by_stage},
              {"cases_reported_by_month", o.cases_reported_by_month},
              {"cases_by_category", o.cases_by_category},
              {"cases_by_setting", o.cases_by_setting},
              {"closed_cases_by_reason", o.closed_cases_by_reason},
              {"cases_by_outcomes_achieved", o.cases_by_outcomes_achieved}};
  Json ack = {{"acknowledged", o.acknowledgement.acknowledged},
              {"acknowledged_late", o.acknowledgement.acknowledged_late}};
  if (o.acknowledgement.median_minutes) {
    ack["median_minutes"] = *o.acknowledgement.median_minutes;
  }
  out["acknowledgement"] = std::move(ack);
  for (const auto& [name, size] : o.views) {
    Json v = {{"count", size.count}};
    if (size.overdue) v["overdue"] = *size.overdue;
    out[name] = std::move(v);
  }
  out["open_cases_by_age"] = {
      {"under_7_days", o.open_cases_by_age.under_7_days},
      {"7_to_30_days", o.open_cases_by_age.from_7_to_30_days},
      {"over_30_days", o.open_cases_by_age.over_30_days}};
  return out;
}

Json ToJson(const projections::AuditSample& sample) {
  Json cases = Json::array();
  for (const auto& pick : sample.cases) {
    cases.push_back({{"case_id", pick.case_id}, {"stratum", pick.stratum}});
  }
  return {{"month", sample.month},
          {"seed", sample.seed},
          {"population", sample.population},
          {"cases", std::move(cases)}};
}

Json ToJson(const projections::LearningSummary& summary) {
  auto counts = [](const projections::LearningSummary::Counts& c) {
    Json out = Json::object();
    for (const auto& [code, n] : c) {
      out[code] = n ? Json(*n) : Json("suppressed");
    }
    return out;
  };
  Json out = {{"suppress_below", summary.suppress_below},
              {"rounded_to", summary.rounded_to},
              {"by_category", counts(summary.by_category)},
              {"by_setting", counts(summary.by_setting)},
              {"by_month", counts(summary.by_month)}};
  if (!summary.released_before.empty()) {
    out["released_before"] = summary.released_before;
  }
  return out;
}

}  // namespace caseledger::api
