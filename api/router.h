// The HTTP routing table, independent of any socket: handlers are plain
// functions from a request to a response, so they are tested without a
// server. The Beast session (server.cc) only reads, calls Router::Handle and
// writes.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
}

namespace caseledger::api {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/cases?limit=10"
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  // Names this request in the server's log and in its answer (X-Request-Id):
  // the client's own X-Request-Id when it is a plain token, otherwise one the
  // server makes. Empty in tests that do not set it.
  std::string request_id;
  // When the server had read the whole request (its time budget counts
  // from here); the epoch when not set (tests): now.
  std::chrono::steady_clock::time_point received{};
};

// A response body written in parts as they become available (Server-Sent
// Events). After the head, the session asks for parts on its connection's
// strand until the stream ends, the client goes away or the server stops.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // The next part: non-empty, sent at once; empty, nothing yet (the session
  // asks again after a short wait); nullopt, the body is complete. Called on
  // an I/O thread: it must not block for long.
  virtual std::optional<std::string> Next() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;  // ignored when `stream` is set
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<BodyStream> stream;  // a body sent in chunks, see above
};

// An RFC 9457 problem document (application/problem+json).
HttpResponse Problem(int status, std::string_view title,
                     std::string_view detail);

// The 500 answer to a request that failed inside the server: says nothing of
// why (that is in the server's log), and names the request so that an
// operator can find it there.
HttpResponse InternalError(const std::string& request_id);

// Values of the {name} segments of the matched route.
using PathParams = std::map<std::string, std::string>;

// Routes are registered before the server starts; Handle may then be called
// from any number of threads at once.
class Router {
 public:
  using Handler =
      std::function<HttpResponse(const HttpRequest&, const PathParams&)>;
  // Called exactly once with the response, from any thread.
  using Respond = std::function<void(HttpResponse)>;
  // A handler that answers later (e.g. after a durable write on a worker
  // thread), so that the I/O thread never waits.
  using AsyncHandler =
      std::function<void(const HttpRequest&, const PathParams&, Respond)>;

  // `pattern` is a path whose segments are literals or {name}.
  void Add(std::string method, std::string pattern, Handler handler);
  void AddAsync(std::string method, std::string pattern, AsyncHandler handler);

  // Routes the request; `respond` gets the answer exactly once, now
  // (synchronous handlers, errors) or later (asynchronous handlers), from
  // any thread. Finds the route: 404 when no pattern matches the path, 405
  // with Allow when one matches under another method.
  //
  // No handler can leave a request unanswered or end the process: an
  // exception thrown by a handler, or a handler's Respond dropped without
  // being called (an exception on a worker thread destroys the work that
  // held it), answers 500 problem+json naming the request id, and is logged
  // with it. A second call of a Respond is ignored.
  void Dispatch(const HttpRequest& request, Respond respond) const;

  // Dispatch for callers that can wait (tests): blocks until answered.
  HttpResponse Handle(const HttpRequest& request) const;

  // Where handler failures are logged (the default logger until set).
  void SetLogger(std::shared_ptr<spdlog::logger> logger) {
    logger_ = std::move(logger);
  }

  // The route template that answered (or "unmatched"), for logs and metrics.
  std::string RouteOf(const HttpRequest& request) const;

  // Every registered "METHOD pattern", in registration order.
  std::vector<std::string> Routes() const;

  // Writes: requests of any method but GET and HEAD, to a route that
  // exists. Set once, before serving.
  struct WriteHooks {
    // May refuse a write before its handler runs (a follower refuses them):
    // the answer to send instead, or nullopt to go on. Gets the route's
    // pattern.
    std::function<std::optional<HttpResponse>(const HttpRequest&,
                                              const std::string& pattern)>
        admit;
    // Receives every 2xx answer to a write instead of the client, and
    // sends it (or another answer) on through `respond`, perhaps later
    // (quorum replication answers once the write is replicated).
    std::function<void(HttpResponse, Respond)> settle;
  };
  void SetWriteHooks(WriteHooks hooks) { write_hooks_ = std::move(hooks); }

  // Who a request comes from, for the request log ("-" if unknown): set
  // once, before serving, by whoever knows the credentials.
  void SetIdentify(std::function<std::string(const HttpRequest&)> identify) {
    identify_ = std::move(identify);
  }
  std::string Identify(const HttpRequest& request) const {
    return identify_ ? identify_(request) : "-";
  }

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
    AsyncHandler async_handler;
  };
  static bool Match(const Route& r, const std::vector<std::string>& path,
                    PathParams* params);
  std::vector<Route> routes_;
  std::function<std::string(const HttpRequest&)> identify_;
  WriteHooks write_hooks_;
  std::shared_ptr<spdlog::logger> logger_;
};

// The query of a target, percent-decoded: "/a?x=1&y=%20" -> {x:"1", y:" "}.
std::map<std::string, std::string> QueryParams(std::string_view target);

// Splits "/a/b?x=1" into {"a","b"}; the query is dropped.
std::vector<std::string> SplitPath(std::string_view target);

}  // namespace caseledger::api
