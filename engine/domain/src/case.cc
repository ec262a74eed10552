#include "caseledger/domain/case.h"

#include <vector>

#include "caseledger/domain/evolve_in_place.h"
#include "engine/domain/src/event_types.h"
#include "engine/domain/src/payload_view.h"

namespace caseledger::domain {
namespace {

using Json = nlohmann::json;

using internal::NlohmannView;
using internal::SimdjsonView;

// Evolve() and its helpers are written once over a payload view (see
// payload_view.h): V is NlohmannView or SimdjsonView.

template <typename V>
std::string Str(const V& j, std::string_view key) {
  return std::string(j[key].str());
}

template <typename V>
bool Bool(const V& j, std::string_view key) {
  return j[key].is_true();
}

template <typename V>
Timestamp Time(const V& j, std::string_view key) {
  auto t = ParseTimestamp(j[key].str());
  return t.ok() ? *t : Timestamp(0);
}

template <typename V>
void AddBarred(CaseState& s, const V& payload) {
  if (V ids = payload["conflicted_actor_ids"]; ids.is_array()) {
    ids.each([&](const V& id) {
      if (id.is_string()) s.barred_actor_ids.emplace(id.str());
    });
  }
}

// The people a report involves: their references, and who among the
// system's users is barred from the case (a named lead, or anyone alleged
// to have caused harm). Bars only accumulate: a corrected report that names
// a user bars them; one that stops naming them does not lift a bar.
template <typename V>
void ApplyPeople(CaseState& s, const V& people) {
  people.each([&](const V& person) {
    s.person_refs.insert(Str(person, "person_ref"));
    const std::string_view actor_id = person["actor_id"].str();
    bool named_lead = Bool(person, "is_dsl") || Bool(person, "is_alt_dsl");
    if (Bool(person, "is_dsl")) {
      s.dsl_named = true;
      if (actor_id.empty()) s.all_dsls_barred = true;
    }
    bool alleged = false;
    person["roles"].each([&](const V& role) {
      if (role.is_string() && role.str() == "person_alleged_to_cause_harm") {
        alleged = true;
      }
    });
    // A user of the system who is a subject of the concern is barred from
    // it: a named lead, or anyone alleged to have caused harm.
    if (!actor_id.empty() && (named_lead || alleged)) {
      s.barred_actor_ids.emplace(actor_id);
    }
  });
}

template <typename V>
void SetCategories(CaseState& s, const V& categories) {
  s.categories.clear();
  categories.each([&](const V& c) {
    if (c.is_string()) s.categories.emplace_back(c.str());
  });
}

template <typename V>
void ApplyConcernReported(CaseState& s, const EventHeader& e, const V& p) {
  s.stage = Stage::kReported;
  s.reporter_actor_id = e.actor.id;
  s.reported_at = e.recorded_at;
  s.kind = Str(p, "kind");
  s.setting = Str(p, "setting");
  SetCategories(s, p["categories"]);
  s.immediate_risk = Bool(p, "immediate_risk");
  s.urgent = p["priority"].str() == "urgent";
  s.under_18_involved = Bool(p, "under_18_involved");
  s.acknowledgement_due_at = Time(p, "acknowledgement_due_at");
  ApplyPeople(s, p["people_involved"]);
}

}  // namespace

std::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kNone:
      return "none";
    case Stage::kReported:
      return "reported";
    case Stage::kAcknowledged:
      return "acknowledged";
    case Stage::kOpen:
      return "open";
    case Stage::kTriagedOut:
      return "triaged_out";
    case Stage::kClosed:
      return "closed";
  }
  return "unknown";
}

namespace {

// The event types of cases, named once for all of them (a case copying the
// name of each type it holds was most of the cost of keeping its events).
// A type missing there still works (the case keeps its name); a test checks
// that every type of the catalog is there.
const std::vector<std::string_view>& SharedTypes() {
  return internal::CaseEventTypes();
}

// `type`'s index in SharedTypes(), or its size.
uint32_t SharedIndex(std::string_view type) {
  const std::vector<std::string_view>& shared = SharedTypes();
  for (size_t i = 0; i < shared.size(); ++i) {
    if (shared[i].size() == type.size() && shared[i] == type) {
      return static_cast<uint32_t>(i);
    }
  }
  return static_cast<uint32_t>(shared.size());
}

}  // namespace

bool CaseEvents::Shared(std::string_view type) {
  return SharedIndex(type) < SharedTypes().size();
}

