// The fixture of the HTTP route tests: a real server on an ephemeral port,
// over a store on a disk a test can fill up, with a token per role.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api/case_routes.h"
#include "api/handlers.h"
#include "api/server.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/service/case_service.h"
#include "engine/src/event_store_impl.h"
#include "tests/support/faulty_disk_env.h"
#include "tests/support/http_client.h"
#include "tests/support/test_support.h"

namespace caseledger::api {

using Json = nlohmann::json;
using http_verb = boost::beast::http::verb;
using domain::Actor;
using domain::Role;

inline Json ReportBody() {
  std::ifstream in(std::string(CASELEDGER_SOURCE_DIR) +
                   "/scripts/examples/report.json");
  return Json::parse(in);
}

class CaseRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    o.clock = clock_.Function();  // the system clock unless a test sets it
    // On a disk a test can fill up (until then, the real one).
    ASSERT_TRUE(internal::OpenWithEnv(o, dir_.path(), &disk_, &store_).ok());
    auto catalog = domain::EventCatalog::Load();
    ASSERT_TRUE(catalog.ok());
    keys_ = std::make_unique<testing::TestKeys>(*catalog);
    service_ = std::make_unique<service::CaseService>(
        *store_, *catalog, domain::DomainConfig{}, keys_->sealer());
    for (const auto& [name, actor] : std::vector<std::pair<std::string, Actor>>{
             {"dsl", {"user:dsl-1", Role::kDsl}},
             {"alt", {"user:alt-dsl-1", Role::kAltDsl}},
             {"reporter", {"user:reporter-1", Role::kReporter}},
             {"reporter2", {"user:reporter-2", Role::kReporter}},
             {"reviewer", {"user:reviewer-1", Role::kReviewer}},
             {"integration", {"svc:feed", Role::kIntegration}},
             {"admin", {"user:admin-1", Role::kAdmin}}}) {
      auto t = service::IssueToken(*store_, service_->catalog(), actor, "test");
      ASSERT_TRUE(t.ok());
      token_[name] = *t;
    }
    tokens_ = std::make_unique<TokenRegistry>(*store_);
    ASSERT_TRUE(tokens_->Refresh().ok());
    workers_ = std::make_unique<WorkerPool>(2);
    auto models = projections::ReadModels::Open(
        dir_.path() + "/projections", *store_, *catalog, nullptr,
        "test-pseudonym-key-0123456789");
    ASSERT_TRUE(models.ok()) << models.status().ToString();
    models_ = std::move(*models);
    models_->SetIdentifierOpener([this](const std::string& case_id,
                                        const std::set<std::string>& sealed,
                                        service::Identifiers* out) {
      return service::OpenSealedIdentifiers(keys_->sealer(), case_id, sealed,
                                            out);
    });
    models_->Start();
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    deps_ = std::make_unique<CaseRouteDeps>(CaseRouteDeps{
        *store_, *service_, *tokens_, *workers_, models_.get(), logger});
    // Most tests follow the feed live; ALearningMonthIsReleased... sets the
    // production delay.
    deps_->feed_release_delay_months = 0;
    // Console sessions, on a clock of the test's own.
    sessions_ = std::make_unique<SessionStore>(
        *tokens_, std::chrono::minutes(30), [this] {
          return session_start_ +
                 std::chrono::seconds(session_elapsed_s_.load());
        });
    deps_->sessions = sessions_.get();
    deps_->backup = [this]() -> StatusOr<Json> {
      const std::string dir =
          dir_.path() + "/backups/" + std::to_string(++backups_);
      std::filesystem::create_directories(dir_.path() + "/backups");
      ASSIGN_OR_RETURN(GlobalPosition p, store_->Backup(dir));
      return Json{{"backup", dir}, {"position", p.value()}};
    };
    // Alerting, with no one's address configured: every alert is a dead
    // letter the admin route and /metrics show.
    notify::NotifyConfig alerts;
    alerts.enabled = true;
    alerts.directory = {{"user:dsl-1"}, {"user:alt-dsl-1"}};
    notify::NotifierOptions no;
    no.transport = [](const notify::Outgoing&) {
      return notify::SendResult{false, "no network in this test"};
    };
    auto notifier = notify::Notifier::Open(dir_.path() + "/notify", *store_,
                                           *catalog, alerts, nullptr, no);
    ASSERT_TRUE(notifier.ok()) << notifier.status().ToString();
    notifier_ = std::move(*notifier);
    notifier_->Start();
    deps_->notifier = notifier_.get();
    AddOperationalRoutes(router_, *store_, metrics_, models_.get(),
                         notifier_.get());
    AddCaseRoutes(router_, *deps_);
    AddConsoleRoutes(router_);
    ServerOptions so;
    so.port = 0;
    so.threads = 2;
    auto server = Server::Create(so, router_, metrics_, logger);
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    thread_ = std::thread([this] { server_->Run(false); });
    client_ = std::make_unique<testing::HttpClient>(server_->port());
  }
  void TearDown() override {
    disk_.full = false;
    server_->Shutdown();
    if (thread_.joinable()) thread_.join();
    workers_->Stop();
    notifier_->Stop();
    models_->Stop();
  }

  testing::HttpClient::Response Post(
      const std::string& who, const std::string& target, const Json& body,
      std::map<std::string, std::string> h = {}) {
    h["Authorization"] = "Bearer " + token_[who];
    return client_->Send(http_verb::post, target, body.dump(), h);
  }
  testing::HttpClient::Response Get(const std::string& who,
                                    const std::string& target) {
    return client_->Send(http_verb::get, target, "",
                         {{"Authorization", "Bearer " + token_[who]}});
  }
  testing::HttpClient::Response Command(
      const std::string& who, const std::string& command, const Json& body,
      std::map<std::string, std::string> h = {}) {
    return Post(who, "/v1/cases/" + case_ + "/commands/" + command, body, h);
  }
  std::string Metric(const std::string& name) {
    std::string text = client_->Send(http_verb::get, "/metrics").body();
    size_t at = text.find("\n" + name + " ");
    if (at == std::string::npos) return "<missing>";
    size_t start = at + name.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  }
  static Json Body(const testing::HttpClient::Response& r) {
    return Json::parse(r.body(), nullptr, false);
  }
  void Report(const std::string& who = "reporter") {
    auto r = Post(who, "/v1/cases", ReportBody());
    ASSERT_EQ(r.result_int(), 201) << r.body();
    case_ = Body(r)["case_id"];
    EXPECT_EQ(r["Location"], "/v1/cases/" + case_);
    EXPECT_EQ(r["ETag"], "\"1\"");
  }
  void Ok(const testing::HttpClient::Response& r) {
    EXPECT_EQ(r.result_int(), 200) << r.body();
  }

  std::ostringstream log_;  // the server's log lines
  SettableClock clock_;     // the store's: outlives it
  testing::TempDir dir_;
  testing::FaultyDiskEnv disk_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<testing::TestKeys> keys_;
  std::unique_ptr<service::CaseService> service_;
  std::map<std::string, std::string> token_;
  std::unique_ptr<TokenRegistry> tokens_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<projections::ReadModels> models_;
  std::unique_ptr<notify::Notifier> notifier_;
  // The session clock: its start, and how far a test has moved it on.
  const std::chrono::steady_clock::time_point session_start_ =
      std::chrono::steady_clock::now();
  std::atomic<int64_t> session_elapsed_s_{0};
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<CaseRouteDeps> deps_;
  int backups_ = 0;
  Router router_;
  HttpMetrics metrics_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::unique_ptr<testing::HttpClient> client_;
  std::string case_;
};

