#include "caseledger/service/seed.h"

#include <array>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "caseledger/service/case_service.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;
using domain::Actor;
using domain::Role;

constexpr int64_t kMinute = 60LL * 1000000;

const Actor kDsl{"user:dsl-1", Role::kDsl};
const Actor kAltDsl{"user:alt-dsl-1", Role::kAltDsl};
const Actor kReviewer{"user:reviewer-1", Role::kReviewer};

std::string Date(Timestamp t) { return FormatTimestamp(t).substr(0, 10); }

// One case's life, step by step, on a simulated clock.
class CaseScript {
 public:
  CaseScript(CaseService& service, std::mt19937_64& rng, std::string case_id,
             uint64_t number, SettableClock* clock, SeedReport* report)
      : service_(service),
        rng_(rng),
        id_(std::move(case_id)),
        n_(std::to_string(number)),
        clock_(clock),
        report_(report) {}

  Status Run();

 private:
  bool Chance(double p) {
    return std::uniform_real_distribution<>(0, 1)(rng_) < p;
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng_)];
  }
  void Advance(int64_t min_minutes, int64_t max_minutes) {
    clock_->Set(
        Timestamp(Now().value() + std::uniform_int_distribution<int64_t>(
                                      min_minutes, max_minutes)(rng_) *
                                      kMinute));
  }

  // A UUIDv7 from the simulated clock and the seeded generator, so that the
  // same seed writes the same event ids (amendments cite them).
  EventId NextEventId() {
    std::array<uint8_t, 16> b{};
    uint64_t hi = rng_(), lo = rng_();
    for (size_t k = 0; k < 8; ++k) {
      b[k] = static_cast<uint8_t>(hi >> (56 - 8 * k));
      b[8 + k] = static_cast<uint8_t>(lo >> (56 - 8 * k));
    }
    uint64_t ms = static_cast<uint64_t>(Now().value() / 1000);
    for (size_t k = 0; k < 6; ++k) {
      b[k] = static_cast<uint8_t>(ms >> (40 - 8 * k));
    }
    b[6] = static_cast<uint8_t>(0x70 | (b[6] & 0x0F));
    b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3F));
    return EventId(b);
  }

  Status Do(const std::string& command, const Json& body, const Actor& actor) {
    Advance(5, int64_t{60} * 24);
    CommandOptions options;
    options.event_id = NextEventId();
    auto r = service_.Execute(id_, command, body, actor, options);
    if (!r.ok()) {
      return Status::FailedPrecondition(
          "seed: case " + id_ + ", " + command +
          " was rejected: " + r.status().ToString());
    }
    report_->commands += 1;
    report_->events += r->event_ids.size();
    if (command == "report") report_id_ = r->event_ids.front().ToString();
    return Status::OK();
  }

  Json Report();
  Status Lead();
  Status Triage();
  Status WorkTheCase();
  Status Close(bool with_review);
  Status Learning();
  Status Audit();

  CaseService& service_;
  std::mt19937_64& rng_;
  std::string id_;
  std::string n_;
  SettableClock* clock_;  // the store's
  Timestamp Now() const { return clock_->Now(); }
  SeedReport* report_;
  std::string report_id_;
  Actor lead_ = kDsl;
  bool conflict_ = false;
  bool under_18_ = false;
  bool immediate_ = false;
  std::string route_;
  std::string consent_basis_;   // a consent id currently given, if any
  std::string override_basis_;  // an override id, if any
  std::vector<std::string> categories_;
};

