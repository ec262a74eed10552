// The alerting rules, as pure functions of a case's state: no store, no
// network.
#include "caseledger/notify/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace caseledger::notify {
namespace {

using domain::Actor;
using domain::CaseState;
using domain::Role;
using domain::Stage;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kMinute = int64_t{60} * 1000000;
const Timestamp kT0(int64_t{1796000000} * 1000000);

Directory Dir() { return Directory{{"dsl-1", "dsl-2"}, {"alt-1"}}; }

CaseState Reported(bool urgent) {
  CaseState s;
  s.version = 1;
  s.stage = Stage::kReported;
  s.urgent = urgent;
  s.reporter_actor_id = "reporter-1";
  s.reported_at = kT0;
  s.acknowledgement_due_at = Timestamp(kT0.value() + 60 * kMinute);
  return s;
}

domain::EventHeader Event(std::string type, std::string actor = "reporter-1",
                          Role role = Role::kReporter) {
  domain::EventHeader e;
  e.event_id = "ev-" + type;
  e.type = std::move(type);
  e.actor = Actor{std::move(actor), role};
  e.recorded_at = kT0;
  return e;
}

std::vector<std::string> Recipients(const Plan& p) {
  std::vector<std::string> ids;
  for (const Notice& n : p.notices) ids.push_back(n.recipient.id);
  return ids;
}

TEST(NotifyRules, AnUrgentConcernGoesAtOnceToEveryDslAndAlternative) {
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", CaseState{}, Reported(true),
                   Event("ConcernReported"), false);
  EXPECT_THAT(Recipients(p), ElementsAre("dsl-1", "dsl-2", "alt-1"));
  for (const Notice& n : p.notices) {
    EXPECT_EQ(n.kind, "concern_reported");
    EXPECT_EQ(n.urgency, "urgent");
    EXPECT_EQ(n.send_at, kT0);
    EXPECT_EQ(n.due.value(), kT0.value() + 60 * kMinute);
    EXPECT_FALSE(n.unless_acknowledged);
    EXPECT_EQ(n.source, "event:ev-ConcernReported");
  }
  // And the acknowledgement is watched.
  ASSERT_EQ(p.timers.size(), 1u);
  EXPECT_EQ(p.timers[0].deadline, Deadline::kAcknowledgement);
  EXPECT_EQ(p.timers[0].fire_at.value(), kT0.value() + 60 * kMinute);
}

TEST(NotifyRules, AnotherConcernWaitsFifteenMinutesUnlessTakenMeanwhile) {
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", CaseState{},
                   Reported(false), Event("ConcernReported"), false);
  ASSERT_EQ(p.notices.size(), 3u);
  EXPECT_EQ(p.notices[0].send_at.value(), kT0.value() + 15 * kMinute);
  EXPECT_TRUE(p.notices[0].unless_acknowledged);
  EXPECT_EQ(p.notices[0].urgency, "standard");

  CaseState taken = Reported(false);
  taken.stage = Stage::kAcknowledged;
  taken.acknowledged_at = kT0;
  EXPECT_THAT(WithheldBecause(taken, p.notices[0]),
              ::testing::HasSubstr("a lead took the case"));
  EXPECT_EQ(WithheldBecause(Reported(false), p.notices[0]), "");
}

TEST(NotifyRules, AConcernNamingTheDslReachesOnlyTheAlternative) {
  CaseState named = Reported(true);
  named.dsl_named = true;
  named.barred_actor_ids = {"dsl-1"};
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", CaseState{}, named,
                   Event("ConcernReported"), false);
  EXPECT_THAT(Recipients(p), ElementsAre("dsl-2", "alt-1"));

  // Named without an actor id: every DSL is barred.
  named.barred_actor_ids.clear();
  named.all_dsls_barred = true;
  p = OnEvent(DefaultRules(), Dir(), "case-1", CaseState{}, named,
              Event("ConcernReported"), false);
  EXPECT_THAT(Recipients(p), ElementsAre("alt-1"));
}

