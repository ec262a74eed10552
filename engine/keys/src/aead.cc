#include "engine/keys/src/aead.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace caseledger::keys::internal {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "caseledger: OpenSSL failed: %s\n", what);
  std::abort();
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

int Len(size_t n) {
  if (n > static_cast<size_t>(INT32_MAX)) Die("input too long");
  return static_cast<int>(n);
}

}  // namespace

void RandomBytes(uint8_t* out, size_t n) {
  if (RAND_bytes(out, Len(n)) != 1) Die("RAND_bytes");
}

std::string Encrypt(const uint8_t key[32], std::string_view ad,
                    std::string_view plaintext) {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  RandomBytes(o, kNonceBytes);
  Ctx ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, o) != 1 ||
      (!ad.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &n, U(ad), Len(ad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), o + kNonceBytes, &n, U(plaintext),
                        Len(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + kNonceBytes + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          o + kNonceBytes + plaintext.size()) != 1) {
    Die("AES-256-GCM encryption");
  }
  return out;
}

std::optional<std::string> Decrypt(const uint8_t key[32], std::string_view ad,
                                   std::string_view sealed) {
  if (sealed.size() < kNonceBytes + kTagBytes) return std::nullopt;
  const size_t len = sealed.size() - kNonceBytes - kTagBytes;
  std::string out(len, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) Die("EVP_CIPHER_CTX_new");
  // The tag is an input: OpenSSL's ctrl takes it as non-const.
  unsigned char tag[kTagBytes];
  std::copy_n(U(sealed) + kNonceBytes + len, kTagBytes, tag);
  int n = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key,
                         U(sealed)) != 1 ||
      (!ad.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &n, U(ad), Len(ad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), o, &n, U(sealed) + kNonceBytes, Len(len)) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) !=
          1) {
    return std::nullopt;
  }
  if (EVP_DecryptFinal_ex(ctx.get(), o + n, &n) != 1) return std::nullopt;
  return out;
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                U(bytes), Len(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> FromBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                U(text), Len(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's bytes as zeros: drop them.
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace caseledger::keys::internal
