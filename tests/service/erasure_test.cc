// Erasure through the service: two people decide it, the data keys are
// destroyed before the answer, every personal field in scope then opens as
// erased while everything else stays readable and the chains verify, and a
// crash between the append and the destruction is finished at the next
// start.
#include <gtest/gtest.h>

#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"
#include "tests/support/test_support.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;

const domain::Actor kReporter{"user:reporter-1", domain::Role::kReporter};
const domain::Actor kDsl{"user:dsl-1", domain::Role::kDsl};
const domain::Actor kReviewer{"user:reviewer-1", domain::Role::kReviewer};
const domain::Actor kAdmin{"user:admin-1", domain::Role::kAdmin};

constexpr char kAffected[] = "Oriel Fanshawe-Tilbury";
constexpr char kWitness[] = "Quillon Dembele-Ashgrove";
constexpr char kFacts[] = "Followed home after the Tuesday session.";

class ErasureTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    config_.retention_rules = {{"default-6y", "*", 6}};
    service_ = std::make_unique<CaseService>(*store_, catalog_, config_,
                                             keys_->sealer());
    Json report = testing::ReportBody();
    report["facts"] = kFacts;
    report["people_involved"] = Json::array({{{"person_ref", "person-1"},
                                              {"roles", {"person_affected"}},
                                              {"name", kAffected}},
                                             {{"person_ref", "person-2"},
                                              {"roles", {"witness"}},
                                              {"name", kWitness}}});
    Run("report", report, kReporter);
    Run("assign-lead",
        {{"lead_actor_id", kDsl.id},
         {"role", "dsl"},
         {"reason", "initial_assignment"}},
        kDsl);
  }

  void Run(const std::string& command, const Json& body,
           const domain::Actor& actor) {
    auto r = service_->Execute("case-1", command, body, actor);
    ASSERT_TRUE(r.ok()) << command << ": " << r.status().ToString();
  }

  void Close() {
    Run("close",
        {{"reason", "person_declined_further_involvement"},
         {"no_review_reason", "person_declined_review"},
         {"feedback_to_reporter_given", false}},
        kDsl);
  }

  static Json Request(const std::string& id, const std::string& scope,
                      const std::string& person = "") {
    Json r = {{"erasure_id", id},
              {"scope", scope},
              {"legal_ground", "consent_withdrawn"},
              {"rationale", "Consent to keeping it was withdrawn."}};
    if (!person.empty()) r["person_ref"] = person;
    return r;
  }

  // The report as the service opens it now.
  Json OpenedReport() {
    auto events =
        store_->ReadStream("case-1", StreamVersion(1), Direction::kForward, 1);
    EXPECT_TRUE(events.ok());
    auto d = service_->ToOpenedEvent(events->at(0));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d->payload;
  }

  domain::DomainConfig config_;
  std::unique_ptr<CaseService> service_;
};

TEST_F(ErasureTest, ErasingAPersonLeavesTheRestOfTheCase) {
  Run("request-erasure", Request("er-1", "person", "person-2"), kDsl);
  // Not yet: only a request.
  EXPECT_EQ(OpenedReport()["people_involved"][1]["name"], kWitness);
  EXPECT_FALSE(keys_->store().IsDestroyed("case-1", "person:person-2"));
  Run("approve-erasure", {{"erasure_id", "er-1"}}, kReviewer);
  EXPECT_TRUE(keys_->store().IsDestroyed("case-1", "person:person-2"));
  EXPECT_FALSE(keys_->store().IsDestroyed("case-1", "case"));
  const Json report = OpenedReport();
  EXPECT_EQ(report["people_involved"][1]["name"], keys::kErasedMarker);
  EXPECT_EQ(report["people_involved"][0]["name"], kAffected);
  EXPECT_EQ(report["facts"], kFacts);
  EXPECT_EQ(report["categories"], Json::array({"harassment"}));
  auto plans = keys_->store().PlannedErasures();
  ASSERT_OK(plans);
  EXPECT_TRUE(plans->empty());
  // The rest of the case goes on; nothing more is recorded about them.
  Json consent = {{"consent_id", "c-1"},
                  {"person_ref", "person-2"},
                  {"purpose", "share_with_named_party"},
                  {"named_party",
                   {{"kind", "host_organisation"},
                    {"name", "The host's safeguarding lead"},
                    {"organisation_name", "Example Host Organisation"}}},
                  {"decision", "given"},
                  {"decided_by", "person"},
                  {"capacity", "assumed"}};
  Status named =
      service_->Execute("case-1", "record-consent", consent, kDsl).status();
  EXPECT_TRUE(named.IsFailedPrecondition()) << named.ToString();
  consent["person_ref"] = "person-1";
  Status other =
      service_->Execute("case-1", "record-consent", consent, kDsl).status();
  EXPECT_TRUE(other.ok()) << other.ToString();
}

