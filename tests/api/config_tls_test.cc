// The server's configuration (file, environment, flags) and HTTPS, and the
// connection limit: each against a real server on an ephemeral port.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "api/config.h"
#include "api/handlers.h"
#include "api/server.h"
#include "tests/support/test_support.h"

namespace caseledger::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

TEST(ConfigTest, AFileOverridesDefaultsAndTheEnvironmentOverridesTheFile) {
  ServeConfig c;
  ASSERT_OK(ApplyConfigText(R"({
    "$comment": "a test configuration",
    "data": "/srv/caseledger",
    "listen": "127.0.0.1:9443",
    "threads": 3,
    "workers": 6,
    "limits": {"max_body_bytes": 65536, "max_connections": 50,
               "read_timeout_seconds": 12, "max_json_depth": 16},
    "learning_summary": {"suppress_below": 10, "round_to": 10},
    "learning_feed": {"release_delay_months": 2},
    "backup_dir": "/srv/caseledger-backups",
    "deadlines": {"acknowledge_urgent_minutes": 30, "review_interval_days": 14},
    "console": {"session_idle_minutes": 15}
  })",
                            &c));
  EXPECT_EQ(c.data, "/srv/caseledger");
  EXPECT_EQ(c.server.host, "127.0.0.1");
  EXPECT_EQ(c.server.port, 9443);
  EXPECT_EQ(c.server.threads, 3);
  EXPECT_EQ(c.workers, 6u);
  EXPECT_EQ(c.server.max_body_bytes, 65536u);
  EXPECT_EQ(c.server.max_connections, 50u);
  EXPECT_EQ(c.server.read_timeout, std::chrono::seconds(12));
  EXPECT_EQ(c.max_json_depth, 16u);
  EXPECT_EQ(c.summary.suppress_below, 10u);
  EXPECT_EQ(c.feed_release_delay_months, 2u);
  EXPECT_EQ(c.backup_dir, "/srv/caseledger-backups");
  EXPECT_EQ(c.domain.acknowledge_urgent, std::chrono::minutes(30));
  EXPECT_EQ(c.domain.review_interval_days, 14);
  EXPECT_EQ(c.session_idle, std::chrono::minutes(15));
  // Untouched settings keep their defaults.
  EXPECT_EQ(c.server.max_header_bytes, 16u << 10);
  EXPECT_EQ(c.domain.acknowledge_standard, std::chrono::minutes(24 * 60));

  std::map<std::string, std::string> env = {
      {"CASELEDGER_LISTEN", "[::1]:8443"},
      {"CASELEDGER_MAX_CONNECTIONS", "7"},
      {"CASELEDGER_DATA", "/var/lib/caseledger"},
      {"CASELEDGER_BACKUP_DIR", "/mnt/offsite/caseledger"}};
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  ASSERT_OK(ApplyEnvironment(getenv, &c));
  EXPECT_EQ(c.server.host, "::1");
  EXPECT_EQ(c.server.port, 8443);
  EXPECT_EQ(c.server.max_connections, 7u);
  EXPECT_EQ(c.data, "/var/lib/caseledger");
  EXPECT_EQ(c.backup_dir, "/mnt/offsite/caseledger");
  EXPECT_EQ(c.server.threads, 3);  // not in the environment: the file's
  ASSERT_OK(CheckConfig(c));

  env = {{"CASELEDGER_THREADS", "many"}};
  Status bad = ApplyEnvironment(getenv, &c);
  EXPECT_TRUE(bad.IsInvalidArgument());
  EXPECT_NE(bad.message().find("CASELEDGER_THREADS"), std::string::npos);
  env = {{"CASELEDGER_MAX_CONNECTIONS", "0"}};
  bad = ApplyEnvironment(getenv, &c);
  EXPECT_NE(bad.message().find("/limits/max_connections"), std::string::npos)
      << bad.message();
}

TEST(ConfigTest, TheExampleFileParsesAndStatesTheDefaults) {
  ServeConfig example;
  ASSERT_OK(ApplyConfigFile(
      std::string(CASELEDGER_SOURCE_DIR) + "/scripts/examples/caseledger.json",
      &example));
  const ServeConfig defaults;
  EXPECT_EQ(example.data, defaults.data);
  EXPECT_EQ(example.server.port, defaults.server.port);
  EXPECT_EQ(example.server.max_body_bytes, defaults.server.max_body_bytes);
  EXPECT_EQ(example.server.max_connections, defaults.server.max_connections);
  EXPECT_EQ(example.server.read_timeout, defaults.server.read_timeout);
  EXPECT_EQ(example.workers, defaults.workers);
  EXPECT_EQ(example.summary.suppress_below, defaults.summary.suppress_below);
  EXPECT_EQ(example.feed_release_delay_months,
            defaults.feed_release_delay_months);
  EXPECT_EQ(example.domain.escalation_urgent,
            defaults.domain.escalation_urgent);
  EXPECT_EQ(example.domain.review_interval_days,
            defaults.domain.review_interval_days);
  EXPECT_EQ(example.session_idle, defaults.session_idle);
}

