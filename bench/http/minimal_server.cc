// The ceiling for the HTTP benchmarks: a Boost.Beast HTTP/1.1 keep-alive
// server that answers every request, whatever its method and target, with
// the same fixed JSON body. It does no routing, authentication, storage or
// logging, so it measures what Beast and the kernel cost on this machine;
// bench/http/run_http_bench.sh reports the caseledger server as a ratio to it.
//
// The body (kBody) is a fictional case document of about 1.2 KB, near the
// size of GET /v1/cases/{id} on a seeded store (about 1 KB), so the bytes on
// the wire compare.
//
// Shape: one io_context run on --threads threads (default: one per core), an
// acceptor on 127.0.0.1:--port (default 8090), a strand per connection, and
// a response whose body is a span over the constant (no copy per request).
//
//   http_minimal_server [--port N] [--threads N]
// SIGINT or SIGTERM stops it.

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A fictional case document, about the size of a seeded case (~1.2 KB).
constexpr std::string_view kBody =
    R"({"case_id":"case-000001","version":12,"status":"closed",)"
    R"("kind":"concern","setting":"online_session","urgent":false,)"
    R"("immediate_risk":false,"under_18_involved":false,)"
    R"("categories":["neglect_and_acts_of_omission"],)"
    R"("reported_at":"2026-01-07T05:05:00.000000Z",)"
    R"("acknowledged_at":"2026-01-07T06:18:00.000000Z",)"
    R"("acknowledgement_due_at":"2026-01-07T09:28:00.000000Z",)"
    R"("lead_actor_id":"user:dsl-1","barred_actor_ids":[],)"
    R"("all_dsls_barred":false,"audit_findings":[],)"
    R"("actions":{"plan-1-a1":true},"action_due":{"plan-1-a1":"2026-01-23"},)"
    R"("consents":[{"consent_id":"consent-1","decision":"given",)"
    R"("person_ref":"person-1","purpose":"refer_to_local_authority",)"
    R"("recorded_at_version":6}],)"
    R"("escalations":{"escalation-la":{"acknowledged":true,)"
    R"("acknowledgement_due_at":"2026-01-09T21:44:00.000000Z",)"
    R"("escalated_at":"2026-01-08T21:44:00.000000Z","to":"local_authority"}},)"
    R"("people_involved":[{"person_ref":"person-1","roles":["person_affected"]},)"
    R"({"person_ref":"person-2","roles":["person_alleged_to_cause_harm"]}],)"
    R"("closed_at":"2026-01-24T10:00:00.000000Z","close_reason":"outcomes_achieved",)"
    R"("outcome_review":{"outcomes_achieved":"fully","feels_safer":"partly"},)"
    R"("closed_without_outcome_review":false,"reopened":0,"amendments":0})";

using Body = http::span_body<const char>;

// One connection: read a request, answer it, repeat while the client keeps
// the connection alive. All handlers run on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket&& socket) : stream_(std::move(socket)) {}

  void Start() {
    // Begin on the strand the socket was accepted onto.
    asio::dispatch(stream_.get_executor(),
                   [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(
        stream_, buffer_, request_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          self->OnRead(ec);
        });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return Close();
    if (ec) return;  // timeout or reset: drop the connection
    response_ = {};
    response_.result(http::status::ok);
    response_.version(request_.version());
    response_.set(http::field::server, "minimal");
    response_.set(http::field::content_type, "application/json");
    response_.keep_alive(request_.keep_alive());
    response_.body() = Body::value_type(kBody.data(), kBody.size());
    response_.prepare_payload();
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code wec, std::size_t) {
          self->OnWrite(wec);
        });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return;
    if (!response_.keep_alive()) return Close();
    Read();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<Body> response_;
};

// Accepts connections, each onto a new strand of the shared io_context.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, const tcp::endpoint& endpoint)
      : ioc_(ioc), acceptor_(asio::make_strand(ioc)) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  void Accept() {
    acceptor_.async_accept(
        asio::make_strand(ioc_),
        [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
          if (!ec) {
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<Session>(std::move(socket))->Start();
          }
          if (self->acceptor_.is_open()) self->Accept();
        });
  }

 private:
  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
};

int Usage(const char* argv0) {
  std::cerr << "usage: " << argv0 << " [--port N] [--threads N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 8090;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--port" || arg == "--threads") && i + 1 < argc) {
      const int value = std::atoi(argv[++i]);
      if (arg == "--port") {
        if (value <= 0 || value > 65535) return Usage(argv[0]);
        port = static_cast<unsigned short>(value);
      } else {
        if (value < 0) return Usage(argv[0]);
        threads = value;
      }
    } else {
      return Usage(argv[0]);
    }
  }
  if (threads <= 0) threads = 1;

  try {
    asio::io_context ioc(threads);
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    std::make_shared<Listener>(ioc, endpoint)->Accept();

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });

    std::cerr << "http_minimal_server: listening on 127.0.0.1:" << port
              << " with " << threads << " threads\n";
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(threads - 1));
    for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
  } catch (const std::exception& e) {
    std::cerr << "http_minimal_server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
