// Governance views, the overview and the audit sample.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rocksdb/db.h>

#include <chrono>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <utility>

#include "caseledger/projections/read_models.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/seed.h"
#include "tests/support/test_support.h"

namespace caseledger::projections {
namespace {

using Json = nlohmann::json;

// Governance views against a fixed clock.
class GovernanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    o.clock = [this] { return Timestamp(now_.load()); };
    store_ = testing::OpenStore(dir_.path() + "/log", o);
    catalog_ = *domain::EventCatalog::Load();
    keys_ = std::make_unique<testing::TestKeys>(catalog_);
    service_ = std::make_unique<service::CaseService>(
        *store_, catalog_, domain::DomainConfig{}, keys_->sealer());
  }
  Json Report(bool immediate) { return testing::ReportBody(immediate); }
  // Consent overridden as o1 to involve the police.
  static Json PoliceOverride() {
    return {{"override_id", "o1"},
            {"person_ref", "person-1"},
            {"purpose", "involve_police"},
            {"lawful_basis", "prevention_of_crime"},
            {"rationale", "A crime."},
            {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}},
            {"person_to_be_informed", true}};
  }
  void Run(const std::string& id, const std::string& cmd, const Json& body,
           const domain::Actor& a = {"user:dsl-1", domain::Role::kDsl}) {
    auto r = service_->Execute(id, cmd, body, a);
    ASSERT_TRUE(r.ok()) << cmd << ": " << r.status().ToString();
  }
  std::unique_ptr<ReadModels> Models() {
    auto m = ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr,
                              "governance-test-key-012345");
    EXPECT_TRUE(m.ok());
    EXPECT_TRUE((*m)->CatchUp().ok());
    return std::move(*m);
  }
  static constexpr int64_t kHour = 3600LL * 1000000;
  // 2026-03-01T10:00:00Z
  std::atomic<int64_t> now_{1772359200000000};
  testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  std::unique_ptr<testing::TestKeys> keys_;
  std::unique_ptr<service::CaseService> service_;
};

TEST_F(GovernanceTest,
       OverdueAcknowledgementsAreThoseStillUntakenPastTheirDeadline) {
  Run("urgent-case", "report", Report(true),
      {"user:rep-1", domain::Role::kReporter});
  Run("standard-case", "report", Report(false),
      {"user:rep-1", domain::Role::kReporter});
  Run("taken-case", "report", Report(true),
      {"user:rep-1", domain::Role::kReporter});
  Run("taken-case", "assign-lead",
      {{"lead_actor_id", "user:dsl-1"},
       {"role", "dsl"},
       {"reason", "initial_assignment"}});
  auto m = Models();
  const Timestamp base(now_.load());
  // Half an hour on: nothing is late yet.
  auto early = m->Governance("overdue-acknowledgements",
                             Timestamp(base.value() + kHour / 2), 100);
  ASSERT_OK(early);
  EXPECT_TRUE(early->items.empty());
  // Two hours on: the urgent one (1 hour deadline) is late, the standard one
  // (a day) is not, the taken one never is.
  auto later = m->Governance("overdue-acknowledgements",
                             Timestamp(base.value() + 2 * kHour), 100);
  ASSERT_OK(later);
  ASSERT_EQ(later->items.size(), 1u);
  EXPECT_EQ(later->items[0].case_id, "urgent-case");
  auto next_day = m->Governance("overdue-acknowledgements",
                                Timestamp(base.value() + 30 * kHour), 100);
  ASSERT_OK(next_day);
  EXPECT_EQ(next_day->items.size(), 2u);
  EXPECT_TRUE(m->Governance("no-such-view", base, 10).status().IsNotFound());
}

