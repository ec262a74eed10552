// Delivery for real: e-mail over SMTP with STARTTLS and AUTH, and signed
// webhooks over HTTPS, to the local receivers of tests/notify/sink.py; and
// a crash between sending and recording.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>

#include "caseledger/notify/notifier.h"
#include "caseledger/service/case_service.h"
#include "tests/notify/reports.h"
#include "tests/notify/sink_process.h"
#include "tests/support/test_support.h"

namespace caseledger::notify {
namespace {

using Json = nlohmann::json;
using testing::kDsl;
using testing::kPersonal;
using testing::kReporter;
using testing::PersonalReport;
using testing::WebhookSecret;

const std::string kSmtpUser = "caseledger";
const std::string kSmtpPassword = "not-a-real-password";

// The configuration that reaches `sink`: the DSL by e-mail, the
// alternative DSL by webhook (or by e-mail, with `all_email`).
NotifyConfig SinkConfig(const testing::Sink& sink, const std::string& dir,
                        bool all_email = false) {
  std::ofstream(dir + "/smtp.password") << kSmtpPassword << "\n";
  std::ofstream(dir + "/hook.secret") << WebhookSecret() << "\n";
  NotifyConfig c;
  c.enabled = true;
  c.console_url = "https://console.test";
  c.directory = {{kDsl.id}, {"user:alt-1"}};
  c.contacts = {{kDsl.id, {"dsl1@example.org", ""}},
                {"user:alt-1", all_email ? Contact{"alt1@example.org", ""}
                                         : Contact{"", "pager"}}};
  c.smtp = SmtpServer{"smtp://127.0.0.1:" + std::to_string(sink.smtp_port),
                      "caseledger@example.org", kSmtpUser,
                      dir + "/smtp.password", sink.ca_file};
  c.webhooks = {{"pager",
                 {"https://127.0.0.1:" + std::to_string(sink.https_port) +
                      "/hooks/caseledger",
                  dir + "/hook.secret", sink.ca_file}}};
  c.retry = {6, std::chrono::milliseconds(100), std::chrono::milliseconds(400)};
  c.send_timeout = std::chrono::milliseconds(5000);
  return c;
}

std::string Content(const Json& line) {
  return line["channel"] == "smtp" ? line["data"].get<std::string>()
                                   : line["body"].get<std::string>();
}

class DeliveryTest : public testing::StoreTest {
 protected:
  void Start(int fail_first) {
    sink_ = std::make_unique<testing::Sink>(sink_dir_.path(), kSmtpUser,
                                            kSmtpPassword, WebhookSecret(),
                                            fail_first);
    ASSERT_TRUE(sink_->started()) << "tests/notify/sink.py did not start";
    service_ = std::make_unique<service::CaseService>(
        *store_, catalog_, domain::DomainConfig{}, keys_->sealer());
    // The notifier's clock runs `offset_` ahead of the system's.
    NotifierOptions o;
    o.clock = [this] {
      return Timestamp(NowUtc().value() + offset_minutes_.load() * 60000000);
    };
    auto n = Notifier::Open(dir_.path() + "/notify", *store_, catalog_,
                            SinkConfig(*sink_, sink_dir_.path()), nullptr, o);
    ASSERT_OK(n);
    notifier_ = std::move(*n);
    notifier_->Start();
  }
  void TearDown() override {
    if (notifier_) notifier_->Stop();
  }
  std::string NewCase(const Json& body) {
    const std::string id = "case-" + EventId::NewV7().ToString();
    EXPECT_OK(service_->Execute(id, "report", body, kReporter));
    return id;
  }
  bool WaitReceived(size_t n) {
    return testing::WaitFor([&] { return sink_->Received().size() >= n; });
  }

