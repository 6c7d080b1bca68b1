// Authenticated encryption of small records (libsodium's
// XChaCha20-Poly1305 IETF): confidential and tamper-evident, bound to
// associated data that travels separately. The 24-byte nonce is random per
// record, so one key may seal any number of records.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::crypto {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 24;
inline constexpr size_t kAeadTagBytes = 16;

// nonce || ciphertext || tag: plaintext.size() + 40 bytes. `key` must be
// kAeadKeyBytes long.
std::string aead_seal(std::string_view key, std::string_view plaintext, std::string_view ad);
// The plaintext of `sealed` if it was sealed under `key` with exactly `ad`;
// Errc::invalid_argument otherwise (too short, altered, other key or ad).
Result<std::string> aead_open(std::string_view key, std::string_view sealed, std::string_view ad);

}  // namespace tg::crypto
