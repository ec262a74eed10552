// The only translation unit that includes Beast and Asio (they are heavy to
// compile): sessions, the listener, signals and graceful shutdown.
#include "api/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "caseledger/mutex.h"

namespace caseledger::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class ServerImpl;

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
         c == '.' || c == ':';
}

// The client's X-Request-Id when it is a plain token of at most 64
// characters (so it cannot forge log lines), otherwise 16 random hex digits.
std::string RequestId(const std::string& offered) {
  if (!offered.empty() && offered.size() <= 64 &&
      std::all_of(offered.begin(), offered.end(), IsTokenChar)) {
    return offered;
  }
  thread_local std::mt19937_64 random{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(random()));
  return buf;
}

std::string Lower(std::string_view in) {
  std::string out(in);
  for (auto& c : out) c = static_cast<char>(std::tolower(c));
  return out;
}

// Header fields that name one thing: a request that repeats one is ambiguous
// (which key, which version, whose token?) and is refused, not guessed at.
bool IsSingleton(const std::string& name) {
  static const std::set<std::string> kSingletons = {
      "authorization",     "content-type",
      "content-encoding",  "idempotency-key",
      "if-match",          "last-event-id",
      "x-correlation-id",  "x-request-id",
      "transfer-encoding", "host"};
  return kSingletons.count(name) > 0;
}

// The answer to a request whose head could not be read (`ec` from Beast's
// parser): 413, 431 or 400.
HttpResponse ReadError(beast::error_code ec, const ServerOptions& options) {
  if (ec == http::error::body_limit) {
    return Problem(413, "Content Too Large",
                   "the request body exceeds " +
                       std::to_string(options.max_body_bytes) + " bytes");
  }
  if (ec == http::error::header_limit) {
    return Problem(431, "Request Header Fields Too Large",
                   "the request headers are too large");
  }
  return Problem(400, "Bad Request", ec.message());
}

// A parsed request as the router sees it (its body moved out of `req`), or
// the answer that refuses it before any handler runs. `out->request_id` is
// set either way.
std::optional<HttpResponse> ToRequest(http::request<http::string_body>& req,
                                      HttpRequest* out) {
  out->method = std::string(req.method_string());
  out->target = std::string(req.target());
  std::optional<std::string> repeated;
  for (const auto& field : req) {
    std::string name = Lower(field.name_string());
    auto [it, added] = out->headers.emplace(name, std::string(field.value()));
    if (!added && IsSingleton(name) && !repeated) repeated = name;
  }
  auto header = [&](const char* name) {
    auto it = out->headers.find(name);
    return it == out->headers.end() ? std::string() : it->second;
  };
  out->request_id = RequestId(repeated ? "" : header("x-request-id"));
  if (repeated) {
    HttpResponse r = Problem(400, "Bad Request",
                             "the header " + *repeated +
                                 " may appear once; this request repeats it");
    return r;
  }
  // RFC 9112 6.1: a transfer coding the server does not understand is 501.
  // Beast removes the chunked framing; any other coding (gzip, ...) would
  // leave the body encoded, so it is refused rather than read as plain.
  if (req.find(http::field::transfer_encoding) != req.end()) {
    std::string te = Lower(header("transfer-encoding"));
    te.erase(std::remove_if(te.begin(), te.end(),
                            [](char c) { return c == ' ' || c == '\t'; }),
             te.end());
    if (te != "chunked") {
      return Problem(501, "Not Implemented",
                     "the only transfer coding accepted is chunked");
    }
  }
  // RFC 9110 8.4: a content coding the server does not apply is 415.
  std::string ce = Lower(header("content-encoding"));
  if (!ce.empty() && ce != "identity") {
    return Problem(415, "Unsupported Media Type",
                   "request bodies are accepted without content coding");
  }
  out->body = std::move(req.body());
  return std::nullopt;
}

// What the server needs of a session of either kind.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Stop after the request in flight, or now if idle. Any thread.
  virtual void Stop() = 0;
};

