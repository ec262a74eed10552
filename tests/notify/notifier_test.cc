// The notifier against a store, with the network replaced by a recording
// transport and a clock the tests move: what is planned, retried,
// dead-lettered and withheld, and that nothing is planned twice.
#include "caseledger/notify/notifier.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "caseledger/mutex.h"
#include "caseledger/service/case_service.h"
#include "notify/src/outbox.h"
#include "tests/notify/reports.h"
#include "tests/support/test_support.h"

namespace caseledger::notify {
namespace {

using Json = nlohmann::json;
using testing::kDsl;
using testing::kPersonal;
using testing::kReporter;
using testing::PersonalReport;
using testing::WebhookSecret;

constexpr int64_t kMinute = int64_t{60} * 1000000;

std::string WebhookSecretFile(const std::string& dir) {
  const std::string path = dir + "/hook.secret";
  std::ofstream(path) << WebhookSecret() << "\n";
  return path;
}

class NotifierTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    service_ = std::make_unique<service::CaseService>(
        *store_, catalog_, domain::DomainConfig{}, keys_->sealer());
    config_.enabled = true;
    config_.console_url = "https://console.test";
    config_.directory = {{kDsl.id}, {"user:alt-1"}};
    config_.contacts = {{kDsl.id, {"dsl1@example.org", ""}},
                        {"user:alt-1", {"", "pager"}}};
    config_.webhooks = {
        {"pager",
         {"https://hooks.test/in", WebhookSecretFile(dir_.path()), ""}}};
    std::ofstream(dir_.path() + "/smtp.password") << "not-a-password\n";
    config_.smtp = SmtpServer{"smtp://127.0.0.1:1", "caseledger@example.org",
                              "caseledger", dir_.path() + "/smtp.password", ""};
    config_.retry = {3, std::chrono::milliseconds(20),
                     std::chrono::milliseconds(100)};
  }

  void TearDown() override {
    if (notifier_) notifier_->Stop();
    notifier_.reset();
  }

  void Open() {
    NotifierOptions o;
    o.clock = [this] { return Timestamp(NowUtc().value() + offset_.load()); };
    o.transport = [this](const Outgoing& out) { return Send(out); };
    auto n = Notifier::Open(dir_.path() + "/notify", *store_, catalog_, config_,
                            nullptr, o);
    ASSERT_OK(n);
    notifier_ = std::move(*n);
    notifier_->Start();
  }

  void Advance(std::chrono::minutes m) {
    offset_ += m.count() * kMinute;
    notifier_->Wake();
  }

  // Fails the first `fail_webhooks` webhook sends; a `hold` blocks
  // webhooks until released.
  SendResult Send(const Outgoing& out) {
    MutexLock lk(&mu_);
    if (out.channel == "webhook") {
      while (hold_) {
        if (!cv_.WaitUntil(&mu_, std::chrono::steady_clock::now() +
                                     std::chrono::seconds(20))) {
          break;
        }
      }
      if (fail_webhooks_ > 0) {
        --fail_webhooks_;
        failed_.push_back(out);
        return {false, "HTTP 503"};
      }
    }
    sent_.push_back(out);
    cv_.SignalAll();
    return {true, out.channel == "email" ? "SMTP 250" : "HTTP 200"};
  }

  std::vector<Outgoing> Sent() {
    MutexLock lk(&mu_);
    return sent_;
  }

  bool WaitSent(size_t n) {
    return testing::WaitFor([&] { return Sent().size() >= n; });
  }

  std::string NewCase(const Json& body) {
    const std::string id = "case-" + EventId::NewV7().ToString();
    auto r = service_->Execute(id, "report", body, kReporter);
    EXPECT_OK(r);
    return id;
  }

  // Waits for the notifier to plan the whole log, act on every deadline
  // due by now, and send all it planned: after this, nothing more is sent
  // until the log or the clock moves.
  void Settle() {
    ASSERT_TRUE(notifier_->WaitForPosition(store_->committed_position(),
                                           std::chrono::seconds(30)));
    const Timestamp now(NowUtc().value() + offset_.load());
    ASSERT_TRUE(testing::WaitFor([&] {
      return notifier_->Stats().timers_checked.value() >= now.value();
    }));
    ASSERT_TRUE(
        testing::WaitFor([&] { return notifier_->Stats().pending == 0; }));
  }