Json CaseScript::Report() {
  static const std::vector<std::string> kKinds = {
      "concern",  "concern",   "concern",       "incident",
      "incident", "near_miss", "whistleblowing"};
  static const std::vector<std::string> kSettings = {
      "in_person_session", "online_session",    "travel",
      "social_media",      "host_organisation", "outside_activity"};
  static const std::vector<std::string> kCategories = {
      "psychological",
      "racism_and_microaggression",
      "harassment",
      "bullying",
      "dismissed_or_unheard",
      "retraumatisation",
      "online_misuse",
      "financial_or_material",
      "self_neglect",
      "domestic",
      "discriminatory",
      "physical",
      "neglect_and_acts_of_omission",
      "sexual"};
  static const std::vector<std::string> kAgeBands = {"18_64", "18_64", "65_74",
                                                     "75_84"};
  conflict_ = Chance(0.03);
  under_18_ = Chance(0.03);
  immediate_ = Chance(0.10);
  const std::string setting = Pick(kSettings);
  categories_ = {Pick(kCategories)};
  if (Chance(0.3)) {
    std::string second = Pick(kCategories);
    if (second != categories_[0]) categories_.push_back(second);
  }
  Json alleged = {{"person_ref", "person-2"},
                  {"roles", {"person_alleged_to_cause_harm"}},
                  {"name", "Person B" + n_}};
  if (conflict_) {
    // The concern is about the DSL: the alternative DSL must lead.
    alleged["is_dsl"] = true;
    alleged["actor_id"] = kDsl.id;
    report_->conflicts_of_interest += 1;
  }
  Json r = {
      {"kind", Pick(kKinds)},
      {"occurred_at", FormatTimestamp(Timestamp(Now().value() - 90 * kMinute))},
      {"reported_at", FormatTimestamp(Now())},
      {"reported_via", "report_form"},
      {"setting", setting},
      {"people_involved",
       {{{"person_ref", "person-1"},
         {"roles", {"person_affected"}},
         {"name", "Person A" + n_},
         {"contact", {{"email", "person.a" + n_ + "@example.org"}}},
         {"age_band", Pick(kAgeBands)},
         {"is_co_producer", true}},
        alleged}},
      {"facts", "During an activity (" + setting + "), Person B" + n_ +
                    " made remarks to Person A" + n_ +
                    " that left them upset; two people saw it."},
      {"categories", categories_},
      {"sac_locations_of_risk", {"in_the_community"}},
      {"sac_sources_of_risk", {"other_known_to_individual"}},
      {"immediate_risk", immediate_},
      {"emergency_services_called", immediate_},
      {"person_affected_knows", true},
      {"under_18_involved", under_18_},
  };
  if (setting == "host_organisation") {
    r["host_organisation_name"] = "Example Host Organisation";
  }
  if (immediate_) {
    r["actions_taken"] =
        "Called 999 and stayed with Person A" + n_ + " until help arrived.";
  }
  return r;
}

Status CaseScript::Lead() {
  if (conflict_) {
    lead_ = kAltDsl;
    return Do("assign-lead",
              {{"lead_actor_id", kAltDsl.id},
               {"role", "alt_dsl"},
               {"reason", "conflict_of_interest"},
               {"conflicted_actor_ids", {kDsl.id}}},
              kAltDsl);
  }
  lead_ = kDsl;
  return Do("assign-lead",
            {{"lead_actor_id", kDsl.id},
             {"role", "dsl"},
             {"reason", "initial_assignment"}},
            kDsl);
}

Status CaseScript::Triage() {
  Json t = {
      {"decided_by", {{"actor_id", lead_.id}, {"role", RoleName(lead_.role)}}}};
  double r = std::uniform_real_distribution<>(0, 1)(rng_);
  if (under_18_) {
    route_ = "child_procedure";
    t["related_to_activity"] = true;
    t["children_procedure_organisation"] = "Example Children's Services";
    t["rationale"] =
        "Someone under 18 is involved; the children's procedure applies.";
  } else if (r < 0.10) {
    route_ = "not_related";
    t["related_to_activity"] = false;
    t["signposted_organisations"] = {{{"name", "Example Helpline"},
                                      {"kind", "helpline"},
                                      {"details_given_to_person", true}}};
    t["rationale"] = "The concern arose outside the organisation's activity.";
  } else if (r < 0.18) {
    route_ = "advice_only";
    t["related_to_activity"] = true;
    t["advice_summary"] =
        "Advice given to the facilitator on setting ground rules.";
    t["rationale"] = "No harm to an adult; the facilitator asked for advice.";
  } else {
    route_ = "safeguarding_case";
    t["related_to_activity"] = true;
    t["rationale"] = "Harm in the organisation's activity; Person A" + n_ +
                     " wants it addressed.";
  }
  t["route"] = route_;
  return Do("triage", t, lead_);
}