// One connection: plain TCP, or TLS over TCP when kTls.
template <bool kTls>
class Session : public SessionBase,
                public std::enable_shared_from_this<Session<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>,
                                    beast::tcp_stream>;

  template <typename... TlsContext>
  Session(tcp::socket&& socket, ServerImpl& server, bool reject,
          TlsContext&... tls)
      : stream_(std::move(socket), tls...), server_(server), reject_(reject) {}
  ~Session() override;

  void Start();
  void Stop() override;

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }
  void Begin();
  void DoRead();
  void OnRead(beast::error_code ec, size_t bytes);
  void Send(HttpResponse response, bool keep_alive);
  void OnWrite(bool keep_alive, beast::error_code ec, size_t bytes);
  void StartStream(HttpResponse r);
  void PumpStream();
  void EndStream();
  void DoClose();

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  // A streamed response (Server-Sent Events): its head, its source, the
  // part being written, and the timer between polls.
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_writer_;
  std::shared_ptr<BodyStream> body_stream_;
  std::string part_;
  std::optional<net::steady_timer> poll_timer_;
  ServerImpl& server_;
  bool reject_;
  bool busy_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  std::chrono::steady_clock::time_point started_;
  std::string route_;
  std::string actor_ = "-";  // for the request log
  std::string request_id_;   // of the request being answered
};

class ServerImpl final : public Server {
 public:
  ServerImpl(const ServerOptions& options, const Router& router,
             HttpMetrics& metrics, std::shared_ptr<spdlog::logger> logger)
      : options_(options),
        router_(router),
        metrics_(metrics),
        logger_(std::move(logger)),
        ioc_(options.threads > 0
                 ? options.threads
                 : static_cast<int>(
                       std::max(1u, std::thread::hardware_concurrency()))),
        acceptor_(net::make_strand(ioc_)),
        signals_(ioc_),
        shutdown_timer_(ioc_) {}

  Status Open() {
    if (!options_.tls_certificate_file.empty()) {
      RETURN_IF_ERROR(LoadTls());
    }
    beast::error_code ec;
    auto address = net::ip::make_address(options_.host, ec);
    if (ec) {
      return Status::InvalidArgument("listen address '" + options_.host +
                                     "': " + ec.message());
    }
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::FailedPrecondition("cannot listen on " + options_.host +
                                        ":" + std::to_string(options_.port) +
                                        ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    return Status::OK();
  }

  uint16_t port() const override { return port_; }

  Status LoadTls() {
    tls_.emplace(net::ssl::context::tls_server);
    beast::error_code ec;
    tls_->set_options(
        net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
            net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
            net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use,
        ec);
    if (!ec) {
      tls_->use_certificate_chain_file(options_.tls_certificate_file, ec);
      if (ec) {
        return Status::InvalidArgument("TLS certificate " +
                                       options_.tls_certificate_file + ": " +
                                       ec.message());
      }
    }
    if (!ec) {
      tls_->use_private_key_file(options_.tls_private_key_file,
                                 net::ssl::context::pem, ec);
      if (ec) {
        return Status::InvalidArgument("TLS private key " +
                                       options_.tls_private_key_file + ": " +
                                       ec.message());
      }
    }
    if (ec) return Status::InvalidArgument("TLS: " + ec.message());
    return Status::OK();
  }

  void Run(bool handle_signals) override {
    if (handle_signals) {
      signals_.add(SIGINT);
      signals_.add(SIGTERM);
      signals_.async_wait([this](beast::error_code ec, int sig) {
        if (ec) return;
        logger_->info("signal {}: shutting down", sig);
        Shutdown();
      });
    }
    DoAccept();
    int n = options_.threads > 0
                ? options_.threads
                : static_cast<int>(
                      std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (int i = 1; i < n; ++i) threads.emplace_back([this] { RunIo(); });
    RunIo();
    for (auto& t : threads) t.join();
  }

  // Runs the I/O loop until it is stopped. An exception out of a completion
  // handler ends that handler's session (its shared state is released), not
  // the thread or the process: it is logged and the loop resumes.
  void RunIo() {
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        logger_->error("an I/O handler threw: {}", e.what());
      } catch (...) {
        logger_->error("an I/O handler threw a non-standard exception");
      }
    }
  }

