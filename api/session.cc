#include "api/session.h"

#include <openssl/rand.h>

#include <utility>

#include "caseledger/types.h"

namespace caseledger::api {

namespace {

// More live sessions than this and the least recently used goes first:
// signing in cannot grow the table without bound.
constexpr size_t kMaxSessions = 10000;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string SessionIdFromCookie(std::string_view cookie_header) {
  while (!cookie_header.empty()) {
    size_t semi = cookie_header.find(';');
    std::string_view pair = Trim(cookie_header.substr(0, semi));
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos &&
        Trim(pair.substr(0, eq)) == kSessionCookie) {
      return std::string(Trim(pair.substr(eq + 1)));
    }
    if (semi == std::string_view::npos) break;
    cookie_header.remove_prefix(semi + 1);
  }
  return "";
}

std::string SessionCookie(const std::string& id, bool secure) {
  std::string c = std::string(kSessionCookie) + "=" + id +
                  "; Path=/; HttpOnly; SameSite=Strict";
  if (id.empty()) c += "; Max-Age=0";
  if (secure) c += "; Secure";
  return c;
}

SessionStore::SessionStore(TokenRegistry& tokens, std::chrono::seconds idle,
                           Clock clock)
    : tokens_(tokens), idle_(idle), clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point SessionStore::Now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void SessionStore::DropExpired(std::chrono::steady_clock::time_point now) {
  for (auto it = by_id_hash_.begin(); it != by_id_hash_.end();) {
    it = now - it->second.last_used >= idle_ ? by_id_hash_.erase(it)
                                             : std::next(it);
  }
}

std::optional<SessionStore::Started> SessionStore::Start(
    std::string_view token) {
  std::string token_hash = service::TokenHash(token);
  auto actor = tokens_.AuthenticateHash(token_hash);
  if (!actor) return std::nullopt;
  // 32 random bytes, in hex.
  Hash raw;
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return std::nullopt;
  }
  std::string id = HashToHex(raw);
  const auto now = Now();
  MutexLock lk(&mu_);
  DropExpired(now);
  if (by_id_hash_.size() >= kMaxSessions) {
    auto oldest = by_id_hash_.begin();
    for (auto it = by_id_hash_.begin(); it != by_id_hash_.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    by_id_hash_.erase(oldest);
  }
  by_id_hash_[service::TokenHash(id)] = Session{std::move(token_hash), now};
  return Started{std::move(id), *actor};
}

std::optional<domain::Actor> SessionStore::Authenticate(
    std::string_view cookie_header) {
  std::string id = SessionIdFromCookie(cookie_header);
  if (id.empty()) return std::nullopt;
  const std::string key = service::TokenHash(id);
  const auto now = Now();
  std::string token_hash;
  {
    MutexLock lk(&mu_);
    auto it = by_id_hash_.find(key);
    if (it == by_id_hash_.end()) return std::nullopt;
    if (now - it->second.last_used >= idle_) {
      by_id_hash_.erase(it);
      return std::nullopt;
    }
    token_hash = it->second.token_hash;
  }
  // The token behind the session must still be live: a revoked token ends
  // its sessions at once.
  auto actor = tokens_.AuthenticateHash(token_hash);
  MutexLock lk(&mu_);
  auto it = by_id_hash_.find(key);
  if (it == by_id_hash_.end()) return std::nullopt;  // ended meanwhile
  if (!actor) {
    by_id_hash_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return actor;
}

bool SessionStore::End(std::string_view cookie_header) {
  std::string id = SessionIdFromCookie(cookie_header);
  if (id.empty()) return false;
  MutexLock lk(&mu_);
  return by_id_hash_.erase(service::TokenHash(id)) > 0;
}

size_t SessionStore::size() const {
  MutexLock lk(&mu_);
  return by_id_hash_.size();
}

}  // namespace caseledger::api