Status CaseScript::WorkTheCase() {
  const Json decided_by = {{"actor_id", lead_.id},
                           {"role", RoleName(lead_.role)}};
  RETURN_IF_ERROR(
      Do("record-outcomes",
         {{"person_ref", "person-1"},
          {"asked_about_outcomes", "yes_outcomes_expressed"},
          {"expressed_by", "person"},
          {"outcomes",
           {{{"outcome_id", "outcome-1"},
             {"in_own_words", "I want to keep coming and feel safe."}}}}},
         lead_));
  RETURN_IF_ERROR(Do("agree-participation",
                     {{"person_ref", "person-1"},
                      {"communication_needs", {"none_identified"}},
                      {"advocacy", "offered_declined"},
                      {"meeting_participation", {"attend_all"}}},
                     lead_));
  const bool given = Chance(0.8);
  RETURN_IF_ERROR(Do("record-consent",
                     {{"consent_id", "consent-1"},
                      {"person_ref", "person-1"},
                      {"purpose", "refer_to_local_authority"},
                      {"decision", given ? "given" : "refused"},
                      {"decided_by", "person"},
                      {"capacity", "assumed"}},
                     lead_));
  if (given) consent_basis_ = "consent-1";
  if (given && Chance(0.12)) {
    // Wishes change: a new event; the history stays.
    RETURN_IF_ERROR(Do("record-consent",
                       {{"consent_id", "consent-2"},
                        {"person_ref", "person-1"},
                        {"purpose", "refer_to_local_authority"},
                        {"decision", "withdrawn"},
                        {"previous_consent_id", "consent-1"},
                        {"decided_by", "person"},
                        {"capacity", "assumed"}},
                       lead_));
    consent_basis_.clear();
    report_->withdrawals += 1;
  }
  if (consent_basis_.empty() && Chance(0.35)) {
    RETURN_IF_ERROR(Do("override-consent",
                       {{"override_id", "override-1"},
                        {"person_ref", "person-1"},
                        {"purpose", "refer_to_local_authority"},
                        {"lawful_basis", "risk_to_others"},
                        {"rationale", "Person B" + n_ +
                                          " has approached other participants; "
                                          "others are at risk."},
                        {"decided_by", decided_by},
                        {"person_to_be_informed", true}},
                       lead_));
    override_basis_ = "override-1";
    report_->overrides += 1;
  }
  RETURN_IF_ERROR(
      Do("assess-risk",
         {{"risk_areas",
           {{{"area", "people"},
             {"level", Chance(0.3) ? "high" : "medium"},
             {"description", "Person B" + n_ + " attends the same sessions."},
             {"mitigation", "Separate groups for now."}}}},
          {"agreed_zone", "stretch"},
          {"zone_agreed_with_person", true},
          {"least_restrictive_option_considered", true},
          {"least_restrictive_option_description",
           "Considered excluding Person B; chose separate groups."},
          {"risk_finding", "risk_identified"},
          {"action_taken", true},
          {"risk_result", Chance(0.7) ? "risk_reduced" : "risk_remained"}},
         lead_));
  const std::string due =
      Date(Timestamp(Now().value() + int64_t{14} * 24 * 60 * kMinute));
  RETURN_IF_ERROR(Do("agree-safety-plan",
                     {{"plan_id", "plan-1"},
                      {"actions",
                       {{{"action_id", "plan-1-a1"},
                         {"description", "Facilitator checks in with Person A" +
                                             n_ + " after each session."},
                         {"owner", {{"role", "facilitator"}}},
                         {"due_date", due}}}},
                      {"review_triggers", {{{"trigger", "risk_increased"}}}},
                      {"review_date", due},
                      {"agreed_with_person", true}},
                     lead_));
  std::string basis_kind = !consent_basis_.empty()    ? "consent"
                           : !override_basis_.empty() ? "override"
                                                      : "";
  if (!basis_kind.empty() && Chance(0.5)) {
    Json basis = {{"kind", basis_kind}};
    basis[basis_kind == "consent" ? "consent_id" : "override_id"] =
        basis_kind == "consent" ? consent_basis_ : override_basis_;
    RETURN_IF_ERROR(Do("raise-escalation",
                       {{"escalation_id", "escalation-la"},
                        {"target", "local_authority_adult_safeguarding"},
                        {"trigger", "statutory_referral"},
                        {"reason", "Person A" + n_ +
                                       " has care and support needs and the "
                                       "harm continues."},
                        {"urgency", "urgent"},
                        {"basis", basis}},
                       lead_));
    report_->escalations += 1;
    if (Chance(0.85)) {
      RETURN_IF_ERROR(Do(
          "acknowledge-escalation",
          {{"escalation_id", "escalation-la"}, {"channel", "email"}}, lead_));
      RETURN_IF_ERROR(Do("record-escalation-outcome",
                         {{"escalation_id", "escalation-la"},
                          {"outcome", Chance(0.5) ? "s42_enquiry_opened"
                                                  : "no_further_action"},
                          {"final", true}},
                         lead_));
    }
  }
  if (!override_basis_.empty()) {
    RETURN_IF_ERROR(Do("inform-person",
                       {{"person_ref", "person-1"},
                        {"about", {"consent_overridden"}},
                        {"override_ids", {override_basis_}},
                        {"method", "in_person"}},
                       lead_));
  }
  if (Chance(0.05)) {
    // A correction: the categories were recorded wrongly.
    RETURN_IF_ERROR(
        Do("amend",
           {{"amends_event_id", report_id_},
            {"amends_event_type", "ConcernReported"},
            {"amends_schema_version", 1},
            {"corrected_fields", {{"categories", {"psychological"}}}},
            {"reason", "The category was chosen in error."},
            {"reason_code", "wrong_category"}},
           lead_));
    report_->amendments += 1;
  }
  RETURN_IF_ERROR(Do("schedule-review",
                     {{"review_id", "review-1"},
                      {"kind", "with_person"},
                      {"reason", "plan_review_date"},
                      {"plan_id", "plan-1"}},
                     lead_));
  RETURN_IF_ERROR(
      Do("complete-action",
         {{"action_id", "plan-1-a1"},
          {"owner", {{"role", "facilitator"}}},
          {"due_date", due},
          {"evidence", "Check-ins done after each of four sessions."}},
         lead_));
  static const std::vector<std::string> kAchieved = {"fully", "fully",
                                                     "partially", "not"};
  return Do("complete-review",
            {{"review_id", "review-1"},
             {"kind", "with_person"},
             {"person_took_part", true},
             {"outcomes_achieved", Pick(kAchieved)},
             {"feels_safer", Chance(0.8) ? "yes" : "partly"},
             {"what_changes", "Separate groups continue for a month."},
             {"no_next_review_reason", "case_to_close"}},
            lead_);
}