TEST_F(GovernanceTest, ReviewsEscalationsOverridesAndClosuresAreListed) {
  Run("c1", "report", Report(false), {"user:rep-1", domain::Role::kReporter});
  Run("c1", "assign-lead",
      {{"lead_actor_id", "user:dsl-1"},
       {"role", "dsl"},
       {"reason", "initial_assignment"}});
  Run("c1", "triage",
      {{"route", "safeguarding_case"},
       {"related_to_activity", true},
       {"rationale", "In scope."},
       {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}}});
  Run("c1", "schedule-review",
      {{"review_id", "r1"},
       {"kind", "with_person"},
       {"due_date", "2026-03-10"},
       {"reason", "first_review"}});
  Run("c1", "override-consent", PoliceOverride());
  Run("c1", "raise-escalation",
      {{"escalation_id", "e1"},
       {"target", "police"},
       {"trigger", "new_information"},
       {"reason", "A crime."},
       {"urgency", "urgent"},
       {"basis", {{"kind", "override"}, {"override_id", "o1"}}}});
  Run("c2", "report", Report(false), {"user:rep-1", domain::Role::kReporter});
  Run("c2", "assign-lead",
      {{"lead_actor_id", "user:dsl-1"},
       {"role", "dsl"},
       {"reason", "initial_assignment"}});
  Run("c2", "close",
      {{"reason", "person_declined_further_involvement"},
       {"no_review_reason", "person_declined_review"},
       {"feedback_to_reporter_given", true}});
  auto m = Models();
  Timestamp mar12(1773309600000000);  // 2026-03-12T10:00:00Z
  auto reviews = m->Governance("overdue-reviews", mar12, 100);
  ASSERT_OK(reviews);
  ASSERT_EQ(reviews->items.size(), 1u);
  EXPECT_EQ(reviews->items[0].item_name, "review_id");
  EXPECT_EQ(reviews->items[0].item, "r1");
  auto not_yet = m->Governance("overdue-reviews", Timestamp(now_.load()), 100);
  EXPECT_TRUE(not_yet->items.empty());
  auto esc = m->Governance("escalations-awaiting-acknowledgement", mar12, 100);
  ASSERT_OK(esc);
  ASSERT_EQ(esc->items.size(), 1u);
  EXPECT_EQ(esc->items[0].overdue, std::optional(true));
  auto overrides = m->Governance("consent-overrides", mar12, 100);
  ASSERT_EQ(overrides->items.size(), 1u);
  EXPECT_EQ(overrides->items[0].override_id, "o1");
  auto closed = m->Governance("closed-without-outcome-review", mar12, 100);
  ASSERT_EQ(closed->items.size(), 1u);
  EXPECT_EQ(closed->items[0].case_id, "c2");
  auto overview = m->Overview(mar12);
  ASSERT_OK(overview);
  EXPECT_EQ(overview->cases_by_stage.at("open"), 1u);
  EXPECT_EQ(overview->cases_by_stage.at("closed"), 1u);
  EXPECT_EQ(overview->views.at("overdue-reviews").count, 1u);
  EXPECT_EQ(overview->open_cases_by_age.from_7_to_30_days, 1u);
}

