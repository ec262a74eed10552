// The case rules, as pure functions: each test would fail if its rule were
// removed from decide() or evolve().
#include "caseledger/domain/decide.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <tuple>
#include <vector>

namespace caseledger::domain {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const Actor kDsl{"user:dsl-1", Role::kDsl};
const Actor kAltDsl{"user:alt-dsl-1", Role::kAltDsl};
const Actor kReporter{"user:reporter-1", Role::kReporter};
const Actor kReviewer{"user:reviewer-1", Role::kReviewer};
const Actor kIntegration{"svc:feed", Role::kIntegration};
const Actor kAdmin{"user:admin", Role::kAdmin};
// 2026-03-12T15:10:00Z
const Timestamp kNow(1773328200000000);

Json Example(const std::string& type) {
  std::ifstream in(fs::path(CASELEDGER_SOURCE_DIR) / "schemas" / "examples" /
                   type / "valid-1.json");
  return Json::parse(in);
}

// A report body: the form as a reporter fills it in (no server fields), with
// one person affected and one alleged to cause harm.
Json Report() {
  Json r = Example("ConcernReported");
  r.erase("priority");
  r.erase("acknowledgement_due_at");
  r["immediate_risk"] = false;
  r["emergency_services_called"] = false;
  r.erase("emergency_services_not_called_reason");
  r["under_18_involved"] = false;
  r["people_involved"] =
      Json::array({{{"person_ref", "person-1"}, {"roles", {"person_affected"}}},
                   {{"person_ref", "person-2"},
                    {"roles", {"person_alleged_to_cause_harm"}}}});
  return r;
}

class DecideTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = EventCatalog::Load();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = *c;
  }

  StatusOr<std::vector<NewEvent>> Try(const std::string& name, Json body,
                                      const Actor& actor) {
    Command cmd{name, std::move(body), actor, kNow};
    return Decide(state_, cmd, *catalog_, config_,
                  [this](const std::string& id) -> std::optional<DomainEvent> {
                    auto it = stored_.find(id);
                    if (it == stored_.end()) return std::nullopt;
                    return it->second;
                  });
  }

  // Decides and, on success, applies the events; returns the status.
  Status Run(const std::string& name, Json body, const Actor& actor) {
    auto events = Try(name, std::move(body), actor);
    if (!events.ok()) return events.status();
    for (const NewEvent& e : *events) {
      DomainEvent d{{"ev-" + std::to_string(state_.version + 1), e.type,
                     e.schema_version, actor, kNow},
                    e.payload};
      stored_[d.event_id] = d;
      last_ = d;
      state_ = Evolve(std::move(state_), d);
    }
    return Status::OK();
  }

  void ReportAndLead(Json report = Report()) {
    ASSERT_TRUE(Run("report", std::move(report), kReporter).ok());
    Json lead = {{"lead_actor_id", kDsl.id},
                 {"role", "dsl"},
                 {"reason", "initial_assignment"}};
    Status s = Run("assign-lead", lead, kDsl);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void OpenCase() {
    ReportAndLead();
    Json triage = Example("CaseTriaged");
    triage["decided_by"] = {{"actor_id", kDsl.id}, {"role", "dsl"}};
    Status s = Run("triage", triage, kDsl);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(state_.stage, Stage::kOpen);
  }

  Json Consent(const std::string& id, const std::string& decision) {
    Json c = Example("ConsentRecorded");
    c["consent_id"] = id;
    c["decision"] = decision;
    return c;
  }

  // Refused as an invalid request (400), naming the field.
  static void ExpectField(const Status& s, const std::string& pointer) {
    ASSERT_FALSE(s.ok()) << "accepted, expected a rejection at " << pointer;
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_EQ(s.field().value_or("<none>"), pointer) << s.ToString();
  }
  // Refused because of the case as it is (409), naming the field that
  // does not fit it.
  static void ExpectConflict(const Status& s, const std::string& pointer) {
    ASSERT_FALSE(s.ok()) << "accepted, expected a conflict at " << pointer;
    EXPECT_TRUE(s.IsFailedPrecondition()) << s.ToString();
    EXPECT_EQ(s.field().value_or("<none>"), pointer) << s.ToString();
  }

  static std::shared_ptr<const EventCatalog> catalog_;
  DomainConfig config_;
  CaseState state_;
  std::map<std::string, DomainEvent> stored_;
  DomainEvent last_;
};
std::shared_ptr<const EventCatalog> DecideTest::catalog_;

TEST_F(DecideTest, NothingHappensToACaseBeforeItIsReported) {
  Json triage = Example("CaseTriaged");
  EXPECT_TRUE(Try("triage", triage, kDsl).status().IsFailedPrecondition());
  EXPECT_TRUE(Try("record-learning", Example("LearningRecorded"), kDsl)
                  .status()
                  .IsFailedPrecondition());
}

TEST_F(DecideTest, ACaseIsReportedOnce) {
  ASSERT_TRUE(Run("report", Report(), kReporter).ok());
  EXPECT_EQ(state_.stage, Stage::kReported);
  EXPECT_EQ(state_.reporter_actor_id, kReporter.id);
  EXPECT_TRUE(Try("report", Report(), kReporter).status().IsAlreadyExists());
}

TEST_F(DecideTest, ImmediateRiskMakesTheCaseUrgentFromItsFirstEvent) {
  Json r = Report();
  r["immediate_risk"] = true;
  r["emergency_services_called"] = true;
  auto events = Try("report", r, kReporter);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  const Json& p = (*events)[0].payload;
  EXPECT_EQ(p["priority"], "urgent");
  EXPECT_EQ(p["acknowledgement_due_at"], "2026-03-12T16:10:00.000000Z");

  auto standard = Try("report", Report(), kReporter);
  ASSERT_TRUE(standard.ok());
  EXPECT_EQ((*standard)[0].payload["priority"], "standard");
  EXPECT_EQ((*standard)[0].payload["acknowledgement_due_at"],
            "2026-03-13T15:10:00.000000Z");
}

TEST_F(DecideTest, DeadlinesComeFromConfiguration) {
  config_.acknowledge_standard = std::chrono::minutes(30);
  auto events = Try("report", Report(), kReporter);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].payload["acknowledgement_due_at"],
            "2026-03-12T15:40:00.000000Z");
}

TEST_F(DecideTest, TheServerOwnsPriorityAndDueTimes) {
  Json r = Report();
  r["priority"] = "standard";
  ExpectField(Try("report", r, kReporter).status(), "/priority");
}