TEST(ConfigTest, MistakesAreErrorsThatSayWhere) {
  struct Case {
    const char* text;
    const char* pointer;
  };
  for (const Case& k : {
           Case{R"({"lisen": "127.0.0.1:1"})", "/lisen"},
           Case{R"({"threads": "4"})", "/threads"},
           Case{R"({"threads": 999})", "/threads"},
           Case{R"({"limits": {"max_body_bytes": -1}})",
                "/limits/max_body_bytes"},
           Case{R"({"limits": {"max_bodybytes": 10}})",
                "/limits/max_bodybytes"},
           Case{R"({"limits": 5})", "/limits"},
           Case{R"({"learning_feed": {"release_delay_months": 99}})",
                "/learning_feed/release_delay_months"},
           Case{R"({"tls": {"certificate": "x.pem"}})", "/tls/certificate"},
           Case{R"({"listen": "localhost:80"})", "/listen"},
           Case{R"({"listen": "127.0.0.1:99999"})", "/listen"},
           Case{R"({"deadlines": {"acknowledge_urgent_minutes": 0}})",
                "/deadlines/acknowledge_urgent_minutes"},
           Case{R"({"console": {"session_idle_minutes": 0}})",
                "/console/session_idle_minutes"},
           Case{R"({"console": {"idle": 5}})", "/console/idle"},
       }) {
    ServeConfig c;
    Status s = ApplyConfigText(k.text, &c);
    ASSERT_TRUE(s.IsInvalidArgument()) << k.text;
    ASSERT_TRUE(s.field().has_value()) << k.text << ": " << s.message();
    EXPECT_EQ(*s.field(), k.pointer) << k.text << ": " << s.message();
  }
  ServeConfig c;
  EXPECT_TRUE(ApplyConfigText("{not json", &c).IsInvalidArgument());
  EXPECT_TRUE(ApplyConfigText("[1]", &c).IsInvalidArgument());
  EXPECT_TRUE(ApplyConfigFile("/nonexistent/caseledger.json", &c).IsNotFound());
}

TEST(ConfigTest, AlertingIsOffUntilConfiguredAndItsExampleStatesTheDefaults) {
  ServeConfig c;
  EXPECT_FALSE(c.notify.enabled);
  ASSERT_OK(ApplyConfigFile(
      std::string(CASELEDGER_SOURCE_DIR) + "/scripts/examples/notify.json",
      &c));
  EXPECT_TRUE(c.notify.enabled);
  const std::vector<notify::Rule> defaults = notify::DefaultRules();
  ASSERT_EQ(c.notify.rules.size(), defaults.size());
  for (size_t i = 0; i < defaults.size(); ++i) {
    const notify::Rule& a = c.notify.rules[i];
    const notify::Rule& b = defaults[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.event, b.event) << a.name;
    EXPECT_EQ(a.deadline, b.deadline) << a.name;
    EXPECT_EQ(a.when, b.when) << a.name;
    EXPECT_EQ(a.to, b.to) << a.name;
    EXPECT_EQ(a.delay, b.delay) << a.name;
    EXPECT_EQ(a.unless_acknowledged, b.unless_acknowledged) << a.name;
    EXPECT_EQ(a.repeat_to, b.repeat_to) << a.name;
    if (b.deadline) {
      EXPECT_EQ(a.repeat_after, b.repeat_after) << a.name;
    }
  }
  EXPECT_EQ(c.notify.directory.dsl, std::vector<std::string>{"user:dsl-1"});
  EXPECT_EQ(c.notify.contacts.at("user:alt-dsl-1").webhook, "on-call");
  ASSERT_TRUE(c.notify.smtp.has_value());
  EXPECT_EQ(c.notify.smtp->url, "smtp://mail.example.org:587");
  const notify::NotifyConfig d;
  EXPECT_EQ(c.notify.retry.max_attempts, d.retry.max_attempts);
  EXPECT_EQ(c.notify.retry.initial, d.retry.initial);
  EXPECT_EQ(c.notify.send_timeout, d.send_timeout);

  struct Case {
    const char* text;
    const char* pointer;
  };
  for (
      const Case& k : {
          Case{
              R"({"notify": {"rules": [{"name": "x", "event": "ConcernReported", "to": ["boss"]}]}})",
              "/notify/rules/0/to/0"},
          Case{
              R"({"notify": {"rules": [{"name": "x", "deadline": "lunch", "to": ["dsl"]}]}})",
              "/notify/rules/0/deadline"},
          Case{R"({"notify": {"rules": [{"name": "x", "to": ["dsl"]}]}})",
               "/notify/rules"},
          Case{R"({"notify": {"contacts": {"a": {"email": "a@example.org"}}}})",
               "/notify"},
          Case{R"({"notify": {"contacts": {"a": {"mail": "a@example.org"}}}})",
               "/notify/contacts/a/mail"},
          Case{R"({"notify": {"retry": {"max_attempts": 0}}})",
               "/notify/retry/max_attempts"},
          Case{
              R"({"notify": {"webhooks": {"w": {"url": "http://x", "secret_file": "/s"}}}})",
              "/notify"},
          Case{R"({"notify": {"recipients": {"dsl": "user:dsl-1"}}})",
               "/notify/recipients/dsl"},
      }) {
    ServeConfig bad;
    Status s = ApplyConfigText(k.text, &bad);
    ASSERT_TRUE(s.IsInvalidArgument()) << k.text;
    ASSERT_TRUE(s.field().has_value()) << k.text << ": " << s.message();
    EXPECT_EQ(*s.field(), k.pointer) << k.text << ": " << s.message();
  }
  // Present but off: not checked, not run.
  ServeConfig off;
  ASSERT_OK(ApplyConfigText(
      R"({"notify": {"enabled": false, "contacts": {"a": {"email": "a@example.org"}}}})",
      &off));
  EXPECT_FALSE(off.notify.enabled);
}

