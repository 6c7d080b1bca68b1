// Signed checkpoints: the hub's Ed25519 signature over the head and totals of
// an agent's chain, the agent's proof of what it is owed. Canonical bytes,
// sign and verify; pure code, no storage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/ledger/chain.h"
#include "shared/ledger/entry.h"

namespace tg::ledger {

// The label that opens canonical(Checkpoint), NUL included.
constexpr std::string_view kCheckpointLabel{"tokengo/ledger-checkpoint/v1\0", 29};
constexpr size_t kCheckpointSize = 29 + 32 + 8 + 32 + 8 + 8 + 8;  // 125 bytes

struct Checkpoint {
  crypto::PublicKey agent{};
  uint64_t seq = 0;           // entries covered: 1..seq (0: the empty chain)
  Hash head{};                // hash of entry `seq` (all zero when seq is 0)
  int64_t total_cost = 0;     // sum of cost over 1..seq, 0..kMaxTotal
  int64_t total_credit = 0;   // sum of credit over 1..seq, 0..total_cost
  int64_t time_ms = 0;        // unix ms when the hub signed, 0..kMaxTimeMs
};

bool operator==(const Checkpoint& a, const Checkpoint& b);
bool operator!=(const Checkpoint& a, const Checkpoint& b);

// Checks the ranges above and that head is zero exactly when seq is 0.
// Errc::invalid_argument, e.g. "checkpoint.total_credit: must be
// 0..total_cost (5), got 6".
Status validate(const Checkpoint& c);

// The checkpoint of everything `walker` accepted, when it started from the
// beginning of the chain (start_seq 0): its agent, seq, head and totals.
Checkpoint checkpoint_of(const ChainWalker& walker, int64_t time_ms);

// "tokengo/ledger-checkpoint/v1" 0x00 | agent 32 | seq u64be | head 32 |
// total_cost u64be | total_credit u64be | time_ms u64be   (kCheckpointSize)
std::string canonical(const Checkpoint& c);
// Ed25519 over canonical(c). Sign only checkpoints that pass validate().
crypto::Signature sign(const crypto::KeyPair& hub_key, const Checkpoint& c);
// Whether `sig` is hub_key's signature over canonical(c).
bool verify(const crypto::PublicKey& hub_key, const Checkpoint& c, const crypto::Signature& sig);

}  // namespace tg::ledger