void CaseEvents::Add(std::string_view event_id, std::string_view type,
                     uint32_t schema_version) {
  const uint32_t shared = static_cast<uint32_t>(SharedTypes().size());
  Entry e;
  e.id_offset = static_cast<uint32_t>(ids_.size());
  e.id_size = static_cast<uint32_t>(event_id.size());
  e.type = SharedIndex(type);
  if (e.type == shared) {
    size_t i = 0;
    while (i < types_.size() && types_[i] != type) ++i;
    if (i == types_.size()) types_.emplace_back(type);
    e.type = shared + static_cast<uint32_t>(i);
  }
  e.schema_version = schema_version;
  if (entries_.empty()) {
    // Room for a case's first events at once (a dozen is typical), rather
    // than growing by doubling from one.
    ids_.reserve(16 * event_id.size());
    entries_.reserve(16);
  }
  ids_.append(event_id);
  entries_.push_back(e);
}

std::optional<CaseEvents::Found> CaseEvents::Find(
    std::string_view event_id) const {
  const std::vector<std::string_view>& shared = SharedTypes();
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->id_size == event_id.size() &&
        std::string_view(ids_).substr(it->id_offset, it->id_size) == event_id) {
      return Found{it->type < shared.size()
                       ? shared[it->type]
                       : std::string_view(types_[it->type - shared.size()]),
                   it->schema_version};
    }
  }
  return std::nullopt;
}

bool CaseState::IsBarred(const Actor& actor) const {
  if (barred_actor_ids.count(actor.id)) return true;
  return all_dsls_barred && actor.role == Role::kDsl;
}

const ConsentEntry* CaseState::CurrentConsent(
    const std::string& person_ref, const std::string& purpose) const {
  for (auto it = consents.rbegin(); it != consents.rend(); ++it) {
    if (it->person_ref == person_ref && it->purpose == purpose) return &*it;
  }
  return nullptr;
}

bool CanReadCase(const CaseState& state, const Actor& actor, Read read) {
  if (!MayRead(actor.role, read) || state.IsBarred(actor)) return false;
  if (actor.role == Role::kReporter) {
    return state.stage != Stage::kNone && state.reporter_actor_id == actor.id;
  }
  return true;
}

nlohmann::json ToJson(const std::string& id, const CaseState& s) {
  Json consents = Json::array();
  for (const auto& c : s.consents) {
    consents.push_back({{"consent_id", c.consent_id},
                        {"person_ref", c.person_ref},
                        {"purpose", c.purpose},
                        {"decision", c.decision},
                        {"recorded_at_version", c.version}});
  }
  Json escalations = Json::object();
  for (const auto& [eid, e] : s.escalations) {
    escalations[eid] = {
        {"target", e.target},
        {"urgency", e.urgency},
        {"acknowledgement_due_at", FormatTimestamp(e.acknowledgement_due_at)},
        {"acknowledged", e.acknowledged},
        {"final_outcome", e.final_outcome}};
  }
  Json reviews = Json::object();
  for (const auto& [rid, r] : s.reviews) {
    reviews[rid] = {
        {"kind", r.kind}, {"due_date", r.due_date}, {"completed", r.completed}};
  }
  Json reaudits = Json::object();
  for (const auto& [rid, r] : s.reaudits) {
    reaudits[rid] = {{"due_date", r.due_date},
                     {"finding_ids", r.finding_ids},
                     {"done", r.done}};
  }
  Json erasures = Json::object();
  for (const auto& [eid, e] : s.erasures) {
    erasures[eid] = {{"scope", e.scope},
                     {"person_ref", e.person_ref},
                     {"legal_ground", e.legal_ground},
                     {"requested_by", e.requested_by},
                     {"status", e.status}};
  }
  Json unexplained = Json::array();
  for (const auto& d : s.unexplained_decisions) {
    unexplained.push_back(
        {{"event_id", d.event_id}, {"type", d.type}, {"missing", d.missing}});
  }
  Json j = {
      {"case_id", id},
      {"version", s.version},
      {"stage", StageName(s.stage)},
      {"kind", s.kind},
      {"setting", s.setting},
      {"categories", s.categories},
      {"reported_at", FormatTimestamp(s.reported_at)},
      {"reporter_actor_id", s.reporter_actor_id},
      {"barred_actor_ids", s.barred_actor_ids},
      {"all_dsls_barred", s.all_dsls_barred},
      {"urgent", s.urgent},
      {"immediate_risk", s.immediate_risk},
      {"under_18_involved", s.under_18_involved},
      {"lead_actor_id", s.lead_actor_id.value_or("")},
      {"lead_role",
       s.lead_role ? std::string(RoleName(*s.lead_role)) : std::string()},
      {"triage_route", s.triage_route},
      {"acknowledgement_due_at", FormatTimestamp(s.acknowledgement_due_at)},
      {"consents", consents},
      {"overrides", s.override_ids},
      {"escalations", escalations},
      {"reviews", reviews},
      {"actions", s.actions},
      {"safety_plans", s.plan_ids},
      {"learning", s.learning_ids},
      {"audit_findings", s.finding_ids},
      {"action_due", s.action_due},
      {"closed_without_outcome_review", s.closed_without_outcome_review},
      {"times_closed", s.times_closed},
      {"times_reopened", s.times_reopened},
      {"closure_reason", s.closure_reason},
      {"outcomes_achieved", s.outcomes_achieved},
      {"reaudits", reaudits},
      {"decisions_without_rationale", unexplained},
      {"legal_hold", s.legal_hold},
      {"erasures", erasures},
      {"personal_data_erased", s.erased},
      {"erased_person_refs", s.erased_person_refs}};
  if (s.acknowledged_at)
    j["acknowledged_at"] = FormatTimestamp(*s.acknowledged_at);
  if (s.times_closed > 0) j["closed_at"] = FormatTimestamp(s.closed_at);
  return j;
}