TEST_F(GovernanceTest, LateAcknowledgementsReauditsUnexplainedDecisionsCounts) {
  const domain::Actor reporter{"user:rep-1", domain::Role::kReporter};
  const domain::Actor reviewer{"user:reviewer-1", domain::Role::kReviewer};
  const Json lead = {{"lead_actor_id", "user:dsl-1"},
                     {"role", "dsl"},
                     {"reason", "initial_assignment"}};
  // An urgent case (1 hour to acknowledge) taken after 2 hours: late.
  Run("c1", "report", Report(true), reporter);
  now_ += 2 * kHour;
  Run("c1", "assign-lead", lead);
  // A standard case taken after 10 minutes: on time.
  Run("c2", "report", Report(false), reporter);
  now_ += kHour / 6;
  Run("c2", "assign-lead", lead);
  // Closed on a reason code alone: a decision without its rationale.
  Run("c2", "close",
      {{"reason", "person_declined_further_involvement"},
       {"no_review_reason", "person_declined_review"},
       {"feedback_to_reporter_given", true}});
  // A finding on c1 that needs a re-audit by 5 March.
  Run("c1", "record-audit-finding",
      {{"finding_id", "f1"},
       {"reviewer_actor_id", reviewer.id},
       {"checks",
        {{"outcome_statements", "not_met"},
         {"consent_recording", "met"},
         {"proportionality", "met"},
         {"review_dates", "met"}}},
       {"finding", "Outcomes were not recorded in the person's words."},
       {"severity", "moderate"},
       {"reaudit_required", true}},
      reviewer);
  Run("c1", "schedule-reaudit",
      {{"reaudit_id", "ra1"},
       {"finding_ids", {"f1"}},
       {"due_date", "2026-03-05"}},
      reviewer);
  auto m = Models();
  Timestamp mar3(1772532000000000);   // 2026-03-03T10:00:00Z
  Timestamp mar12(1773309600000000);  // 2026-03-12T10:00:00Z

  auto late = m->Governance("late-acknowledgements", mar12, 100);
  ASSERT_OK(late);
  ASSERT_EQ(late->items.size(), 1u);
  EXPECT_EQ(late->items[0].case_id, "c1");
  EXPECT_EQ(late->items[0].due, "2026-03-01T11:00:00.000000Z");
  EXPECT_EQ(late->items[0].item_name, "acknowledged_at");
  EXPECT_EQ(late->items[0].item, "2026-03-01T12:00:00.000000Z");

  auto reaudits = m->Governance("reaudits-due", mar3, 100);
  ASSERT_OK(reaudits);
  ASSERT_EQ(reaudits->items.size(), 1u);
  EXPECT_EQ(reaudits->items[0].item_name, "reaudit_id");
  EXPECT_EQ(reaudits->items[0].item, "ra1");
  EXPECT_EQ(reaudits->items[0].overdue, std::optional(false));
  EXPECT_EQ(m->Governance("reaudits-due", mar12, 100)->items[0].overdue,
            std::optional(true));

  auto unexplained = m->Governance("decisions-without-rationale", mar12, 100);
  ASSERT_OK(unexplained);
  ASSERT_EQ(unexplained->items.size(), 1u);
  EXPECT_EQ(unexplained->items[0].case_id, "c2");
  EXPECT_EQ(unexplained->items[0].event_type, "CaseClosed");

  auto overview = m->Overview(mar12);
  ASSERT_OK(overview);
  EXPECT_EQ(overview->acknowledgement.acknowledged, 2u);
  EXPECT_EQ(overview->acknowledgement.acknowledged_late, 1u);
  EXPECT_EQ(overview->acknowledgement.median_minutes,
            std::optional<uint64_t>(120));
  EXPECT_EQ(overview->closed_cases_by_reason.at(
                "person_declined_further_involvement"),
            1u);
  uint64_t settings = 0;
  for (const auto& [k, n] : overview->cases_by_setting) settings += n;
  EXPECT_EQ(settings, 2u);
  EXPECT_FALSE(overview->cases_by_category.empty());
  EXPECT_EQ(overview->views.at("reaudits-due").overdue,
            std::optional<uint64_t>(1));
  EXPECT_EQ(overview->views.at("decisions-without-rationale").count, 1u);

  // The re-audit done, it is no longer due.
  Run("c1", "record-audit-finding",
      {{"finding_id", "f2"},
       {"reviewer_actor_id", reviewer.id},
       {"checks",
        {{"outcome_statements", "met"},
         {"consent_recording", "met"},
         {"proportionality", "met"},
         {"review_dates", "met"}}},
       {"finding", "Outcomes are now recorded in the person's words."},
       {"severity", "good_practice"},
       {"reaudit_required", false},
       {"reaudit_of_finding_id", "f1"},
       {"change_embedded", "yes"}},
      reviewer);
  ASSERT_OK(m->CatchUp());
  EXPECT_TRUE(m->Governance("reaudits-due", mar12, 100)->items.empty());
}

