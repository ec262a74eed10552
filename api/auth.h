// Bearer tokens as the server checks them. Tokens are issued and revoked
// through the service layer (caseledger/service/access.h), as events on the
// system stream "sys.tokens"; the registry folds that stream and follows
// it, so a token issued or revoked while the server runs counts at once.
#pragma once

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/policy.h"
#include "caseledger/event_store.h"
#include "caseledger/mutex.h"
#include "caseledger/service/access.h"

namespace caseledger::api {

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

  // The same for a token known by its hash (a console session's).
  std::optional<domain::Actor> AuthenticateHash(const std::string& hash);

  // The actor of the live token with this hash, as last refreshed.
  std::optional<domain::Actor> Lookup(const std::string& hash) const;
  // The hashes of the live tokens of `actor_id`, as last refreshed.
  std::vector<std::string> LiveHashes(const std::string& actor_id) const;
  // The token stream's version as last refreshed.
  uint64_t version() const;

 private:
  const EventStore& store_;
  mutable SharedMutex mu_;
  std::map<std::string, domain::Actor> by_hash_ GUARDED_BY(mu_);
  uint64_t version_ GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> seen_position_{0};  // log position at last refresh
  Mutex refresh_mu_;                        // one refresh at a time
};

}  // namespace caseledger::api
