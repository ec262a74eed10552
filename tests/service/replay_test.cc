#include "caseledger/service/replay.h"

#include <string>
#include <utility>

#include "tests/support/test_support.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;
using domain::Actor;
using domain::Role;

const Actor kReporter{"user:reporter-1", Role::kReporter};
const Actor kDsl{"user:dsl-1", Role::kDsl};
// Each event is recorded one hour after the previous, from 2026-03-01.
constexpr int64_t kStart = 1772323200000000;
constexpr int64_t kHour = 3600LL * 1000000;

class ReplayTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    service_ = std::make_unique<CaseService>(
        *store_, catalog_, domain::DomainConfig{}, keys_->sealer());
    Json report = testing::ReportBody();
    ASSERT_OK(Execute("case-1", "report", report, kReporter));
    ASSERT_OK(Execute("case-1", "assign-lead",
                      {{"lead_actor_id", kDsl.id},
                       {"role", "dsl"},
                       {"reason", "initial_assignment"}},
                      kDsl));
    ASSERT_OK(
        Execute("case-1", "triage",
                {{"route", "safeguarding_case"},
                 {"related_to_activity", true},
                 {"rationale", "Travel to a session is part of the activity."},
                 {"decided_by", {{"actor_id", kDsl.id}, {"role", "dsl"}}}},
                kDsl));
    Json consent = {{"consent_id", "consent-1"},   {"person_ref", "person-1"},
                    {"purpose", "involve_police"}, {"decision", "given"},
                    {"decided_by", "person"},      {"capacity", "assumed"}};
    ASSERT_OK(Execute("case-1", "record-consent", consent, kDsl));
    consent["consent_id"] = "consent-2";
    consent["decision"] = "withdrawn";
    consent["previous_consent_id"] = "consent-1";
    ASSERT_OK(Execute("case-1", "record-consent", consent, kDsl));
  }

  // Each command (one event each) an hour after the one before.
  Status Execute(const std::string& case_id, const std::string& command,
                 Json body, const Actor& actor) {
    clock_.Set(Timestamp(kStart + kHour * commands_++));
    return service_->Execute(case_id, command, std::move(body), actor).status();
  }

  int64_t commands_ = 0;
  std::unique_ptr<CaseService> service_;
};

TEST_F(ReplayTest, TheCaseAsItStoodAfterEachVersion) {
  auto v1 = ReplayState(*store_, *service_, "case-1", {1, std::nullopt});
  ASSERT_OK(v1);
  EXPECT_EQ((*v1)["stage"], "reported");
  EXPECT_EQ((*v1)["version"], 1);
  auto v3 = ReplayState(*store_, *service_, "case-1", {3, std::nullopt});
  ASSERT_OK(v3);
  EXPECT_EQ((*v3)["stage"], "open");
  EXPECT_TRUE((*v3)["consents"].empty());
  auto all = ReplayState(*store_, *service_, "case-1", {});
  ASSERT_OK(all);
  EXPECT_EQ((*all)["consents"].size(), 2u);
  EXPECT_EQ((*all)["consents"][1]["decision"], "withdrawn");
}

TEST_F(ReplayTest, TheCaseAsItStoodAtAMoment) {
  // Recorded at 00:00, 01:00, 02:00, ...: at 02:30 three events had been.
  auto t = ParseTimestamp("2026-03-01T02:30:00Z");
  ASSERT_OK(t);
  auto s = ReplayState(*store_, *service_, "case-1", {std::nullopt, *t});
  ASSERT_OK(s);
  EXPECT_EQ((*s)["version"], 3);
  auto before = ReplayState(*store_, *service_, "case-1",
                            {std::nullopt, Timestamp(kStart - 1)});
  EXPECT_TRUE(before.status().IsNotFound());
  EXPECT_TRUE(
      ReplayState(*store_, *service_, "no-case", {}).status().IsNotFound());
}

TEST_F(ReplayTest, StepsSayWhoWhenWhyAndWhatChanged) {
  auto r = ReplaySteps(*store_, *service_, "case-1", {});
  ASSERT_OK(r);
  const Json& steps = (*r)["steps"];
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_EQ(steps[0]["who"]["id"], kReporter.id);
  EXPECT_EQ(steps[2]["type"], "CaseTriaged");
  EXPECT_EQ(steps[2]["why"], "Travel to a session is part of the activity.");
  EXPECT_EQ(steps[2]["recorded_at"], "2026-03-01T02:00:00.000000Z");
  // The triage moved the stage from acknowledged to open.
  Json expected = {{"op", "replace"}, {"path", "/stage"}, {"value", "open"}};
  bool found = false;
  for (const auto& op : steps[2]["changes"]) found |= op == expected;
  EXPECT_TRUE(found) << steps[2]["changes"].dump();
  // Applying every step's patch to the state before it gives the state after.
  Json state = domain::ToJson("case-1", domain::CaseState{});
  for (const auto& step : steps) {
    state = state.patch(step["changes"]);
    EXPECT_EQ(state, step["state_after"]);
  }
  auto two = ReplaySteps(*store_, *service_, "case-1", {2, std::nullopt});
  ASSERT_OK(two);
  EXPECT_EQ((*two)["steps"].size(), 2u);
}

}  // namespace
}  // namespace caseledger::service