// The overview, kept by counters, says what counting the views and the
// cases one by one says: over cases reported across two months, taken,
// triaged, reviewed, escalated and closed at random, asked at moments that
// fall on due days and on the 7- and 31-day edges of the age buckets; and
// the same again from models rebuilt from the log.
TEST_F(GovernanceTest, TheOverviewCountsWhatTheViewsAndCasesSay) {
  std::mt19937 rng(20261206);
  auto chance = [&](int percent) {
    return static_cast<int>(rng() % 100) < percent;
  };
  const domain::Actor reporter{"user:rep-1", domain::Role::kReporter};
  const Json lead = {{"lead_actor_id", "user:dsl-1"},
                     {"role", "dsl"},
                     {"reason", "initial_assignment"}};
  const int64_t start = now_.load();
  std::vector<uint64_t> ack_minutes;
  for (int i = 0; i < 90; ++i) {
    const std::string id = "p" + std::to_string(i);
    now_ = start + static_cast<int64_t>(rng() % (uint64_t{60} * 24)) * kHour +
           static_cast<int64_t>(rng() % 3600) * 1000000;
    const int64_t reported = now_.load();
    Run(id, "report", Report(chance(30)), reporter);
    if (!chance(70)) continue;
    now_ += static_cast<int64_t>(rng() % (uint64_t{30} * 60)) * 60 * 1000000;
    Run(id, "assign-lead", lead);
    ack_minutes.push_back(
        static_cast<uint64_t>((now_.load() - reported) / 60000000));
    if (chance(25)) {
      Run(id, "close",
          {{"reason", "person_declined_further_involvement"},
           {"no_review_reason", "person_declined_review"},
           {"feedback_to_reporter_given", true}});
      continue;
    }
    if (!chance(70)) continue;
    Run(id, "triage",
        {{"route", "safeguarding_case"},
         {"related_to_activity", true},
         {"rationale", "In scope."},
         {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}}});
    const std::string due =
        FormatTimestamp(
            Timestamp(now_.load() +
                      static_cast<int64_t>(rng() % (uint64_t{20} * 24)) *
                          kHour))
            .substr(0, 10);
    Run(id, "schedule-review",
        {{"review_id", "r1"},
         {"kind", "with_person"},
         {"due_date", due},
         {"reason", "first_review"}});
    if (!chance(50)) continue;
    Run(id, "override-consent", PoliceOverride());
    Run(id, "raise-escalation",
        {{"escalation_id", "e1"},
         {"target", "police"},
         {"trigger", "new_information"},
         {"reason", "A crime."},
         {"urgency", chance(50) ? "urgent" : "standard"},
         {"basis", {{"kind", "override"}, {"override_id", "o1"}}}});
  }
  std::sort(ack_minutes.begin(), ack_minutes.end());

  // What counting one by one says at `now`.
  auto expected = [&](ReadModels& m, Timestamp now) {
    GovernanceOverview want;
    std::vector<Json> docs;
    std::string cursor;
    for (;;) {
      auto page = m.ListCases(CaseFilter{}, cursor, 500);
      EXPECT_TRUE(page.ok());
      for (auto& d : page->cases) docs.push_back(std::move(d));
      if (page->next_cursor.empty()) break;
      cursor = page->next_cursor;
    }
    auto add = [](GovernanceOverview::Counts& counts, const std::string& k) {
      ++counts[k];
    };
    for (const Json& d : docs) {
      const std::string stage = d["stage"];
      add(want.cases_by_stage, stage);
      add(want.cases_reported_by_month,
          d["reported_at"].get<std::string>().substr(0, 7));
      for (const auto& c : d["categories"]) add(want.cases_by_category, c);
      add(want.cases_by_setting, d["setting"]);
      if (stage == "closed") {
        add(want.closed_cases_by_reason, d["closure_reason"]);
      }
      if (stage == "closed") continue;
      const int64_t days =
          (now.value() -
           ParseTimestamp(d["reported_at"].get<std::string>())->value()) /
          (86400LL * 1000000);
      auto& age = want.open_cases_by_age;
      ++(days < 7     ? age.under_7_days
         : days <= 30 ? age.from_7_to_30_days
                      : age.over_30_days);
    }
    for (const char* view :
         {"overdue-acknowledgements", "overdue-reviews",
          "escalations-awaiting-acknowledgement", "consent-overrides",
          "closed-without-outcome-review", "overdue-actions", "reaudits-due",
          "decisions-without-rationale", "late-acknowledgements",
          "erasure-requests", "legal-holds", "personal-data-erased"}) {
      auto items = m.Governance(view, now, 1000000);
      EXPECT_TRUE(items.ok());
      auto& size = want.views[view];
      size.count = items->items.size();
      if (std::string(view) == "escalations-awaiting-acknowledgement" ||
          std::string(view) == "reaudits-due") {
        uint64_t overdue = 0;
        for (const auto& item : items->items) {
          overdue += item.overdue.value_or(false) ? 1 : 0;
        }
        size.overdue = overdue;
      }
    }
    want.acknowledgement.acknowledged = ack_minutes.size();
    want.acknowledgement.acknowledged_late =
        want.views["late-acknowledgements"].count;
    if (!ack_minutes.empty()) {
      want.acknowledgement.median_minutes = ack_minutes[ack_minutes.size() / 2];
    }
    return want;
  };
  auto check = [&](ReadModels& m) {
    std::vector<Timestamp> moments;
    for (int day : {0, 3, 7, 8, 20, 31, 40, 61, 75, 95}) {
      moments.emplace_back(start + int64_t{day} * 24 * kHour +
                           static_cast<int64_t>(rng() % (uint64_t{24} * 3600)) *
                               1000000);
    }
    for (Timestamp now : moments) {
      auto got = m.Overview(now);
      ASSERT_OK(got);
      const GovernanceOverview want = expected(m, now);
      const std::string at = " at " + FormatTimestamp(now);
      EXPECT_EQ(got->cases_by_stage, want.cases_by_stage) << at;
      EXPECT_EQ(got->cases_reported_by_month, want.cases_reported_by_month)
          << at;
      EXPECT_EQ(got->cases_by_category, want.cases_by_category) << at;
      EXPECT_EQ(got->cases_by_setting, want.cases_by_setting) << at;
      EXPECT_EQ(got->closed_cases_by_reason, want.closed_cases_by_reason) << at;
      EXPECT_TRUE(got->open_cases_by_age == want.open_cases_by_age) << at;
      EXPECT_TRUE(got->views == want.views) << at;
      EXPECT_TRUE(got->acknowledgement == want.acknowledgement) << at;
      const auto& age = got->open_cases_by_age;
      EXPECT_GT(age.under_7_days + age.from_7_to_30_days + age.over_30_days,
                0u);
    }
  };
  auto m = Models();
  check(*m);
  // Models built in one pass from the log count the same.
  auto rebuilt = ReadModels::Open(dir_.path() + "/p2", *store_, catalog_,
                                  nullptr, "governance-test-key-012345");
  ASSERT_OK(rebuilt);
  ASSERT_OK((*rebuilt)->CatchUp());
  check(**rebuilt);
  // And rebuilt with small runs and statistics written every few counts.
  RebuildOptions small;
  small.index_entries_per_file = 50;
  small.index_runs_at_once = 2;
  small.stats_entries_in_memory = 8;
  ASSERT_OK((*rebuilt)->Rebuild(small));
  check(**rebuilt);
}

