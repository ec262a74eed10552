// The HTTP server: Boost.Beast sessions over a pool of I/O threads, each
// connection on its own strand. It knows nothing of routes; it reads a
// request, calls Router::Handle, and writes the answer.
//
// Lifecycle: Create() binds and listens (errors come back as a Status), Run()
// serves on `threads` threads until Shutdown() and returns when every session
// has finished or the grace period has passed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "api/metrics.h"
#include "api/router.h"
#include "caseledger/status.h"

namespace spdlog {
class logger;
}

namespace caseledger::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;              // 0: an ephemeral port, see Server::port()
  int threads = 0;                   // 0: one per core
  size_t max_body_bytes = 1u << 20;  // larger bodies: 413
  size_t max_header_bytes = 16u << 10;
  std::chrono::seconds read_timeout{30};  // also the keep-alive idle limit
  size_t max_connections = 1024;          // more: 503 with Retry-After
  std::chrono::seconds shutdown_grace{10};
  // TLS (HTTPS) when both are set: PEM files, the certificate chain and its
  // private key. Only TLS 1.2 and 1.3 are offered.
  std::string tls_certificate_file;
  std::string tls_private_key_file;
};

// The answer the server gives to one raw HTTP/1.1 request (head and body as
// a client sent them), with no socket: the same parsing, limits and checks
// as a connection, then `router`. For tests and fuzzing; a malformed request
// gets the 4xx a connection would.
HttpResponse AnswerRaw(std::string_view raw, const Router& router,
                       const ServerOptions& options);

class Server {
 public:
  // `router`, `metrics` and `logger` must outlive the server.
  static StatusOr<std::unique_ptr<Server>> Create(
      const ServerOptions& options, const Router& router, HttpMetrics& metrics,
      std::shared_ptr<spdlog::logger> logger);
  virtual ~Server() = default;

  // The bound port (useful with port 0).
  virtual uint16_t port() const = 0;

  // Serves until Shutdown() (or SIGINT/SIGTERM when `handle_signals`), then
  // returns once requests in flight are answered or the grace has passed.
  virtual void Run(bool handle_signals) = 0;

  // Stops accepting, lets requests in flight finish, closes idle
  // connections. Thread-safe; returns at once.
  virtual void Shutdown() = 0;
};

}  // namespace caseledger::api
