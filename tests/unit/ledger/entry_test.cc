// Entry: range rules at every limit, the canonical layout (each field owns its
// bytes, so changing any field changes the hash), and the hex helpers.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "shared/crypto/hash.h"
#include "shared/ledger/entry.h"
#include "tests/unit/ledger/examples.h"

namespace tg::ledger {
namespace {

using test::simple;

void expect_invalid(const Entry& e, const std::string& message) {
  const Status s = validate(e);
  ASSERT_FALSE(s.ok()) << "accepted: " << message;
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(), message);
}

TEST(LedgerEntry, SimpleAndVectorEntriesAreValid) {
  EXPECT_TRUE(validate(simple()).ok()) << validate(simple()).to_string();
  for (const Entry& e : test::chain()) EXPECT_TRUE(validate(e).ok()) << validate(e).to_string();
}

TEST(LedgerEntry, DefaultEntryIsInvalid) {
  expect_invalid(Entry{}, "entry.seq: must be 1..9007199254740991, got 0");
}

TEST(LedgerEntry, SeqLimits) {
  Entry e = simple();
  e.prev[0] = 1;
  e.seq = kMaxSeq;
  EXPECT_TRUE(validate(e).ok());
  e.seq = kMaxSeq + 1;
  expect_invalid(e, "entry.seq: must be 1..9007199254740991, got 9007199254740992");
}

TEST(LedgerEntry, RequestIdLength) {
  Entry e = simple();
  e.request_id = "x";
  EXPECT_TRUE(validate(e).ok());
  e.request_id = std::string(kMaxRequestId, 'x');
  EXPECT_TRUE(validate(e).ok());
  e.request_id = std::string(kMaxRequestId + 1, 'x');
  expect_invalid(e, "entry.request_id: length must be 1..64, got 65");
  e.request_id.clear();
  expect_invalid(e, "entry.request_id: length must be 1..64, got 0");
}

TEST(LedgerEntry, RequestIdCharacters) {
  Entry e = simple();
  e.request_id = "!~\"\\";  // 0x21, 0x7e and the two JSON-escaped characters
  EXPECT_TRUE(validate(e).ok());
  e.request_id = "a b";
  expect_invalid(e, "entry.request_id: must be visible ASCII (0x21..0x7e), bad byte 0x20 at 1");
  e.request_id = "ab\x7f";
  expect_invalid(e, "entry.request_id: must be visible ASCII (0x21..0x7e), bad byte 0x7f at 2");
  e.request_id = "\xc3\xa9";
  expect_invalid(e, "entry.request_id: must be visible ASCII (0x21..0x7e), bad byte 0xc3 at 0");
  e.request_id = std::string("a\0b", 3);
  expect_invalid(e, "entry.request_id: must be visible ASCII (0x21..0x7e), bad byte 0x00 at 1");
}

TEST(LedgerEntry, ModelLengthAndCharacters) {
  Entry e = simple();
  e.model = std::string(kMaxModel, 'm');
  EXPECT_TRUE(validate(e).ok());
  e.model = std::string(kMaxModel + 1, 'm');
  expect_invalid(e, "entry.model: length must be 1..128, got 129");
  e.model.clear();
  expect_invalid(e, "entry.model: length must be 1..128, got 0");
  e.model = "gpt\t4";
  expect_invalid(e, "entry.model: must be visible ASCII (0x21..0x7e), bad byte 0x09 at 3");
}

TEST(LedgerEntry, TokenLimits) {
  for (uint64_t Entry::*field : {&Entry::input, &Entry::cached, &Entry::output}) {
    Entry e = simple();
    e.*field = 0;
    EXPECT_TRUE(validate(e).ok());
    e.*field = kMaxTokens;
    EXPECT_TRUE(validate(e).ok());
    e.*field = kMaxTokens + 1;
    const Status s = validate(e);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(": must be 0..1000000000000, got 1000000000001"), std::string::npos)
        << s.message();
  }
  Entry e = simple();
  e.cached = kMaxTokens + 1;
  expect_invalid(e, "entry.cached: must be 0..1000000000000, got 1000000000001");
}

TEST(LedgerEntry, PriceVersionLimits) {
  Entry e = simple();
  e.price_version = kMaxPriceVersion;
  EXPECT_TRUE(validate(e).ok());
  e.price_version = kMaxPriceVersion + 1;
  expect_invalid(e, "entry.price_version: must be 1..9007199254740991, got 9007199254740992");
  e.price_version = 0;
  expect_invalid(e, "entry.price_version: must be 1..9007199254740991, got 0");
}