TEST(ConfigTest, ReplicationIsOffUntilConfiguredAndItsExampleParses) {
  ServeConfig c;
  EXPECT_FALSE(c.replication.enabled);
  ASSERT_OK(ApplyConfigFile(
      std::string(CASELEDGER_SOURCE_DIR) + "/scripts/examples/replication.json",
      &c));
  EXPECT_TRUE(c.replication.enabled);
  EXPECT_TRUE(c.replication.quorum);
  EXPECT_EQ(c.replication.nats.servers.size(), 3u);
  EXPECT_EQ(c.replication.nats.node, "caseledger-a");
  EXPECT_EQ(c.replication.nats.replicas, 3);
  EXPECT_EQ(c.replication.quorum_wait, std::chrono::milliseconds(10000));
  EXPECT_EQ(c.replication.primary_url, "https://caseledger-a.example.org");
  EXPECT_EQ(c.replication.nats.signing_key_file, "/etc/caseledger/signing.key");
  EXPECT_EQ(c.replication.nats.checkpoint_interval,
            std::chrono::milliseconds(60000));

  struct Case {
    const char* text;
    const char* pointer;
  };
  for (const Case& k : {
           Case{R"({"replication": {"servers": "nats://a:4222"}})",
                "/replication/servers"},
           Case{R"({"replication": {"servers": ["nats://a:4222"]}})",
                "/replication"},  // no node
           Case{R"({"replication": {"servers": ["http://a"], "node": "a"}})",
                "/replication"},
           Case{R"({"replication": {"replicas": 9}})", "/replication/replicas"},
           Case{R"({"replication": {"quorum_wait_ms": 5}})",
                "/replication/quorum_wait_ms"},
           Case{R"({"replication": {"leader": true}})", "/replication/leader"},
           Case{R"({"replication": {"checkpoint_interval_ms": 5}})",
                "/replication/checkpoint_interval_ms"},
           Case{R"({"replication": {"servers": ["nats://a:4222"], "node": "a",
                "checkpoint_public_key": "not-hex"}})",
                "/replication"},
       }) {
    ServeConfig bad;
    Status s = ApplyConfigText(k.text, &bad);
    ASSERT_TRUE(s.IsInvalidArgument()) << k.text;
    ASSERT_TRUE(s.field().has_value()) << k.text << ": " << s.message();
    EXPECT_EQ(*s.field(), k.pointer) << k.text << ": " << s.message();
  }
}

TEST(ConfigTest, PlainHttpOnlyOnLoopbackAndTlsNeedsBothFiles) {
  ServeConfig c;
  ASSERT_OK(CheckConfig(c));  // the defaults: plain HTTP on 127.0.0.1
  ASSERT_OK(ApplyListen("0.0.0.0:8080", &c.server));
  Status s = CheckConfig(c);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("loopback"), std::string::npos);
  c.server.tls_certificate_file = "cert.pem";
  EXPECT_TRUE(CheckConfig(c).IsInvalidArgument());  // no key
  c.server.tls_private_key_file = "key.pem";
  EXPECT_OK(CheckConfig(c));
  ASSERT_OK(ApplyListen("127.0.0.2:1", &c.server));
  c.server.tls_certificate_file.clear();
  c.server.tls_private_key_file.clear();
  EXPECT_OK(CheckConfig(c));
}

