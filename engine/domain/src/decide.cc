#include "caseledger/domain/decide.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <string_view>
#include <vector>

namespace caseledger::domain {
namespace {

using Json = nlohmann::json;

struct Ctx {
  const CaseState& state;
  const Command& command;
  const DomainConfig& config;
  const EventCatalog& catalog;
  const EventLookup& lookup;
  Json& payload;
};

using Step = Status (*)(Ctx&);

// One row per command. `prepare` adds the fields decide() owns before the
// schema check; `check` applies the rules that need the case's history, on a
// payload the schema has already accepted.
struct Spec {
  const char* name;
  const char* event_type;
  bool allowed_when_closed;
  bool needs_lead;
  Step prepare;
  Step check;
};

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool Has(const Json& j, const char* key) { return j.contains(key); }

// The field names something the case does not have, or that its history
// does not allow: the request is well formed, the case says no (409).
Status Missing(const std::string& pointer, const std::string& what) {
  return Status::ConflictField(pointer, pointer + ": " + what);
}

// The field is wrong whatever the case holds (400).
Status Invalid(const std::string& pointer, const std::string& what) {
  return Status::InvalidField(pointer, pointer + ": " + what);
}

// Refuses a payload that sets any field `command` leaves to the server.
Status ServerOwned(Ctx& c, std::string_view command) {
  for (const std::string& field : ServerOwnedFields(command)) {
    if (Has(c.payload, field.c_str())) {
      return Status::InvalidField(
          "/" + field, "/" + field + " is set by the server, not the client");
    }
  }
  return Status::OK();
}

std::string DateAfterDays(Timestamp now, int days) {
  std::time_t t = static_cast<std::time_t>(now.value() / 1000000) +
                  static_cast<std::time_t>(days) * 86400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

Timestamp After(Timestamp now, std::chrono::minutes m) {
  return Timestamp(now.value() + static_cast<int64_t>(m.count()) * 60000000);
}

Status PersonKnown(Ctx& c, const char* field = "person_ref") {
  std::string ref = Str(c.payload, field);
  if (!c.state.person_refs.count(ref)) {
    return Missing(std::string("/") + field,
                   "no person '" + ref + "' is involved in this case");
  }
  return Status::OK();
}

Status Unused(const std::set<std::string>& ids, Ctx& c, const char* field) {
  std::string id = Str(c.payload, field);
  if (ids.count(id)) {
    return Status::AlreadyExists(std::string(field) + " '" + id +
                                 "' is already used in this case");
  }
  return Status::OK();
}

Status EventOfType(Ctx& c, const std::string& pointer, const std::string& id,
                   const char* type) {
  auto found = c.state.events.Find(id);
  if (!found || found->type != type) {
    return Missing(pointer, "no " + std::string(type) + " event '" + id +
                                "' in this case");
  }
  return Status::OK();
}

// The decider named in the payload must be the actor, in the actor's role.
Status DeciderIsActor(Ctx& c, const char* field) {
  const Json& d = c.payload.at(field);
  if (Str(d, "actor_id") != c.command.actor.id) {
    return Invalid(std::string("/") + field + "/actor_id",
                   "must be the actor making the decision");
  }
  if (Str(d, "role") != RoleName(c.command.actor.role)) {
    return Invalid(std::string("/") + field + "/role",
                   "must be the actor's own role");
  }
  return Status::OK();
}

// A lead may not be someone barred from the case; a case whose concern names
// the DSL is led by an alternative DSL.
Status LeadAllowed(Ctx& c) {
  std::string lead = Str(c.payload, "lead_actor_id");
  Actor candidate{lead, *ParseRole(Str(c.payload, "role"))};
  if (c.state.IsBarred(candidate)) {
    return Missing(
        "/lead_actor_id",
        "this person is barred from the case (conflict of interest)");
  }
  if (c.state.dsl_named && candidate.role != Role::kAltDsl) {
    return Missing("/role",
                   "the concern names the DSL: the alternative DSL must lead");
  }
  return Status::OK();
}

Status SharingBasisValid(Ctx& c, const std::string& purpose) {
  const Json& basis = c.payload.at("basis");
  std::string kind = Str(basis, "kind");
  if (kind == "consent") {
    std::string id = Str(basis, "consent_id");
    const ConsentEntry* found = nullptr;
    for (const auto& e : c.state.consents) {
      if (e.consent_id == id) found = &e;
    }
    if (!found) return Missing("/basis/consent_id", "no such consent");
    const ConsentEntry* current =
        c.state.CurrentConsent(found->person_ref, found->purpose);
    if (current->consent_id != id || current->decision != "given") {
      return Missing("/basis/consent_id",
                     "that consent is not the person's current consent "
                     "(given) for this purpose");
    }
    if (!purpose.empty() && found->purpose != purpose) {
      return Missing("/basis/consent_id",
                     "that consent was given for another purpose");
    }
  } else if (kind == "override") {
    std::string id = Str(basis, "override_id");
    if (!c.state.override_ids.count(id)) {
      return Missing("/basis/override_id", "no such consent override");
    }
  }
  return Status::OK();
}

// --- per-command steps -------------------------------------------------------

Status PrepareReport(Ctx& c) {
  RETURN_IF_ERROR(ServerOwned(c, "report"));
  // Immediate risk makes a case urgent from its first event.
  auto risk = c.payload.find("immediate_risk");
  bool urgent =
      risk != c.payload.end() && risk->is_boolean() && risk->get<bool>();
  c.payload["priority"] = urgent ? "urgent" : "standard";
  c.payload["acknowledgement_due_at"] = FormatTimestamp(
      After(c.command.now, urgent ? c.config.acknowledge_urgent
                                  : c.config.acknowledge_standard));
  return Status::OK();
}

Status CheckReport(Ctx& c) {
  std::set<std::string> refs;
  const Json& people = c.payload.at("people_involved");
  for (size_t i = 0; i < people.size(); ++i) {
    if (!refs.insert(Str(people[i], "person_ref")).second) {
      return Invalid("/people_involved/" + std::to_string(i) + "/person_ref",
                     "person_ref values must be unique within the case");
    }
  }
  return Status::OK();
}

Status CheckAssignLead(Ctx& c) {
  if (c.state.lead_actor_id) {
    return Status::FailedPrecondition(
        "the case already has a lead; use reassign-lead");
  }
  return LeadAllowed(c);
}

Status CheckReassignLead(Ctx& c) {
  if (!c.state.lead_actor_id) {
    return Status::FailedPrecondition(
        "the case has no lead yet; use assign-lead");
  }
  if (Str(c.payload, "previous_lead_actor_id") != *c.state.lead_actor_id) {
    return Missing("/previous_lead_actor_id", "is not the case's current lead");
  }
  return LeadAllowed(c);
}

Status CheckTriage(Ctx& c) {
  RETURN_IF_ERROR(DeciderIsActor(c, "decided_by"));
  if (c.state.under_18_involved &&
      Str(c.payload, "route") != "child_procedure") {
    return Missing("/route",
                   "someone under 18 is involved: route to the children's "
                   "procedure");
  }
  return Status::OK();
}

Status CheckOutcomes(Ctx& c) {
  RETURN_IF_ERROR(PersonKnown(c));
  if (Has(c.payload, "supersedes_event_id")) {
    RETURN_IF_ERROR(EventOfType(c, "/supersedes_event_id",
                                Str(c.payload, "supersedes_event_id"),
                                "DesiredOutcomesRecorded"));
  }
  return Status::OK();
}

Status CheckPerson(Ctx& c) { return PersonKnown(c); }

Status CheckConsent(Ctx& c) {
  std::set<std::string> ids;
  for (const auto& e : c.state.consents) ids.insert(e.consent_id);
  RETURN_IF_ERROR(Unused(ids, c, "consent_id"));
  RETURN_IF_ERROR(PersonKnown(c));
  if (Str(c.payload, "decision") == "withdrawn") {
    const ConsentEntry* current = c.state.CurrentConsent(
        Str(c.payload, "person_ref"), Str(c.payload, "purpose"));
    if (!current || current->decision != "given" ||
        current->consent_id != Str(c.payload, "previous_consent_id")) {
      return Missing("/previous_consent_id",
                     "a withdrawal must name the person's current consent "
                     "(given) for this purpose");
    }
  } else if (Has(c.payload, "previous_consent_id")) {
    std::string prev = Str(c.payload, "previous_consent_id");
    if (!ids.count(prev)) {
      return Missing("/previous_consent_id", "no such consent in this case");
    }
  }
  if (Has(c.payload, "capacity_assessment_event_id")) {
    RETURN_IF_ERROR(EventOfType(c, "/capacity_assessment_event_id",
                                Str(c.payload, "capacity_assessment_event_id"),
                                "CapacityAssessed"));
  }
  return Status::OK();
}

Status CheckOverride(Ctx& c) {
  RETURN_IF_ERROR(Unused(c.state.override_ids, c, "override_id"));
  RETURN_IF_ERROR(PersonKnown(c));
  // An override needs a DSL (or the alternative DSL) as decider: the policy
  // table admits only those roles, and the decider must be the actor.
  RETURN_IF_ERROR(DeciderIsActor(c, "decided_by"));
  if (Has(c.payload, "overrides_consent_id")) {
    std::string id = Str(c.payload, "overrides_consent_id");
    bool found = false;
    for (const auto& e : c.state.consents) found |= e.consent_id == id;
    if (!found) return Missing("/overrides_consent_id", "no such consent");
  }
  return Status::OK();
}

Status CheckShare(Ctx& c) {
  RETURN_IF_ERROR(Unused(c.state.share_ids, c, "share_id"));
  RETURN_IF_ERROR(SharingBasisValid(c, Str(c.payload, "purpose")));
  if (Has(c.payload, "escalation_id") &&
      !c.state.escalations.count(Str(c.payload, "escalation_id"))) {
    return Missing("/escalation_id", "no such escalation");
  }
  return Status::OK();
}

Status CheckInform(Ctx& c) {
  RETURN_IF_ERROR(PersonKnown(c));
  const Json& o = c.payload.value("override_ids", Json::array());
  for (size_t i = 0; i < o.size(); ++i) {
    if (!c.state.override_ids.count(o[i].get<std::string>())) {
      return Missing("/override_ids/" + std::to_string(i), "no such override");
    }
  }
  const Json& s = c.payload.value("share_ids", Json::array());
  for (size_t i = 0; i < s.size(); ++i) {
    if (!c.state.share_ids.count(s[i].get<std::string>())) {
      return Missing("/share_ids/" + std::to_string(i), "no such share");
    }
  }
  return Status::OK();
}

Status CheckPlan(Ctx& c) {
  RETURN_IF_ERROR(Unused(c.state.plan_ids, c, "plan_id"));
  if (Has(c.payload, "supersedes_plan_id") &&
      !c.state.plan_ids.count(Str(c.payload, "supersedes_plan_id"))) {
    return Missing("/supersedes_plan_id", "no such safety plan");
  }
  const Json& actions = c.payload.at("actions");
  for (size_t i = 0; i < actions.size(); ++i) {
    if (c.state.actions.count(Str(actions[i], "action_id"))) {
      return Missing("/actions/" + std::to_string(i) + "/action_id",
                     "action_id is already used in this case");
    }
  }
  return Status::OK();
}

Status PrepareEscalation(Ctx& c) {
  RETURN_IF_ERROR(ServerOwned(c, "raise-escalation"));
  std::string urgency = Str(c.payload, "urgency");
  std::chrono::minutes due =
      urgency == "emergency" ? c.config.escalation_emergency
      : urgency == "urgent"  ? c.config.escalation_urgent
                             : c.config.escalation_standard;
  c.payload["acknowledgement_due_at"] =
      FormatTimestamp(After(c.command.now, due));
  return Status::OK();
}

Status CheckEscalation(Ctx& c) {
  std::set<std::string> ids;
  for (const auto& [id, e] : c.state.escalations) ids.insert(id);
  RETURN_IF_ERROR(Unused(ids, c, "escalation_id"));
  return SharingBasisValid(c, "");
}

Status CheckAcknowledgeEscalation(Ctx& c) {
  auto it = c.state.escalations.find(Str(c.payload, "escalation_id"));
  if (it == c.state.escalations.end()) {
    return Missing("/escalation_id", "no such escalation");
  }
  if (it->second.acknowledged) {
    return Status::FailedPrecondition("the escalation is already acknowledged");
  }
  return Status::OK();
}

Status CheckEscalationOutcome(Ctx& c) {
  auto it = c.state.escalations.find(Str(c.payload, "escalation_id"));
  if (it == c.state.escalations.end()) {
    return Missing("/escalation_id", "no such escalation");
  }
  if (it->second.final_outcome) {
    return Status::FailedPrecondition(
        "the escalation's final outcome is already recorded");
  }
  return Status::OK();
}

// Governance reviews are the reviewers'; reviews with the person the leads'.
Status ReviewKindForActor(Ctx& c) {
  bool governance = Str(c.payload, "kind") == "governance";
  bool reviewer = c.command.actor.role == Role::kReviewer;
  if (governance != reviewer) {
    return Status::PermissionDenied(
        governance ? "governance reviews are recorded by reviewers"
                   : "reviews with the person are recorded by the case lead");
  }
  return Status::OK();
}

Status PrepareScheduleReview(Ctx& c) {
  if (!Has(c.payload, "due_date")) {
    c.payload["due_date"] =
        DateAfterDays(c.command.now, c.config.review_interval_days);
  }
  return Status::OK();
}

Status CheckScheduleReview(Ctx& c) {
  std::set<std::string> ids;
  for (const auto& [id, r] : c.state.reviews) ids.insert(id);
  RETURN_IF_ERROR(Unused(ids, c, "review_id"));
  RETURN_IF_ERROR(ReviewKindForActor(c));
  if (Has(c.payload, "plan_id") &&
      !c.state.plan_ids.count(Str(c.payload, "plan_id"))) {
    return Missing("/plan_id", "no such safety plan");
  }
  return Status::OK();
}

Status CheckCompleteReview(Ctx& c) {
  auto it = c.state.reviews.find(Str(c.payload, "review_id"));
  if (it == c.state.reviews.end()) {
    return Missing("/review_id", "no such review is scheduled");
  }
  if (it->second.completed) {
    return Status::FailedPrecondition("the review is already completed");
  }
  if (it->second.kind != Str(c.payload, "kind")) {
    return Missing("/kind", "the review was scheduled as " + it->second.kind);
  }
  RETURN_IF_ERROR(ReviewKindForActor(c));
  const Json& results = c.payload.value("outcome_results", Json::array());
  for (size_t i = 0; i < results.size(); ++i) {
    if (!c.state.outcome_ids.count(Str(results[i], "outcome_id"))) {
      return Missing("/outcome_results/" + std::to_string(i) + "/outcome_id",
                     "no such desired outcome");
    }
  }
  return Status::OK();
}

Status CheckClose(Ctx& c) {
  // Closure needs an outcome review (a completed review with the person) or
  // a recorded reason why none was possible; the schema demands exactly one.
  if (Has(c.payload, "outcome_review_id")) {
    auto it = c.state.reviews.find(Str(c.payload, "outcome_review_id"));
    if (it == c.state.reviews.end() || !it->second.completed ||
        it->second.kind != "with_person") {
      return Missing("/outcome_review_id",
                     "must be a completed review with the person");
    }
  }
  return Status::OK();
}

Status CheckReopen(Ctx& c) {
  if (c.state.stage != Stage::kClosed) {
    return Status::FailedPrecondition("only a closed case can be reopened");
  }
  if (Has(c.payload, "new_information_event_id") &&
      !c.state.events.Find(Str(c.payload, "new_information_event_id"))) {
    return Missing("/new_information_event_id", "no such event in this case");
  }
  return Status::OK();
}

Status CheckAmend(Ctx& c) {
  std::string id = Str(c.payload, "amends_event_id");
  auto found = c.state.events.Find(id);
  if (!found) {
    return Missing("/amends_event_id", "no such event in this case");
  }
  if (found->type != Str(c.payload, "amends_event_type")) {
    return Missing("/amends_event_type",
                   "the event is a " + std::string(found->type));
  }
  if (found->schema_version !=
      c.payload.at("amends_schema_version").get<uint32_t>()) {
    return Missing("/amends_schema_version",
                   "the event was stored as version " +
                       std::to_string(found->schema_version));
  }
  if (found->type == "EventAmended") {
    return Missing("/amends_event_id",
                   "amend the original event, not an amendment");
  }
  if (!c.lookup) {
    return Status::FailedPrecondition("amendments need the case's events");
  }
  std::optional<DomainEvent> original = c.lookup(id);
  if (!original) return Missing("/amends_event_id", "no such event");
  // The corrected event must still be a valid event of its type.
  Json corrected = original->payload;
  for (const auto& [field, value] : c.payload.at("corrected_fields").items()) {
    corrected[field] = value;
  }
  Status s =
      c.catalog.Validate(original->type, original->schema_version, corrected);
  if (!s.ok()) {
    std::string pointer = "/corrected_fields" + s.field().value_or("");
    return Status::InvalidField(pointer,
                                "the corrected " + original->type +
                                    " would be invalid: " + s.message());
  }
  return Status::OK();
}

Status CheckLearning(Ctx& c) {
  return Unused(c.state.learning_ids, c, "learning_id");
}

Status CheckScreenLearning(Ctx& c) {
  if (!c.state.learning_ids.count(Str(c.payload, "learning_id"))) {
    return Missing("/learning_id", "no such learning in this case");
  }
  return Status::OK();
}

Status CheckAssignAction(Ctx& c) {
  auto it = c.state.actions.find(Str(c.payload, "action_id"));
  if (it != c.state.actions.end() && it->second) {
    return Status::FailedPrecondition("the action is already completed");
  }
  std::string origin = Str(c.payload, "origin");
  std::string ref = Str(c.payload, "origin_ref");
  if (origin == "learning" && !ref.empty() &&
      !c.state.learning_ids.count(ref)) {
    return Missing("/origin_ref", "no such learning in this case");
  }
  if (origin == "audit_finding" && !ref.empty() &&
      !c.state.finding_ids.count(ref)) {
    return Missing("/origin_ref", "no such audit finding in this case");
  }
  return Status::OK();
}

Status CheckCompleteAction(Ctx& c) {
  auto it = c.state.actions.find(Str(c.payload, "action_id"));
  if (it == c.state.actions.end()) {
    return Missing("/action_id", "no such action in this case");
  }
  if (it->second)
    return Status::FailedPrecondition("the action is already completed");
  return Status::OK();
}

Status CheckSample(Ctx& c) {
  return Unused(c.state.sample_ids, c, "sample_id");
}

Status CheckFinding(Ctx& c) {
  RETURN_IF_ERROR(Unused(c.state.finding_ids, c, "finding_id"));
  if (Str(c.payload, "reviewer_actor_id") != c.command.actor.id) {
    return Invalid("/reviewer_actor_id", "must be the reviewer recording it");
  }
  if (Has(c.payload, "sample_id") &&
      !c.state.sample_ids.count(Str(c.payload, "sample_id"))) {
    return Missing("/sample_id", "the case was not sampled as that");
  }
  if (Has(c.payload, "reaudit_of_finding_id") &&
      !c.state.finding_ids.count(Str(c.payload, "reaudit_of_finding_id"))) {
    return Missing("/reaudit_of_finding_id", "no such finding");
  }
  return Status::OK();
}

Status CheckReaudit(Ctx& c) {
  RETURN_IF_ERROR(Unused(c.state.reaudit_ids, c, "reaudit_id"));
  const Json& ids = c.payload.at("finding_ids");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!c.state.finding_ids.count(ids[i].get<std::string>())) {
      return Missing("/finding_ids/" + std::to_string(i), "no such finding");
    }
  }
  return Status::OK();
}

// Erasure and legal hold.

Status NotOnHold(Ctx& c) {
  if (c.state.legal_hold) {
    return Status::FailedPrecondition(
        "the case is on legal hold: nothing of it may be erased until the "
        "hold is lifted");
  }
  return Status::OK();
}

// What an erasure of `scope` (and `person_ref`) needs of the case now.
Status ErasableNow(Ctx& c, const std::string& scope,
                   const std::string& person_ref, const std::string& pointer) {
  RETURN_IF_ERROR(NotOnHold(c));
  if (scope == "case") {
    if (c.state.stage != Stage::kClosed) {
      return Status::FailedPrecondition(
          "a whole case can be erased only once it is closed");
    }
    return Status::OK();
  }
  if (!c.state.person_refs.count(person_ref)) {
    return Missing(pointer,
                   "no person '" + person_ref + "' is involved in this case");
  }
  if (c.state.erased_person_refs.count(person_ref)) {
    return Status::FailedPrecondition("person '" + person_ref +
                                      "' is erased already");
  }
  return Status::OK();
}

Status CheckRequestErasure(Ctx& c) {
  const std::string id = Str(c.payload, "erasure_id");
  if (c.state.erasures.count(id)) {
    return Status::AlreadyExists("erasure_id '" + id +
                                 "' is already used in this case");
  }
  const std::string scope = Str(c.payload, "scope");
  const std::string ref = Str(c.payload, "person_ref");
  RETURN_IF_ERROR(ErasableNow(c, scope, ref, "/person_ref"));
  for (const auto& [other, r] : c.state.erasures) {
    if (r.status == "requested" && r.scope == scope && r.person_ref == ref) {
      return Status::FailedPrecondition("erasure request '" + other +
                                        "' for the same data is pending");
    }
  }
  return Status::OK();
}

// The pending request the payload names, decided by someone else.
StatusOr<const ErasureRequest*> PendingErasure(Ctx& c) {
  const std::string id = Str(c.command.body, "erasure_id");
  auto it = c.state.erasures.find(id);
  if (it == c.state.erasures.end()) {
    return Missing("/erasure_id", "no such erasure request in this case");
  }
  if (it->second.status != "requested") {
    return Status::FailedPrecondition("erasure request '" + id + "' was " +
                                      it->second.status + " already");
  }
  if (it->second.requested_by == c.command.actor.id) {
    return Status::PermissionDenied(
        "erasure takes two people: its requester may not decide it");
  }
  return &it->second;
}

Status PrepareApproveErasure(Ctx& c) {
  RETURN_IF_ERROR(ServerOwned(c, "approve-erasure"));
  if (!c.payload.contains("erasure_id") ||
      !c.payload["erasure_id"].is_string()) {
    return Status::OK();  // the schema says what is missing
  }
  ASSIGN_OR_RETURN(const ErasureRequest* r, PendingErasure(c));
  c.payload["scope"] = r->scope;
  if (r->scope == "person") c.payload["person_ref"] = r->person_ref;
  c.payload["legal_ground"] = r->legal_ground;
  return Status::OK();
}

Status CheckApproveErasure(Ctx& c) {
  return ErasableNow(c, Str(c.payload, "scope"), Str(c.payload, "person_ref"),
                     "/erasure_id");
}

Status CheckRefuseErasure(Ctx& c) { return PendingErasure(c).status(); }

Status CheckPlaceHold(Ctx& c) {
  if (c.state.legal_hold) {
    return Status::FailedPrecondition("the case is on legal hold already");
  }
  return Status::OK();
}

Status CheckLiftHold(Ctx& c) {
  if (!c.state.legal_hold) {
    return Status::FailedPrecondition("the case is not on legal hold");
  }
  return Status::OK();
}

Status PrepareRetention(Ctx& c) {
  RETURN_IF_ERROR(ServerOwned(c, "apply-retention"));
  c.payload["scope"] = "case";
  c.payload["legal_ground"] = "retention_period_ended";
  if (c.state.times_closed > 0) {
    c.payload["closed_at"] = FormatTimestamp(c.state.closed_at);
  }
  return Status::OK();
}

Status CheckRetention(Ctx& c) {
  RETURN_IF_ERROR(NotOnHold(c));
  if (c.state.stage != Stage::kClosed) {
    return Status::FailedPrecondition(
        "retention applies to closed cases only: its period runs from the "
        "closure");
  }
  const std::string name = Str(c.payload, "retention_rule");
  const RetentionRule* rule = RetentionRuleFor(c.config, c.state.kind);
  if (!rule || rule->name != name) {
    return Missing("/retention_rule",
                   rule ? "a case of kind '" + c.state.kind +
                              "' falls under rule '" + rule->name + "'"
                        : "no retention rule covers a case of kind '" +
                              c.state.kind + "'");
  }
  const Timestamp ends = RetentionEndsAt(*rule, c.state.closed_at);
  if (c.command.now < ends) {
    return Status::FailedPrecondition("the retention period of rule '" + name +
                                      "' runs until " + FormatTimestamp(ends));
  }
  return Status::OK();
}

// name, event, allowed when closed, needs a lead, prepare, check
const std::vector<Spec>& Specs() {
  static const std::vector<Spec> kSpecs = {
      {"report", "ConcernReported", false, false, PrepareReport, CheckReport},
      {"assign-lead", "LeadAssigned", false, false, nullptr, CheckAssignLead},
      {"reassign-lead", "LeadReassigned", false, false, nullptr,
       CheckReassignLead},
      {"triage", "CaseTriaged", false, true, nullptr, CheckTriage},
      {"record-outcomes", "DesiredOutcomesRecorded", false, true, nullptr,
       CheckOutcomes},
      {"agree-participation", "ParticipationAgreed", false, true, nullptr,
       CheckPerson},
      {"assess-capacity", "CapacityAssessed", false, true, nullptr,
       CheckPerson},
      {"record-consent", "ConsentRecorded", false, true, nullptr, CheckConsent},
      {"override-consent", "ConsentOverridden", false, true, nullptr,
       CheckOverride},
      {"share-information", "InformationShared", false, true, nullptr,
       CheckShare},
      {"inform-person", "PersonInformedOfReport", false, true, nullptr,
       CheckInform},
      {"assess-risk", "RiskAssessed", false, true, nullptr, nullptr},
      {"agree-safety-plan", "SafetyPlanAgreed", false, true, nullptr,
       CheckPlan},
      // Emergency services come first, before any lead has the case.
      {"raise-escalation", "EscalationRaised", false, false, PrepareEscalation,
       CheckEscalation},
      {"acknowledge-escalation", "EscalationAcknowledged", false, false,
       nullptr, CheckAcknowledgeEscalation},
      {"record-escalation-outcome", "EscalationOutcomeRecorded", false, false,
       nullptr, CheckEscalationOutcome},
      {"schedule-review", "ReviewScheduled", true, false, PrepareScheduleReview,
       CheckScheduleReview},
      {"complete-review", "ReviewCompleted", true, false, nullptr,
       CheckCompleteReview},
      {"close", "CaseClosed", false, true, nullptr, CheckClose},
      {"reopen", "CaseReopened", true, false, nullptr, CheckReopen},
      {"amend", "EventAmended", true, false, nullptr, CheckAmend},
      {"record-learning", "LearningRecorded", true, false, nullptr,
       CheckLearning},
      {"screen-learning", "LearningScreened", true, false, nullptr,
       CheckScreenLearning},
      {"assign-action", "ActionAssigned", true, false, nullptr,
       CheckAssignAction},
      {"complete-action", "ActionCompleted", true, false, nullptr,
       CheckCompleteAction},
      {"sample-for-audit", "CaseSampledForAudit", true, false, nullptr,
       CheckSample},
      {"record-audit-finding", "AuditFindingRecorded", true, false, nullptr,
       CheckFinding},
      {"schedule-reaudit", "ReauditScheduled", true, false, nullptr,
       CheckReaudit},
      {"request-erasure", "ErasureRequested", true, false, nullptr,
       CheckRequestErasure},
      {"approve-erasure", "PersonalDataErased", true, false,
       PrepareApproveErasure, CheckApproveErasure},
      {"refuse-erasure", "ErasureRefused", true, false, nullptr,
       CheckRefuseErasure},
      {"place-legal-hold", "LegalHoldPlaced", true, false, nullptr,
       CheckPlaceHold},
      {"lift-legal-hold", "LegalHoldLifted", true, false, nullptr,
       CheckLiftHold},
      {"apply-retention", "PersonalDataErased", true, false, PrepareRetention,
       CheckRetention},
  };
  return kSpecs;
}

// A command may not record anything about a person whose data was erased
// (their key is destroyed: nothing could be sealed for them, and a new key
// would undo the erasure's meaning).
Status NamesNoErasedPerson(const CaseState& state, const Json& j,
                           const std::string& at) {
  const auto below = [&at](std::string_view step) {
    std::string path = at;
    path += '/';
    path += step;
    return path;
  };
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "person_ref" && v.is_string() &&
          state.erased_person_refs.count(v.get<std::string>())) {
        std::string message = below("person_ref");
        message += ": person '";
        message += v.get<std::string>();
        message += "' was erased: nothing more may be recorded about them";
        return Status::FailedPrecondition(message);
      }
      RETURN_IF_ERROR(NamesNoErasedPerson(state, v, below(k)));
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      RETURN_IF_ERROR(
          NamesNoErasedPerson(state, j[i], below(std::to_string(i))));
    }
  }
  return Status::OK();
}

