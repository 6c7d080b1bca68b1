// The chain of LEDGER.md section 6 (agent seed 00..1f, hub seed 20..3f),
// shared by the ledger tests.
#pragma once

#include <string>
#include <vector>

#include "shared/crypto/ed25519.h"
#include "shared/crypto/hash.h"
#include "shared/ledger/checkpoint.h"
#include "shared/ledger/entry.h"

namespace tg::ledger::test {

// KeyPair from the 32-byte seed first, first+1, ... first+31.
crypto::KeyPair key_from_seed(int first);
crypto::KeyPair agent_key();  // seed 00..1f
crypto::KeyPair hub_key();    // seed 20..3f

// The three entries of the vector chain, linked (prev = hash of the previous).
std::vector<Entry> chain();
// The checkpoint after entry 3, time_ms 1717171800000.
Checkpoint checkpoint();

// A valid entry 1 of agent_key()'s chain with small values, for limit tests.
Entry simple();

template <size_t N>
std::string hex_of(const std::array<uint8_t, N>& a) {
  return crypto::hex_encode(std::string_view(reinterpret_cast<const char*>(a.data()), N));
}

}  // namespace tg::ledger::test