Status CaseScript::Close(bool with_review) {
  Json c = {{"feedback_to_reporter_given", true}};
  if (with_review) {
    c["reason"] = "outcomes_achieved";
    c["outcome_review_id"] = "review-1";
  } else {
    c["reason"] = route_ == "not_related" ? "not_related_signposted"
                  : route_ == "child_procedure"
                      ? "routed_to_childrens_procedure"
                      : "advice_given";
    c["no_review_reason"] = "not_a_safeguarding_case";
  }
  RETURN_IF_ERROR(Do("close", c, lead_));
  report_->closed += 1;
  return Status::OK();
}

Status CaseScript::Learning() {
  RETURN_IF_ERROR(
      Do("record-learning",
         {{"learning_id", "learning-1"},
          {"what_went_well",
           "The report reached the lead the same day and the person "
           "chose how to take part."},
          {"what_must_change",
           "Facilitators need a short script for stopping harmful "
           "remarks in online sessions."},
          {"themes", {categories_.front()}},
          {"share_in", {"monthly_learning_meeting"}}},
         lead_));
  return Do("screen-learning",
            {{"learning_id", "learning-1"},
             {"decision", "approved_for_sharing"},
             {"checklist",
              {{"no_names_or_initials", true},
               {"no_contact_details", true},
               {"no_exact_dates_or_places", true},
               {"no_rare_characteristics", true},
               {"motivated_intruder_test_passed", true}}}},
            kReviewer);
}