namespace {

// The explanation a decision left out, if any. Most decisions cannot be
// recorded without one (the schemas require the rationale of a triage, an
// override, an escalation, a reopening, an amendment); these may be, and a
// reviewer wants to see each:
//   - a closure without reason_detail (the reason code alone),
//   - a change of lead without reason_detail,
//   - consent not sought without not_sought_detail,
//   - a risk assessment that considered the least restrictive option
//     without describing it.
template <typename V>
std::optional<std::string> MissingRationale(std::string_view type, const V& p) {
  // Present: a non-empty string, or a sealed value (an object: the text is
  // encrypted at rest, engine/keys).
  auto absent = [&p](const char* field) {
    const V v = p[field];
    return !v.is_object() && v.str().empty();
  };
  if (type == "CaseClosed" && absent("reason_detail")) return "reason_detail";
  if (type == "LeadReassigned" && absent("reason_detail")) {
    return "reason_detail";
  }
  if (type == "ConsentRecorded" && p["decision"].str() == "not_sought" &&
      absent("not_sought_detail")) {
    return "not_sought_detail";
  }
  if (type == "RiskAssessed" &&
      Bool(p, "least_restrictive_option_considered") &&
      absent("least_restrictive_option_description")) {
    return "least_restrictive_option_description";
  }
  return std::nullopt;
}

template <typename V>
void EvolveWith(CaseState& s, const EventHeader& e, const V& p) {
  s.version += 1;
  s.events.Add(e.event_id, e.type, e.schema_version);
  // (A view: each comparison below checks the length first.)
  const std::string_view t = e.type;
  if (t == "ConcernReported") {
    ApplyConcernReported(s, e, p);
  } else if (t == "LeadAssigned" || t == "LeadReassigned") {
    s.lead_actor_id = Str(p, "lead_actor_id");
    s.lead_role = ParseRole(Str(p, "role"));
    AddBarred(s, p);
    if (!s.acknowledged_at) s.acknowledged_at = e.recorded_at;
    if (s.stage == Stage::kReported) s.stage = Stage::kAcknowledged;
  } else if (t == "CaseTriaged") {
    s.triage_route = Str(p, "route");
    s.stage = s.triage_route == "safeguarding_case" ? Stage::kOpen
                                                    : Stage::kTriagedOut;
  } else if (t == "DesiredOutcomesRecorded") {
    p["outcomes"].each(
        [&](const V& o) { s.outcome_ids.insert(Str(o, "outcome_id")); });
  } else if (t == "ConsentRecorded") {
    s.consents.push_back(ConsentEntry{Str(p, "consent_id"),
                                      Str(p, "person_ref"), Str(p, "purpose"),
                                      Str(p, "decision"), s.version});
  } else if (t == "ConsentOverridden") {
    s.override_ids.insert(Str(p, "override_id"));
  } else if (t == "InformationShared") {
    s.share_ids.insert(Str(p, "share_id"));
  } else if (t == "SafetyPlanAgreed") {
    s.plan_ids.insert(Str(p, "plan_id"));
    p["actions"].each([&](const V& a) {
      s.actions.emplace(Str(a, "action_id"), false);
      s.action_due[Str(a, "action_id")] = Str(a, "due_date");
    });
  } else if (t == "EscalationRaised") {
    s.escalations[Str(p, "escalation_id")] =
        EscalationState{Str(p, "target"), Str(p, "urgency"),
                        Time(p, "acknowledgement_due_at"), false, false};
  } else if (t == "EscalationAcknowledged") {
    s.escalations[Str(p, "escalation_id")].acknowledged = true;
  } else if (t == "EscalationOutcomeRecorded") {
    if (Bool(p, "final"))
      s.escalations[Str(p, "escalation_id")].final_outcome = true;
  } else if (t == "ReviewScheduled") {
    s.reviews[Str(p, "review_id")] =
        ReviewState{Str(p, "kind"), Str(p, "due_date"), false};
  } else if (t == "ReviewCompleted") {
    ReviewState& r = s.reviews[Str(p, "review_id")];
    r.kind = Str(p, "kind");
    r.completed = true;
    if (r.kind == "with_person" && p.has("outcomes_achieved")) {
      s.outcomes_achieved = Str(p, "outcomes_achieved");
    }
  } else if (t == "CaseClosed") {
    s.stage = Stage::kClosed;
    s.closed_without_outcome_review = !p.has("outcome_review_id");
    s.closure_reason = Str(p, "reason");
    s.times_closed += 1;
    s.closed_at = e.recorded_at;
  } else if (t == "CaseReopened") {
    // Back to where it was before closure: open if it had been triaged as a
    // safeguarding case, otherwise awaiting (re-)triage or a lead.
    s.stage = !s.lead_actor_id                        ? Stage::kReported
              : s.triage_route == "safeguarding_case" ? Stage::kOpen
                                                      : Stage::kAcknowledged;
    s.times_reopened += 1;
  } else if (t == "LearningRecorded") {
    s.learning_ids.insert(Str(p, "learning_id"));
  } else if (t == "ActionAssigned") {
    s.actions.emplace(Str(p, "action_id"), false);
    s.action_due[Str(p, "action_id")] = Str(p, "due_date");
  } else if (t == "ActionCompleted") {
    s.actions[Str(p, "action_id")] = true;
  } else if (t == "AuditFindingRecorded") {
    s.finding_ids.insert(Str(p, "finding_id"));
    const std::string of = Str(p, "reaudit_of_finding_id");
    for (auto& [rid, r] : s.reaudits) {
      if (!of.empty() && r.finding_ids.count(of)) r.done = true;
    }
  } else if (t == "ReauditScheduled") {
    s.reaudit_ids.insert(Str(p, "reaudit_id"));
    ReauditState& r = s.reaudits[Str(p, "reaudit_id")];
    r.due_date = Str(p, "due_date");
    p["finding_ids"].each([&](const V& f) {
      if (f.is_string()) r.finding_ids.emplace(f.str());
    });
  } else if (t == "CaseSampledForAudit") {
    s.sample_ids.insert(Str(p, "sample_id"));
  } else if (t == "LegalHoldPlaced" || t == "LegalHoldLifted") {
    s.legal_hold = t == "LegalHoldPlaced";
  } else if (t == "ErasureRequested") {
    s.erasures[Str(p, "erasure_id")] =
        ErasureRequest{Str(p, "scope"), Str(p, "person_ref"),
                       Str(p, "legal_ground"), e.actor.id, "requested"};
  } else if (t == "ErasureRefused") {
    s.erasures[Str(p, "erasure_id")].status = "refused";
  } else if (t == "PersonalDataErased") {
    if (p.has("erasure_id")) {
      s.erasures[Str(p, "erasure_id")].status = "approved";
    }
    if (Str(p, "scope") == "case") {
      s.erased = true;
    } else {
      s.erased_person_refs.insert(Str(p, "person_ref"));
    }
  }
  if (t == "EventAmended") {
    // An amendment that supplies a missing explanation answers for it.
    const std::string amended = Str(p, "amends_event_id");
    const V fixed = p["corrected_fields"];
    std::erase_if(s.unexplained_decisions, [&](const UnexplainedDecision& d) {
      return d.event_id == amended && fixed.has(d.missing);
    });
  } else if (auto missing = MissingRationale(t, p)) {
    s.unexplained_decisions.push_back({e.event_id, e.type, *missing});
  }
  if (t == "EventAmended" &&
      p["amends_event_type"].str() == "ConcernReported") {
    // Corrections apply: the case shows the corrected report.
    const V fixed = p["corrected_fields"];
    if (fixed["setting"].is_string()) s.setting = Str(fixed, "setting");
    if (fixed["kind"].is_string()) s.kind = Str(fixed, "kind");
    if (fixed["categories"].is_array()) SetCategories(s, fixed["categories"]);
    if (fixed["people_involved"].is_array()) {
      ApplyPeople(s, fixed["people_involved"]);
    }
  }
  // ParticipationAgreed, CapacityAssessed, PersonInformedOfReport,
  // RiskAssessed, LearningScreened change no rule-bearing state.
}

}  // namespace

CaseState Evolve(CaseState s, const DomainEvent& e) {
  EvolveWith(s, e, NlohmannView(&e.payload));
  return s;
}

void EvolveInPlace(CaseState& s, const EventHeader& e,
                   const simdjson::dom::element& payload) {
  EvolveWith(s, e, SimdjsonView(payload));
}

}  // namespace caseledger::domain