  void Shutdown() override {
    net::post(acceptor_.get_executor(), [this] {
      if (stopping_) return;
      stopping_ = true;
      draining_.store(true, std::memory_order_release);
      beast::error_code ec;
      acceptor_.close(ec);
      signals_.cancel(ec);
      for (auto& s : LiveSessions()) s->Stop();
      deadline_ = std::chrono::steady_clock::now() + options_.shutdown_grace;
      WaitForSessions();
    });
  }

  const Router& router() const { return router_; }
  HttpMetrics& metrics() { return metrics_; }
  spdlog::logger& logger() { return *logger_; }
  const ServerOptions& options() const { return options_; }
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  void Register(SessionBase* s, std::weak_ptr<SessionBase> w) {
    MutexLock lk(&sessions_mu_);
    sessions_[s] = std::move(w);
  }
  void Unregister(SessionBase* s) {
    MutexLock lk(&sessions_mu_);
    sessions_.erase(s);
  }

 private:
  std::vector<std::shared_ptr<SessionBase>> LiveSessions() {
    std::vector<std::shared_ptr<SessionBase>> out;
    MutexLock lk(&sessions_mu_);
    for (auto& [p, w] : sessions_) {
      if (auto s = w.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  size_t SessionCount() {
    MutexLock lk(&sessions_mu_);
    return sessions_.size();
  }

  // Polls until every session is gone or the grace has passed, then stops
  // the I/O threads (which ends any session still open).
  void WaitForSessions() {
    if (SessionCount() == 0 || std::chrono::steady_clock::now() >= deadline_) {
      if (SessionCount() > 0) {
        logger_->warn("shutdown grace passed; closing {} connection(s)",
                      SessionCount());
      }
      ioc_.stop();
      return;
    }
    shutdown_timer_.expires_after(std::chrono::milliseconds(20));
    shutdown_timer_.async_wait(
        [this](beast::error_code) { WaitForSessions(); });
  }

  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec,
                                                          tcp::socket socket) {
      if (ec) {
        if (ec != net::error::operation_aborted) {
          logger_->warn("accept: {}", ec.message());
        }
      } else {
        // A session that cannot be made (TLS state, memory) costs that
        // connection only: the next accept is armed whatever happens.
        try {
          bool full = SessionCount() >= options_.max_connections;
          if (tls_) {
            StartSession(std::make_shared<Session<true>>(std::move(socket),
                                                         *this, full, *tls_));
          } else {
            StartSession(std::make_shared<Session<false>>(std::move(socket),
                                                          *this, full));
          }
        } catch (const std::exception& e) {
          logger_->error("starting a session: {}", e.what());
        }
      }
      if (!stopping_) DoAccept();
    });
  }

  template <typename S>
  void StartSession(std::shared_ptr<S> s) {
    Register(s.get(), s);
    s->Start();
  }

  const ServerOptions options_;
  const Router& router_;
  HttpMetrics& metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  // Declared before ioc_: sessions still queued in ioc_ unregister from here
  // when ioc_ is destroyed.
  Mutex sessions_mu_;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions_
      GUARDED_BY(sessions_mu_);
  std::optional<net::ssl::context> tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  net::steady_timer shutdown_timer_;
  uint16_t port_ = 0;
  bool stopping_ = false;              // on the acceptor's strand
  std::atomic<bool> draining_{false};  // read by every session
  std::chrono::steady_clock::time_point deadline_;
};

template <bool kTls>
Session<kTls>::~Session() {
  server_.Unregister(this);
}

template <bool kTls>
void Session<kTls>::Start() {
  net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
    if constexpr (kTls) {
      // The handshake is bounded by the read timeout like any request.
      self->busy_ = true;
      self->Tcp().expires_after(self->server_.options().read_timeout);
      self->stream_.async_handshake(net::ssl::stream_base::server,
                                    [self](beast::error_code ec) {
                                      self->busy_ = false;
                                      if (ec) {
                                        // No TLS session to close politely:
                                        // drop the connection.
                                        self->closed_ = true;
                                        self->Tcp().close();
                                        return;
                                      }
                                      self->Begin();
                                    });
    } else {
      self->Begin();
    }
  });
}