  NotifyConfig config_;
  std::unique_ptr<service::CaseService> service_;
  std::unique_ptr<Notifier> notifier_;
  std::atomic<int64_t> offset_{0};
  Mutex mu_;
  CondVar cv_;
  std::vector<Outgoing> sent_ GUARDED_BY(mu_);
  std::vector<Outgoing> failed_ GUARDED_BY(mu_);
  int fail_webhooks_ GUARDED_BY(mu_) = 0;
  bool hold_ GUARDED_BY(mu_) = false;
};

TEST_F(NotifierTest, AnUrgentConcernReachesTheDslAndTheAlternativeAtOnce) {
  Open();
  const std::string id = NewCase(PersonalReport(true, false));
  ASSERT_TRUE(WaitSent(2));
  Settle();
  std::vector<Outgoing> sent = Sent();
  ASSERT_EQ(sent.size(), 2u);
  std::map<std::string, Outgoing> by_channel;
  for (const Outgoing& o : sent) by_channel[o.channel] = o;
  EXPECT_EQ(by_channel["email"].to, "dsl1@example.org");
  EXPECT_EQ(by_channel["webhook"].to, "https://hooks.test/in");
  for (const Outgoing& o : sent) {
    EXPECT_EQ(o.message.type, "caseledger.concern_reported");
    EXPECT_EQ(o.message.data["case_id"], id);
    EXPECT_EQ(o.message.data["urgency"], "urgent");
    EXPECT_THAT(o.id, ::testing::StartsWith("msg_"));
    EXPECT_THAT(o.message.text,
                ::testing::HasSubstr("https://console.test/#/case/" + id));
  }
  EXPECT_NE(sent[0].id, sent[1].id);

  auto list = notifier_->List({});
  ASSERT_OK(list);
  ASSERT_EQ((*list)["notifications"].size(), 2u);
  for (const Json& n : (*list)["notifications"]) {
    EXPECT_EQ(n["status"], "delivered");
    EXPECT_EQ(n["attempts"], 1);
    ASSERT_EQ(n["history"].size(), 1u);
    EXPECT_TRUE(n["history"][0]["ok"].get<bool>());
  }
  NotifierStats s = notifier_->Stats();
  EXPECT_EQ(s.delivered["email"], 1u);
  EXPECT_EQ(s.delivered["webhook"], 1u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_TRUE(s.healthy);
}

TEST_F(NotifierTest, AConcernNamingTheDslReachesOnlyTheAlternative) {
  Open();
  NewCase(PersonalReport(true, true));
  ASSERT_TRUE(WaitSent(1));
  Settle();
  std::vector<Outgoing> sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].channel, "webhook");
  EXPECT_EQ(sent[0].message.data["recipient"], "user:alt-1");
}

TEST_F(NotifierTest, NoMessageCarriesPersonalData) {
  Open();
  NewCase(PersonalReport(true, false));
  NewCase(PersonalReport(false, true));
  Advance(std::chrono::minutes(16));  // the standard concern's delay
  ASSERT_TRUE(WaitSent(3));
  Settle();
  for (const Outgoing& o : Sent()) {
    const std::string all =
        o.message.subject + o.message.text + o.message.data.dump();
    for (const std::string& p : kPersonal) {
      EXPECT_EQ(all.find(p), std::string::npos) << p << " in " << all;
    }
  }
}

