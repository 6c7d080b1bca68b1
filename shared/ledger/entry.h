// One settlement of an agent's chain: the Entry struct, its range rules, its
// canonical byte encoding and SHA-256 hash, and the one-line JSON form used by
// `ledger export`/`import`. Pure code: no I/O, no storage. LEDGER.md is the
// reference for every field and byte, with test vectors.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"

namespace tg::ledger {

using Hash = std::array<uint8_t, 32>;

constexpr size_t kMaxRequestId = 64;   // bytes, visible ASCII 0x21..0x7e
constexpr size_t kMaxModel = 128;      // bytes, visible ASCII
constexpr uint64_t kMaxTokens = 1'000'000'000'000;
constexpr int64_t kMaxAmount = 9'000'000'000'000'000;    // micro-units
constexpr uint64_t kMaxSeq = 9'007'199'254'740'991;      // 2^53-1 (exact in JSON)
constexpr uint64_t kMaxPriceVersion = 9'007'199'254'740'991;
constexpr uint32_t kMaxTierPpm = 1'000'000;
constexpr int64_t kMaxTimeMs = 9'007'199'254'740'991;    // 2^53-1
constexpr size_t kMaxJsonLine = 4096;  // from_json() input, bytes

// The label that opens canonical(Entry), NUL included.
constexpr std::string_view kEntryLabel{"tokengo/ledger-entry/v1\0", 24};

struct Entry {
  crypto::PublicKey agent{};   // whose chain (the agent's Ed25519 key)
  uint64_t seq = 0;            // 1, 2, 3 ... within the chain
  std::string request_id;      // 1..64 visible
  std::string model;           // 1..128 visible
  uint64_t input = 0, cached = 0, output = 0;  // tokens, each 0..kMaxTokens
  bool estimated = false;      // usage estimated by the hub, not reported by the vendor
  uint64_t price_version = 0;  // 1..kMaxPriceVersion
  int64_t cost = 0;            // micro-units, 0..kMaxAmount
  uint32_t tier_ppm = 0;       // 0..1000000
  int64_t credit = 0;          // micro-units, 0..cost
  int64_t time_ms = 0;         // unix ms of the settlement, 0..2^53-1
  Hash prev{};                 // hash of entry seq-1; all zero for seq 1
};

bool operator==(const Entry& a, const Entry& b);
bool operator!=(const Entry& a, const Entry& b);

// Checks every range above, and that `prev` is all zero exactly when seq is 1.
// Errc::invalid_argument; the message names the field and the value, e.g.
// "entry.credit: must be 0..cost (120), got 121".
Status validate(const Entry& e);

// The canonical bytes (table in LEDGER.md):
//   "tokengo/ledger-entry/v1" 0x00 | agent 32 | seq u64be | u8 len + request_id |
//   u8 len + model | input u64be | cached u64be | output u64be | estimated u8 |
//   price_version u64be | cost u64be | tier_ppm u32be | credit u64be |
//   time_ms u64be | prev 32
// Requires validate(e) ok. A request_id or model longer than 255 bytes (its
// length would not fit the u8 prefix) aborts the process.
std::string canonical(const Entry& e);
// SHA-256 of canonical(e).
Hash hash(const Entry& e);

// Lowercase, 64 hex digits.
std::string to_hex(const Hash& h);
// Exactly 64 lowercase hex digits; Errc::parse otherwise.
Result<Hash> parse_hash(std::string_view hex);

// One compact JSON object, fields in this fixed order, numbers as plain
// decimal integers, ending with "hash" = to_hex(hash(e)); no newline:
// {"agent":"<base64>","seq":1,"request_id":"...","model":"...","input":..,
//  "cached":..,"output":..,"estimated":false,"price_version":..,"cost":..,
//  "tier_ppm":..,"credit":..,"time_ms":..,"prev":"<hex>","hash":"<hex>"}
// Requires validate(e) ok; a valid entry's line is always under kMaxJsonLine.
std::string to_json(const Entry& e);

// Strict decoder of one line (a trailing "\n" or other JSON whitespace is
// allowed). Errors:
//   Errc::limit    over kMaxJsonLine bytes;
//   Errc::parse    not JSON, nesting deeper than 4, control characters or
//                  \u0000 in strings, trailing bytes;
//   Errc::protocol not an object; unknown, duplicate or missing field; wrong
//                  type; a number that is not a plain decimal integer (no sign,
//                  fraction or exponent) or out of range; a bad string, base64
//                  or hex; validate() failing; "hash" differing from the hash
//                  of the decoded entry ("hash mismatch at seq N: ...").
// Messages name the field and value: "entry.seq: must be an integer
// 1..9007199254740991, got 0".
Result<Entry> from_json(std::string_view line);

}  // namespace tg::ledger
