// Bearer tokens. A token is 32 random bytes, shown once when issued; the
// store keeps only its SHA-256, as a TokenIssued event in the system stream
// "sys.tokens" (so issuing and revoking are themselves on the audited,
// hash-chained log). The registry folds that stream and follows it, so a
// token issued while the server runs is honoured at once.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/policy.h"
#include "caseledger/event_store.h"

namespace caseledger::api {

inline constexpr char kTokenStream[] = "sys.tokens";

// Issues a token for `actor` and records its hash. Returns the token (the
// only time it exists in clear).
StatusOr<std::string> IssueToken(EventStore& store, const domain::Actor& actor,
                                 const std::string& issued_by);

// Revokes tokens: the token `token` (as issued, "clt_..."), or, when
// `token` is empty, every live token of `actor_id`. Each revocation is a
// TokenRevoked event in the token stream, all in one append that expects
// the stream as read (so a token issued meanwhile is not missed silently).
// Returns how many tokens were revoked; kNotFound when none matched.
StatusOr<size_t> RevokeTokens(EventStore& store, const std::string& token,
                              const std::string& actor_id,
                              const std::string& revoked_by);

// Thread-safe.
class TokenRegistry {
 public:
  explicit TokenRegistry(const EventStore& store) : store_(store) {}

  // Reads what is new in the token stream.
  Status Refresh();

  // The actor behind an "Authorization: Bearer <token>" header value, if
  // the token is known and not revoked. A token revoked while the server
  // runs fails from the next request on (and ends its open streams); when
  // the token stream cannot be read, every token fails (closed).
  std::optional<domain::Actor> Authenticate(std::string_view header);

  // The actor of the live token with this hash, as last refreshed.
  std::optional<domain::Actor> Lookup(const std::string& hash) const;
  // The hashes of the live tokens of `actor_id`, as last refreshed.
  std::vector<std::string> LiveHashes(const std::string& actor_id) const;
  // The token stream's version as last refreshed.
  uint64_t version() const;

 private:
  const EventStore& store_;
  mutable std::shared_mutex mu_;
  std::map<std::string, domain::Actor> by_hash_;  // guarded by mu_
  uint64_t version_ = 0;                          // guarded by mu_
  std::atomic<uint64_t> seen_position_{0};  // log position at last refresh
  std::mutex refresh_mu_;
};

// Hex SHA-256 of a token.
std::string TokenHash(std::string_view token);

// Hex SHA-256 of any bytes.
std::string Sha256Hex(std::string_view data);

}  // namespace caseledger::api
