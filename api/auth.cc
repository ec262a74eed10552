#include "api/auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <nlohmann/json.hpp>

namespace caseledger::api {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string Hex(const unsigned char* data, size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  // Fetched once: EVP_sha256() in a digest call looks the algorithm up in
  // the provider on every call (more than half of hashing a token).
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (kSha256 == nullptr || EVP_Digest(data.data(), data.size(), digest, &len,
                                       kSha256, nullptr) != 1) {
    return "";
  }
  return Hex(digest, len);
}

std::string TokenHash(std::string_view token) { return Sha256Hex(token); }

StatusOr<std::string> IssueToken(EventStore& store, const domain::Actor& actor,
                                 const std::string& issued_by) {
  RETURN_IF_ERROR(ValidateStreamId(actor.id));
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return Status::IOError("no random bytes for a token");
  }
  std::string token = "clt_" + Hex(raw, sizeof(raw));
  const std::string hash = TokenHash(token);
  if (hash.empty()) {
    // No digest (a broken OpenSSL): never record a hash every token shares.
    return Status::IOError("cannot hash a token (OpenSSL's SHA-256)");
  }
  ProposedEvent e;
  e.type = "TokenIssued";
  e.actor = Actor{issued_by, "admin"};
  e.occurred_at = NowUtc();
  e.payload = nlohmann::json{{"token_sha256", hash},
                             {"actor_id", actor.id},
                             {"role", domain::RoleName(actor.role)}}
                  .dump();
  auto r = store.Append(kTokenStream, ExpectedVersion::Any(), {e});
  if (!r.ok()) return r.status();
  return token;
}

Status TokenRegistry::Refresh() {
  std::lock_guard<std::mutex> one_at_a_time(refresh_mu_);
  seen_position_.store(store_.committed_position().value());
  uint64_t from;
  {
    std::shared_lock<std::shared_mutex> lk(mu_);
    from = version_ + 1;
  }
  return ForEachInStream(
      store_, kTokenStream, StreamVersion(from), 0,
      [this](const RecordedEvent& e) -> Status {
        auto p = nlohmann::json::parse(e.payload, nullptr, false);
        std::unique_lock<std::shared_mutex> lk(mu_);
        version_ = e.version.value();
        if (!p.is_object()) return Status::OK();
        std::string hash = p.value("token_sha256", "");
        if (e.type == "TokenIssued") {
          auto role = domain::ParseRole(p.value("role", ""));
          if (role && !hash.empty()) {
            by_hash_[hash] = domain::Actor{p.value("actor_id", ""), *role};
          }
        } else if (e.type == "TokenRevoked") {
          by_hash_.erase(hash);
        }
        return Status::OK();
      });
}

std::optional<domain::Actor> TokenRegistry::Lookup(
    const std::string& hash) const {
  if (hash.empty()) return std::nullopt;  // no digest: fail closed
  std::shared_lock<std::shared_mutex> lk(mu_);
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
  std::string hash = TokenHash(header.substr(kBearer.size()));
  // Issued or revoked since the last look? Only when the log has moved is
  // the token stream's head read (a point read), and only when that has
  // moved is the stream read.
  const uint64_t committed = store_.committed_position().value();
  if (committed != seen_position_.load()) {
    auto head = store_.GetStreamVersion(kTokenStream);
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
  std::shared_lock<std::shared_mutex> lk(mu_);
  return version_;
}

std::vector<std::string> TokenRegistry::LiveHashes(
    const std::string& actor_id) const {
  std::shared_lock<std::shared_mutex> lk(mu_);
  std::vector<std::string> out;
  for (const auto& [hash, actor] : by_hash_) {
    if (actor.id == actor_id) out.push_back(hash);
  }
  return out;
}

StatusOr<size_t> RevokeTokens(EventStore& store, const std::string& token,
                              const std::string& actor_id,
                              const std::string& revoked_by) {
  if (token.empty() == actor_id.empty()) {
    return Status::InvalidArgument("name either a token or an actor");
  }
  TokenRegistry registry(store);
  RETURN_IF_ERROR(registry.Refresh());
  std::vector<std::string> hashes;
  if (!token.empty()) {
    if (!registry.Lookup(TokenHash(token))) {
      return Status::NotFound("no live token matches (unknown or revoked)");
    }
    hashes.push_back(TokenHash(token));
  } else {
    hashes = registry.LiveHashes(actor_id);
    if (hashes.empty()) {
      return Status::NotFound("actor " + actor_id + " has no live token");
    }
  }
  std::vector<ProposedEvent> events;
  for (const auto& hash : hashes) {
    ProposedEvent e;
    e.type = "TokenRevoked";
    e.actor = Actor{revoked_by, "admin"};
    e.occurred_at = NowUtc();
    e.payload = nlohmann::json{{"token_sha256", hash}}.dump();
    events.push_back(std::move(e));
  }
  auto r = store.Append(
      kTokenStream, ExpectedVersion::Exact(StreamVersion(registry.version())),
      std::move(events));
  if (!r.ok()) return r.status();
  return hashes.size();
}

}  // namespace caseledger::api
