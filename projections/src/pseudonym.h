// Pseudonyms for the learning feed: HMAC-SHA256 under the pseudonym key,
// and SHA-256 in hex. Internal to projections.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <string>
#include <string_view>

namespace caseledger::projections::internal {

// HMAC-SHA256 under one key (RFC 2104), with the key's inner and outer
// SHA-256 states computed once: OpenSSL's one-shot HMAC() sets the key up
// again on every call, which costs more than the MAC itself. Mac() may run
// on any number of threads at once (each copies the states).
class HmacSha256 {
 public:
  explicit HmacSha256(std::string_view key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  // The 32-byte MAC of `message`. Aborts if OpenSSL fails (it cannot, short
  // of running out of memory): a pseudonym must never be left empty.
  std::array<unsigned char, 32> Mac(std::string_view message) const;

 private:
  EVP_MD_CTX* inner_;
  EVP_MD_CTX* outer_;
  bool ok_ = true;
};

// "p-" + the first 16 bytes of HMAC-SHA256(key, case id), in hex.
std::string Pseudonym(const HmacSha256& key, std::string_view case_id);

// The pseudonym a consumer sees a case under: keyed by the consumer too
// (safeguarding.md d.2 rule 6), so pseudonyms given to two consumers cannot
// be linked without the key. Derived from the stored pseudonym (itself
// keyed by the case id), with the parts kept apart by NUL bytes.
std::string ConsumerPseudonym(const HmacSha256& key, std::string_view consumer,
                              const std::string& stored);

}  // namespace caseledger::projections::internal
