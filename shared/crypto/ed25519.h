// Ed25519 identity keys over libsodium: generate, save and load key files,
// sign and verify. The private key lives in a Secret (guarded, wiped memory).
// Key files are written with mode 0600; a private key file readable by group
// or others is refused at load time with a message that says how to fix it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/secret.h"
#include "shared/core/status.h"

namespace tg::crypto {

using PublicKey = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;

class KeyPair {
 public:
  static KeyPair generate();
  // From a 32-byte seed (tests and test vectors).
  static Result<KeyPair> from_seed(std::string_view seed32);

  const PublicKey& public_key() const noexcept { return public_; }
  // Public key as base64 (how operators see and type agent keys).
  std::string public_base64() const;
  Signature sign(std::string_view message) const;
  // A 32-byte symmetric key derived from this key's seed for one purpose
  // (`context`: exactly 8 characters, libsodium's crypto_kdf), so a program
  // holding one identity key needs no second key file.
  Secret derive_key(std::string_view context, uint64_t id) const;

  // Writes the key to `path` (mode 0600, created or replaced atomically).
  // File format: one line "tokengo-ed25519-v1 <base64 seed>\n".
  Status save(const std::string& path) const;
  static Result<KeyPair> load(const std::string& path);

 private:
  KeyPair() = default;
  PublicKey public_{};
  Secret secret_;  // 64-byte libsodium secret key (seed || public)
};

bool verify(const PublicKey& key, std::string_view message, const Signature& sig);
// Parses a base64 public key as printed by public_base64().
Result<PublicKey> parse_public_key(std::string_view base64);

}  // namespace tg::crypto