TEST(LedgerEntry, CostLimits) {
  Entry e = simple();
  e.cost = kMaxAmount;
  EXPECT_TRUE(validate(e).ok());
  e.cost = kMaxAmount + 1;
  expect_invalid(e, "entry.cost: must be 0..9000000000000000, got 9000000000000001");
  e.cost = -1;
  expect_invalid(e, "entry.cost: must be 0..9000000000000000, got -1");
  e.cost = 0;
  e.credit = 0;
  EXPECT_TRUE(validate(e).ok());
}

TEST(LedgerEntry, TierLimits) {
  Entry e = simple();
  e.tier_ppm = 0;
  EXPECT_TRUE(validate(e).ok());
  e.tier_ppm = 1000000;
  EXPECT_TRUE(validate(e).ok());
  e.tier_ppm = 1000001;
  expect_invalid(e, "entry.tier_ppm: must be 0..1000000, got 1000001");
}

TEST(LedgerEntry, CreditIsBoundByCost) {
  Entry e = simple();
  e.credit = e.cost;
  EXPECT_TRUE(validate(e).ok());
  e.credit = 0;
  EXPECT_TRUE(validate(e).ok());
  e.credit = e.cost + 1;
  expect_invalid(e, "entry.credit: must be 0..cost (100), got 101");
  e.credit = -1;
  expect_invalid(e, "entry.credit: must be 0..cost (100), got -1");
  e.cost = kMaxAmount;
  e.credit = kMaxAmount;
  EXPECT_TRUE(validate(e).ok());
}

TEST(LedgerEntry, TimeLimits) {
  Entry e = simple();
  e.time_ms = 0;
  EXPECT_TRUE(validate(e).ok());
  e.time_ms = kMaxTimeMs;
  EXPECT_TRUE(validate(e).ok());
  e.time_ms = kMaxTimeMs + 1;
  expect_invalid(e, "entry.time_ms: must be 0..9007199254740991, got 9007199254740992");
  e.time_ms = -1;
  expect_invalid(e, "entry.time_ms: must be 0..9007199254740991, got -1");
}

TEST(LedgerEntry, PrevIsZeroExactlyForSeqOne) {
  Entry e = simple();
  e.prev[31] = 1;
  expect_invalid(e, "entry.prev: must be all zero for seq 1, got " + std::string(62, '0') + "01");
  e.seq = 2;
  EXPECT_TRUE(validate(e).ok());
  e.prev = Hash{};
  expect_invalid(e, "entry.prev: must be the hash of entry 1, got all zero");
}

TEST(LedgerEntry, CanonicalSizeFollowsTheStrings) {
  Entry e = simple();
  EXPECT_EQ(canonical(e).size(), 159u + e.request_id.size() + e.model.size());
  e.request_id = std::string(kMaxRequestId, 'r');
  e.model = std::string(kMaxModel, 'm');
  EXPECT_EQ(canonical(e).size(), 351u);
  e.request_id = "r";
  e.model = "m";
  EXPECT_EQ(canonical(e).size(), 161u);
  EXPECT_EQ(canonical(e).substr(0, kEntryLabel.size()), std::string("tokengo/ledger-entry/v1") + '\0');
}

TEST(LedgerEntry, HashIsSha256OfCanonical) {
  const Entry e = simple();
  EXPECT_EQ(hash(e), crypto::sha256(canonical(e)));
  EXPECT_EQ(hash(e), hash(Entry(e)));
}

TEST(LedgerEntry, StringBoundariesAreUnambiguous) {
  Entry a = simple();
  a.request_id = "ab";
  a.model = "c";
  Entry b = simple();
  b.request_id = "a";
  b.model = "bc";
  EXPECT_NE(canonical(a), canonical(b));
  EXPECT_NE(hash(a), hash(b));
}

// Each mutation changes one field (keeping the entry valid); the canonical
// bytes must then differ exactly inside that field's bytes, and the hash too.
struct Mutation {
  const char* field;
  size_t offset;  // in canonical(simple()): request_id "r1" (L1 2), model "m" (L2 1)
  size_t length;
  std::function<void(Entry&)> apply;
};