TEST_F(DecideTest, SchemaViolationsNameTheField) {
  Json r = Report();
  r["kind"] = "rumour";
  ExpectField(Try("report", r, kReporter).status(), "/kind");
  Json missing = Report();
  missing.erase("facts");
  ExpectField(Try("report", missing, kReporter).status(), "/facts");
  ExpectField(Try("report", Json::array(), kReporter).status(), "");
  // Every field that fails is named, the deepest first, so a form can mark
  // each; a missing property where it should be.
  Json several = Report();
  several.erase("facts");
  several["kind"] = "rumour";
  several["people_involved"][0]["roles"] = Json::array({"bystander"});
  Status s = Try("report", several, kReporter).status();
  ASSERT_TRUE(s.IsInvalidArgument());
  std::set<std::string> named;
  for (const FieldError& e : s.field_errors()) {
    named.insert(e.pointer);
    EXPECT_NE(e.detail.find(e.pointer), std::string::npos) << e.detail;
  }
  EXPECT_EQ(named, (std::set<std::string>{"/facts", "/kind",
                                          "/people_involved/0/roles/0"}));
  EXPECT_EQ(s.field(), "/people_involved/0/roles/0");
}

TEST_F(DecideTest, WhatOnlyRepeatsTheActorIsFilledIn) {
  ReportAndLead();
  // Triage and overrides name their decider; the decider is the actor.
  Json triage = Example("CaseTriaged");
  triage.erase("decided_by");
  ASSERT_TRUE(Run("triage", triage, kDsl).ok());
  EXPECT_EQ(last_.payload["decided_by"],
            Json({{"actor_id", kDsl.id}, {"role", "dsl"}}));
  // Naming someone else is still refused.
  triage["decided_by"] = {{"actor_id", kAltDsl.id}, {"role", "alt_dsl"}};
  ExpectField(Try("triage", triage, kDsl).status(), "/decided_by/actor_id");
  // Leading oneself.
  Status lead = Run("reassign-lead",
                    {{"previous_lead_actor_id", kDsl.id},
                     {"reason", "dsl_unavailable"},
                     {"reason_detail", "On leave."}},
                    kAltDsl);
  ASSERT_TRUE(lead.ok()) << lead.ToString();
  EXPECT_EQ(state_.lead_actor_id, kAltDsl.id);
  EXPECT_EQ(state_.lead_role, Role::kAltDsl);
  // A finding's reviewer.
  Json finding = Example("AuditFindingRecorded");
  finding.erase("reviewer_actor_id");
  finding.erase("sample_id");
  finding.erase("review_id");
  Status found = Run("record-audit-finding", finding, kReviewer);
  ASSERT_TRUE(found.ok()) << found.ToString();
  EXPECT_EQ(last_.payload["reviewer_actor_id"], kReviewer.id);
}

TEST_F(DecideTest, PersonRefsAreUniqueWithinACase) {
  Json r = Report();
  r["people_involved"][1]["person_ref"] = "person-1";
  ExpectField(Try("report", r, kReporter).status(),
              "/people_involved/1/person_ref");
}

TEST_F(DecideTest, TriageNeedsALeadAndIsDecidedByTheActor) {
  ASSERT_TRUE(Run("report", Report(), kReporter).ok());
  Json triage = Example("CaseTriaged");
  triage["decided_by"] = {{"actor_id", kDsl.id}, {"role", "dsl"}};
  EXPECT_TRUE(Try("triage", triage, kDsl).status().IsFailedPrecondition());
  ASSERT_TRUE(Run("assign-lead",
                  {{"lead_actor_id", kDsl.id},
                   {"role", "dsl"},
                   {"reason", "initial_assignment"}},
                  kDsl)
                  .ok());
  EXPECT_EQ(state_.stage, Stage::kAcknowledged);
  ASSERT_TRUE(state_.acknowledged_at.has_value());
  triage["decided_by"]["actor_id"] = "user:someone-else";
  ExpectField(Try("triage", triage, kDsl).status(), "/decided_by/actor_id");
}

TEST_F(DecideTest, UnderEighteenRoutesToTheChildrensProcedure) {
  Json r = Report();
  r["under_18_involved"] = true;
  ReportAndLead(r);
  Json triage = Example("CaseTriaged");
  triage["decided_by"] = {{"actor_id", kDsl.id}, {"role", "dsl"}};
  ExpectConflict(Try("triage", triage, kDsl).status(), "/route");
  triage["route"] = "child_procedure";
  triage["children_procedure_organisation"] = "Example Children's Services";
  EXPECT_TRUE(Run("triage", triage, kDsl).ok());
  EXPECT_EQ(state_.stage, Stage::kTriagedOut);
}

TEST_F(DecideTest, AConcernNamingTheDslIsLedByTheAlternativeDsl) {
  Json r = Report();
  r["people_involved"][1]["is_dsl"] = true;
  r["people_involved"][1]["actor_id"] = kDsl.id;
  ASSERT_TRUE(Run("report", r, kReporter).ok());
  EXPECT_TRUE(state_.dsl_named);
  // The DSL is barred from the case altogether.
  Json lead = {{"lead_actor_id", kAltDsl.id},
               {"role", "alt_dsl"},
               {"reason", "conflict_of_interest"}};
  EXPECT_TRUE(Try("assign-lead", lead, kDsl).status().IsPermissionDenied());
  // Nobody may make the DSL the lead, and another DSL may not lead either.
  ExpectConflict(Try("assign-lead",
                     {{"lead_actor_id", kDsl.id},
                      {"role", "dsl"},
                      {"reason", "initial_assignment"}},
                     kAltDsl)
                     .status(),
                 "/lead_actor_id");
  ExpectConflict(Try("assign-lead",
                     {{"lead_actor_id", "user:dsl-2"},
                      {"role", "dsl"},
                      {"reason", "initial_assignment"}},
                     kAltDsl)
                     .status(),
                 "/role");
  EXPECT_TRUE(Run("assign-lead", lead, kAltDsl).ok());
  EXPECT_TRUE(state_.IsBarred(kDsl));
  EXPECT_FALSE(state_.IsBarred(kAltDsl));
}

TEST_F(DecideTest, ANamedDslWithoutAnAccountBarsEveryDsl) {
  Json r = Report();
  r["people_involved"][1]["is_dsl"] = true;
  ASSERT_TRUE(Run("report", r, kReporter).ok());
  EXPECT_TRUE(state_.IsBarred(Actor{"user:any-dsl", Role::kDsl}));
  EXPECT_FALSE(state_.IsBarred(kAltDsl));
}