template <bool kTls>
void Session<kTls>::Begin() {
  if (reject_) {
    busy_ = true;
    HttpResponse r = Problem(503, "Service Unavailable",
                             "too many connections; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    return Send(std::move(r), false);
  }
  DoRead();
}

template <bool kTls>
void Session<kTls>::Stop() {
  net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
    self->stopping_ = true;
    if (!self->busy_) return self->DoClose();
    // A stream waiting for its next part ends now rather than at its next
    // poll.
    if (self->poll_timer_) self->poll_timer_->cancel();
  });
}

template <bool kTls>
void Session<kTls>::DoRead() {
  if (stopping_) return DoClose();
  parser_.emplace();
  parser_->body_limit(server_.options().max_body_bytes);
  parser_->header_limit(
      static_cast<uint32_t>(server_.options().max_header_bytes));
  Tcp().expires_after(server_.options().read_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&Session::OnRead, this->shared_from_this()));
}

template <bool kTls>
void Session<kTls>::OnRead(beast::error_code ec, size_t) {
  // The client went away (between requests or in the middle of one), or
  // was idle too long: close, nothing to answer.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == net::error::operation_aborted || ec == beast::error::timeout) {
    return DoClose();
  }
  started_ = std::chrono::steady_clock::now();
  request_id_ = RequestId("");
  if (ec && ec != http::error::body_limit && ec != http::error::header_limit &&
      &ec.category() !=
          &http::make_error_code(http::error::bad_method).category()) {
    // Not a malformed request but a connection gone (reset, a TLS stream
    // cut short, ...): nothing to answer, nothing to count.
    return DoClose();
  }
  if (ec) {
    // A malformed request (413, 431, 400): answer if the socket is still
    // usable, then close (the rest of the stream cannot be trusted).
    route_ = "unmatched";
    busy_ = true;
    return Send(ReadError(ec, server_.options()), false);
  }
  busy_ = true;
  auto& req = parser_->get();
  HttpRequest request;
  std::optional<HttpResponse> refused = ToRequest(req, &request);
  request.received = started_;
  request_id_ = request.request_id;
  if (refused) {
    route_ = "unmatched";
    return Send(std::move(*refused), false);
  }
  const bool keep_alive = req.keep_alive();
  route_ = server_.router().RouteOf(request);
  actor_ = server_.router().Identify(request);
  // The handler may answer at once or later from a worker thread; either
  // way the answer is written on this session's strand.
  auto self = this->shared_from_this();
  server_.router().Dispatch(request, [self, keep_alive](HttpResponse r) {
    net::post(self->stream_.get_executor(),
              [self, keep_alive, r = std::move(r)]() mutable {
                // A draining server answers and then closes, and says so.
                self->Send(std::move(r), keep_alive && !self->stopping_ &&
                                             !self->server_.draining());
              });
  });
}

template <bool kTls>
void Session<kTls>::Send(HttpResponse r, bool keep_alive) {
  if (r.stream) return StartStream(std::move(r));
  response_.emplace(static_cast<http::status>(r.status), 11);
  response_->set(http::field::server, "caseledger");
  response_->set(http::field::content_type, r.content_type);
  // Answers carry personal data: no cache on the client's disk keeps them,
  // unless the handler says otherwise (the console's assets); and no
  // browser guesses a type other than the one given.
  response_->set(http::field::cache_control, "no-store");
  response_->set("X-Content-Type-Options", "nosniff");
  // Nothing the API answers is a page: a browser shown one runs nothing
  // and frames nothing (the console's pages set their own policy).
  response_->set("Content-Security-Policy",
                 "default-src 'none'; frame-ancestors 'none'");
  for (auto& [k, v] : r.headers) response_->set(k, v);
  if (!request_id_.empty()) response_->set("X-Request-Id", request_id_);
  response_->body() = std::move(r.body);
  response_->keep_alive(keep_alive);
  response_->prepare_payload();
  const int status = r.status;
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started_);
  if (!reject_) {
    server_.metrics().Record(route_, status, elapsed);
    // One line per request; never the body, a query string or any header.
    server_.logger().info("{} {} {} {}us actor={} id={}",
                          parser_ ? std::string(parser_->get().method_string())
                                  : std::string("-"),
                          route_, status, elapsed.count(), actor_,
                          request_id_.empty() ? "-" : request_id_);
  }
  http::async_write(
      stream_, *response_,
      beast::bind_front_handler(&Session::OnWrite, this->shared_from_this(),
                                keep_alive));
}

