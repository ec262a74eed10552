// AES-256-GCM through OpenSSL, the one cipher of the key store and the
// sealer. Private to engine/keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace caseledger::keys::internal {

inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;

// nonce ‖ ciphertext ‖ tag, with a fresh random nonce. `ad` is
// authenticated, not encrypted. Never fails short of OpenSSL failing, which
// aborts: a process that cannot encrypt must not write plaintext instead.
std::string Encrypt(const uint8_t key[32], std::string_view ad,
                    std::string_view plaintext);

// The plaintext of what Encrypt returned, if `sealed` was made with this
// key and this `ad` and is unchanged; nothing otherwise.
std::optional<std::string> Decrypt(const uint8_t key[32], std::string_view ad,
                                   std::string_view sealed);

// Fills `out` with `n` bytes from OpenSSL's CSPRNG (aborts if it fails).
void RandomBytes(uint8_t* out, size_t n);

// Standard base64 (RFC 4648, with padding), and back (nothing if `text`
// is not base64).
std::string Base64(std::string_view bytes);
std::optional<std::string> FromBase64(std::string_view text);

}  // namespace caseledger::keys::internal