TEST_F(ErasureTest, ErasingAClosedCaseErasesEveryPersonalField) {
  // Open: refused at the request already.
  EXPECT_TRUE(
      service_
          ->Execute("case-1", "request-erasure", Request("er-1", "case"), kDsl)
          .status()
          .IsFailedPrecondition());
  Close();
  Run("request-erasure", Request("er-1", "case"), kDsl);
  EXPECT_TRUE(service_
                  ->Execute("case-1", "approve-erasure",
                            {{"erasure_id", "er-1"}},
                            {kDsl.id, domain::Role::kAdmin})
                  .status()
                  .IsPermissionDenied());
  Run("approve-erasure", {{"erasure_id", "er-1"}}, kAdmin);
  EXPECT_TRUE(keys_->store().IsDestroyed("case-1", "case"));
  EXPECT_TRUE(keys_->store().IsDestroyed("case-1", "person:person-1"));
  const Json report = OpenedReport();
  EXPECT_EQ(report["facts"], keys::kErasedMarker);
  EXPECT_EQ(report["people_involved"][0]["name"], keys::kErasedMarker);
  EXPECT_EQ(report["people_involved"][1]["name"], keys::kErasedMarker);
  EXPECT_EQ(report["setting"], "travel");
  // Every event still opens (as erased), and the chains verify.
  auto all =
      store_->ReadStream("case-1", StreamVersion(1), Direction::kForward, 100);
  ASSERT_OK(all);
  for (const RecordedEvent& e : *all) {
    auto d = service_->ToOpenedEvent(e);
    ASSERT_TRUE(d.ok()) << e.type << ": " << d.status().ToString();
    EXPECT_EQ(d->payload.dump().find(kAffected), std::string::npos);
  }
  auto verify = store_->Verify(std::nullopt);
  ASSERT_OK(verify);
  EXPECT_TRUE(verify->ok);
  auto state = service_->Load("case-1");
  ASSERT_OK(state);
  EXPECT_TRUE(state->erased);
  EXPECT_TRUE(
      service_
          ->Execute("case-1", "reopen",
                    {{"reason", "new_information"}, {"reason_detail", "More."}},
                    kDsl)
          .status()
          .IsFailedPrecondition());
}

TEST_F(ErasureTest, RetentionErasesOnlyOnceThePeriodEnds) {
  Close();
  const Timestamp closed = service_->Load("case-1")->closed_at;
  const domain::Actor sweep{"system:retention", domain::Role::kAdmin};
  clock_.Set(Timestamp(closed.value() + 5LL * 365 * 86400 * 1000000));
  EXPECT_TRUE(service_
                  ->Execute("case-1", "apply-retention",
                            {{"retention_rule", "default-6y"}}, sweep)
                  .status()
                  .IsFailedPrecondition());
  EXPECT_FALSE(keys_->store().IsDestroyed("case-1", "case"));
  clock_.Set(Timestamp(closed.value() + 7LL * 365 * 86400 * 1000000));
  Run("apply-retention", {{"retention_rule", "default-6y"}}, sweep);
  EXPECT_TRUE(keys_->store().IsDestroyed("case-1", "case"));
  EXPECT_EQ(OpenedReport()["facts"], keys::kErasedMarker);
}

