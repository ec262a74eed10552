// Browser sessions for the console. A person signs in once with their bearer
// token; the server keeps the session and hands the browser only an opaque
// id in an HttpOnly cookie, so page scripts never hold the token. Sessions
// live in memory (a restart signs everyone out) and are keyed by the
// SHA-256 of their id, so the table holds nothing a browser could replay.
// Internal to api.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "api/auth.h"
#include "caseledger/mutex.h"

namespace caseledger::api {

inline constexpr std::string_view kSessionCookie = "caseledger_session";

// Thread-safe.
class SessionStore {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // A session ends after `idle` without a request; `clock` is injected by
  // tests (steady_clock::now when null).
  SessionStore(TokenRegistry& tokens, std::chrono::seconds idle,
               Clock clock = nullptr);

  // Starts a session for the bearer token `token` ("clt_..."): its id, to
  // be set as the cookie, or nullopt when the token is not live.
  struct Started {
    std::string id;
    domain::Actor actor;
  };
  std::optional<Started> Start(std::string_view token);

  // The actor of the session named by a Cookie header, if that session is
  // live: not idle past the limit, not ended, and its token not revoked
  // since. A live session's idle time starts again.
  std::optional<domain::Actor> Authenticate(std::string_view cookie_header);

  // Ends the session named by a Cookie header; false when there was none.
  bool End(std::string_view cookie_header);

  std::chrono::seconds idle() const { return idle_; }

  // Live sessions (expired ones are dropped as they are met, and on each
  // Start).
  size_t size() const;

 private:
  struct Session {
    std::string token_hash;
    std::chrono::steady_clock::time_point last_used;
  };
  std::chrono::steady_clock::time_point Now() const;
  void DropExpired(std::chrono::steady_clock::time_point now) REQUIRES(mu_);

  TokenRegistry& tokens_;
  const std::chrono::seconds idle_;
  Clock clock_;
  mutable Mutex mu_;
  std::map<std::string, Session> by_id_hash_ GUARDED_BY(mu_);
};

// The session id in a Cookie header ("" when there is none).
std::string SessionIdFromCookie(std::string_view cookie_header);

// The Set-Cookie value that sets the session cookie (HttpOnly,
// SameSite=Strict, Path=/, Secure when `secure`), or, for an empty id, that
// clears it.
std::string SessionCookie(const std::string& id, bool secure);

}  // namespace caseledger::api