TEST(NotifyRules, NobodyIsToldOfTheirOwnEvent) {
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", CaseState{}, Reported(true),
                   Event("ConcernReported", "dsl-2", Role::kDsl), false);
  EXPECT_THAT(Recipients(p), ElementsAre("dsl-1", "alt-1"));
}

TEST(NotifyRules, HistoryNotifiesNobodyButItsDeadlinesAreWatched) {
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", CaseState{}, Reported(true),
                   Event("ConcernReported"), true);
  EXPECT_THAT(p.notices, IsEmpty());
  EXPECT_EQ(p.timers.size(), 1u);
}

TEST(NotifyRules, ALeadNewlyBarredIsToldToTheAlternativesOnly) {
  CaseState before = Reported(false);
  before.stage = Stage::kOpen;
  before.lead_actor_id = "dsl-1";
  before.lead_role = Role::kDsl;
  CaseState after = before;
  after.barred_actor_ids = {"dsl-1"};
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", before, after,
                   Event("EventAmended", "dsl-2", Role::kDsl), false);
  ASSERT_THAT(Recipients(p), ElementsAre("alt-1"));
  EXPECT_EQ(p.notices[0].kind, "lead_barred");
  // Already barred: not told again at every event.
  p = OnEvent(DefaultRules(), Dir(), "case-1", after, after,
              Event("RiskAssessed", "dsl-2", Role::kDsl), false);
  EXPECT_THAT(p.notices, IsEmpty());
}

TEST(NotifyRules, AnEscalationRaisedGoesToTheLeadAndAlternatives) {
  CaseState before = Reported(false);
  before.stage = Stage::kOpen;
  before.lead_actor_id = "dsl-2";
  before.lead_role = Role::kDsl;
  CaseState after = before;
  after.escalations["esc-1"] = domain::EscalationState{
      "police", "emergency", Timestamp(kT0.value() + 30 * kMinute), false,
      false};
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", before, after,
                   Event("EscalationRaised", "dsl-1", Role::kDsl), false);
  EXPECT_THAT(Recipients(p), ElementsAre("dsl-2", "alt-1"));
  EXPECT_EQ(p.notices[0].urgency, "emergency");
  EXPECT_EQ(p.notices[0].due.value(), kT0.value() + 30 * kMinute);
  // Its acknowledgement is watched.
  ASSERT_EQ(p.timers.size(), 1u);
  EXPECT_EQ(p.timers[0].deadline, Deadline::kEscalationAcknowledgement);
  EXPECT_EQ(p.timers[0].item, "esc-1");
}

TEST(NotifyRules, AnUnmetAcknowledgementIsToldThenRepeatedToTheAlternative) {
  const std::vector<Rule> rules = DefaultRules();
  Plan first = OnEvent(rules, Dir(), "case-1", CaseState{}, Reported(true),
                       Event("ConcernReported"), false);
  ASSERT_EQ(first.timers.size(), 1u);
  const Timer timer = first.timers[0];
  const Timestamp due = timer.fire_at;

  Plan at_due = OnTimer(rules, Dir(), Reported(true), timer, due);
  EXPECT_THAT(Recipients(at_due), ElementsAre("dsl-1", "dsl-2"));
  EXPECT_EQ(at_due.notices[0].kind, "acknowledgement_overdue");
  ASSERT_EQ(at_due.timers.size(), 1u);
  EXPECT_EQ(at_due.timers[0].stage, 1u);
  EXPECT_EQ(at_due.timers[0].fire_at.value(), due.value() + 60 * kMinute);
  EXPECT_EQ(at_due.timers[0].Key(), timer.Key());

  Plan repeat = OnTimer(rules, Dir(), Reported(true), at_due.timers[0],
                        at_due.timers[0].fire_at);
  EXPECT_THAT(Recipients(repeat), ElementsAre("alt-1"));
  EXPECT_EQ(repeat.notices[0].kind, "acknowledgement_still_overdue");
  EXPECT_THAT(repeat.timers, IsEmpty());
  // Two different notices: their sources differ.
  EXPECT_NE(repeat.notices[0].source, at_due.notices[0].source);

  // Met in the meantime: nothing.
  CaseState taken = Reported(true);
  taken.stage = Stage::kAcknowledged;
  Plan none = OnTimer(rules, Dir(), taken, timer, due);
  EXPECT_THAT(none.notices, IsEmpty());
  EXPECT_THAT(none.timers, IsEmpty());
}