TEST_F(NotifierTest, AnOverdueAcknowledgementAlertsThenEscalates) {
  Open();
  const std::string id = NewCase(PersonalReport(false, false));
  // Not urgent: held for 15 minutes.
  ASSERT_TRUE(notifier_->WaitForPosition(store_->committed_position(),
                                         std::chrono::seconds(30)));
  EXPECT_EQ(Sent().size(), 0u);
  Advance(std::chrono::minutes(16));
  ASSERT_TRUE(WaitSent(2));
  // A working day later, still nobody has taken it: the DSL is told.
  Advance(std::chrono::minutes(24 * 60));
  ASSERT_TRUE(WaitSent(3));
  EXPECT_EQ(Sent()[2].message.type, "caseledger.acknowledgement_overdue");
  EXPECT_EQ(Sent()[2].to, "dsl1@example.org");
  // An hour on, still not: the alternative DSL.
  Advance(std::chrono::minutes(61));
  ASSERT_TRUE(WaitSent(4));
  EXPECT_EQ(Sent()[3].message.type, "caseledger.acknowledgement_still_overdue");
  EXPECT_EQ(Sent()[3].channel, "webhook");
  Settle();
  EXPECT_EQ(Sent().size(), 4u);
  (void)id;
}

TEST_F(NotifierTest, AConcernTakenWithinItsDelayIsNotSent) {
  Open();
  const std::string id = NewCase(PersonalReport(false, false));
  ASSERT_OK(service_->Execute(id, "assign-lead",
                              {{"lead_actor_id", kDsl.id},
                               {"role", "dsl"},
                               {"reason", "initial_assignment"}},
                              kDsl));
  Advance(std::chrono::minutes(16));
  ASSERT_TRUE(
      testing::WaitFor([&] { return notifier_->Stats().withheld == 2; }));
  EXPECT_EQ(Sent().size(), 0u);
  auto list = notifier_->List({"withheld", "", 10});
  ASSERT_OK(list);
  ASSERT_EQ((*list)["notifications"].size(), 2u);
  EXPECT_THAT((*list)["notifications"][0]["last_error"].get<std::string>(),
              ::testing::HasSubstr("a lead took the case"));
  // And no acknowledgement alert a day later.
  Advance(std::chrono::minutes(25 * 60));
  Settle();
  EXPECT_EQ(Sent().size(), 0u);
}

TEST_F(NotifierTest, SomeoneBarredAfterAnAlertWasPlannedIsNotSentIt) {
  Open();
  // A standard concern: its alerts wait 15 minutes.
  const std::string id = "case-" + EventId::NewV7().ToString();
  Json report = PersonalReport(false, false);
  auto reported = service_->Execute(id, "report", report, kReporter);
  ASSERT_OK(reported);
  ASSERT_TRUE(notifier_->WaitForPosition(store_->committed_position(),
                                         std::chrono::seconds(30)));
  // Meanwhile the report is corrected: the person alleged to have caused
  // harm is the DSL.
  Json people = report["people_involved"];
  people.push_back({{"person_ref", "person-2"},
                    {"roles", {"person_alleged_to_cause_harm"}},
                    {"is_dsl", true},
                    {"actor_id", kDsl.id}});
  ASSERT_OK(
      service_->Execute(id, "amend",
                        {{"amends_event_id", reported->event_ids[0].ToString()},
                         {"amends_event_type", "ConcernReported"},
                         {"amends_schema_version", 1},
                         {"corrected_fields", {{"people_involved", people}}},
                         {"reason", "The person named is our DSL."}},
                        domain::Actor{"user:alt-1", domain::Role::kAltDsl}));
  Advance(std::chrono::minutes(16));
  ASSERT_TRUE(
      testing::WaitFor([&] { return notifier_->Stats().withheld == 1; }));
  Settle();
  // The alternative DSL is told of the concern; the DSL, now barred, not.
  ASSERT_EQ(Sent().size(), 1u);
  EXPECT_EQ(Sent()[0].channel, "webhook");
  EXPECT_EQ(Sent()[0].message.data["recipient"], "user:alt-1");
  auto list = notifier_->List({"withheld", "", 10});
  ASSERT_OK(list);
  ASSERT_EQ((*list)["notifications"].size(), 1u);
  EXPECT_EQ((*list)["notifications"][0]["recipient"], kDsl.id);
  EXPECT_THAT((*list)["notifications"][0]["last_error"].get<std::string>(),
              ::testing::HasSubstr("barred"));
}

