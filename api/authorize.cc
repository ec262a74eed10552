#include <utility>

#include "api/routes.h"

namespace caseledger::api {

namespace {

bool Unsafe(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

}  // namespace

bool Routes::SameOrigin(const HttpRequest& req) const {
  const std::string origin = Header(req, "origin");
  const std::string host = Header(req, "host");
  return !host.empty() &&
         origin == std::string(d_.tls ? "https://" : "http://") + host;
}

std::optional<Actor> Routes::Authenticate(const HttpRequest& req,
                                          const Router::Respond& respond) {
  const std::string authorization = Header(req, "authorization");
  const std::string cookie = Header(req, "cookie");
  if (authorization.empty() && d_.sessions != nullptr && !cookie.empty()) {
    // A console session. SameSite=Strict keeps the cookie off cross-site
    // requests in today's browsers; a request that changes anything must
    // also come from the console's own origin, whatever the browser.
    if (Unsafe(req.method) && !SameOrigin(req)) {
      respond(Problem(403, "Forbidden",
                      "a request with a session cookie that changes "
                      "something must come from this server's own pages "
                      "(its Origin header did not match)"));
      return std::nullopt;
    }
    auto actor = d_.sessions->Authenticate(cookie);
    if (!actor) {
      HttpResponse r =
          Problem(401, "Unauthorized",
                  "the session has ended (signed out, idle too long, or its "
                  "token revoked): sign in again");
      r.headers.emplace_back("Set-Cookie", SessionCookie("", d_.tls));
      respond(std::move(r));
    }
    return actor;
  }
  auto actor = d_.tokens.Authenticate(authorization);
  if (!actor) {
    HttpResponse r =
        Problem(401, "Unauthorized", "a valid bearer token is required");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    respond(std::move(r));
  }
  return actor;
}

std::optional<Json> Routes::ReadBody(const HttpRequest& req,
                                     const Router::Respond& respond) {
  HttpResponse error;
  auto body = ParseBody(req, d_.max_json_depth, &error);
  if (!body.ok()) {
    respond(std::move(error));
    return std::nullopt;
  }
  return std::move(*body);
}

bool Routes::NoParameters(const HttpRequest& req, const char* what,
                          const Router::Respond& respond) {
  if (req.body.empty()) return true;
  auto body = ReadBody(req, respond);
  if (!body) return false;
  if (!body->is_object() || !body->empty()) {
    respond(Problem(400, "Bad Request",
                    std::string(what) + " takes no parameters"));
    return false;
  }
  return true;
}

std::string Routes::ReleasedNow() const {
  return ReleasedBefore(d_.store.Now(), d_.feed_release_delay_months);
}

HttpResponse Routes::Forbidden() {
  return Problem(403, "Forbidden", "you may not do this");
}

std::optional<Actor> Routes::AuthorizeAdmin(const HttpRequest& req,
                                            const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (actor && !domain::MayRead(actor->role, Read::kAdmin)) {
    respond(Forbidden());
    return std::nullopt;
  }
  return actor;
}

std::optional<Actor> Routes::AuthorizeModelRead(
    const HttpRequest& req, Read read, const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (!actor) return std::nullopt;
  if (!domain::MayRead(actor->role, read)) {
    respond(Forbidden());
    return std::nullopt;
  }
  if (!d_.models) {
    respond(Problem(503, "Service Unavailable", "no read models"));
    return std::nullopt;
  }
  return actor;
}

}  // namespace caseledger::api
