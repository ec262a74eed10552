// Starts the real server on an ephemeral port and talks to it with a Beast
// client.
#include "api/server.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/handlers.h"
#include "api/worker_pool.h"
#include "tests/support/test_support.h"

namespace caseledger::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    store_ = testing::OpenStore(dir_.path(), o);
    AddOperationalRoutes(router_, *store_, metrics_);
    router_.Add("GET", "/slow", [](const HttpRequest&, const PathParams&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      HttpResponse r;
      r.body = R"({"slow":true})";
      return r;
    });
    ServerOptions so;
    so.port = 0;
    so.threads = 2;
    so.max_body_bytes = 1024;
    so.shutdown_grace = std::chrono::seconds(5);
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto server = Server::Create(so, router_, metrics_, logger);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    thread_ = std::thread([this] { server_->Run(false); });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    if (thread_.joinable()) thread_.join();
  }

  // Opens a connection; several requests may go over it.
  tcp::socket Connect() {
    tcp::socket socket(ioc_);
    socket.connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
    return socket;
  }

  http::response<http::string_body> Send(tcp::socket& socket, http::verb method,
                                         const std::string& target,
                                         std::string body = "") {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::move(body);
    }
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return res;
  }

  http::response<http::string_body> Get(const std::string& target) {
    tcp::socket s = Connect();
    return Send(s, http::verb::get, target);
  }

  testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
  Router router_;
  HttpMetrics metrics_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  net::io_context ioc_;
};

// A request sent as raw bytes: the whole path a connection takes (Beast's
// parser, the limits, the header checks, the router) without a socket.
HttpResponse Raw(const Router& router, const std::string& raw) {
  ServerOptions so;
  so.max_body_bytes = 1024;
  return AnswerRaw(raw, router, so);
}

TEST_F(ServerTest, AmbiguousOrEncodedRequestsAreRefusedBeforeAnyHandler) {
  int reached = 0;
  router_.Add("POST", "/echo",
              [&reached](const HttpRequest& req, const PathParams&) {
                ++reached;
                HttpResponse r;
                r.body = req.body;
                return r;
              });
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\n";
  // The baseline: a chunked body is read.
  HttpResponse ok = Raw(router_, head +
                                     "Transfer-Encoding: chunked\r\n\r\n"
                                     "2\r\n{}\r\n0\r\n\r\n");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "{}");
  EXPECT_EQ(reached, 1);
  // RFC 9112: a transfer coding the server does not apply is 501, not a
  // body read as if it were plain.
  HttpResponse gz = Raw(router_, head +
                                     "Transfer-Encoding: gzip, chunked\r\n\r\n"
                                     "2\r\n{}\r\n0\r\n\r\n");
  EXPECT_EQ(gz.status, 501) << gz.body;
  EXPECT_EQ(gz.content_type, "application/problem+json");
  HttpResponse ce = Raw(router_, head +
                                     "Content-Encoding: gzip\r\n"
                                     "Content-Length: 2\r\n\r\n{}");
  EXPECT_EQ(ce.status, 415) << ce.body;
  // One key, one version, one token: a repeated header is ambiguous.
  for (const char* name :
       {"Idempotency-Key", "If-Match", "Authorization", "Content-Type"}) {
    std::string twice = head + name + ": \"1\"\r\n" + name +
                        ": \"2\"\r\nContent-Length: 2\r\n\r\n{}";
    HttpResponse r = Raw(router_, twice);
    EXPECT_EQ(r.status, 400) << name << ": " << r.body;
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    EXPECT_NE(r.body.find(lower), std::string::npos) << r.body;
  }
  // Headers that may be repeated still are.
  HttpResponse accept = Raw(router_, head +
                                         "Accept: a/b\r\nAccept: c/d\r\n"
                                         "Content-Length: 2\r\n\r\n{}");
  EXPECT_EQ(accept.status, 200);
  EXPECT_EQ(reached, 2);
  // Malformed and oversized requests get their 4xx, not a crash.
  EXPECT_EQ(Raw(router_, "GARBAGE\r\n\r\n").status, 400);
  EXPECT_EQ(Raw(router_, head + "Content-Length: 5000\r\n\r\n").status, 413);
  EXPECT_EQ(Raw(router_, head + "Content-Length: 10\r\n\r\n{}").status, 400);
}