// A self-signed certificate for 127.0.0.1, written as PEM files.
void WriteSelfSignedCertificate(const std::string& cert_path,
                                const std::string& key_path) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>("caseledger-test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  FILE* c = std::fopen(cert_path.c_str(), "w");
  FILE* k = std::fopen(key_path.c_str(), "w");
  ASSERT_TRUE(c && k);
  PEM_write_X509(c, cert);
  PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(c);
  std::fclose(k);
  X509_free(cert);
  EVP_PKEY_free(key);
}

class ServingTest : public ::testing::Test {
 protected:
  void Start(ServerOptions so) {
    Options o;
    o.sync = false;
    store_ = testing::OpenStore(dir_.path() + "/store", o);
    AddOperationalRoutes(router_, *store_, metrics_);
    so.port = 0;
    so.threads = 2;
    auto server = Server::Create(so, router_, metrics_, Logger());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    thread_ = std::thread([this] { server_->Run(false); });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    if (thread_.joinable()) thread_.join();
  }
  static std::shared_ptr<spdlog::logger> Logger() {
    return std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::null_sink_mt>());
  }
  tcp::endpoint Endpoint() const {
    return tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port());
  }
  template <typename Stream>
  static http::response<http::string_body> Get(Stream& stream,
                                               const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return res;
  }

  testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
  Router router_;
  HttpMetrics metrics_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  net::io_context ioc_;
};

TEST_F(ServingTest, ServesHttpsWithTheConfiguredCertificate) {
  const std::string cert = dir_.path() + "/cert.pem";
  const std::string key = dir_.path() + "/key.pem";
  WriteSelfSignedCertificate(cert, key);
  ServerOptions so;
  so.tls_certificate_file = cert;
  so.tls_private_key_file = key;
  Start(so);

  // A client that trusts exactly this certificate gets answers over TLS,
  // several on one connection.
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(cert);
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> tls(ioc_, ctx);
  beast::get_lowest_layer(tls).connect(Endpoint());
  tls.handshake(net::ssl::stream_base::client);
  EXPECT_EQ(Get(tls, "/healthz").result_int(), 200);
  EXPECT_EQ(Get(tls, "/readyz").result_int(), 200);
  EXPECT_EQ(Get(tls, "/nowhere").result_int(), 404);
  beast::error_code ec;
  tls.shutdown(ec);

  // Plain HTTP to the TLS port gets no HTTP answer.
  tcp::socket plain(ioc_);
  plain.connect(Endpoint());
  http::request<http::string_body> req{http::verb::get, "/healthz", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(plain, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(plain, buffer, res, ec);
  EXPECT_TRUE(ec) << "a plain request was answered: " << res.result_int();
}

TEST_F(ServingTest, AMissingCertificateStopsTheServerFromStarting) {
  Options o;
  o.sync = false;
  store_ = testing::OpenStore(dir_.path() + "/store", o);
  ServerOptions so;
  so.port = 0;
  so.tls_certificate_file = dir_.path() + "/missing.pem";
  so.tls_private_key_file = dir_.path() + "/missing-key.pem";
  auto server = Server::Create(so, router_, metrics_, Logger());
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("missing.pem"), std::string::npos)
      << server.status().message();
}

TEST_F(ServingTest, ConnectionsBeyondTheLimitGet503WithRetryAfter) {
  ServerOptions so;
  so.max_connections = 2;
  Start(so);
  tcp::socket a(ioc_), b(ioc_);
  a.connect(Endpoint());
  b.connect(Endpoint());
  // Both are served (and so counted) before the third arrives.
  EXPECT_EQ(Get(a, "/healthz").result_int(), 200);
  EXPECT_EQ(Get(b, "/healthz").result_int(), 200);
  tcp::socket c(ioc_);
  c.connect(Endpoint());
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(c, buffer, res);
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res[http::field::retry_after], "1");
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  EXPECT_FALSE(res.keep_alive());
  // The two admitted connections are still served; once one closes, a new
  // connection is admitted again.
  EXPECT_EQ(Get(a, "/healthz").result_int(), 200);
  b.close();
  c.close();
  EXPECT_TRUE(testing::WaitFor([&] {
    tcp::socket d(ioc_);
    d.connect(Endpoint());
    return Get(d, "/healthz").result_int() == 200;
  }));
}

}  // namespace
}  // namespace caseledger::api
