// Sealed secrets at rest: a libsodium secretbox (XSalsa20-Poly1305) under a
// 32-byte seal key that comes from a device key file (mode 0600) or from a
// passphrase through Argon2id, written as one text token `sealed:v1:...`.
// Each sealed value is bound to a context label (e.g. the provider it belongs
// to); opening it under another label fails. Opened secrets go straight into
// a tg::Secret; no message here ever contains secret bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/secret.h"
#include "shared/core/status.h"

namespace tg::crypto {

inline constexpr std::string_view kSealedPrefix = "sealed:";
inline constexpr size_t kSealKeyBytes = 32;
inline constexpr size_t kSealSaltBytes = 16;   // crypto_pwhash_SALTBYTES
inline constexpr size_t kSealNonceBytes = 24;  // crypto_secretbox_NONCEBYTES
inline constexpr size_t kSealMacBytes = 16;    // crypto_secretbox_MACBYTES
inline constexpr size_t kMaxSealContextBytes = 255;
inline constexpr size_t kMaxSealedSecretBytes = 1024;
// The box holds: context length (1 byte), context, secret.
inline constexpr size_t kMaxSealPayloadBytes =
    kSealNonceBytes + kSealMacBytes + 1 + kMaxSealContextBytes + kMaxSealedSecretBytes;
// A whole token: prefix, version, kind, base64 salt and base64 payload.
inline constexpr size_t kMaxSealedTextBytes = 2048;
inline constexpr size_t kMaxPassphraseBytes = 1024;
// Argon2id cost of sealed:v1:argon2id, fixed by the format (libsodium's
// INTERACTIVE level: 2 passes over 64 MiB, well under a second on a router
// with 128 MiB of RAM). Changing these needs a new format version.
inline constexpr unsigned long long kSealArgon2OpsLimit = 2;
inline constexpr size_t kSealArgon2MemLimit = size_t{64} * 1024 * 1024;

enum class SealKind {
  keyfile,   // sealed:v1:keyfile:<base64 nonce||box>
  argon2id,  // sealed:v1:argon2id:<base64 salt>:<base64 nonce||box>
};
const char* seal_kind_name(SealKind kind) noexcept;  // "keyfile" | "argon2id"

// A parsed token. Holds ciphertext only: nothing here is secret.
struct SealedValue {
  SealKind kind = SealKind::keyfile;
  std::string salt;     // argon2id: kSealSaltBytes; keyfile: empty
  std::string payload;  // nonce || secretbox(MAC || plaintext)
};

// True if `value` starts with "sealed:" (and so must parse as a token).
bool is_sealed(std::string_view value) noexcept;
// Strict: version v1, a known kind, canonical padded base64, exact sizes, at
// most kMaxSealedTextBytes. Messages name the part that is wrong.
Result<SealedValue> parse_sealed(std::string_view text);
std::string format_sealed(const SealedValue& value);

// A 32-byte seal key in guarded memory, with what it was made from: a key
// file, or a passphrase and the salt it was stretched with.
class SealKey {
 public:
  static SealKey generate();  // kind keyfile: random bytes for a new key file
  static Result<SealKey> from_bytes(std::string_view key32);
  // Argon2id (kSealArgon2*) over `passphrase` with a 16-byte salt. Costs
  // 64 MiB of memory and tens to hundreds of milliseconds.
  static Result<SealKey> from_passphrase(std::string_view passphrase, std::string_view salt16);
  // A device key file: a regular file of exactly 32 bytes with no permission
  // bits for group or others (else refused, with the chmod that fixes it).
  static Result<SealKey> load_file(const std::string& path);
  // Writes the key to a new file `path` with mode 0600 (fsync'ed); fails if
  // `path` exists, so a key file in use is never replaced.
  Status create_file(const std::string& path) const;

  SealKind kind() const noexcept { return kind_; }
  const std::string& salt() const noexcept { return salt_; }  // argon2id only

 private:
  friend Result<std::string> seal(const SealKey&, std::string_view, std::string_view);
  friend Result<Secret> open(const SealKey&, const SealedValue&, std::string_view);
  SealKey() = default;
  SealKind kind_ = SealKind::keyfile;
  std::string salt_;
  Secret key_;
};

// A fresh random salt for SealKey::from_passphrase.
std::string new_seal_salt();

// Seals `secret` (1..kMaxSealedSecretBytes) for `context`
// (1..kMaxSealContextBytes) under `key` with a random nonce; returns the token
// text (the kind and salt are the key's).
Result<std::string> seal(const SealKey& key, std::string_view context, std::string_view secret);
// Opens a token sealed by seal(). Fails if the key's kind or salt differ from
// the token's, if the box does not authenticate (wrong key, altered or
// truncated bytes), or if it was sealed for another context; the message then
// names that context (never a secret byte).
Result<Secret> open(const SealKey& key, const SealedValue& sealed, std::string_view context);

// Reads a passphrase file: the first line (a trailing "\n" or "\r\n" is
// dropped), 1..kMaxPassphraseBytes, nothing after it; the file must have no
// permission bits for group or others.
Result<Secret> read_passphrase_file(const std::string& path);

}  // namespace tg::crypto