TEST(NotifyRules, ADeadlineMovedLaterIsWatchedAtItsNewTime) {
  const std::vector<Rule> rules = DefaultRules();
  CaseState s = Reported(false);
  s.stage = Stage::kOpen;
  s.reviews["rev-1"] = domain::ReviewState{"with_person", "2026-12-01", false};
  Plan p = OnEvent(rules, Dir(), "case-1", Reported(false), s,
                   Event("ReviewScheduled", "dsl-1", Role::kDsl), false);
  ASSERT_EQ(p.timers.size(), 1u);
  EXPECT_EQ(p.timers[0].fire_at, EndOfDay("2026-12-01"));
  s.reviews["rev-1"].due_date = "2026-12-10";
  Plan moved = OnTimer(rules, Dir(), s, p.timers[0], p.timers[0].fire_at);
  EXPECT_THAT(moved.notices, IsEmpty());
  ASSERT_EQ(moved.timers.size(), 1u);
  EXPECT_EQ(moved.timers[0].fire_at, EndOfDay("2026-12-10"));
  // Completed: nothing more.
  s.reviews["rev-1"].completed = true;
  EXPECT_THAT(OnTimer(rules, Dir(), s, moved.timers[0], moved.timers[0].fire_at)
                  .notices,
              IsEmpty());
}

TEST(NotifyRules, AnOverdueActionGoesToTheLeadNotABarredOne) {
  const std::vector<Rule> rules = DefaultRules();
  CaseState s = Reported(false);
  s.stage = Stage::kOpen;
  s.lead_actor_id = "dsl-1";
  s.lead_role = Role::kDsl;
  s.action_due["act-1"] = "2026-12-01";
  s.actions["act-1"] = false;
  Plan p = OnEvent(rules, Dir(), "case-1", Reported(false), s,
                   Event("ActionAssigned", "dsl-1", Role::kDsl), false);
  ASSERT_EQ(p.timers.size(), 1u);
  Plan due = OnTimer(rules, Dir(), s, p.timers[0], p.timers[0].fire_at);
  EXPECT_THAT(Recipients(due), ElementsAre("dsl-1"));
  // A barred lead is as good as none: the DSLs are told (not the barred
  // one).
  s.barred_actor_ids = {"dsl-1"};
  due = OnTimer(rules, Dir(), s, p.timers[0], p.timers[0].fire_at);
  EXPECT_THAT(Recipients(due), ElementsAre("dsl-2"));
  EXPECT_EQ(due.timers.size(), 1u);  // the repeat, to the alternative
}

TEST(NotifyRules, SomeoneListedInBothGroupsIsNotToldWhenBarredInEither) {
  CaseState named = Reported(true);
  named.dsl_named = true;
  named.all_dsls_barred = true;  // the DSL named, without an actor id
  const Directory both{{"dsl-1"}, {"dsl-1", "alt-1"}};
  Plan p = OnEvent(DefaultRules(), both, "case-1", CaseState{}, named,
                   Event("ConcernReported"), false);
  EXPECT_THAT(Recipients(p), ElementsAre("alt-1"));
}

TEST(NotifyRules, AReopenedCaseWatchesItsDeadlinesAgain) {
  CaseState closed = Reported(false);
  closed.stage = Stage::kClosed;
  closed.lead_actor_id = "dsl-1";
  closed.lead_role = Role::kDsl;
  closed.action_due["act-1"] = "2026-12-01";
  closed.actions["act-1"] = false;
  CaseState reopened = closed;
  reopened.stage = Stage::kOpen;
  Plan p = OnEvent(DefaultRules(), Dir(), "case-1", closed, reopened,
                   Event("CaseReopened", "dsl-1", Role::kDsl), false);
  ASSERT_EQ(p.timers.size(), 1u);
  EXPECT_EQ(p.timers[0].item, "act-1");
  EXPECT_EQ(p.timers[0].fire_at, EndOfDay("2026-12-01"));
}