  testing::TempDir sink_dir_;
  std::unique_ptr<testing::Sink> sink_;
  std::unique_ptr<service::CaseService> service_;
  std::unique_ptr<Notifier> notifier_;
  std::atomic<int64_t> offset_minutes_{0};
};

TEST_F(DeliveryTest, AnUrgentConcernArrivesByMailAndSignedWebhook) {
  Start(0);
  const std::string id = NewCase(PersonalReport(true, false));
  ASSERT_TRUE(WaitReceived(2));
  std::map<std::string, Json> by;
  for (const Json& line : sink_->Received()) by[line["channel"]] = line;
  ASSERT_EQ(by.size(), 2u);

  const Json& mail = by["smtp"];
  EXPECT_TRUE(mail["tls"].get<bool>());  // STARTTLS
  EXPECT_EQ(mail["auth_user"], kSmtpUser);
  EXPECT_EQ(mail["rcpt_tos"], Json::array({"dsl1@example.org"}));
  EXPECT_THAT(mail["subject"].get<std::string>(),
              ::testing::HasSubstr("URGENT"));
  EXPECT_THAT(mail["subject"].get<std::string>(), ::testing::HasSubstr(id));
  EXPECT_THAT(mail["data"].get<std::string>(),
              ::testing::HasSubstr("https://console.test/#/case/" + id));
  EXPECT_THAT(mail["message_id"].get<std::string>(),
              ::testing::MatchesRegex("<msg_[0-9a-f]{32}@example.org>"));

  const Json& hook = by["webhook"];
  EXPECT_TRUE(hook["signature_valid"].get<bool>());
  EXPECT_TRUE(hook["accepted"].get<bool>());
  EXPECT_EQ(hook["path"], "/hooks/caseledger");
  Json body = Json::parse(hook["body"].get<std::string>());
  EXPECT_EQ(body["type"], "caseledger.concern_reported");
  EXPECT_EQ(body["data"]["case_id"], id);
  EXPECT_EQ(body["data"]["notification_id"], hook["webhook_id"]);
  EXPECT_EQ(body["data"]["recipient"], "user:alt-1");

  for (const Json& line : sink_->Received()) {
    for (const std::string& p : kPersonal) {
      EXPECT_EQ(Content(line).find(p), std::string::npos) << p;
    }
  }
}

TEST_F(DeliveryTest, AConcernNamingTheDslReachesOnlyTheAlternative) {
  Start(0);
  NewCase(PersonalReport(true, true));
  ASSERT_TRUE(WaitReceived(1));
  ASSERT_TRUE(notifier_->WaitForPosition(store_->committed_position(),
                                         std::chrono::seconds(30)));
  ASSERT_TRUE(
      testing::WaitFor([&] { return notifier_->Stats().pending == 0; }));
  std::vector<Json> got = sink_->Received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["channel"], "webhook");
  for (const std::string& p : kPersonal) {
    EXPECT_EQ(Content(got[0]).find(p), std::string::npos) << p;
  }
}

TEST_F(DeliveryTest, AnOverdueAcknowledgementAlertsAgainThenTheAlternative) {
  Start(0);
  const std::string id = NewCase(PersonalReport(true, false));
  ASSERT_TRUE(WaitReceived(2));  // the new concern, to both
  // An urgent report is due to be taken within the hour; nobody has.
  offset_minutes_ = 61;
  notifier_->Wake();
  ASSERT_TRUE(WaitReceived(3));
  const Json overdue = sink_->Received()[2];
  EXPECT_EQ(overdue["channel"], "smtp");  // the DSL
  EXPECT_THAT(overdue["subject"].get<std::string>(),
              ::testing::HasSubstr("not yet acknowledged"));
  EXPECT_THAT(overdue["subject"].get<std::string>(), ::testing::HasSubstr(id));
  // An hour on, still nobody: the alternative DSL.
  offset_minutes_ = 122;
  notifier_->Wake();
  ASSERT_TRUE(WaitReceived(4));
  const Json again = sink_->Received()[3];
  EXPECT_EQ(again["channel"], "webhook");
  EXPECT_TRUE(again["signature_valid"].get<bool>());
  EXPECT_EQ(Json::parse(again["body"].get<std::string>())["type"],
            "caseledger.acknowledgement_still_overdue");
  for (const Json& line : sink_->Received()) {
    for (const std::string& p : kPersonal) {
      EXPECT_EQ(Content(line).find(p), std::string::npos) << p;
    }
  }
}

TEST_F(DeliveryTest, AFailingReceiverGetsTheMessageAfterBackoff) {
  Start(2);  // the first two webhook POSTs get 503
  NewCase(PersonalReport(true, false));
  ASSERT_TRUE(testing::WaitFor([&] {
    size_t hooks = 0;
    for (const Json& l : sink_->Received()) hooks += l["channel"] == "webhook";
    return hooks >= 3;
  }));
  std::vector<Json> hooks;
  for (const Json& l : sink_->Received()) {
    if (l["channel"] == "webhook") hooks.push_back(l);
  }
  ASSERT_EQ(hooks.size(), 3u);
  EXPECT_FALSE(hooks[0]["accepted"].get<bool>());
  EXPECT_FALSE(hooks[1]["accepted"].get<bool>());
  EXPECT_TRUE(hooks[2]["accepted"].get<bool>());
  for (const Json& h : hooks) {
    EXPECT_EQ(h["webhook_id"], hooks[0]["webhook_id"]);  // one notification
    EXPECT_TRUE(h["signature_valid"].get<bool>());       // signed each time
    EXPECT_EQ(h["body"], hooks[0]["body"]);
  }
  ASSERT_TRUE(
      testing::WaitFor([&] { return notifier_->Stats().pending == 0; }));
  auto list = notifier_->List({"delivered", "", 10});
  ASSERT_OK(list);
  bool seen = false;
  for (const Json& n : (*list)["notifications"]) {
    if (n["channel"] != "webhook") continue;
    seen = true;
    EXPECT_EQ(n["attempts"], 3);
    EXPECT_EQ(n["history"][0]["detail"], "HTTP 503");
    EXPECT_EQ(n["history"][2]["detail"], "HTTP 200");
  }
  EXPECT_TRUE(seen);
}

// A process killed after an e-mail left and before its outcome was
// recorded: after a restart that e-mail is sent again with the same id,
// and nothing else twice.
TEST(DeliveryCrashTest, AKillBetweenSendingAndRecordingResendsOnlyThatOne) {
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
  GTEST_SKIP() << "ThreadSanitizer stops a forked child that starts threads; "
                  "the release and sanitize builds run this test";
#endif
#endif
  testing::TempDir data;
  testing::TempDir sink_dir;
  testing::Sink sink(sink_dir.path(), kSmtpUser, kSmtpPassword,
                     WebhookSecret());
  ASSERT_TRUE(sink.started());
  const NotifyConfig config = SinkConfig(sink, sink_dir.path(), true);
  const std::string log = data.path() + "/log";
  const std::string outbox = data.path() + "/notify";

  // Nothing of RocksDB is open in this process before the fork.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto catalog = domain::EventCatalog::Load();
    if (!catalog.ok()) _exit(2);
    auto store = testing::OpenStore(log);
    NotifierOptions o;
    o.after_send = [](const Outgoing&, const SendResult& r) {
      _exit(r.ok ? 0 : 4);  // sent, not recorded
    };
    // Opened first: alerting is enabled before the report.
    auto n = Notifier::Open(outbox, *store, *catalog, config, nullptr, o);
    if (!n.ok()) _exit(5);
    {
      testing::TestKeys keys(*catalog);
      service::CaseService service(*store, *catalog, domain::DomainConfig{},
                                   keys.sealer());
      if (!service
               .Execute("case-crash", "report", PersonalReport(true, false),
                        kReporter)
               .ok()) {
        _exit(3);
      }
    }
    (*n)->Start();
    std::this_thread::sleep_for(std::chrono::seconds(30));
    _exit(6);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(sink.Received().size(), 1u);
  const std::string first = sink.Received()[0]["message_id"];

  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  auto store = testing::OpenStore(log);
  auto n = Notifier::Open(outbox, *store, *catalog, config, nullptr);
  ASSERT_OK(n);
  (*n)->Start();
  ASSERT_TRUE(testing::WaitFor([&] { return sink.Received().size() >= 3; }));
  ASSERT_TRUE(testing::WaitFor([&] {
    NotifierStats s = (*n)->Stats();
    return s.position == store->committed_position().value() &&
           s.pending == 0 && s.timers_checked.value() > 0;
  }));
  std::map<std::string, int> times;
  for (const Json& l : sink.Received()) ++times[l["message_id"]];
  ASSERT_EQ(times.size(), 2u);
  EXPECT_EQ(times[first], 2);  // the one in flight at the kill
  for (const auto& [id, count] : times) {
    if (id != first) {
      EXPECT_EQ(count, 1) << id;
    }
  }
  (*n)->Stop();
}

}  // namespace
}  // namespace caseledger::notify