Status CaseScript::Audit() {
  const std::string sample = "sample-" + MonthOf(Now());
  RETURN_IF_ERROR(Do("sample-for-audit",
                     {{"sample_id", sample},
                      {"period", MonthOf(Now())},
                      {"method", "stratified"}},
                     kReviewer));
  return Do("record-audit-finding",
            {{"finding_id", "finding-1"},
             {"reviewer_actor_id", kReviewer.id},
             {"sample_id", sample},
             {"checks",
              {{"outcome_statements", "met"},
               {"consent_recording", Chance(0.8) ? "met" : "partly_met"},
               {"proportionality", "met"},
               {"review_dates", "met"}}},
             {"finding",
              "Outcomes in the person's words; consent decisions recorded."},
             {"severity", "good_practice"},
             {"reaudit_required", false}},
            kReviewer);
}

Status CaseScript::Run() {
  static const std::vector<std::string> kReporters = {
      "user:reporter-1", "user:reporter-2", "user:reporter-3",
      "user:reporter-4", "user:reporter-5"};
  RETURN_IF_ERROR(
      Do("report", Report(), Actor{Pick(kReporters), Role::kReporter}));
  if (immediate_) {
    // Emergency services first; the lead is told after.
    RETURN_IF_ERROR(
        Do("raise-escalation",
           {{"escalation_id", "escalation-999"},
            {"target", "emergency_services"},
            {"trigger", "immediate_risk"},
            {"reason", "Person A" + n_ + " was in immediate danger."},
            {"urgency", "emergency"},
            {"basis", {{"kind", "emergency_justify_later"}}}},
           conflict_ ? kAltDsl : kDsl));
    report_->escalations += 1;
  }
  RETURN_IF_ERROR(Lead());
  if (immediate_) {
    RETURN_IF_ERROR(
        Do("acknowledge-escalation",
           {{"escalation_id", "escalation-999"}, {"channel", "phone"}}, lead_));
    RETURN_IF_ERROR(Do("record-escalation-outcome",
                       {{"escalation_id", "escalation-999"},
                        {"outcome", "emergency_response_attended"},
                        {"final", true}},
                       lead_));
  }
  RETURN_IF_ERROR(Triage());
  const bool safeguarding = route_ == "safeguarding_case";
  if (safeguarding) RETURN_IF_ERROR(WorkTheCase());
  RETURN_IF_ERROR(Close(safeguarding));
  if (safeguarding && Chance(0.08)) {
    RETURN_IF_ERROR(
        Do("reopen",
           {{"reason", "new_information"},
            {"reason_detail", "Person A" + n_ + " reports further remarks."}},
           lead_));
    report_->reopened += 1;
    RETURN_IF_ERROR(Close(true));
  }
  if (safeguarding && Chance(0.3)) RETURN_IF_ERROR(Learning());
  if (Chance(0.1)) RETURN_IF_ERROR(Audit());
  return Status::OK();
}

}  // namespace

StatusOr<SeedReport> SeedCases(
    EventStore& store, std::shared_ptr<const domain::EventCatalog> catalog,
    const domain::DomainConfig& config, const keys::Sealer& sealer,
    const SeedOptions& options) {
  if (options.clock == nullptr) {
    return Status::InvalidArgument(
        "seeding needs the store's clock (SeedOptions::clock)");
  }
  options.clock->Set(options.start);
  if (store.Now() != options.start) {
    return Status::FailedPrecondition(
        "the store was not opened on the seed's clock (Options::clock)");
  }
  CaseService service(store, std::move(catalog), config, sealer);
  std::mt19937_64 rng(options.seed);
  SeedReport report;
  for (uint64_t i = 1; i <= options.cases; ++i) {
    char id[64];
    std::snprintf(id, sizeof(id), "%06llu", static_cast<unsigned long long>(i));
    // Cases start a few hours apart, and their lives overlap on the clock.
    Timestamp case_start(options.start.value() +
                         static_cast<int64_t>(i) * 97 * kMinute);
    options.clock->Set(case_start);
    CaseScript script(service, rng, options.case_prefix + id, i, options.clock,
                      &report);
    RETURN_IF_ERROR(script.Run());
    report.cases += 1;
    if (options.progress) options.progress(i);
  }
  return report;
}

}  // namespace caseledger::service