TEST(NotifyRules, AClosedOrErasedCaseIsNotChased) {
  const std::vector<Rule> rules = DefaultRules();
  Plan p = OnEvent(rules, Dir(), "case-1", CaseState{}, Reported(true),
                   Event("ConcernReported"), false);
  CaseState closed = Reported(true);
  closed.stage = Stage::kClosed;
  EXPECT_THAT(
      OnTimer(rules, Dir(), closed, p.timers[0], p.timers[0].fire_at).notices,
      IsEmpty());
  CaseState erased = Reported(true);
  erased.erased = true;
  EXPECT_THAT(
      OnTimer(rules, Dir(), erased, p.timers[0], p.timers[0].fire_at).notices,
      IsEmpty());
  EXPECT_NE(WithheldBecause(erased, p.notices[0]), "");
}

TEST(NotifyRules, TimersSurviveTheirStoredForm) {
  Timer t;
  t.rule = "review-overdue";
  t.case_id = "case-1";
  t.deadline = Deadline::kReview;
  t.item = "rev-1";
  t.due = kT0;
  t.stage = 1;
  t.fire_at = Timestamp(kT0.value() + 5);
  auto back = Timer::FromJson(t.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->Key(), t.Key());
  EXPECT_EQ(back->stage, 1u);
  EXPECT_EQ(back->fire_at, t.fire_at);
  EXPECT_FALSE(Timer::FromJson(nlohmann::json{{"rule", 1}}).ok());
}

TEST(NotifyRules, AMessageSaysWhatWhereAndWhenAndNothingPersonal) {
  Plan p = OnEvent(DefaultRules(), Dir(), "case-42", CaseState{},
                   Reported(true), Event("ConcernReported"), false);
  Message m = Render(p.notices[0], "msg_abc", "https://console.example.org/");
  EXPECT_EQ(m.type, "caseledger.concern_reported");
  EXPECT_THAT(m.subject, ::testing::StartsWith("[caseledger] URGENT: "));
  EXPECT_THAT(m.subject, ::testing::HasSubstr("case-42"));
  EXPECT_THAT(m.text, ::testing::HasSubstr(
                          "https://console.example.org/#/case/case-42"));
  EXPECT_THAT(m.text, ::testing::HasSubstr("Due by: "));
  EXPECT_EQ(m.data["case_id"], "case-42");
  EXPECT_EQ(m.data["link"], "https://console.example.org/#/case/case-42");
  // Only these fields: what happened, where, how urgent, by when, to whom.
  for (const auto& [key, value] : m.data.items()) {
    EXPECT_THAT(key, ::testing::AnyOf("kind", "case_id", "urgency", "due",
                                      "link", "recipient", "summary"));
  }
  EXPECT_EQ(m.subject.find_first_of("\r\n"), std::string::npos);
}

TEST(NotifyRules, RuleSetsAreChecked) {
  EXPECT_TRUE(CheckRules(DefaultRules()).ok());
  std::vector<Rule> twice = DefaultRules();
  twice.push_back(twice[0]);
  EXPECT_FALSE(CheckRules(twice).ok());
  Rule neither;
  neither.name = "x";
  neither.to = {Audience::kDsl};
  EXPECT_FALSE(CheckRules({neither}).ok());
  Rule nobody;
  nobody.name = "y";
  nobody.event = "ConcernReported";
  EXPECT_FALSE(CheckRules({nobody}).ok());
  Rule repeating = nobody;
  repeating.to = {Audience::kDsl};
  repeating.repeat_to = {Audience::kAltDsl};
  EXPECT_FALSE(CheckRules({repeating}).ok());
  EXPECT_EQ(EndOfDay("nonsense").value(), 0);
}

}  // namespace
}  // namespace caseledger::notify