// Fields that only repeat who is acting, filled in from the actor when the
// request leaves them out (a form need not ask someone who they are).
void FillIdentity(const Command& command, Json* payload) {
  const std::string role(RoleName(command.actor.role));
  if (command.name == "triage" || command.name == "override-consent") {
    if (!payload->contains("decided_by")) {
      (*payload)["decided_by"] = {{"actor_id", command.actor.id},
                                  {"role", role}};
    }
  } else if (command.name == "assign-lead" || command.name == "reassign-lead") {
    // Leading oneself: the lead is the actor, in the actor's role.
    if (!payload->contains("lead_actor_id")) {
      (*payload)["lead_actor_id"] = command.actor.id;
      if (!payload->contains("role")) (*payload)["role"] = role;
    }
  } else if (command.name == "record-audit-finding") {
    if (!payload->contains("reviewer_actor_id")) {
      (*payload)["reviewer_actor_id"] = command.actor.id;
    }
  }
}

Status ClosedCase() {
  return Status::FailedPrecondition(
      "the case is closed: it takes only reopen, amendments, learning and "
      "audit");
}

const Spec* FindSpec(std::string_view name) {
  for (const Spec& s : Specs()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

}  // namespace

namespace internal {

const std::vector<std::string_view>& CaseEventTypes() {
  static const std::vector<std::string_view> kTypes = [] {
    std::vector<std::string_view> types;
    for (const Spec& s : Specs()) {
      // (Two commands may write one type: approve-erasure, apply-retention.)
      if (std::find(types.begin(), types.end(), s.event_type) == types.end()) {
        types.emplace_back(s.event_type);
      }
    }
    return types;
  }();
  return kTypes;
}

}  // namespace internal

const RetentionRule* RetentionRuleFor(const DomainConfig& config,
                                      std::string_view kind) {
  const RetentionRule* any = nullptr;
  for (const RetentionRule& r : config.retention_rules) {
    if (r.kind == kind) return &r;
    if (r.kind == "*") any = &r;
  }
  return any;
}

Timestamp RetentionEndsAt(const RetentionRule& rule, Timestamp closed_at) {
  const int64_t micros = closed_at.value();
  std::time_t t = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  tm.tm_year += rule.years;  // timegm normalises 29 February to 1 March
  const int64_t seconds = static_cast<int64_t>(timegm(&tm));
  return Timestamp(seconds * 1000000 + micros % 1000000);
}

const std::vector<std::string>& ServerOwnedFields(std::string_view command) {
  static const std::map<std::string, std::vector<std::string>, std::less<>>
      kOwned = {
          {"report", {"priority", "acknowledgement_due_at"}},
          {"raise-escalation", {"acknowledgement_due_at"}},
          {"approve-erasure",
           {"scope", "person_ref", "legal_ground", "retention_rule",
            "closed_at"}},
          {"apply-retention",
           {"scope", "person_ref", "legal_ground", "erasure_id", "closed_at"}},
      };
  static const std::vector<std::string> kNone;
  auto it = kOwned.find(command);
  return it == kOwned.end() ? kNone : it->second;
}

std::string EventTypeOf(std::string_view command) {
  const Spec* s = FindSpec(command);
  return s ? s->event_type : "";
}

StatusOr<std::vector<NewEvent>> Decide(const CaseState& state,
                                       const Command& command,
                                       const EventCatalog& catalog,
                                       const DomainConfig& config,
                                       const EventLookup& lookup) {
  const Spec* spec = FindSpec(command.name);
  if (!spec) {
    return Status::InvalidArgument("unknown command '" + command.name + "'");
  }
  if (!MayCommand(command.actor.role, command.name)) {
    return Status::PermissionDenied(std::string(RoleName(command.actor.role)) +
                                    " may not " + command.name);
  }
  if (command.name == "report") {
    if (state.stage != Stage::kNone) {
      return Status::AlreadyExists("this case has already been reported");
    }
  } else {
    if (state.stage == Stage::kNone) {
      return Status::FailedPrecondition(
          "nothing can happen to a case before it is reported");
    }
    if (state.IsBarred(command.actor)) {
      return Status::PermissionDenied(
          "you are barred from this case (conflict of interest)");
    }
    if (state.erased) {
      return Status::FailedPrecondition(
          "the case's personal data was erased: it takes no more commands");
    }
    if (state.stage == Stage::kClosed && !spec->allowed_when_closed) {
      return ClosedCase();
    }
    if (spec->needs_lead && !state.lead_actor_id) {
      return Status::FailedPrecondition(
          "no lead has taken this case yet: assign a lead first");
    }
  }
  if (!command.body.is_object()) {
    return Status::InvalidField("", "the request body must be a JSON object");
  }

  Json payload = command.body;
  FillIdentity(command, &payload);
  Ctx ctx{state, command, config, catalog, lookup, payload};
  if (spec->prepare) RETURN_IF_ERROR(spec->prepare(ctx));
  const uint32_t version = catalog.CurrentVersion(spec->event_type);
  RETURN_IF_ERROR(catalog.Validate(spec->event_type, version, payload));
  // Nothing below reads the payload before the schema has accepted it.
  // Reviews on a closed case are governance reviews (audit) only.
  if (state.stage == Stage::kClosed &&
      (command.name == "schedule-review" ||
       command.name == "complete-review") &&
      Str(payload, "kind") != "governance") {
    return ClosedCase();
  }
  if (spec->check) RETURN_IF_ERROR(spec->check(ctx));
  if (!state.erased_person_refs.empty() && command.name != "request-erasure" &&
      command.name != "approve-erasure") {
    RETURN_IF_ERROR(NamesNoErasedPerson(state, payload, ""));
  }
  std::vector<NewEvent> out;
  out.push_back(NewEvent{spec->event_type, version, std::move(payload)});
  return out;
}

}  // namespace caseledger::domain