TEST_F(NotifierTest, AFailingReceiverGetsTheMessageAfterBackoff) {
  {
    MutexLock lk(&mu_);
    fail_webhooks_ = 2;
  }
  Open();
  NewCase(PersonalReport(true, false));
  ASSERT_TRUE(WaitSent(2));
  Settle();
  std::vector<Outgoing> failed;
  {
    MutexLock lk(&mu_);
    failed = failed_;
  }
  ASSERT_EQ(failed.size(), 2u);
  const Outgoing webhook =
      Sent()[0].channel == "webhook" ? Sent()[0] : Sent()[1];
  // The same notification each time: the same id.
  EXPECT_EQ(failed[0].id, webhook.id);
  EXPECT_EQ(failed[1].id, webhook.id);
  // Backed off: each try after the one before.
  EXPECT_LT(failed[0].at.value(), failed[1].at.value());
  EXPECT_LT(failed[1].at.value(), webhook.at.value());
  auto list = notifier_->List({"delivered", "", 10});
  ASSERT_OK(list);
  for (const Json& n : (*list)["notifications"]) {
    if (n["channel"] != "webhook") continue;
    EXPECT_EQ(n["attempts"], 3);
    ASSERT_EQ(n["history"].size(), 3u);
    EXPECT_FALSE(n["history"][0]["ok"].get<bool>());
    EXPECT_EQ(n["history"][0]["detail"], "HTTP 503");
    EXPECT_TRUE(n["history"][2]["ok"].get<bool>());
  }
  EXPECT_EQ(notifier_->Stats().attempts_failed["webhook"], 2u);
}

TEST_F(NotifierTest, AReceiverThatKeepsFailingIsDeadLettered) {
  {
    MutexLock lk(&mu_);
    fail_webhooks_ = 1000;
  }
  Open();
  NewCase(PersonalReport(true, false));
  ASSERT_TRUE(testing::WaitFor([&] { return notifier_->Stats().dead == 1; }));
  auto list = notifier_->List({"dead", "", 10});
  ASSERT_OK(list);
  ASSERT_EQ((*list)["notifications"].size(), 1u);
  const Json& n = (*list)["notifications"][0];
  EXPECT_EQ(n["attempts"], 3);  // config_.retry.max_attempts
  EXPECT_EQ(n["last_error"], "HTTP 503");
  EXPECT_EQ(n["history"].size(), 3u);
  EXPECT_EQ(notifier_->Stats().dead_lettered["webhook"], 1u);
  // The e-mail went regardless.
  EXPECT_EQ(Sent().size(), 1u);
}

TEST_F(NotifierTest, ASlowReceiverHoldsUpNoOther) {
  {
    MutexLock lk(&mu_);
    hold_ = true;
  }
  Open();
  NewCase(PersonalReport(true, false));
  // The webhook hangs; the e-mail goes meanwhile.
  ASSERT_TRUE(WaitSent(1));
  EXPECT_EQ(Sent()[0].channel, "email");
  // And appends go on.
  NewCase(PersonalReport(true, false));
  ASSERT_TRUE(WaitSent(2));
  EXPECT_EQ(Sent()[1].channel, "email");
  {
    MutexLock lk(&mu_);
    hold_ = false;
  }
  cv_.SignalAll();
  ASSERT_TRUE(WaitSent(4));
}

TEST_F(NotifierTest, ARestartPlansAndSendsNothingTwice) {
  Open();
  NewCase(PersonalReport(true, false));
  NewCase(PersonalReport(true, false));
  ASSERT_TRUE(WaitSent(4));
  Settle();
  notifier_->Stop();
  notifier_.reset();
  NewCase(PersonalReport(true, false));  // while it is down
  Open();
  ASSERT_TRUE(WaitSent(6));
  Settle();
  std::vector<Outgoing> sent = Sent();
  EXPECT_EQ(sent.size(), 6u);
  std::set<std::string> ids;
  for (const Outgoing& o : sent) ids.insert(o.id);
  EXPECT_EQ(ids.size(), 6u);
  auto list = notifier_->List({"", "", 500});
  ASSERT_OK(list);
  EXPECT_EQ((*list)["notifications"].size(), 6u);
}