template <bool kTls>
void Session<kTls>::OnWrite(bool keep_alive, beast::error_code ec, size_t) {
  busy_ = false;
  response_.reset();
  if (ec || !keep_alive || stopping_) return DoClose();
  DoRead();
}

// A streamed response: the head (chunked), then each part as one chunk as
// the source yields it, polling while it has nothing; ends when the source
// does, the client goes away, or the server drains. The connection closes
// after it (an event stream is the connection's last response).
template <bool kTls>
void Session<kTls>::StartStream(HttpResponse r) {
  stream_head_.emplace(static_cast<http::status>(r.status), 11);
  stream_head_->set(http::field::server, "caseledger");
  stream_head_->set(http::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) stream_head_->set(k, v);
  stream_head_->set("X-Request-Id", request_id_);
  stream_head_->chunked(true);
  stream_head_->keep_alive(false);
  body_stream_ = std::move(r.stream);
  stream_writer_.emplace(*stream_head_);
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started_);
  server_.metrics().Record(route_, r.status, elapsed);
  server_.logger().info("{} {} {} stream actor={} id={}",
                        std::string(parser_->get().method_string()), route_,
                        r.status, actor_, request_id_);
  Tcp().expires_after(server_.options().read_timeout);
  http::async_write_header(
      stream_, *stream_writer_,
      [self = this->shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->DoClose();
        self->PumpStream();
      });
}

template <bool kTls>
void Session<kTls>::PumpStream() {
  if (stopping_ || server_.draining()) return EndStream();
  std::optional<std::string> part = body_stream_->Next();
  if (!part) return EndStream();
  if (part->empty()) {
    if (!poll_timer_) poll_timer_.emplace(stream_.get_executor());
    poll_timer_->expires_after(std::chrono::milliseconds(50));
    poll_timer_->async_wait(
        // Cancelled by Stop(): the next pump ends the stream.
        [self = this->shared_from_this()](beast::error_code) {
          self->PumpStream();
        });
    return;
  }
  part_ = std::move(*part);
  Tcp().expires_after(server_.options().read_timeout);
  net::async_write(
      stream_, http::make_chunk(net::buffer(part_)),
      [self = this->shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->DoClose();  // the client went away
        self->PumpStream();
      });
}

template <bool kTls>
void Session<kTls>::EndStream() {
  Tcp().expires_after(std::chrono::seconds(5));
  net::async_write(
      stream_, http::make_chunk_last(),
      [self = this->shared_from_this()](beast::error_code, size_t) {
        self->busy_ = false;
        self->DoClose();
      });
}

template <bool kTls>
void Session<kTls>::DoClose() {
  if (closed_) return;
  closed_ = true;
  if constexpr (kTls) {
    // Say goodbye at the TLS layer too, but never wait long for the peer.
    Tcp().expires_after(std::chrono::seconds(2));
    stream_.async_shutdown([self = this->shared_from_this()](
                               beast::error_code) { self->Tcp().close(); });
  } else {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }
}

}  // namespace

HttpResponse AnswerRaw(std::string_view raw, const Router& router,
                       const ServerOptions& options) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
  parser.eager(true);
  beast::error_code ec;
  size_t used = 0;
  while (!ec && !parser.is_done() && used < raw.size()) {
    used += parser.put(net::buffer(raw.data() + used, raw.size() - used), ec);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
  }
  if (!ec && !parser.is_done()) {
    parser.put_eof(ec);
    if (!ec && !parser.is_done()) ec = http::error::partial_message;
  }
  if (ec) return ReadError(ec, options);
  HttpRequest request;
  if (auto refused = ToRequest(parser.get(), &request)) return *refused;
  return router.Handle(request);
}

StatusOr<std::unique_ptr<Server>> Server::Create(
    const ServerOptions& options, const Router& router, HttpMetrics& metrics,
    std::shared_ptr<spdlog::logger> logger) {
  auto server =
      std::make_unique<ServerImpl>(options, router, metrics, std::move(logger));
  RETURN_IF_ERROR(server->Open());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace caseledger::api
