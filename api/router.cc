#include "api/router.h"

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

void Router::Add(std::string method, std::string pattern, Handler handler) {
  Route r{std::move(method), pattern, SplitPath(pattern), std::move(handler),
          nullptr};
  routes_.push_back(std::move(r));
}

void Router::AddAsync(std::string method, std::string pattern,
                      AsyncHandler handler) {
  Route r{std::move(method), pattern, SplitPath(pattern), nullptr,
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

void Router::Dispatch(const HttpRequest& request, Respond respond) const {
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
    try {
      if (r.async_handler) {
        r.async_handler(request, params, std::move(respond));
      } else {
        respond(r.handler(request, params));
      }
    } catch (const std::exception&) {
      // An async handler that threw has already taken `respond`.
      if (respond) {
        respond(Problem(500, "Internal Server Error",
                        "the request failed inside the server"));
      }
    }
    return;
  }
  if (!allow.empty()) {
    HttpResponse resp = Problem(405, "Method Not Allowed",
                                request.method + " is not allowed here");
    resp.headers.emplace_back("Allow", allow);
    respond(std::move(resp));
    return;
  }
  respond(Problem(404, "Not Found", "no route for this path"));
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
