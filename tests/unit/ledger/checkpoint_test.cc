// Checkpoints: validation, canonical layout, sign/verify, and refusal of a
// flipped bit in any field or signature byte, or another key.
#include <gtest/gtest.h>

#include <string>

#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"
#include "shared/ledger/checkpoint.h"
#include "tests/unit/ledger/examples.h"

namespace tg::ledger {
namespace {

using test::checkpoint;
using test::hub_key;

void expect_invalid(const Checkpoint& c, const std::string& message) {
  const Status s = validate(c);
  ASSERT_FALSE(s.ok()) << "accepted: " << message;
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(), message);
}

TEST(LedgerCheckpoint, VectorCheckpointIsValid) {
  EXPECT_TRUE(validate(checkpoint()).ok()) << validate(checkpoint()).to_string();
  EXPECT_TRUE(validate(Checkpoint{}).ok());  // the empty chain
}

TEST(LedgerCheckpoint, Limits) {
  Checkpoint c = checkpoint();
  c.seq = kMaxSeq;
  EXPECT_TRUE(validate(c).ok());
  c.seq = kMaxSeq + 1;
  expect_invalid(c, "checkpoint.seq: must be 0..9007199254740991, got 9007199254740992");
  c = checkpoint();
  c.total_cost = kMaxTotal;
  EXPECT_TRUE(validate(c).ok());
  c.total_cost = kMaxTotal + 1;
  expect_invalid(c, "checkpoint.total_cost: must be 0..9000000000000000, got 9000000000000001");
  c.total_cost = -1;
  expect_invalid(c, "checkpoint.total_cost: must be 0..9000000000000000, got -1");
  c = checkpoint();
  c.total_credit = c.total_cost;
  EXPECT_TRUE(validate(c).ok());
  c.total_credit = c.total_cost + 1;
  expect_invalid(c, "checkpoint.total_credit: must be 0..total_cost (2920), got 2921");
  c.total_credit = -1;
  expect_invalid(c, "checkpoint.total_credit: must be 0..total_cost (2920), got -1");
  c = checkpoint();
  c.time_ms = kMaxTimeMs;
  EXPECT_TRUE(validate(c).ok());
  c.time_ms = kMaxTimeMs + 1;
  expect_invalid(c, "checkpoint.time_ms: must be 0..9007199254740991, got 9007199254740992");
}

TEST(LedgerCheckpoint, HeadIsZeroExactlyForSeqZero) {
  Checkpoint c = checkpoint();
  c.head = Hash{};
  expect_invalid(c, "checkpoint.head: must be the hash of entry 3, got all zero");
  c = Checkpoint{};
  c.head[0] = 0xab;
  expect_invalid(c, "checkpoint.head: must be all zero for seq 0, got ab" + std::string(62, '0'));
}

TEST(LedgerCheckpoint, OfAWalker) {
  ChainWalker w(test::agent_key().public_key());
  for (const Entry& e : test::chain()) ASSERT_TRUE(w.add(e).ok());
  EXPECT_TRUE(checkpoint_of(w, 1717171800000) == checkpoint());
  const ChainWalker empty(test::agent_key().public_key());
  const Checkpoint c = checkpoint_of(empty, 5);
  EXPECT_EQ(c.seq, 0u);
  EXPECT_EQ(c.head, Hash{});
  EXPECT_EQ(c.time_ms, 5);
  EXPECT_TRUE(validate(c).ok());
}

TEST(LedgerCheckpoint, CanonicalSize) {
  EXPECT_EQ(canonical(checkpoint()).size(), kCheckpointSize);
  EXPECT_EQ(canonical(Checkpoint{}).size(), 125u);
  EXPECT_EQ(canonical(checkpoint()).substr(0, 29), std::string("tokengo/ledger-checkpoint/v1") + '\0');
}

TEST(LedgerCheckpoint, SignAndVerify) {
  const crypto::Signature sig = sign(hub_key(), checkpoint());
  EXPECT_TRUE(verify(hub_key().public_key(), checkpoint(), sig));
  // Deterministic (Ed25519).
  EXPECT_EQ(sign(hub_key(), checkpoint()), sig);
}

TEST(LedgerCheckpoint, AnotherKeyFails) {
  const crypto::Signature sig = sign(hub_key(), checkpoint());
  EXPECT_FALSE(verify(test::agent_key().public_key(), checkpoint(), sig));
  EXPECT_FALSE(verify(crypto::KeyPair::generate().public_key(), checkpoint(), sig));
  const crypto::Signature other = sign(test::agent_key(), checkpoint());
  EXPECT_FALSE(verify(hub_key().public_key(), checkpoint(), other));
}

TEST(LedgerCheckpoint, AnyFlippedSignatureBitFails) {
  const crypto::Signature sig = sign(hub_key(), checkpoint());
  for (size_t i = 0; i < sig.size() * 8; ++i) {
    crypto::Signature bad = sig;
    bad[i / 8] = static_cast<uint8_t>(bad[i / 8] ^ (1u << (i % 8)));
    EXPECT_FALSE(verify(hub_key().public_key(), checkpoint(), bad)) << "bit " << i;
  }
}

TEST(LedgerCheckpoint, AnyFlippedFieldBitFails) {
  const crypto::Signature sig = sign(hub_key(), checkpoint());
  const crypto::PublicKey hub = hub_key().public_key();
  for (size_t i = 0; i < 256; ++i) {
    Checkpoint c = checkpoint();
    c.agent[i / 8] = static_cast<uint8_t>(c.agent[i / 8] ^ (1u << (i % 8)));
    EXPECT_FALSE(verify(hub, c, sig)) << "agent bit " << i;
    c = checkpoint();
    c.head[i / 8] = static_cast<uint8_t>(c.head[i / 8] ^ (1u << (i % 8)));
    EXPECT_FALSE(verify(hub, c, sig)) << "head bit " << i;
  }
  for (int bit = 0; bit < 64; ++bit) {
    const uint64_t m = uint64_t{1} << bit;
    Checkpoint c = checkpoint();
    c.seq ^= m;
    EXPECT_FALSE(verify(hub, c, sig)) << "seq bit " << bit;
    c = checkpoint();
    c.total_cost = static_cast<int64_t>(static_cast<uint64_t>(c.total_cost) ^ m);
    EXPECT_FALSE(verify(hub, c, sig)) << "total_cost bit " << bit;
    c = checkpoint();
    c.total_credit = static_cast<int64_t>(static_cast<uint64_t>(c.total_credit) ^ m);
    EXPECT_FALSE(verify(hub, c, sig)) << "total_credit bit " << bit;
    c = checkpoint();
    c.time_ms = static_cast<int64_t>(static_cast<uint64_t>(c.time_ms) ^ m);
    EXPECT_FALSE(verify(hub, c, sig)) << "time_ms bit " << bit;
  }
}

TEST(LedgerCheckpoint, CheckpointBytesAreNotEntryBytes) {
  // The labels differ from the first byte after "tokengo/ledger-".
  EXPECT_NE(canonical(checkpoint()).substr(0, 24), canonical(test::chain()[0]).substr(0, 24));
}

TEST(LedgerCheckpoint, Equality) {
  Checkpoint c = checkpoint();
  EXPECT_TRUE(c == checkpoint());
  c.time_ms += 1;
  EXPECT_TRUE(c != checkpoint());
}

}  // namespace
}  // namespace tg::ledger