// A sweep asked to stop (the server shutting down) leaves the rest for the
// next one.
TEST_F(ErasureTest, ASweepStopsBetweenCasesWhenAsked) {
  Close();
  const Timestamp closed = service_->Load("case-1")->closed_at;
  clock_.Set(Timestamp(closed.value() + 7LL * 365 * 86400 * 1000000));
  auto stopped = SweepRetention(*service_, {{"case-1", "default-6y"}}, false,
                                [] { return true; });
  ASSERT_OK(stopped);
  EXPECT_EQ((*stopped)["erased"], 0);
  EXPECT_TRUE((*stopped)["cases"].empty());
  EXPECT_FALSE(keys_->store().IsDestroyed("case-1", "case"));
  auto swept = SweepRetention(*service_, {{"case-1", "default-6y"}}, false,
                              [] { return false; });
  ASSERT_OK(swept);
  EXPECT_EQ((*swept)["erased"], 1);
  EXPECT_TRUE(keys_->store().IsDestroyed("case-1", "case"));
}

// A crash after the erasure's event is durable and before its keys are
// destroyed: the plan recorded before the append is finished by the next
// start; a plan whose event never reached the log is dropped, erasing
// nothing.
TEST_F(ErasureTest, APlannedErasureIsFinishedOrDroppedAtTheNextStart) {
  Close();
  // What the service would have appended, with its plan, had it crashed
  // before destroying the keys.
  ProposedEvent e;
  e.event_id = EventId::NewV7();
  e.type = "PersonalDataErased";
  e.schema_version = 1;
  e.occurred_at = store_->Now();
  e.actor = Actor{kReviewer.id, "reviewer"};
  e.payload = Json({{"retention_rule", "default-6y"},
                    {"scope", "case"},
                    {"legal_ground", "retention_period_ended"},
                    {"closed_at", "2026-03-01T10:00:00Z"}})
                  .dump();
  const keys::KeyStore::PlannedErasure written{"case-1", "*",
                                               e.event_id.ToString()};
  const keys::KeyStore::PlannedErasure lost{"case-1", "person:person-1",
                                            EventId::NewV7().ToString()};
  ASSERT_OK(keys_->store().PlanErasure(written));
  ASSERT_OK(keys_->store().PlanErasure(lost));
  std::vector<ProposedEvent> events;
  events.push_back(std::move(e));
  ASSERT_OK(
      store_->Append("case-1", ExpectedVersion::Any(), std::move(events)));
  EXPECT_EQ(OpenedReport()["facts"], kFacts);  // the crash's window

  auto done = FinishPlannedErasures(*store_, keys_->store());
  ASSERT_OK(done);
  EXPECT_EQ(*done, 1u);
  EXPECT_TRUE(keys_->store().IsDestroyed("case-1", "case"));
  EXPECT_EQ(OpenedReport()["facts"], keys::kErasedMarker);
  auto plans = keys_->store().PlannedErasures();
  ASSERT_OK(plans);
  EXPECT_TRUE(plans->empty());
  // Again: nothing left to do.
  done = FinishPlannedErasures(*store_, keys_->store());
  ASSERT_OK(done);
  EXPECT_EQ(*done, 0u);
}

TEST_F(ErasureTest, ALostPlanErasesNothing) {
  const keys::KeyStore::PlannedErasure lost{"case-1", "person:person-1",
                                            EventId::NewV7().ToString()};
  ASSERT_OK(keys_->store().PlanErasure(lost));
  auto done = FinishPlannedErasures(*store_, keys_->store());
  ASSERT_OK(done);
  EXPECT_EQ(*done, 0u);
  EXPECT_FALSE(keys_->store().IsDestroyed("case-1", "person:person-1"));
  EXPECT_EQ(OpenedReport()["people_involved"][0]["name"], kAffected);
  auto plans = keys_->store().PlannedErasures();
  ASSERT_OK(plans);
  EXPECT_TRUE(plans->empty());
}

}  // namespace
}  // namespace caseledger::service
