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

#include "caseledger/domain/policy.h"
#include "caseledger/event_store.h"

namespace caseledger::api {

inline constexpr char kTokenStream[] = "sys.tokens";

// Issues a token for `actor` and records its hash. Returns the token (the
// only time it exists in clear).
StatusOr<std::string> IssueToken(EventStore& store, const domain::Actor& actor,
                                 const std::string& issued_by);

// Thread-safe.
class TokenRegistry {
 public:
  explicit TokenRegistry(const EventStore& store) : store_(store) {}

  // Reads what is new in the token stream.
  Status Refresh();

  // The actor behind an "Authorization: Bearer <token>" header value, if
  // the token is known and not revoked.
  std::optional<domain::Actor> Authenticate(std::string_view header);

 private:
  std::optional<domain::Actor> Lookup(const std::string& hash) const;

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
