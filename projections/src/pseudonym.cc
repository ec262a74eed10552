#include "projections/src/pseudonym.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <utility>

namespace caseledger::projections::internal {

HmacSha256::HmacSha256(std::string_view key)
    : inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()) {
  unsigned char block[64] = {0};  // SHA-256's block size
  if (key.size() > sizeof(block)) {
    unsigned int n = 0;
    ok_ = EVP_Digest(key.data(), key.size(), block, &n, EVP_sha256(),
                     nullptr) == 1;
  } else {
    std::copy(key.begin(), key.end(), block);
  }
  unsigned char pad[64];
  for (auto [ctx, x] : {std::pair{inner_, 0x36}, std::pair{outer_, 0x5c}}) {
    for (size_t i = 0; i < sizeof(pad); ++i) {
      pad[i] = static_cast<unsigned char>(block[i] ^ x);
    }
    ok_ = ok_ && ctx != nullptr &&
          EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
          EVP_DigestUpdate(ctx, pad, sizeof(pad)) == 1;
  }
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
}

HmacSha256::~HmacSha256() {
  EVP_MD_CTX_free(inner_);
  EVP_MD_CTX_free(outer_);
}

std::array<unsigned char, 32> HmacSha256::Mac(std::string_view message) const {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> t(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::array<unsigned char, 32> inner{}, mac{};
  unsigned int n = 0;
  const bool ok =
      ok_ && t && EVP_MD_CTX_copy_ex(t.get(), inner_) == 1 &&
      EVP_DigestUpdate(t.get(), message.data(), message.size()) == 1 &&
      EVP_DigestFinal_ex(t.get(), inner.data(), &n) == 1 &&
      EVP_MD_CTX_copy_ex(t.get(), outer_) == 1 &&
      EVP_DigestUpdate(t.get(), inner.data(), inner.size()) == 1 &&
      EVP_DigestFinal_ex(t.get(), mac.data(), &n) == 1;
  if (!ok) std::abort();
  return mac;
}

// "p-" + the first 16 bytes of HMAC-SHA256(key, case id), in hex.
std::string Pseudonym(const HmacSha256& key, std::string_view case_id) {
  const std::array<unsigned char, 32> mac = key.Mac(case_id);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "p-";
  for (size_t i = 0; i < 16; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  return out;
}

// The pseudonym a consumer sees a case under: keyed by the consumer too
// (safeguarding.md d.2 rule 6), so pseudonyms given to two consumers cannot
// be linked without the key. Derived from the stored pseudonym (itself
// keyed by the case id), with the parts kept apart by NUL bytes.
std::string ConsumerPseudonym(const HmacSha256& key, std::string_view consumer,
                              const std::string& stored) {
  std::string message = "consumer";
  message.push_back('\0');
  message.append(consumer);
  message.push_back('\0');
  message += stored;
  return Pseudonym(key, message);
}

}  // namespace caseledger::projections::internal
