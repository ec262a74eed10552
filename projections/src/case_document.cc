#include "projections/src/case_document.h"

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string_view>

#include "projections/src/json_writer.h"

namespace caseledger::projections::internal {

namespace {

// An index key's layout in one place: tag \0, then the parts joined and \0
// (not for IndexTag::kAll, every case's), then `id`; appended to `out`.
void AppendIndexKey(IndexTag tag, std::initializer_list<std::string_view> parts,
                    std::string_view id, std::string* out) {
  out->push_back(static_cast<char>(tag));
  out->push_back('\0');
  if (tag != IndexTag::kAll) {
    for (std::string_view p : parts) out->append(p);
    out->push_back('\0');
  }
  out->append(id);
}

using domain::CaseState;

}  // namespace

std::string IndexPrefix(IndexTag tag, const std::string& value) {
  std::string k;
  AppendIndexKey(tag, {value}, {}, &k);
  return k;
}

bool OverviewCounterKey(std::string_view index_key, std::string* counter) {
  if (index_key.size() < 2 || index_key[1] != '\0') return false;
  const auto tag = static_cast<IndexTag>(index_key[0]);
  const std::string_view rest = index_key.substr(2);
  const std::string_view value = rest.substr(0, rest.find('\0'));
  std::string_view bucket;
  switch (tag) {
    case IndexTag::kStage:
    case IndexTag::kMonth:
    case IndexTag::kCategory:
    case IndexTag::kSetting:
    case IndexTag::kClosureReason:
    case IndexTag::kOutcomes:
    case IndexTag::kAckMinutes:
      bucket = value;
      break;
    case IndexTag::kAckDue:
    case IndexTag::kEscalationDue:
    case IndexTag::kOpenSince:
    case IndexTag::kReviewDue:
    case IndexTag::kActionDue:
    case IndexTag::kReauditDue:
      bucket = value.substr(0, value.find('|')).substr(0, kDayBytes);
      break;
    case IndexTag::kOverride:
    case IndexTag::kErasureRequested:
    case IndexTag::kLegalHold:
    case IndexTag::kErased:
    case IndexTag::kClosedWithoutReview:
    case IndexTag::kUnexplained:
    case IndexTag::kAckLate:
      break;
    default:
      return false;
  }
  counter->assign(kOverviewCounterPrefix);
  counter->push_back(static_cast<char>(tag));
  counter->push_back('\0');
  counter->append(bucket);
  return true;
}

std::vector<std::string> IndexKeySet::ToVector() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < size(); ++i) out.emplace_back((*this)[i]);
  return out;
}