TEST_F(DecideTest, ACorrectedReportThatNamesTheDslBarsThem) {
  ReportAndLead();
  const std::string report_event = "ev-1";
  EXPECT_FALSE(state_.IsBarred(kDsl));
  Json people = stored_.at(report_event).payload["people_involved"];
  people[1]["is_dsl"] = true;
  people[1]["actor_id"] = kDsl.id;
  Json amend = {{"amends_event_id", report_event},
                {"amends_event_type", "ConcernReported"},
                {"amends_schema_version", 1},
                {"corrected_fields", {{"people_involved", people}}},
                {"reason", "The person named is our DSL."}};
  ASSERT_TRUE(Run("amend", amend, kAltDsl).ok());
  EXPECT_TRUE(state_.IsBarred(kDsl));
  EXPECT_TRUE(state_.dsl_named);
  EXPECT_TRUE(Try("record-learning", Example("LearningRecorded"), kDsl)
                  .status()
                  .IsPermissionDenied());
  // A later correction that names nobody does not lift the bar.
  people[1].erase("is_dsl");
  people[1].erase("actor_id");
  amend["corrected_fields"] = {{"people_involved", people}};
  ASSERT_TRUE(Run("amend", amend, kAltDsl).ok());
  EXPECT_TRUE(state_.IsBarred(kDsl));
}

TEST_F(DecideTest, ConsentHistoryIsKeptWhenWishesChange) {
  OpenCase();
  ASSERT_TRUE(Run("record-consent", Consent("consent-1", "given"), kDsl).ok());
  Json withdraw = Consent("consent-2", "withdrawn");
  withdraw["previous_consent_id"] = "consent-9";
  ExpectConflict(Try("record-consent", withdraw, kDsl).status(),
                 "/previous_consent_id");
  withdraw["previous_consent_id"] = "consent-1";
  Status s = Run("record-consent", withdraw, kDsl);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(state_.consents.size(), 2u);
  EXPECT_EQ(state_.consents[0].decision, "given");
  EXPECT_EQ(state_.consents[1].decision, "withdrawn");
  EXPECT_EQ(
      state_.CurrentConsent("person-1", "share_with_named_party")->decision,
      "withdrawn");
  // A consent id is used once.
  EXPECT_TRUE(Try("record-consent", Consent("consent-1", "given"), kDsl)
                  .status()
                  .IsAlreadyExists());
}

TEST_F(DecideTest, SharingOnAWithdrawnConsentIsRefused) {
  OpenCase();
  ASSERT_TRUE(Run("record-consent", Consent("consent-1", "given"), kDsl).ok());
  Json share = Example("InformationShared");
  share["purpose"] = "share_with_named_party";
  ASSERT_TRUE(Try("share-information", share, kDsl).ok());
  Json withdraw = Consent("consent-2", "withdrawn");
  withdraw["previous_consent_id"] = "consent-1";
  ASSERT_TRUE(Run("record-consent", withdraw, kDsl).ok());
  ExpectConflict(Try("share-information", share, kDsl).status(),
                 "/basis/consent_id");
}