TEST_F(ServerTest, AHandlerThatThrowsOnAnotherThreadIsA500AndServingGoesOn) {
  WorkerPool workers(1);
  router_.AddAsync("GET", "/throws-later",
                   [&workers](const HttpRequest&, const PathParams&,
                              Router::Respond respond) {
                     workers.Post([respond = std::move(respond)] {
                       throw std::runtime_error("secret detail");
                     });
                   });
  tcp::socket s = Connect();
  http::request<http::string_body> req{http::verb::get, "/throws-later", 11};
  req.set(http::field::host, "localhost");
  req.set("X-Request-Id", "client-req-7");
  http::write(s, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(s, buffer, res);
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res["X-Request-Id"], "client-req-7");
  EXPECT_EQ(res.body().find("secret"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(res.body())["request_id"], "client-req-7");
  // The same connection, and the server, serve on.
  auto again = Send(s, http::verb::get, "/healthz");
  EXPECT_EQ(again.result_int(), 200);
  EXPECT_EQ(again["X-Request-Id"].size(), 16u);  // one the server made
  workers.Stop();
}

TEST_F(ServerTest, HealthAndReadinessAnswerJson) {
  auto h = Get("/healthz");
  EXPECT_EQ(h.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(h.body())["status"], "ok");
  auto r = Get("/readyz");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(r.body())["log_position"], 0);
}

TEST_F(ServerTest, ReadinessFailsOnceTheStoreIsClosed) {
  ASSERT_TRUE(store_->Close().ok());
  auto r = Get("/readyz");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[http::field::content_type], "application/problem+json");
  EXPECT_EQ(r["Retry-After"], "5");
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  tcp::socket s = Connect();
  for (int i = 0; i < 5; ++i) {
    auto res = Send(s, http::verb::get, "/healthz");
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST_F(ServerTest, UnknownRouteAndWrongMethodAreProblems) {
  auto nf = Get("/v1/nothing");
  EXPECT_EQ(nf.result_int(), 404);
  EXPECT_EQ(nf[http::field::content_type], "application/problem+json");
  tcp::socket s = Connect();
  auto na = Send(s, http::verb::post, "/healthz", "{}");
  EXPECT_EQ(na.result_int(), 405);
  EXPECT_EQ(na[http::field::allow], "GET");
}

TEST_F(ServerTest, OversizedBodyIsA413Problem) {
  tcp::socket s = Connect();
  auto res = Send(s, http::verb::post, "/healthz",
                  "{\"x\":\"" + std::string(4096, 'a') + "\"}");
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  EXPECT_EQ(nlohmann::json::parse(res.body())["status"], 413);
}

TEST_F(ServerTest, MetricsCountRequestsByRouteAndStatus) {
  (void)Get("/healthz");
  (void)Get("/nope");
  auto m = Get("/metrics");
  EXPECT_EQ(m.result_int(), 200);
  EXPECT_NE(m.body().find("caseledger_http_requests_total{route=\"/healthz\","
                          "status=\"200\"} 1"),
            std::string::npos)
      << m.body();
  EXPECT_NE(m.body().find("route=\"unmatched\",status=\"404\""),
            std::string::npos);
  EXPECT_NE(m.body().find("caseledger_log_position 0"), std::string::npos);
}

TEST_F(ServerTest, AClientThatResetsItsConnectionIsNotABadRequest) {
  {
    tcp::socket s = Connect();
    s.set_option(net::socket_base::linger(true, 0));  // close sends RST
    std::string partial = "GET /healthz HTTP/1.1\r\nHost: local";
    net::write(s, net::buffer(partial));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  tcp::socket s = Connect();
  auto m = Send(s, http::verb::get, "/metrics");
  EXPECT_EQ(m.body().find("status=\"400\""), std::string::npos) << m.body();
  // A malformed request is still a 400.
  tcp::socket bad = Connect();
  std::string garbage = "NOT HTTP AT ALL\r\n\r\n";
  net::write(bad, net::buffer(garbage));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(bad, buffer, res);
  EXPECT_EQ(res.result_int(), 400);
}

TEST_F(ServerTest, ShutdownFinishesTheRequestInFlight) {
  tcp::socket s = Connect();
  http::request<http::string_body> req{http::verb::get, "/slow", 11};
  req.set(http::field::host, "localhost");
  http::write(s, req);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server_->Shutdown();
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  beast::error_code ec;
  http::read(s, buffer, res, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_FALSE(res.keep_alive());  // the server is going away
  thread_.join();
  // No new connection is accepted once it has stopped.
  tcp::socket late(ioc_);
  beast::error_code cec;
  late.connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()), cec);
  EXPECT_TRUE(cec) << "connected after shutdown";
}

}  // namespace
}  // namespace caseledger::api
