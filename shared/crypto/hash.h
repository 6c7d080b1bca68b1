// Hashing, encodings and randomness: SHA-256, base64, hex, random bytes and
// request ids over libsodium; SHA-1 (only for the WebSocket handshake, RFC 6455
// requires it) over mbedTLS. Pure functions; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <sodium.h>

#include "shared/core/status.h"

namespace tg::crypto {

using Sha256 = std::array<uint8_t, 32>;

// Calls sodium_init once; every other function here calls it too. Aborts if
// libsodium cannot initialise (no entropy source): nothing is safe then.
void init();

Sha256 sha256(std::string_view data);
// Incremental SHA-256 for data that arrives in pieces.
class Sha256Stream {
 public:
  Sha256Stream();
  void update(std::string_view data);
  // Returns the digest of everything passed to update() and resets the
  // stream, so it can hash a new message.
  Sha256 finish();
 private:
  crypto_hash_sha256_state state_;
};

// SHA-1, for Sec-WebSocket-Accept only. Never use it for anything secure.
std::array<uint8_t, 20> sha1(std::string_view data);

// Standard base64 with padding (RFC 4648 section 4).
std::string base64_encode(std::string_view bytes);
// Strict: rejects bad characters, bad padding and whitespace.
Result<std::string> base64_decode(std::string_view text);

// Lowercase hex.
std::string hex_encode(std::string_view bytes);
// Accepts upper- and lowercase digits; rejects odd length and anything else.
Result<std::string> hex_decode(std::string_view text);
// The same into `out`, which the text must fill exactly (`size` bytes from
// 2 * size digits): no allocation, for fixed-size values such as hashes.
Status hex_decode_to(std::string_view text, uint8_t* out, size_t size);
// How many bytes at the start of `text` are lowercase hex digits (0-9a-f):
// text.size() when all are. The one form our hashes and tokens are written
// in; a reader that must refuse any other finds the first bad byte here.
size_t lower_hex_span(std::string_view text) noexcept;

// Cryptographically random bytes from the kernel (libsodium). Requests up to
// 32 bytes come from a per-thread pool refilled 256 bytes at a time, so ids
// and nonces cost no system call each; fork-safe.
void random_bytes(void* out, size_t n);
// 128 random bits as 32 lowercase hex characters.
std::string random_id();
// A request id: 32 lowercase hex characters, the first 12 the Unix time in
// milliseconds (48 bits, so ids sort by creation time), the other 20 random
// (80 bits). Time-ordered keys make the SQLite indexes keyed by request id
// (the hub's pending rows and ledger, the agent's outbox and mirror) grow
// at their right edge: the rows of one commit share a page instead of
// dirtying a random page each (docs/BENCH.md, "Time-ordered request ids").
std::string request_id(int64_t unix_ms);

// The bytes of a fixed-size key, hash or signature, as a view.
template <size_t N>
std::string_view as_view(const std::array<uint8_t, N>& a) {
  return std::string_view(reinterpret_cast<const char*>(a.data()), N);
}

// Copies exactly N bytes (a stored blob) into `out`; false for any other size.
template <size_t N>
bool copy_exact(std::string_view bytes, std::array<uint8_t, N>* out) {
  if (bytes.size() != N) return false;
  for (size_t i = 0; i < N; ++i) (*out)[i] = static_cast<uint8_t>(bytes[i]);
  return true;
}

}  // namespace tg::crypto
