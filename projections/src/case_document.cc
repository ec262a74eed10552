#include "projections/src/case_document.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "projections/src/json_writer.h"

namespace caseledger::projections::internal {

std::string IndexPrefix(char tag, const std::string& value) {
  std::string k(1, tag);
  k.push_back('\0');
  if (tag != 'a') {
    k += value;
    k.push_back('\0');
  }
  return k;
}

namespace {

using domain::CaseState;

std::vector<std::string> Sorted(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

}  // namespace

// Keys in the order nlohmann keeps them (sorted); the test compares with
// nlohmann's dump of domain::ToJson for many states.
std::string CaseDocument(const std::string& id, const CaseState& s,
                         uint64_t last_position) {
  Writer w;
  w.Open('{');
  if (s.acknowledged_at) {
    w.Str("acknowledged_at", FormatTimestamp(*s.acknowledged_at));
  }
  w.Str("acknowledgement_due_at", FormatTimestamp(s.acknowledgement_due_at));
  w.Object("action_due", s.action_due,
           [&](const std::string& due) { w.String(due); });
  w.Object("actions", s.actions, [&](bool done) { w.Bool(done); });
  w.Flag("all_dsls_barred", s.all_dsls_barred);
  w.Strings("audit_findings", s.finding_ids);
  w.Strings("barred_actor_ids", s.barred_actor_ids);
  w.Str("case_id", id);
  w.Strings("categories", s.categories);
  w.Flag("closed_without_outcome_review", s.closed_without_outcome_review);
  w.Str("closure_reason", s.closure_reason);
  w.Array("consents", s.consents, [&](const auto& c) {
    w.Open('{');
    w.Str("consent_id", c.consent_id);
    w.Str("decision", c.decision);
    w.Str("person_ref", c.person_ref);
    w.Str("purpose", c.purpose);
    w.Num("recorded_at_version", c.version);
    w.Close('}');
  });
  w.Array("decisions_without_rationale", s.unexplained_decisions,
          [&](const auto& d) {
            w.Open('{');
            w.Str("event_id", d.event_id);
            w.Str("missing", d.missing);
            w.Str("type", d.type);
            w.Close('}');
          });
  w.Object("escalations", s.escalations, [&](const auto& e) {
    w.Open('{');
    w.Flag("acknowledged", e.acknowledged);
    w.Str("acknowledgement_due_at", FormatTimestamp(e.acknowledgement_due_at));
    w.Flag("final_outcome", e.final_outcome);
    w.Str("target", e.target);
    w.Str("urgency", e.urgency);
    w.Close('}');
  });
  w.Flag("immediate_risk", s.immediate_risk);
  w.Str("kind", s.kind);
  w.Num("last_position", last_position);
  w.Str("lead_actor_id", s.lead_actor_id.value_or(""));
  w.Str("lead_role",
        s.lead_role ? domain::RoleName(*s.lead_role) : std::string_view());
  w.Strings("learning", s.learning_ids);
  w.Str("outcomes_achieved", s.outcomes_achieved);
  w.Strings("overrides", s.override_ids);
  w.Object("reaudits", s.reaudits, [&](const auto& r) {
    w.Open('{');
    w.Flag("done", r.done);
    w.Str("due_date", r.due_date);
    w.Strings("finding_ids", r.finding_ids);
    w.Close('}');
  });
  w.Str("reported_at", FormatTimestamp(s.reported_at));
  w.Str("reporter_actor_id", s.reporter_actor_id);
  w.Object("reviews", s.reviews, [&](const auto& r) {
    w.Open('{');
    w.Flag("completed", r.completed);
    w.Str("due_date", r.due_date);
    w.Str("kind", r.kind);
    w.Close('}');
  });
  w.Strings("safety_plans", s.plan_ids);
  w.Str("setting", s.setting);
  w.Str("stage", domain::StageName(s.stage));
  w.Num("times_closed", s.times_closed);
  w.Num("times_reopened", s.times_reopened);
  w.Str("triage_route", s.triage_route);
  w.Flag("under_18_involved", s.under_18_involved);
  w.Flag("urgent", s.urgent);
  w.Num("version", s.version);
  w.Close('}');
  return w.Take();
}

std::vector<std::string> IndexKeys(const std::string& id, const CaseState& s) {
  std::vector<std::string> keys;
  const std::string stage(domain::StageName(s.stage));
  const bool closed = s.stage == domain::Stage::kClosed;
  const std::string reported_at = FormatTimestamp(s.reported_at);
  const std::string ack_due = FormatTimestamp(s.acknowledgement_due_at);
  keys.push_back(IndexPrefix('a', "") + id);
  keys.push_back(IndexPrefix('s', stage) + id);
  keys.push_back(IndexPrefix('u', s.urgent ? "urgent" : "standard") + id);
  keys.push_back(IndexPrefix('r', s.reporter_actor_id) + id);
  if (s.lead_actor_id && !s.lead_actor_id->empty()) {
    keys.push_back(IndexPrefix('l', *s.lead_actor_id) + id);
  }
  for (const auto& c : s.categories) keys.push_back(IndexPrefix('c', c) + id);
  keys.push_back(IndexPrefix('m', reported_at.substr(0, 7)) + id);
  if (!s.acknowledged_at && !closed) {
    keys.push_back(IndexPrefix('k', ack_due) + id);
  }
  if (!closed) {
    for (const auto& [rid, r] : s.reviews) {
      if (!r.completed) {
        keys.push_back(IndexPrefix('v', r.due_date + "|" + rid) + id);
      }
    }
  }
  for (const auto& [eid, e] : s.escalations) {
    if (!e.acknowledged) {
      keys.push_back(
          IndexPrefix('e',
                      FormatTimestamp(e.acknowledgement_due_at) + "|" + eid) +
          id);
    }
  }
  for (const auto& oid : s.override_ids)
    keys.push_back(IndexPrefix('o', oid) + id);
  if (closed && s.closed_without_outcome_review) {
    keys.push_back(IndexPrefix('w', "") + id);
  }
  keys.push_back(IndexPrefix('g', s.setting) + id);
  if (closed && !s.closure_reason.empty()) {
    keys.push_back(IndexPrefix('z', s.closure_reason) + id);
  }
  if (!s.outcomes_achieved.empty()) {
    keys.push_back(IndexPrefix('y', s.outcomes_achieved) + id);
  }
  if (s.acknowledged_at) {
    // Through the text, as the document holds them.
    const std::string at = FormatTimestamp(*s.acknowledged_at);
    auto reported = ParseTimestamp(reported_at);
    auto acked = ParseTimestamp(at);
    if (reported.ok() && acked.ok()) {
      int64_t minutes =
          std::max<int64_t>(0, (acked->value() - reported->value()) / 60000000);
      char padded[24];
      std::snprintf(padded, sizeof(padded), "%012lld",
                    static_cast<long long>(minutes));
      keys.push_back(IndexPrefix('h', padded) + id);
    }
    if (!ack_due.empty() && at > ack_due) {
      keys.push_back(IndexPrefix('b', ack_due + "|" + at) + id);
    }
  }
  for (const auto& [rid, r] : s.reaudits) {
    if (!r.done) keys.push_back(IndexPrefix('x', r.due_date + "|" + rid) + id);
  }
  for (const auto& d : s.unexplained_decisions) {
    keys.push_back(IndexPrefix('n', d.type + "|" + d.event_id) + id);
  }
  for (const auto& [aid, done] : s.actions) {
    if (done) continue;
    auto due = s.action_due.find(aid);
    keys.push_back(
        IndexPrefix(
            't', (due != s.action_due.end() ? due->second : "") + "|" + aid) +
        id);
  }
  return Sorted(std::move(keys));
}

}  // namespace caseledger::projections::internal