TEST(LedgerEntry, ChangingAnyFieldChangesItsBytesAndTheHash) {
  constexpr size_t B = 66 + 2 + 1;
  const std::vector<Mutation> mutations = {
      {"agent[0]", 24, 32, [](Entry& e) { e.agent[0] ^= 0x01; }},
      {"agent[31]", 24, 32, [](Entry& e) { e.agent[31] ^= 0x80; }},
      {"seq", 56, 8, [](Entry& e) { e.seq = 2; e.prev[0] = 1; }},
      {"request_id", 65, 2, [](Entry& e) { e.request_id = "r2"; }},
      {"model", 68, 1, [](Entry& e) { e.model = "n"; }},
      {"input", B, 8, [](Entry& e) { e.input += 1; }},
      {"input high byte", B, 8, [](Entry& e) { e.input += 1ull << 32; }},
      {"cached", B + 8, 8, [](Entry& e) { e.cached += 1; }},
      {"output", B + 16, 8, [](Entry& e) { e.output += 1; }},
      {"estimated", B + 24, 1, [](Entry& e) { e.estimated = !e.estimated; }},
      {"price_version", B + 25, 8, [](Entry& e) { e.price_version += 1; }},
      {"cost", B + 33, 8, [](Entry& e) { e.cost += 1; }},
      {"tier_ppm", B + 41, 4, [](Entry& e) { e.tier_ppm += 1; }},
      {"credit", B + 45, 8, [](Entry& e) { e.credit += 1; }},
      {"time_ms", B + 53, 8, [](Entry& e) { e.time_ms += 1; }},
      {"time_ms high byte", B + 53, 8, [](Entry& e) { e.time_ms += int64_t{1} << 40; }},
  };
  const Entry base = simple();
  const std::string before = canonical(base);
  ASSERT_EQ(before.size(), B + 61 + 32);
  for (const Mutation& m : mutations) {
    Entry e = base;
    m.apply(e);
    ASSERT_TRUE(validate(e).ok()) << m.field << ": " << validate(e).to_string();
    const std::string after = canonical(e);
    ASSERT_EQ(after.size(), before.size()) << m.field;
    bool changed = false;
    for (size_t i = 0; i < before.size(); ++i) {
      if (before[i] == after[i]) continue;
      changed = true;
      // seq 2 also needs a prev; its bytes are the last 32.
      const bool in_prev = std::string(m.field) == "seq" && i >= before.size() - 32;
      EXPECT_TRUE((i >= m.offset && i < m.offset + m.length) || in_prev)
          << m.field << " changed byte " << i;
    }
    EXPECT_TRUE(changed) << m.field;
    EXPECT_NE(hash(e), hash(base)) << m.field;
    EXPECT_FALSE(e == base) << m.field;
  }
}

TEST(LedgerEntry, ChangingAnyPrevByteChangesTheHash) {
  Entry base = simple();
  base.seq = 2;
  base.prev.fill(0x11);
  const Hash h = hash(base);
  for (size_t i = 0; i < base.prev.size(); ++i) {
    Entry e = base;
    e.prev[i] ^= 0x04;
    EXPECT_NE(hash(e), h) << "prev byte " << i;
  }
}

TEST(LedgerEntry, FlippingAnyCanonicalByteChangesTheHash) {
  const Entry e = test::chain()[1];
  const std::string bytes = canonical(e);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string t = bytes;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    EXPECT_NE(crypto::sha256(t), hash(e)) << "byte " << i;
  }
}

TEST(LedgerEntry, EqualityLooksAtEveryField) {
  const Entry a = test::chain()[1];
  Entry b = a;
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a != b);
  b.estimated = false;
  EXPECT_TRUE(a != b);
  b = a;
  b.prev[5] ^= 1;
  EXPECT_FALSE(a == b);
}

TEST(LedgerHex, RoundTrip) {
  const Hash h = hash(simple());
  const std::string hex = to_hex(h);
  EXPECT_EQ(hex.size(), 64u);
  Result<Hash> back = parse_hash(hex);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, h);
  EXPECT_EQ(to_hex(Hash{}), std::string(64, '0'));
}

TEST(LedgerHex, RejectsAnythingButLowercase64Digits) {
  const std::string good = to_hex(hash(simple()));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "hash: must be 64 lowercase hex digits, got 0 characters"},
      {good.substr(0, 63), "hash: must be 64 lowercase hex digits, got 63 characters"},
      {good + "0", "hash: must be 64 lowercase hex digits, got 65 characters"},
      {"A" + good.substr(1), "hash: must be 64 lowercase hex digits, bad character 0x41 at 0"},
      {good.substr(0, 63) + "g", "hash: must be 64 lowercase hex digits, bad character 0x67 at 63"},
      {"0x" + good.substr(2), "hash: must be 64 lowercase hex digits, bad character 0x78 at 1"},
      {" " + good.substr(1), "hash: must be 64 lowercase hex digits, bad character 0x20 at 0"},
  };
  for (const auto& [text, message] : bad) {
    Result<Hash> h = parse_hash(text);
    ASSERT_FALSE(h.ok()) << text;
    EXPECT_EQ(h.status().code(), Errc::parse);
    EXPECT_EQ(h.status().message(), message);
  }
}

}  // namespace
}  // namespace tg::ledger