TEST_F(NotifierTest, EventsFromBeforeAlertingWasEnabledAreHistory) {
  // The log has a report before the notifier first opens.
  NewCase(PersonalReport(true, false));
  Open();
  Settle();
  EXPECT_EQ(Sent().size(), 0u);
  // But its deadline is watched: an hour on, unacknowledged, it is chased.
  Advance(std::chrono::minutes(61));
  ASSERT_TRUE(WaitSent(1));
  EXPECT_EQ(Sent()[0].message.type, "caseledger.acknowledgement_overdue");
}

TEST_F(NotifierTest, TheListPagesNewestFirst) {
  Open();
  for (int i = 0; i < 3; ++i) NewCase(PersonalReport(true, false));
  ASSERT_TRUE(WaitSent(6));
  Settle();
  auto first = notifier_->List({"", "", 4});
  ASSERT_OK(first);
  ASSERT_EQ((*first)["notifications"].size(), 4u);
  ASSERT_TRUE((*first)["next"].is_string());
  auto rest = notifier_->List({"", (*first)["next"].get<std::string>(), 4});
  ASSERT_OK(rest);
  EXPECT_EQ((*rest)["notifications"].size(), 2u);
  EXPECT_TRUE((*rest)["next"].is_null());
  std::set<std::string> ids;
  for (const auto* page : {&*first, &*rest}) {
    for (const Json& n : (*page)["notifications"]) ids.insert(n["id"]);
  }
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_FALSE(notifier_->List({"", "msg_nonesuch", 4}).ok());
}

TEST(NotifyConfigTest, AConfigurationThatCannotWorkIsRefused) {
  NotifyConfig c;
  c.enabled = true;
  EXPECT_TRUE(CheckConfig(c).ok());
  c.contacts["a"] = {"a@example.org", ""};
  EXPECT_FALSE(CheckConfig(c).ok());  // e-mail, but no SMTP server
  c.smtp = SmtpServer{"http://mail", "x@example.org", "u", "/p", ""};
  EXPECT_FALSE(CheckConfig(c).ok());  // not smtp:// or smtps://
  c.smtp->url = "smtp://mail:587";
  EXPECT_TRUE(CheckConfig(c).ok());
  c.smtp->username.clear();
  EXPECT_FALSE(CheckConfig(c).ok());  // mail only with authentication
  c.smtp->username = "u";
  c.contacts["a"].webhook = "nonesuch";
  EXPECT_FALSE(CheckConfig(c).ok());
  c.contacts["a"].webhook.clear();
  c.webhooks["w"] = {"http://insecure", "/secret", ""};
  EXPECT_FALSE(CheckConfig(c).ok());
  c.webhooks["w"].url = "https://ok";
  EXPECT_TRUE(CheckConfig(c).ok());
  c.webhooks["w\nx"] = {"https://ok", "/secret", ""};
  EXPECT_FALSE(CheckConfig(c).ok());  // names are [A-Za-z0-9_-]
  c.webhooks.erase("w\nx");
  c.contacts["a"].email = "not an address";
  EXPECT_FALSE(CheckConfig(c).ok());
  c.contacts["a"].email = "a@example.org\r\nBcc: x@y";
  EXPECT_FALSE(CheckConfig(c).ok());
  c.contacts["a"].email = "a@example.org";
  c.directory = {{"user:x"}, {"user:x"}};
  EXPECT_FALSE(CheckConfig(c).ok());  // both a DSL and an alternative
}

TEST(NotifyConfigTest, RetriesBackOffExponentiallyWithJitterUpToTheCap) {
  const RetryPolicy p{10, std::chrono::milliseconds(1000),
                      std::chrono::milliseconds(30000)};
  for (uint32_t failures = 1; failures <= 8; ++failures) {
    const int64_t base = std::min<int64_t>(1000LL << (failures - 1), 30000);
    EXPECT_EQ(RetryDelay(p, failures, 0.0).count(), base / 2) << failures;
    EXPECT_EQ(RetryDelay(p, failures, 1.0).count(), base) << failures;
    const int64_t mid = RetryDelay(p, failures, 0.5).count();
    EXPECT_GT(mid, base / 2);
    EXPECT_LT(mid, base);
  }
  EXPECT_EQ(RetryDelay(p, 100, 1.0).count(), 30000);  // capped
}