TEST_F(DecideTest, AnOverrideNeedsALawfulBasisARationaleAndADsl) {
  OpenCase();
  Json o = Example("ConsentOverridden");
  o.erase("overrides_consent_id");
  EXPECT_TRUE(
      Try("override-consent", o, kReporter).status().IsPermissionDenied());
  EXPECT_TRUE(
      Try("override-consent", o, kReviewer).status().IsPermissionDenied());
  Json no_basis = o;
  no_basis.erase("lawful_basis");
  ExpectField(Try("override-consent", no_basis, kDsl).status(),
              "/lawful_basis");
  Json blank = o;
  blank["rationale"] = "   ";
  ExpectField(Try("override-consent", blank, kDsl).status(), "/rationale");
  Json other = o;
  other["decided_by"] = {{"actor_id", kAltDsl.id}, {"role", "alt_dsl"}};
  ExpectField(Try("override-consent", other, kDsl).status(),
              "/decided_by/actor_id");
  Status s = Run("override-consent", o, kDsl);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(DecideTest, EscalationsCarryADueTimeFromTheirUrgency) {
  ReportAndLead();
  Json e = Example("EscalationRaised");
  e.erase("acknowledgement_due_at");
  e["basis"] = {{"kind", "emergency_justify_later"}};
  e["target"] = "emergency_services";
  e["urgency"] = "emergency";
  e.erase("share_id");
  auto events = Try("raise-escalation", e, kDsl);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_EQ((*events)[0].payload["acknowledgement_due_at"],
            "2026-03-12T16:10:00.000000Z");
  Json supplied = e;
  supplied["acknowledgement_due_at"] = "2030-01-01T00:00:00Z";
  ExpectField(Try("raise-escalation", supplied, kDsl).status(),
              "/acknowledgement_due_at");
  ASSERT_TRUE(Run("raise-escalation", e, kDsl).ok());
  Json ack = {{"escalation_id", "escalation-1"}, {"channel", "phone"}};
  ASSERT_TRUE(Run("acknowledge-escalation", ack, kDsl).ok());
  EXPECT_TRUE(state_.escalations.at("escalation-1").acknowledged);
  EXPECT_TRUE(
      Try("acknowledge-escalation", ack, kDsl).status().IsFailedPrecondition());
}

TEST_F(DecideTest, AReviewWithoutADueDateIsDueAfterTheConfiguredInterval) {
  OpenCase();
  Json r = {{"review_id", "review-1"},
            {"kind", "with_person"},
            {"reason", "first_review"}};
  auto events = Try("schedule-review", r, kDsl);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_EQ((*events)[0].payload["due_date"], "2026-04-09");
}

TEST_F(DecideTest, GovernanceReviewsBelongToReviewers) {
  OpenCase();
  Json gov = {{"review_id", "review-g"},
              {"kind", "governance"},
              {"due_date", "2026-04-01"},
              {"reason", "periodic"}};
  EXPECT_TRUE(Try("schedule-review", gov, kDsl).status().IsPermissionDenied());
  EXPECT_TRUE(Run("schedule-review", gov, kReviewer).ok());
  Json with_person = {{"review_id", "review-p"},
                      {"kind", "with_person"},
                      {"due_date", "2026-04-01"},
                      {"reason", "periodic"}};
  EXPECT_TRUE(Try("schedule-review", with_person, kReviewer)
                  .status()
                  .IsPermissionDenied());
}

TEST_F(DecideTest, ClosureNeedsACompletedOutcomeReviewOrAReason) {
  OpenCase();
  ASSERT_TRUE(Run("schedule-review",
                  {{"review_id", "review-1"},
                   {"kind", "with_person"},
                   {"due_date", "2026-04-01"},
                   {"reason", "before_closure"}},
                  kDsl)
                  .ok());
  Json close = {{"reason", "outcomes_achieved"},
                {"outcome_review_id", "review-1"},
                {"feedback_to_reporter_given", true}};
  ExpectConflict(Try("close", close, kDsl).status(), "/outcome_review_id");
  Json neither = close;
  neither.erase("outcome_review_id");
  EXPECT_FALSE(Try("close", neither, kDsl).ok());
  ASSERT_TRUE(Run("complete-review",
                  {{"review_id", "review-1"},
                   {"kind", "with_person"},
                   {"person_took_part", true},
                   {"outcomes_achieved", "fully"},
                   {"feels_safer", "yes"},
                   {"what_changes", "Nothing more is needed."},
                   {"no_next_review_reason", "case_to_close"}},
                  kDsl)
                  .ok());
  Status s = Run("close", close, kDsl);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(state_.stage, Stage::kClosed);
}

TEST_F(DecideTest, AClosedCaseTakesOnlyReopenAmendmentLearningAndAudit) {
  OpenCase();
  Json close = {{"reason", "person_declined_further_involvement"},
                {"no_review_reason", "person_declined_review"},
                {"feedback_to_reporter_given", false}};
  Status closed = Run("close", close, kDsl);
  ASSERT_TRUE(closed.ok()) << closed.ToString();
  Json risk = Example("RiskAssessed.v2");
  EXPECT_TRUE(Try("assess-risk", risk, kDsl).status().IsFailedPrecondition());
  EXPECT_TRUE(Try("record-consent", Consent("c-x", "given"), kDsl)
                  .status()
                  .IsFailedPrecondition());
  EXPECT_TRUE(Try("close", close, kDsl).status().IsFailedPrecondition());
  EXPECT_TRUE(Try("schedule-review",
                  {{"review_id", "review-9"},
                   {"kind", "with_person"},
                   {"due_date", "2026-04-01"},
                   {"reason", "periodic"}},
                  kDsl)
                  .status()
                  .IsFailedPrecondition());
  EXPECT_TRUE(Try("record-escalation-outcome",
                  {{"escalation_id", "escalation-1"},
                   {"outcome", "no_further_action"},
                   {"final", true}},
                  kDsl)
                  .status()
                  .IsFailedPrecondition());
  // A governance review is audit, and a closed case takes it.
  Status governance = Run("schedule-review",
                          {{"review_id", "review-g"},
                           {"kind", "governance"},
                           {"due_date", "2026-04-01"},
                           {"reason", "periodic"}},
                          kReviewer);
  EXPECT_TRUE(governance.ok()) << governance.ToString();
  Status learning = Run("record-learning", Example("LearningRecorded"), kDsl);
  EXPECT_TRUE(learning.ok()) << learning.ToString();
  Status sample =
      Run("sample-for-audit", Example("CaseSampledForAudit"), kReviewer);
  EXPECT_TRUE(sample.ok()) << sample.ToString();
  Json reopen = {{"reason", "new_information"},
                 {"reason_detail", "Person A reports further messages."}};
  ASSERT_TRUE(Run("reopen", reopen, kDsl).ok());
  EXPECT_EQ(state_.stage, Stage::kOpen);
  EXPECT_TRUE(Try("reopen", reopen, kDsl).status().IsFailedPrecondition());
  EXPECT_TRUE(Try("assess-risk", risk, kDsl).ok());
}

TEST_F(DecideTest, DecisionsWithoutARationaleAreNotedUntilAmended) {
  OpenCase();
  EXPECT_TRUE(state_.unexplained_decisions.empty());
  Json not_sought = Consent("c-1", "not_sought");
  not_sought["not_sought_reason"] = "emergency";
  not_sought.erase("not_sought_detail");
  not_sought.erase("decided_by");
  Status s = Run("record-consent", not_sought, kDsl);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::string consent_event = last_.event_id;
  Json close = {{"reason", "person_declined_further_involvement"},
                {"no_review_reason", "person_declined_review"},
                {"feedback_to_reporter_given", false}};
  ASSERT_TRUE(Run("close", close, kDsl).ok());
  const std::string close_event = last_.event_id;
  EXPECT_EQ(state_.closure_reason, "person_declined_further_involvement");
  ASSERT_EQ(state_.unexplained_decisions.size(), 2u);
  EXPECT_EQ(state_.unexplained_decisions[0].event_id, consent_event);
  EXPECT_EQ(state_.unexplained_decisions[0].missing, "not_sought_detail");
  EXPECT_EQ(state_.unexplained_decisions[1].type, "CaseClosed");
  EXPECT_EQ(state_.unexplained_decisions[1].missing, "reason_detail");
  // An amendment that supplies the explanation answers for it; one that
  // corrects something else does not.
  Json amend = {{"amends_event_id", close_event},
                {"amends_event_type", "CaseClosed"},
                {"amends_schema_version", 1},
                {"corrected_fields", {{"feedback_to_reporter_given", true}}},
                {"reason", "Feedback was given by phone the same day."}};
  ASSERT_TRUE(Run("amend", amend, kDsl).ok());
  EXPECT_EQ(state_.unexplained_decisions.size(), 2u);
  amend["corrected_fields"] = {
      {"reason_detail", "The person asked for no further contact."}};
  s = Run("amend", amend, kDsl);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(state_.unexplained_decisions.size(), 1u);
  EXPECT_EQ(state_.unexplained_decisions[0].event_id, consent_event);
  Json doc = ToJson("case-1", state_);
  EXPECT_EQ(doc["decisions_without_rationale"][0]["type"], "ConsentRecorded");
  EXPECT_EQ(doc["closure_reason"], "person_declined_further_involvement");
}

TEST_F(DecideTest, AReauditIsDueUntilAFindingReauditsWhatItChecks) {
  OpenCase();
  Json finding = Example("AuditFindingRecorded");
  finding["reviewer_actor_id"] = kReviewer.id;
  finding.erase("sample_id");
  finding.erase("review_id");
  Status s = Run("record-audit-finding", finding, kReviewer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = Run("schedule-reaudit", Example("ReauditScheduled"), kReviewer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(state_.reaudits.count("reaudit-1"), 1u);
  EXPECT_EQ(state_.reaudits["reaudit-1"].due_date, "2026-09-30");
  EXPECT_FALSE(state_.reaudits["reaudit-1"].done);
  // An unrelated finding leaves it due; the re-audit's finding settles it.
  finding["finding_id"] = "finding-2";
  ASSERT_TRUE(Run("record-audit-finding", finding, kReviewer).ok());
  EXPECT_FALSE(state_.reaudits["reaudit-1"].done);
  finding["finding_id"] = "finding-3";
  finding["reaudit_of_finding_id"] = "finding-1";
  finding["reaudit_required"] = false;
  finding["change_embedded"] = "yes";
  s = Run("record-audit-finding", finding, kReviewer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(state_.reaudits["reaudit-1"].done);
  EXPECT_EQ(ToJson("case-1", state_)["reaudits"]["reaudit-1"]["done"], true);
}

TEST_F(DecideTest, AnAmendmentMustLeaveAValidEvent) {
  OpenCase();
  const std::string report_id = "ev-1";
  Json amend = {{"amends_event_id", report_id},
                {"amends_event_type", "ConcernReported"},
                {"amends_schema_version", 1},
                {"corrected_fields", {{"kind", "rumour"}}},
                {"reason", "The kind was entered wrongly."}};
  ExpectField(Try("amend", amend, kDsl).status(), "/corrected_fields/kind");
  amend["corrected_fields"] = {{"kind", "concern"}};
  EXPECT_TRUE(Try("amend", amend, kDsl).ok());
  amend["amends_event_id"] = "ev-404";
  ExpectConflict(Try("amend", amend, kDsl).status(), "/amends_event_id");
  amend["amends_event_id"] = report_id;
  amend["amends_event_type"] = "CaseTriaged";
  ExpectConflict(Try("amend", amend, kDsl).status(), "/amends_event_type");
  amend["amends_event_type"] = "ConcernReported";
  amend["amends_schema_version"] = 2;
  ExpectConflict(Try("amend", amend, kDsl).status(), "/amends_schema_version");
}

TEST(CaseEventsTest, FindsEachEventByItsIdWithItsTypeAndVersion) {
  CaseEvents events;
  events.Add("ev-1", "ConcernReported", 1);
  events.Add("ev-2", "LeadAssigned", 1);
  events.Add("ev-3", "RiskAssessed", 2);
  events.Add("ev-4", "LeadAssigned", 1);
  EXPECT_EQ(events.size(), 4u);
  for (const auto& [id, type, version] :
       std::vector<std::tuple<std::string, std::string, uint32_t>>{
           {"ev-1", "ConcernReported", 1},
           {"ev-2", "LeadAssigned", 1},
           {"ev-3", "RiskAssessed", 2},
           {"ev-4", "LeadAssigned", 1}}) {
    auto found = events.Find(id);
    ASSERT_TRUE(found.has_value()) << id;
    EXPECT_EQ(found->type, type) << id;
    EXPECT_EQ(found->schema_version, version) << id;
  }
  // Only a whole id is found.
  EXPECT_FALSE(events.Find("ev-").has_value());
  EXPECT_FALSE(events.Find("ev-10").has_value());
  EXPECT_FALSE(events.Find("").has_value());
  // An id added again reads as its latest.
  events.Add("ev-1", "EventAmended", 1);
  EXPECT_EQ(events.Find("ev-1")->type, "EventAmended");
  // A type no case shares is kept by the case.
  events.Add("ev-5", "SomethingNew", 3);
  events.Add("ev-6", "SomethingElse", 1);
  events.Add("ev-7", "SomethingNew", 4);
  EXPECT_EQ(events.Find("ev-5")->type, "SomethingNew");
  EXPECT_EQ(events.Find("ev-6")->type, "SomethingElse");
  EXPECT_EQ(events.Find("ev-7")->type, "SomethingNew");
  EXPECT_EQ(events.Find("ev-7")->schema_version, 4u);
  EXPECT_EQ(events.Find("ev-4")->type, "LeadAssigned");
  // Built alike, equal; else not.
  CaseEvents a, b;
  a.Add("ev-1", "ConcernReported", 1);
  b.Add("ev-1", "ConcernReported", 1);
  EXPECT_TRUE(a == b);
  b.Add("ev-2", "CaseTriaged", 1);
  EXPECT_FALSE(a == b);
}

TEST_F(DecideTest, AFieldThatRequiresAnotherNamesTheMissingOne) {
  OpenCase();
  // Superseding earlier outcomes needs a reason: the schema says so with an
  // if/then (valid in draft-07 and in OpenAPI 3.1's 2020-12 alike), and the
  // error names the missing field where it should be.
  Json outcomes = Example("DesiredOutcomesRecorded");
  outcomes["supersedes_event_id"] = "ev-1";
  outcomes.erase("change_reason");
  ExpectField(Try("record-outcomes", outcomes, kDsl).status(),
              "/change_reason");
}

TEST_F(DecideTest, ReferencesMustExistInTheCase) {
  OpenCase();
  Json outcomes = Example("DesiredOutcomesRecorded");
  outcomes["person_ref"] = "person-9";
  ExpectConflict(Try("record-outcomes", outcomes, kDsl).status(),
                 "/person_ref");
  ExpectConflict(Try("complete-action",
                     {{"action_id", "action-9"},
                      {"owner", {{"role", "dsl"}}},
                      {"due_date", "2026-04-01"},
                      {"evidence", "done"}},
                     kDsl)
                     .status(),
                 "/action_id");
  ExpectConflict(
      Try("acknowledge-escalation",
          {{"escalation_id", "escalation-9"}, {"channel", "phone"}}, kDsl)
          .status(),
      "/escalation_id");
}

TEST_F(DecideTest, RolesOutsideThePolicyAreRefused) {
  ASSERT_TRUE(Run("report", Report(), kReporter).ok());
  Json lead = {{"lead_actor_id", kDsl.id},
               {"role", "dsl"},
               {"reason", "initial_assignment"}};
  EXPECT_TRUE(
      Try("assign-lead", lead, kReporter).status().IsPermissionDenied());
  EXPECT_TRUE(
      Try("assign-lead", lead, kIntegration).status().IsPermissionDenied());
  EXPECT_TRUE(Try("assign-lead", lead, kAdmin).status().IsPermissionDenied());
  EXPECT_TRUE(Try("no-such-command", Json::object(), kDsl)
                  .status()
                  .IsInvalidArgument());
}

TEST(PolicyTest, EveryCommandHasAnEventAndOnlyDeclaredRolesMayIssueIt) {
  // An administrator touches no case's contents: only its keeping.
  const std::set<std::string> admins = {"approve-erasure", "refuse-erasure",
                                        "place-legal-hold", "lift-legal-hold",
                                        "apply-retention"};
  for (const std::string& name : CommandNames()) {
    EXPECT_FALSE(EventTypeOf(name).empty()) << name;
    EXPECT_FALSE(MayCommand(Role::kIntegration, name)) << name;
    EXPECT_EQ(MayCommand(Role::kAdmin, name), admins.count(name) == 1) << name;
  }
  EXPECT_FALSE(MayCommand(Role::kReviewer, "request-erasure"));
  EXPECT_FALSE(MayCommand(Role::kDsl, "approve-erasure"));
  EXPECT_FALSE(MayCommand(Role::kAltDsl, "place-legal-hold"));
  EXPECT_TRUE(MayCommand(Role::kReporter, "report"));
  EXPECT_FALSE(MayCommand(Role::kReporter, "triage"));
  EXPECT_TRUE(MayCommand(Role::kAltDsl, "override-consent"));
  EXPECT_FALSE(MayCommand(Role::kReviewer, "override-consent"));
  EXPECT_TRUE(MayCommand(Role::kReviewer, "record-audit-finding"));
  EXPECT_FALSE(MayCommand(Role::kDsl, "record-audit-finding"));
}

TEST(PolicyTest, ReadsFollowTheRoles) {
  EXPECT_TRUE(MayRead(Role::kIntegration, Read::kLearningFeed));
  EXPECT_FALSE(MayRead(Role::kIntegration, Read::kCaseState));
  EXPECT_FALSE(MayRead(Role::kIntegration, Read::kCaseHistory));
  EXPECT_FALSE(MayRead(Role::kAdmin, Read::kCaseState));
  EXPECT_TRUE(MayRead(Role::kAdmin, Read::kCaseVerify));
  EXPECT_FALSE(MayRead(Role::kReporter, Read::kCaseHistory));
  EXPECT_TRUE(MayRead(Role::kReviewer, Read::kCaseReplay));
  EXPECT_FALSE(MayRead(Role::kReporter, Read::kGovernance));
}

TEST_F(DecideTest, AReporterSeesOnlyWhatTheyReportedAndTheBarredSeeNothing) {
  Json r = Report();
  r["people_involved"][1]["is_dsl"] = true;
  r["people_involved"][1]["actor_id"] = kDsl.id;
  ASSERT_TRUE(Run("report", r, kReporter).ok());
  EXPECT_TRUE(CanReadCase(state_, kReporter, Read::kCaseState));
  EXPECT_FALSE(CanReadCase(state_, Actor{"user:reporter-2", Role::kReporter},
                           Read::kCaseState));
  EXPECT_FALSE(CanReadCase(state_, kReporter, Read::kCaseHistory));
  EXPECT_FALSE(CanReadCase(state_, kDsl, Read::kCaseState));
  EXPECT_TRUE(CanReadCase(state_, kAltDsl, Read::kCaseHistory));
  EXPECT_TRUE(CanReadCase(state_, kReviewer, Read::kCaseReplay));
  EXPECT_FALSE(CanReadCase(state_, kIntegration, Read::kCaseState));
}

// Every command, on an open case and on a closed one, by each deciding
// role, with each field of a valid body (to three levels down) replaced by a
// value of every other JSON type: decide() answers with a Status and never
// throws (an exception here ends the server). {"kind": 1} on schedule-review
// once read the payload before its schema check and threw type_error 302.
TEST_F(DecideTest, NoBodyOfAnyShapeMakesDecideThrow) {
  const std::vector<std::pair<std::string, std::string>> commands = {
      {"assign-lead", "LeadAssigned"},
      {"reassign-lead", "LeadReassigned"},
      {"triage", "CaseTriaged"},
      {"record-outcomes", "DesiredOutcomesRecorded"},
      {"agree-participation", "ParticipationAgreed"},
      {"assess-capacity", "CapacityAssessed"},
      {"record-consent", "ConsentRecorded"},
      {"override-consent", "ConsentOverridden"},
      {"share-information", "InformationShared"},
      {"inform-person", "PersonInformedOfReport"},
      {"assess-risk", "RiskAssessed.v2"},
      {"agree-safety-plan", "SafetyPlanAgreed"},
      {"raise-escalation", "EscalationRaised"},
      {"acknowledge-escalation", "EscalationAcknowledged"},
      {"record-escalation-outcome", "EscalationOutcomeRecorded"},
      {"schedule-review", "ReviewScheduled"},
      {"complete-review", "ReviewCompleted"},
      {"request-erasure", "ErasureRequested"},
      {"refuse-erasure", "ErasureRefused"},
      {"approve-erasure", "PersonalDataErased"},
      {"apply-retention", "PersonalDataErased"},
      {"place-legal-hold", "LegalHoldPlaced"},
      {"lift-legal-hold", "LegalHoldLifted"},
      {"close", "CaseClosed"},
      {"reopen", "CaseReopened"},
      {"amend", "EventAmended"},
      {"record-learning", "LearningRecorded"},
      {"screen-learning", "LearningScreened"},
      {"assign-action", "ActionAssigned"},
      {"complete-action", "ActionCompleted"},
      {"sample-for-audit", "CaseSampledForAudit"},
      {"record-audit-finding", "AuditFindingRecorded"},
      {"schedule-reaudit", "ReauditScheduled"},
      {"report", "ConcernReported"},
  };
  const std::vector<Json> others = {Json(1),
                                    Json(-1.5),
                                    Json("x"),
                                    Json(true),
                                    Json(nullptr),
                                    Json::array({1}),
                                    Json::object({{"a", 1}}),
                                    Json::array(),
                                    Json::object()};
  // Every body: the valid one, then each value at each path replaced.
  auto variants = [&](const Json& valid) {
    std::vector<Json> out{valid, Json::object(), Json::array(), Json(1)};
    std::function<void(const Json::json_pointer&, const Json&, int)> walk =
        [&](const Json::json_pointer& at, const Json& v, int depth) {
          if (depth > 3) return;
          if (v.is_object()) {
            for (const auto& [k, child] : v.items()) {
              walk(at / k, child, depth + 1);
            }
          } else if (v.is_array()) {
            for (size_t i = 0; i < v.size() && i < 2; ++i) {
              walk(at / i, v[i], depth + 1);
            }
          }
          if (at.empty()) return;
          for (const Json& o : others) {
            Json b = valid;
            b[at] = o;
            out.push_back(std::move(b));
          }
          Json without = valid;
          Json& parent = without[at.parent_pointer()];
          if (parent.is_array()) {
            parent.erase(std::stoul(at.back()));
          } else {
            parent.erase(at.back());
          }
          out.push_back(std::move(without));
        };
    walk(Json::json_pointer(), valid, 0);
    return out;
  };
  OpenCase();
  const CaseState open = state_;
  Json close = {{"reason", "person_declined_further_involvement"},
                {"no_review_reason", "person_declined_review"},
                {"feedback_to_reporter_given", false}};
  ASSERT_TRUE(Run("close", close, kDsl).ok());
  const CaseState closed = state_;
  size_t tried = 0;
  for (const auto& [command, example] : commands) {
    ASSERT_FALSE(EventTypeOf(command).empty()) << command;
    Json valid = Example(example);
    if (command == "report") {
      valid.erase("priority");
      valid.erase("acknowledgement_due_at");
    }
    for (const CaseState* s : {&open, &closed}) {
      state_ = *s;
      for (const Actor* actor : {&kDsl, &kReviewer, &kReporter, &kAdmin}) {
        for (const Json& body : variants(valid)) {
          ++tried;
          EXPECT_NO_THROW((void)Try(command, body, *actor))
              << command << " by " << actor->id << ": " << body.dump();
        }
      }
    }
  }
  EXPECT_GT(tried, 5000u);
}

// Erasure, legal hold and retention.

class ErasureTest : public DecideTest {
 protected:
  void CloseCase() {
    OpenCase();
    Json close = {{"reason", "person_declined_further_involvement"},
                  {"no_review_reason", "person_declined_review"},
                  {"feedback_to_reporter_given", false}};
    Status s = Run("close", close, kDsl);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static Json Request(const std::string& id, const std::string& scope,
                      const std::string& person = "") {
    Json r = {{"erasure_id", id},
              {"scope", scope},
              {"legal_ground", "consent_withdrawn"},
              {"rationale", "The person withdrew consent to our keeping it."}};
    if (!person.empty()) r["person_ref"] = person;
    return r;
  }
  static Json Refusal(const std::string& id) {
    return {{"erasure_id", id},
            {"exemption_ground", "safeguarding_ongoing"},
            {"rationale", "The enquiry still needs the record."}};
  }
  static Json Hold() {
    return {{"reason", "police_investigation"},
            {"reason_detail", "The police asked us to keep the record."}};
  }
};

TEST_F(ErasureTest, ErasureTakesTwoPeople) {
  CloseCase();
  ASSERT_TRUE(Run("request-erasure", Request("er-1", "case"), kDsl).ok());
  EXPECT_EQ(state_.erasures.at("er-1").status, "requested");
  EXPECT_EQ(state_.erasures.at("er-1").requested_by, kDsl.id);
  // Only governance decides, and never the requester (one person holding
  // two roles is still one person).
  EXPECT_TRUE(Try("approve-erasure", {{"erasure_id", "er-1"}}, kDsl)
                  .status()
                  .IsPermissionDenied());
  EXPECT_TRUE(Try("approve-erasure", {{"erasure_id", "er-1"}},
                  Actor{kDsl.id, Role::kReviewer})
                  .status()
                  .IsPermissionDenied());
  EXPECT_TRUE(Try("request-erasure", Request("er-1", "case"), kAltDsl)
                  .status()
                  .IsAlreadyExists());
  EXPECT_TRUE(Try("request-erasure", Request("er-2", "case"), kAltDsl)
                  .status()
                  .IsFailedPrecondition());  // one pending at a time
  // The approver sends the erasure id only: what is erased is the
  // request's.
  ExpectField(Try("approve-erasure",
                  {{"erasure_id", "er-1"}, {"scope", "person"}}, kReviewer)
                  .status(),
              "/scope");
  ExpectConflict(
      Try("approve-erasure", {{"erasure_id", "er-9"}}, kReviewer).status(),
      "/erasure_id");
  Status s = Run("approve-erasure", {{"erasure_id", "er-1"}}, kAdmin);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(last_.type, "PersonalDataErased");
  EXPECT_EQ(last_.payload, Json({{"erasure_id", "er-1"},
                                 {"scope", "case"},
                                 {"legal_ground", "consent_withdrawn"}}));
  EXPECT_TRUE(state_.erased);
  EXPECT_EQ(state_.erasures.at("er-1").status, "approved");
  // An erased case takes nothing more, not even a hold or a reopening.
  for (const auto& [name, body] : std::vector<std::pair<std::string, Json>>{
           {"place-legal-hold", Hold()},
           {"reopen",
            {{"reason", "new_information"}, {"reason_detail", "More news."}}},
           {"request-erasure", Request("er-3", "person", "person-1")}}) {
    const Actor& by = name == "place-legal-hold" ? kAdmin : kDsl;
    EXPECT_TRUE(Try(name, body, by).status().IsFailedPrecondition()) << name;
  }
}

TEST_F(ErasureTest, ARefusedRequestErasesNothing) {
  CloseCase();
  ASSERT_TRUE(Run("request-erasure", Request("er-1", "case"), kDsl).ok());
  EXPECT_TRUE(
      Try("refuse-erasure", Refusal("er-1"), Actor{kDsl.id, Role::kAdmin})
          .status()
          .IsPermissionDenied());
  ASSERT_TRUE(Run("refuse-erasure", Refusal("er-1"), kReviewer).ok());
  EXPECT_EQ(state_.erasures.at("er-1").status, "refused");
  EXPECT_FALSE(state_.erased);
  EXPECT_TRUE(Try("approve-erasure", {{"erasure_id", "er-1"}}, kReviewer)
                  .status()
                  .IsFailedPrecondition());
  EXPECT_TRUE(Try("refuse-erasure", Refusal("er-1"), kReviewer)
                  .status()
                  .IsFailedPrecondition());
  // A new request may follow a refusal.
  EXPECT_TRUE(Try("request-erasure", Request("er-2", "case"), kDsl).ok());
}

TEST_F(ErasureTest, AWholeCaseIsErasedOnlyOnceClosed) {
  OpenCase();
  EXPECT_TRUE(Try("request-erasure", Request("er-1", "case"), kDsl)
                  .status()
                  .IsFailedPrecondition());
  // One person's details may go while the case runs.
  ExpectConflict(
      Try("request-erasure", Request("er-1", "person", "person-9"), kDsl)
          .status(),
      "/person_ref");
  ExpectField(Try("request-erasure", Request("er-1", "person"), kDsl).status(),
              "/person_ref");
  ASSERT_TRUE(
      Run("request-erasure", Request("er-1", "person", "person-2"), kDsl).ok());
  ASSERT_TRUE(Run("approve-erasure", {{"erasure_id", "er-1"}}, kReviewer).ok());
  EXPECT_EQ(state_.erased_person_refs, std::set<std::string>{"person-2"});
  EXPECT_FALSE(state_.erased);
  // Nothing more is recorded about them; the rest of the case goes on.
  Json consent = Consent("c-9", "given");
  consent["person_ref"] = "person-2";
  Status named = Try("record-consent", consent, kDsl).status();
  EXPECT_TRUE(named.IsFailedPrecondition()) << named.ToString();
  EXPECT_NE(named.message().find("/person_ref"), std::string::npos);
  consent["person_ref"] = "person-1";
  EXPECT_TRUE(Try("record-consent", consent, kDsl).ok());
  EXPECT_TRUE(
      Try("request-erasure", Request("er-2", "person", "person-2"), kDsl)
          .status()
          .IsFailedPrecondition());
}

TEST_F(ErasureTest, ALegalHoldBlocksErasureUntilLifted) {
  CloseCase();
  ASSERT_TRUE(Run("request-erasure", Request("er-1", "case"), kDsl).ok());
  EXPECT_TRUE(
      Try("place-legal-hold", Hold(), kAltDsl).status().IsPermissionDenied());
  ASSERT_TRUE(Run("place-legal-hold", Hold(), kAdmin).ok());
  EXPECT_TRUE(state_.legal_hold);
  EXPECT_TRUE(
      Try("place-legal-hold", Hold(), kDsl).status().IsFailedPrecondition());
  // Held: neither the pending request nor a new one, of any scope.
  EXPECT_TRUE(Try("approve-erasure", {{"erasure_id", "er-1"}}, kReviewer)
                  .status()
                  .IsFailedPrecondition());
  EXPECT_TRUE(
      Try("request-erasure", Request("er-2", "person", "person-1"), kDsl)
          .status()
          .IsFailedPrecondition());
  Json lift = {{"reason_detail", "The investigation ended."}};
  ASSERT_TRUE(Run("lift-legal-hold", lift, kDsl).ok());
  EXPECT_FALSE(state_.legal_hold);
  EXPECT_TRUE(
      Try("lift-legal-hold", lift, kDsl).status().IsFailedPrecondition());
  EXPECT_TRUE(Try("approve-erasure", {{"erasure_id", "er-1"}}, kReviewer).ok());
}

TEST_F(ErasureTest, RetentionErasesAClosedCaseOnceItsRulesPeriodEnds) {
  config_.retention_rules = {{"concern-2y", "concern", 2},
                             {"default-8y", "*", 8}};
  CloseCase();  // at kNow, 2026-03-12T15:10:00Z; the report is an incident
  ASSERT_EQ(state_.kind, "incident");
  EXPECT_EQ(RetentionRuleFor(config_, "incident")->name, "default-8y");
  EXPECT_EQ(RetentionRuleFor(config_, "concern")->name, "concern-2y");
  EXPECT_EQ(FormatTimestamp(RetentionEndsAt(*RetentionRuleFor(config_, "x"),
                                            state_.closed_at)),
            "2034-03-12T15:10:00.000000Z");
  EXPECT_EQ(FormatTimestamp(RetentionEndsAt(
                {"r", "*", 1}, *ParseTimestamp("2028-02-29T10:00:00Z"))),
            "2029-03-01T10:00:00.000000Z");
  const Json body = {{"retention_rule", "default-8y"}};
  const Actor sweep{"system:retention", Role::kAdmin};
  auto at = [&](const char* when) {
    Command cmd{"apply-retention", body, sweep, *ParseTimestamp(when)};
    return Decide(state_, cmd, *catalog_, config_).status();
  };
  EXPECT_TRUE(at("2034-03-12T15:09:59Z").IsFailedPrecondition());
  Status due = at("2034-03-12T15:10:00Z");
  EXPECT_TRUE(due.ok()) << due.ToString();
  ExpectConflict(
      Try("apply-retention", {{"retention_rule", "concern-2y"}}, sweep)
          .status(),
      "/retention_rule");
  EXPECT_TRUE(Try("apply-retention", body, kDsl).status().IsPermissionDenied());
  const std::vector<RetentionRule> rules = config_.retention_rules;
  config_.retention_rules.clear();
  ExpectConflict(Try("apply-retention", body, sweep).status(),
                 "/retention_rule");
  config_.retention_rules = rules;
  // Held: not erased, however old.
  ASSERT_TRUE(Run("place-legal-hold", Hold(), kDsl).ok());
  EXPECT_TRUE(at("2040-01-01T00:00:00Z").IsFailedPrecondition());
  ASSERT_TRUE(
      Run("lift-legal-hold", {{"reason_detail", "No longer needed."}}, kDsl)
          .ok());
  // Reopening restarts the period: it runs from the next closure.
  ASSERT_TRUE(Run("reopen",
                  {{"reason", "new_information"},
                   {"reason_detail", "Another message arrived."}},
                  kDsl)
                  .ok());
  EXPECT_TRUE(at("2040-01-01T00:00:00Z").IsFailedPrecondition());
}

TEST_F(ErasureTest, RetentionWritesTheRuleAndTheClosure) {
  config_.retention_rules = {{"default-8y", "*", 8}};
  CloseCase();
  const Timestamp closed = state_.closed_at;
  Command cmd{"apply-retention",
              {{"retention_rule", "default-8y"}},
              {"system:retention", Role::kAdmin},
              Timestamp(closed.value() + 9LL * 366 * 86400 * 1000000)};
  auto events = Decide(state_, cmd, *catalog_, config_);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "PersonalDataErased");
  EXPECT_EQ((*events)[0].payload,
            Json({{"retention_rule", "default-8y"},
                  {"scope", "case"},
                  {"legal_ground", "retention_period_ended"},
                  {"closed_at", FormatTimestamp(closed)}}));
}

TEST(PolicyTest, RolesRoundTripByName) {
  for (Role r : AllRoles()) EXPECT_EQ(ParseRole(RoleName(r)), r);
  EXPECT_FALSE(ParseRole("superuser").has_value());
}

}  // namespace
}  // namespace caseledger::domain
