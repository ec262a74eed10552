#include "api/auth.h"

namespace caseledger::api {

Status TokenRegistry::Refresh() {
  MutexLock one_at_a_time(&refresh_mu_);
  seen_position_.store(store_.committed_position().value());
  uint64_t from;
  {
    ReaderLock lk(&mu_);
    from = version_ + 1;
  }
  return service::ForEachTokenEvent(
      store_, from, [this](const service::TokenEvent& t) {
        WriterLock lk(&mu_);
        version_ = t.version;
        if (t.issued) {
          if (t.actor && !t.token_sha256.empty()) {
            by_hash_[t.token_sha256] = *t.actor;
          }
        } else {
          by_hash_.erase(t.token_sha256);
        }
      });
}

std::optional<domain::Actor> TokenRegistry::Lookup(
    const std::string& hash) const {
  ReaderLock lk(&mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

std::optional<domain::Actor> TokenRegistry::Authenticate(
    std::string_view header) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() ||
      header.substr(0, kBearer.size()) != kBearer) {
    return std::nullopt;
  }
  return AuthenticateHash(service::TokenHash(header.substr(kBearer.size())));
}

std::optional<domain::Actor> TokenRegistry::AuthenticateHash(
    const std::string& hash) {
  // Issued or revoked since the last look? Only when the log has moved is
  // the token stream's head read (a point read), and only when that has
  // moved is the stream read.
  const uint64_t committed = store_.committed_position().value();
  if (committed != seen_position_.load()) {
    auto head = store_.GetStreamVersion(service::kTokenStream);
    if (!head.ok()) return std::nullopt;  // fail closed
    if (head->value() != version()) {
      if (!Refresh().ok()) return std::nullopt;
    } else {
      seen_position_.store(committed);
    }
  }
  return Lookup(hash);
}

uint64_t TokenRegistry::version() const {
  ReaderLock lk(&mu_);
  return version_;
}

std::vector<std::string> TokenRegistry::LiveHashes(
    const std::string& actor_id) const {
  ReaderLock lk(&mu_);
  std::vector<std::string> out;
  for (const auto& [hash, actor] : by_hash_) {
    if (actor.id == actor_id) out.push_back(hash);
  }
  return out;
}

}  // namespace caseledger::api