// Keys in the order nlohmann keeps them (sorted); the test compares with
// nlohmann's dump of domain::ToJson for many states.
std::string CaseDocument(const std::string& id, const CaseState& s,
                         uint64_t last_position) {
  Writer w(2048);  // (a document is 1.3 KB on average on seeded stores)
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
  if (s.times_closed > 0) w.Str("closed_at", FormatTimestamp(s.closed_at));
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
  w.Strings("erased_person_refs", s.erased_person_refs);
  w.Object("erasures", s.erasures, [&](const auto& e) {
    w.Open('{');
    w.Str("legal_ground", e.legal_ground);
    w.Str("person_ref", e.person_ref);
    w.Str("requested_by", e.requested_by);
    w.Str("scope", e.scope);
    w.Str("status", e.status);
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
  w.Flag("legal_hold", s.legal_hold);
  w.Str("outcomes_achieved", s.outcomes_achieved);
  w.Strings("overrides", s.override_ids);
  w.Flag("personal_data_erased", s.erased);
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

IndexKeySet IndexKeys(const std::string& id, const CaseState& s) {
  // The keys as they come, then sorted: made in buffers of this thread's,
  // reused.
  thread_local std::string raw;
  thread_local std::vector<std::pair<uint32_t, uint32_t>> spans;  // in raw
  raw.clear();
  spans.clear();
  const auto add = [&](IndexTag tag,
                       std::initializer_list<std::string_view> parts) {
    const size_t from = raw.size();
    AppendIndexKey(tag, parts, id, &raw);
    spans.emplace_back(static_cast<uint32_t>(from),
                       static_cast<uint32_t>(raw.size() - from));
  };
  const std::string_view stage = domain::StageName(s.stage);
  const bool closed = s.stage == domain::Stage::kClosed;
  const std::string reported_at = FormatTimestamp(s.reported_at);
  const std::string ack_due = FormatTimestamp(s.acknowledgement_due_at);
  add(IndexTag::kAll, {});
  add(IndexTag::kStage, {stage});
  add(IndexTag::kUrgency, {s.urgent ? "urgent" : "standard"});
  add(IndexTag::kReporter, {s.reporter_actor_id});
  if (s.lead_actor_id && !s.lead_actor_id->empty()) {
    add(IndexTag::kLead, {*s.lead_actor_id});
  }
  for (const auto& c : s.categories) add(IndexTag::kCategory, {c});
  add(IndexTag::kMonth, {std::string_view(reported_at).substr(0, 7)});
  if (s.stage != domain::Stage::kNone && !closed)
    add(IndexTag::kOpenSince, {reported_at});
  if (!s.acknowledged_at && !closed) add(IndexTag::kAckDue, {ack_due});
  if (!closed) {
    for (const auto& [rid, r] : s.reviews) {
      if (!r.completed) add(IndexTag::kReviewDue, {r.due_date, "|", rid});
    }
  }
  for (const auto& [eid, e] : s.escalations) {
    if (!e.acknowledged) {
      add(IndexTag::kEscalationDue,
          {FormatTimestamp(e.acknowledgement_due_at), "|", eid});
    }
  }
  for (const auto& oid : s.override_ids) add(IndexTag::kOverride, {oid});
  if (closed && s.closed_without_outcome_review)
    add(IndexTag::kClosedWithoutReview, {});
  add(IndexTag::kSetting, {s.setting});
  if (closed && !s.closure_reason.empty())
    add(IndexTag::kClosureReason, {s.closure_reason});
  if (!s.outcomes_achieved.empty())
    add(IndexTag::kOutcomes, {s.outcomes_achieved});
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
      add(IndexTag::kAckMinutes, {padded});
    }
    if (!ack_due.empty() && at > ack_due)
      add(IndexTag::kAckLate, {ack_due, "|", at});
  }
  for (const auto& [rid, r] : s.reaudits) {
    if (!r.done) add(IndexTag::kReauditDue, {r.due_date, "|", rid});
  }
  for (const auto& d : s.unexplained_decisions) {
    add(IndexTag::kUnexplained, {d.type, "|", d.event_id});
  }
  for (const auto& [aid, done] : s.actions) {
    if (done) continue;
    auto due = s.action_due.find(aid);
    add(IndexTag::kActionDue,
        {due != s.action_due.end() ? std::string_view(due->second)
                                   : std::string_view(),
         "|", aid});
  }
  for (const auto& [eid, e] : s.erasures) {
    if (e.status == "requested") add(IndexTag::kErasureRequested, {eid});
  }
  if (s.legal_hold) add(IndexTag::kLegalHold, {});
  if (s.erased) add(IndexTag::kErased, {"*"});
  for (const auto& ref : s.erased_person_refs) {
    add(IndexTag::kErased, {"person:", ref});
  }
  // What retention may erase: closed, not held, not erased yet.
  if (closed && !s.legal_hold && !s.erased && s.times_closed > 0) {
    add(IndexTag::kRetention, {s.kind, "|", FormatTimestamp(s.closed_at)});
  }
  const auto key = [](const std::pair<uint32_t, uint32_t>& span) {
    return std::string_view(raw).substr(span.first, span.second);
  };
  std::sort(spans.begin(), spans.end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  IndexKeySet set;
  set.bytes_.reserve(raw.size());
  set.ends_.reserve(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0 && key(spans[i]) == key(spans[i - 1])) continue;  // each once
    set.bytes_.append(key(spans[i]));
    set.ends_.push_back(static_cast<uint32_t>(set.bytes_.size()));
  }
  return set;
}

}  // namespace caseledger::projections::internal