// An event stream over a raw connection: what arrives, as text.
class SseReader {
 public:
  SseReader(uint16_t port, const std::string& token,
            const std::string& extra_headers = "")
      : socket_(ioc_) {
    socket_.connect(boost::asio::ip::tcp::endpoint(
        boost::asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};  // no test waits longer than this for a part
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv,
               sizeof(tv));
    std::string req =
        "GET /v1/learning/stream HTTP/1.1\r\nHost: localhost\r\n"
        "Accept: text/event-stream\r\nAuthorization: Bearer " +
        token + "\r\n" + extra_headers + "\r\n";
    boost::asio::write(socket_, boost::asio::buffer(req));
  }
  // Reads until `text` has arrived (true) or nothing more comes (false).
  bool ReadUntil(const std::string& text) {
    char buf[4096];
    while (received_.find(text) == std::string::npos) {
      boost::system::error_code ec;
      size_t n = socket_.read_some(boost::asio::buffer(buf), ec);
      if (ec) return false;
      received_.append(buf, n);
    }
    return true;
  }
  const std::string& received() const { return received_; }
  // The ids of the events received, in order.
  std::vector<uint64_t> Ids() const {
    std::vector<uint64_t> ids;
    for (size_t at = received_.find("\nid: "); at != std::string::npos;
         at = received_.find("\nid: ", at + 1)) {
      ids.push_back(std::stoull(received_.substr(at + 5)));
    }
    return ids;
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::string received_;
};

}  // namespace caseledger::api