TEST_F(GovernanceTest, TheAuditSampleIsDeterministicAndStratified) {
  for (int i = 0; i < 30; ++i) {
    std::string id = "s" + std::to_string(i);
    Run(id, "report", Report(i == 7), {"user:rep-1", domain::Role::kReporter});
  }
  auto m = Models();
  auto a = m->AuditSample("2026-03", 5, "march");
  auto b = m->AuditSample("2026-03", 5, "march");
  auto c = m->AuditSample("2026-03", 5, "other-seed");
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_TRUE(*a == *b);
  EXPECT_EQ(a->population, 30u);
  ASSERT_EQ(a->cases.size(), 5u);
  // The one urgent case is always in.
  bool urgent_in = false;
  for (const auto& s : a->cases) urgent_in |= s.case_id == "s7";
  EXPECT_TRUE(urgent_in);
  EXPECT_FALSE(a->cases == c->cases);
  auto empty = m->AuditSample("2025-01", 5, "march");
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->cases.empty());
}

}  // namespace
}  // namespace caseledger::projections

namespace caseledger::projections {
namespace {

// Retention: the read models list what a sweep may erase, by each kind's
// rule, oldest closure first; held, erased and open cases are not listed.
TEST_F(GovernanceTest, RetentionListsClosedCasesWhosePeriodHasEnded) {
  const int64_t kYear = 365LL * 24 * kHour;
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  const domain::Actor admin{"user:admin-1", domain::Role::kAdmin};
  const Json close = {{"reason", "person_declined_further_involvement"},
                      {"no_review_reason", "person_declined_review"},
                      {"feedback_to_reporter_given", false}};
  // Closed at now_ + i hours, in this order; "incident" cases under their
  // own rule.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"c-old", "concern"},    {"i-old", "incident"}, {"c-held", "concern"},
      {"c-erased", "concern"}, {"c-new", "concern"},  {"c-open", "concern"}};
  const int64_t start = now_.load();
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [id, kind] = cases[i];
    now_ = start + static_cast<int64_t>(i) * kHour;
    Json report = Report(false);
    report["kind"] = kind;
    Run(id, "report", report, {"user:rep-1", domain::Role::kReporter});
    Run(id, "assign-lead",
        {{"lead_actor_id", dsl.id},
         {"role", "dsl"},
         {"reason", "initial_assignment"}});
    if (id != "c-open") Run(id, "close", close);
  }
  Run("c-held", "place-legal-hold",
      {{"reason", "litigation"}, {"reason_detail", "A claim."}});
  Run("c-erased", "request-erasure",
      {{"erasure_id", "e1"},
       {"scope", "case"},
       {"legal_ground", "no_longer_necessary"},
       {"rationale", "Not needed."}});
  Run("c-erased", "approve-erasure", {{"erasure_id", "e1"}}, admin);
  auto m = Models();
  const std::vector<domain::RetentionRule> rules = {
      {"incident-2y", "incident", 2}, {"any-6y", "*", 6}};
  using Item = ReadModels::RetentionItem;
  auto at = [&](int64_t t) {
    auto due = m->RetentionDue(rules, Timestamp(t), 100);
    EXPECT_TRUE(due.ok());
    return due.ok() ? *due : std::vector<Item>{};
  };
  EXPECT_TRUE(at(start + 1 * kYear).empty());
  EXPECT_EQ(at(start + 3 * kYear),
            std::vector<Item>({{"i-old", "incident-2y"}}));
  // Six calendar years (two leap days) after c-old's closure, before
  // c-new's.
  EXPECT_EQ(at(start + 6 * kYear + 48 * kHour + 2 * kHour),
            std::vector<Item>({{"c-old", "any-6y"}, {"i-old", "incident-2y"}}));
  EXPECT_EQ(at(start + 10 * kYear),
            std::vector<Item>({{"c-old", "any-6y"},
                               {"c-new", "any-6y"},
                               {"i-old", "incident-2y"}}));
  EXPECT_TRUE(m->RetentionDue({}, Timestamp(start + 10 * kYear), 100)->empty());
  EXPECT_EQ(m->RetentionDue(rules, Timestamp(start + 10 * kYear), 1)->size(),
            1u);
  // The governance views show the hold and the erasure.
  auto holds = m->Governance("legal-holds", Timestamp(start), 10);
  ASSERT_TRUE(holds.ok());
  ASSERT_EQ(holds->items.size(), 1u);
  EXPECT_EQ(holds->items[0].case_id, "c-held");
  auto erased = m->Governance("personal-data-erased", Timestamp(start), 10);
  ASSERT_TRUE(erased.ok());
  ASSERT_EQ(erased->items.size(), 1u);
  EXPECT_EQ(erased->items[0].case_id, "c-erased");
  EXPECT_EQ(erased->items[0].item, "*");
}

}  // namespace
}  // namespace caseledger::projections
