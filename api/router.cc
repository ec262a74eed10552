#include "api/router.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>

namespace caseledger::api {

HttpResponse Problem(int status, std::string_view title,
                     std::string_view detail) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  nlohmann::json body = {{"type", "about:blank"},
                         {"title", title},
                         {"status", status},
                         {"detail", detail}};
  r.body = body.dump();
  return r;
}

HttpResponse InternalError(const std::string& request_id) {
  HttpResponse r = Problem(
      500, "Internal Server Error",
      "the request failed inside the server; what it asked for may or may "
      "not have been written: retry with the same Idempotency-Key, or quote "
      "request id " +
          (request_id.empty() ? std::string("-") : request_id) +
          " to the operator");
  nlohmann::json body = nlohmann::json::parse(r.body);
  body["request_id"] = request_id;
  r.body = body.dump();
  return r;
}

std::vector<std::string> SplitPath(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() && HexDigit(in[i + 1]) >= 0 &&
               HexDigit(in[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(HexDigit(in[i + 1]) * 16 + HexDigit(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> QueryParams(std::string_view target) {
  std::map<std::string, std::string> out;
  size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    if (!key.empty()) out[key] = value;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

void Router::Add(std::string method, std::string pattern, Handler handler) {
  auto parts = SplitPath(pattern);
  Route r{std::move(method), std::move(pattern), std::move(parts),
          std::move(handler), nullptr};
  routes_.push_back(std::move(r));
}

void Router::AddAsync(std::string method, std::string pattern,
                      AsyncHandler handler) {
  auto parts = SplitPath(pattern);
  Route r{std::move(method), std::move(pattern), std::move(parts), nullptr,
          std::move(handler)};
  routes_.push_back(std::move(r));
}

bool Router::Match(const Route& r, const std::vector<std::string>& path,
                   PathParams* params) {
  if (r.segments.size() != path.size()) return false;
  PathParams found;
  for (size_t i = 0; i < path.size(); ++i) {
    const std::string& seg = r.segments[i];
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      if (path[i].empty()) return false;
      found[seg.substr(1, seg.size() - 2)] = path[i];
    } else if (seg != path[i]) {
      return false;
    }
  }
  if (params) *params = std::move(found);
  return true;
}

namespace {

// The one answer to a request, shared by every copy of the Respond a handler
// holds: the first call answers, later calls are ignored, and if the last
// copy goes without a call (the handler threw, or the work that held it was
// dropped) it answers 500 itself.
class Reply {
 public:
  Reply(Router::Respond respond, std::string request_id,
        std::shared_ptr<spdlog::logger> logger)
      : respond_(std::move(respond)),
        request_id_(std::move(request_id)),
        logger_(std::move(logger)) {}
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  ~Reply() {
    if (answered_.load(std::memory_order_acquire)) return;
    Log("the handler ended without answering (see any exception logged "
        "before); answered 500");
    Send(InternalError(request_id_));
  }

  void Send(HttpResponse r) {
    if (answered_.exchange(true, std::memory_order_acq_rel)) return;
    try {
      respond_(std::move(r));
    } catch (const std::exception& e) {
      Log(std::string("writing the answer failed: ") + e.what());
    } catch (...) {
      Log("writing the answer failed");
    }
  }

  bool answered() const { return answered_.load(std::memory_order_acquire); }

  void Log(const std::string& what) const noexcept {
    try {
      (logger_ ? *logger_ : *spdlog::default_logger_raw())
          .error("request {}: {}",
                 request_id_.empty() ? std::string("-") : request_id_, what);
    } catch (...) {
    }
  }

  const std::string& request_id() const { return request_id_; }

 private:
  Router::Respond respond_;
  const std::string request_id_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::atomic<bool> answered_{false};
};

}  // namespace

void Router::Dispatch(const HttpRequest& request, Respond respond) const {
  auto reply =
      std::make_shared<Reply>(std::move(respond), request.request_id, logger_);
  Respond once = [reply](HttpResponse r) { reply->Send(std::move(r)); };
  std::vector<std::string> path = SplitPath(request.target);
  std::string allow;
  for (const Route& r : routes_) {
    PathParams params;
    if (!Match(r, path, &params)) continue;
    if (r.method != request.method) {
      if (!allow.empty()) allow += ", ";
      allow += r.method;
      continue;
    }
    const bool write = request.method != "GET" && request.method != "HEAD";
    Respond answer = once;
    if (write && write_hooks_.settle) {
      answer = [settle = write_hooks_.settle, once](HttpResponse resp) {
        if (resp.status >= 200 && resp.status < 300) {
          settle(std::move(resp), once);
        } else {
          once(std::move(resp));
        }
      };
    }
    try {
      if (write && write_hooks_.admit) {
        if (auto refusal = write_hooks_.admit(request, r.pattern)) {
          once(std::move(*refusal));
          return;
        }
      }
      if (r.async_handler) {
        r.async_handler(request, params, answer);
      } else {
        answer(r.handler(request, params));
      }
    } catch (const std::exception& e) {
      reply->Log(std::string("the handler threw: ") + e.what());
      reply->Send(InternalError(reply->request_id()));
    } catch (...) {
      reply->Log("the handler threw a non-standard exception");
      reply->Send(InternalError(reply->request_id()));
    }
    return;
  }
  if (!allow.empty()) {
    HttpResponse resp = Problem(405, "Method Not Allowed",
                                request.method + " is not allowed here");
    resp.headers.emplace_back("Allow", allow);
    once(std::move(resp));
    return;
  }
  once(Problem(404, "Not Found", "no route for this path"));
}

HttpResponse Router::Handle(const HttpRequest& request) const {
  std::promise<HttpResponse> p;
  auto f = p.get_future();
  Dispatch(request, [&p](HttpResponse r) { p.set_value(std::move(r)); });
  return f.get();
}

std::string Router::RouteOf(const HttpRequest& request) const {
  std::vector<std::string> path = SplitPath(request.target);
  for (const Route& r : routes_) {
    if (r.method == request.method && Match(r, path, nullptr)) return r.pattern;
  }
  return "unmatched";
}

std::vector<std::string> Router::Routes() const {
  std::vector<std::string> out;
  for (const Route& r : routes_) out.push_back(r.method + " " + r.pattern);
  return out;
}

}  // namespace caseledger::api