TEST(NotifyOutboxTest, PlanningTheSameAgainChangesNothing) {
  testing::TempDir dir;
  auto box = internal::Outbox::Open(dir.path(), nullptr);
  ASSERT_OK(box);
  internal::Record r;
  r.id = "msg_0123";
  r.notice.rule = "urgent-concern";
  r.notice.kind = "concern_reported";
  r.notice.case_id = "case-1";
  r.notice.urgency = "urgent";
  r.notice.recipient = {"user:dsl-1", domain::Role::kDsl};
  r.channel = "email";
  r.lane = "smtp";
  r.status = "pending";
  r.created_at = Timestamp(1000);
  r.next_attempt_at = Timestamp(1000);
  ASSERT_OK((*box)->Commit({r}, {}, {}, 5));
  ASSERT_OK((*box)->Commit({r}, {}, {}, 0));  // planned again
  EXPECT_EQ((*box)->pending(), 1u);
  auto due = (*box)->Due("smtp", Timestamp(2000), 10);
  ASSERT_OK(due);
  ASSERT_EQ(due->size(), 1u);
  internal::Record sent = (*due)[0];
  sent.status = "delivered";
  sent.attempts = 1;
  ASSERT_OK((*box)->Update(
      (*due)[0], sent,
      internal::Attempt{1, Timestamp(1500), 10, true, "SMTP 250"}));
  ASSERT_OK((*box)->Sync());
  // Planned once more after it went: it stays delivered, with its attempt,
  // listed once, and is not queued again.
  ASSERT_OK((*box)->Commit({r}, {}, {}, 0));
  EXPECT_EQ((*box)->pending(), 0u);
  auto again = (*box)->Due("smtp", Timestamp(2000), 10);
  ASSERT_OK(again);
  EXPECT_TRUE(again->empty());
  auto page = (*box)->List("", "", 10);
  ASSERT_OK(page);
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0].first.status, "delivered");
  EXPECT_EQ(page->rows[0].second.size(), 1u);
  // A timer for a due time already watched at a later stage is kept.
  Timer t;
  t.rule = "acknowledgement-overdue";
  t.case_id = "case-1";
  t.due = Timestamp(5000);
  t.stage = 1;
  t.fire_at = Timestamp(9000);
  ASSERT_OK((*box)->Commit({}, {t}, {}, 0));
  Timer earlier = t;
  earlier.stage = 0;
  earlier.fire_at = Timestamp(5000);
  ASSERT_OK((*box)->Commit({}, {earlier}, {}, 0));
  auto timers = (*box)->DueTimers(Timestamp(10000), 10);
  ASSERT_OK(timers);
  ASSERT_EQ(timers->size(), 1u);
  EXPECT_EQ((*timers)[0].stage, 1u);
}

TEST_F(NotifierTest, AlertsForAReceiverNoLongerConfiguredAreDeadLetters) {
  {
    MutexLock lk(&mu_);
    fail_webhooks_ = 1000;
  }
  config_.retry = {50, std::chrono::milliseconds(60000),
                   std::chrono::milliseconds(60000)};
  Open();
  NewCase(PersonalReport(true, false));
  // The webhook failed once and waits a minute for its next try.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return notifier_->Stats().attempts_failed["webhook"] == 1; }));
  notifier_->Stop();
  notifier_.reset();
  // The endpoint is gone from the configuration.
  config_.webhooks.clear();
  config_.contacts["user:alt-1"] = {"alt1@example.org", ""};
  Open();
  EXPECT_EQ(notifier_->Stats().dead, 1u);
  auto list = notifier_->List({"dead", "", 10});
  ASSERT_OK(list);
  ASSERT_EQ((*list)["notifications"].size(), 1u);
  EXPECT_THAT((*list)["notifications"][0]["last_error"].get<std::string>(),
              ::testing::HasSubstr("no longer configured"));
  EXPECT_EQ(notifier_->Stats().pending, 0u);
}

}  // namespace
}  // namespace caseledger::notify
