// ChainWalker: the vector chain passes; reordered, missing, duplicated,
// altered and foreign-agent entries are refused with a message that says
// which and why; a refusal leaves the walker unchanged; resuming; totals.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"
#include "tests/unit/ledger/examples.h"

namespace tg::ledger {
namespace {

crypto::PublicKey agent() { return test::agent_key().public_key(); }

// A valid chain of `n` entries built with next_entry().
std::vector<Entry> build_chain(int n) {
  std::vector<Entry> out;
  uint64_t seq = 0;
  Hash head{};
  for (int i = 0; i < n; ++i) {
    Entry e = next_entry(agent(), seq, head);
    e.request_id = "req-" + std::to_string(i + 1);
    e.model = "gpt-4o-mini";
    e.input = 100;
    e.output = 10;
    e.estimated = i % 3 == 2;
    e.price_version = 1;
    e.cost = 1000 + i;
    e.tier_ppm = 700000;
    e.credit = (1000 + i) * 7 / 10;
    e.time_ms = 1700000000000 + i;
    seq = e.seq;
    head = hash(e);
    out.push_back(e);
  }
  return out;
}

void expect_refused(ChainWalker& w, const Entry& e, Errc code, const std::string& message) {
  const uint64_t seq = w.seq();
  const Hash head = w.head();
  const int64_t cost = w.total_cost();
  const int64_t credit = w.total_credit();
  const uint64_t count = w.count();
  const Status s = w.add(e);
  ASSERT_FALSE(s.ok()) << "accepted seq " << e.seq;
  EXPECT_EQ(s.code(), code);
  EXPECT_EQ(s.message(), message);
  EXPECT_EQ(w.seq(), seq);
  EXPECT_EQ(w.head(), head);
  EXPECT_EQ(w.total_cost(), cost);
  EXPECT_EQ(w.total_credit(), credit);
  EXPECT_EQ(w.count(), count);
}

TEST(LedgerChain, EmptyWalker) {
  const ChainWalker w(agent());
  EXPECT_EQ(w.seq(), 0u);
  EXPECT_EQ(w.head(), Hash{});
  EXPECT_EQ(w.total_cost(), 0);
  EXPECT_EQ(w.total_credit(), 0);
  EXPECT_EQ(w.count(), 0u);
  EXPECT_EQ(w.estimated_count(), 0u);
  EXPECT_EQ(w.agent(), agent());
}

TEST(LedgerChain, VectorChainWalksWithTotals) {
  ChainWalker w(agent());
  const std::vector<Entry> c = test::chain();
  for (const Entry& e : c) ASSERT_TRUE(w.add(e).ok()) << w.add(e).to_string();
  EXPECT_EQ(w.seq(), 3u);
  EXPECT_EQ(w.head(), hash(c[2]));
  EXPECT_EQ(w.total_cost(), 2920);
  EXPECT_EQ(w.total_credit(), 2336);
  EXPECT_EQ(w.count(), 3u);
  EXPECT_EQ(w.estimated_count(), 1u);
}

TEST(LedgerChain, NextEntryFillsSeqAndPrev) {
  Hash head{};
  head.fill(7);
  const Entry e = next_entry(agent(), 41, head);
  EXPECT_EQ(e.agent, agent());
  EXPECT_EQ(e.seq, 42u);
  EXPECT_EQ(e.prev, head);
  EXPECT_TRUE(e.request_id.empty());
  EXPECT_EQ(e.cost, 0);
  const Entry first = next_entry(agent(), 0, Hash{});
  EXPECT_EQ(first.seq, 1u);
  EXPECT_EQ(first.prev, Hash{});
}

TEST(LedgerChain, LongChainWalks) {
  ChainWalker w(agent());
  const std::vector<Entry> c = build_chain(100);
  int64_t cost = 0;
  int64_t credit = 0;
  for (const Entry& e : c) {
    ASSERT_TRUE(w.add(e).ok()) << w.add(e).to_string();
    cost += e.cost;
    credit += e.credit;
  }
  EXPECT_EQ(w.seq(), 100u);
  EXPECT_EQ(w.count(), 100u);
  EXPECT_EQ(w.estimated_count(), 33u);
  EXPECT_EQ(w.total_cost(), cost);
  EXPECT_EQ(w.total_credit(), credit);
  EXPECT_EQ(w.head(), hash(c.back()));
}

TEST(LedgerChain, MissingEntry) {
  ChainWalker w(agent());
  const std::vector<Entry> c = test::chain();
  ASSERT_TRUE(w.add(c[0]).ok());
  expect_refused(w, c[2], Errc::protocol, "seq 3: expected seq 2; an entry is missing or out of order");
}

TEST(LedgerChain, FirstEntryMissing) {
  ChainWalker w(agent());
  expect_refused(w, test::chain()[1], Errc::protocol,
                 "seq 2: expected seq 1; an entry is missing or out of order");
}

TEST(LedgerChain, DuplicatedEntry) {
  ChainWalker w(agent());
  const std::vector<Entry> c = test::chain();
  ASSERT_TRUE(w.add(c[0]).ok());
  ASSERT_TRUE(w.add(c[1]).ok());
  expect_refused(w, c[1], Errc::protocol, "seq 2: expected seq 3; a duplicated or replayed entry");
  expect_refused(w, c[0], Errc::protocol, "seq 1: expected seq 3; a duplicated or replayed entry");
  EXPECT_TRUE(w.add(c[2]).ok());  // the refusal changed nothing
}

TEST(LedgerChain, ReorderedEntries) {
  ChainWalker w(agent());
  const std::vector<Entry> c = test::chain();
  ASSERT_TRUE(w.add(c[0]).ok());
  expect_refused(w, c[2], Errc::protocol, "seq 3: expected seq 2; an entry is missing or out of order");
  ASSERT_TRUE(w.add(c[1]).ok());
  ASSERT_TRUE(w.add(c[2]).ok());
}

TEST(LedgerChain, RenumberedEntryDoesNotLink) {
  // Entry 3 relabelled as seq 2: right number, wrong prev.
  ChainWalker w(agent());
  const std::vector<Entry> c = test::chain();
  ASSERT_TRUE(w.add(c[0]).ok());
  Entry e = c[2];
  e.seq = 2;
  expect_refused(w, e, Errc::protocol,
                 "seq 2: expected prev " + to_hex(hash(c[0])) + ", got " + to_hex(hash(c[1])));
}

TEST(LedgerChain, AlteredEntryBreaksTheNextLink) {
  const std::vector<Entry> c = test::chain();
  Entry altered = c[1];
  altered.cost += 1;  // still valid on its own
  ChainWalker w(agent());
  ASSERT_TRUE(w.add(c[0]).ok());
  ASSERT_TRUE(w.add(altered).ok());
  EXPECT_NE(w.head(), hash(c[1]));
  expect_refused(w, c[2], Errc::protocol,
                 "seq 3: expected prev " + to_hex(hash(altered)) + ", got " + to_hex(hash(c[1])));
}

TEST(LedgerChain, EveryFieldAlteredIsCaughtByTheNextEntry) {
  const std::vector<Entry> c = build_chain(3);
  std::vector<Entry> variants;
  for (int i = 0; i < 14; ++i) variants.push_back(c[1]);
  variants[0].request_id = "req-x";
  variants[1].model = "gpt-4o";
  variants[2].input += 1;
  variants[3].cached += 1;
  variants[4].output += 1;
  variants[5].estimated = !variants[5].estimated;
  variants[6].price_version += 1;
  variants[7].cost += 1;
  variants[8].tier_ppm += 1;
  variants[9].credit -= 1;
  variants[10].time_ms += 1;
  variants[11].prev[0] ^= 1;  // refused at once: does not link to entry 1
  variants[12].agent[0] ^= 1;  // refused at once: another agent
  variants[13].seq = 2;       // unchanged: the control case
  for (size_t i = 0; i < variants.size(); ++i) {
    ChainWalker w(agent());
    ASSERT_TRUE(w.add(c[0]).ok());
    const Status mid = w.add(variants[i]);
    const Status last = mid.ok() ? w.add(c[2]) : mid;
    if (i == 13) {
      EXPECT_TRUE(last.ok()) << last.to_string();
    } else {
      EXPECT_FALSE(last.ok()) << "variant " << i;
      EXPECT_EQ(last.code(), Errc::protocol);
    }
  }
}

TEST(LedgerChain, ForeignAgentEntry) {
  const crypto::PublicKey other = test::key_from_seed(0x40).public_key();
  ChainWalker w(agent());
  Entry e = test::chain()[0];
  e.agent = other;
  expect_refused(w, e, Errc::protocol,
                 "seq 1: agent " + crypto::base64_encode(std::string_view(
                                       reinterpret_cast<const char*>(other.data()), other.size())) +
                     " is not the chain's agent A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=");
  // A whole valid chain of another agent is refused from its first entry.
  ChainWalker theirs(other);
  expect_refused(theirs, test::chain()[0], Errc::protocol,
                 "seq 1: agent A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg= is not the chain's "
                 "agent " +
                     crypto::base64_encode(std::string_view(
                         reinterpret_cast<const char*>(other.data()), other.size())));
}

TEST(LedgerChain, InvalidEntryIsRefused) {
  ChainWalker w(agent());
  Entry e = test::chain()[0];
  e.credit = e.cost + 1;
  expect_refused(w, e, Errc::protocol, "seq 1: entry.credit: must be 0..cost (390), got 391");
  e = test::chain()[0];
  e.model.clear();
  expect_refused(w, e, Errc::protocol, "seq 1: entry.model: length must be 1..128, got 0");
}

TEST(LedgerChain, FirstEntryWithNonZeroPrevIsRefused) {
  ChainWalker w(agent());
  Entry e = test::chain()[0];
  e.prev[0] = 1;
  const Status s = w.add(e);
  ASSERT_FALSE(s.ok());
  const std::string prefix = "seq 1: entry.prev: must be all zero for seq 1, got 01";
  EXPECT_EQ(s.message().substr(0, prefix.size()), prefix);
}

TEST(LedgerChain, ResumeFromAKnownHead) {
  const std::vector<Entry> c = test::chain();
  ChainWalker w(agent(), 1, hash(c[0]));
  EXPECT_EQ(w.seq(), 1u);
  EXPECT_EQ(w.head(), hash(c[0]));
  ASSERT_TRUE(w.add(c[1]).ok());
  ASSERT_TRUE(w.add(c[2]).ok());
  EXPECT_EQ(w.seq(), 3u);
  EXPECT_EQ(w.head(), hash(c[2]));
  EXPECT_EQ(w.count(), 2u);
  EXPECT_EQ(w.total_cost(), 2530);  // only the entries added
  EXPECT_EQ(w.total_credit(), 2024);
}

TEST(LedgerChain, ResumeFromAWrongHead) {
  const std::vector<Entry> c = test::chain();
  Hash wrong = hash(c[0]);
  wrong[31] ^= 1;
  ChainWalker w(agent(), 1, wrong);
  expect_refused(w, c[1], Errc::protocol,
                 "seq 2: expected prev " + to_hex(wrong) + ", got " + to_hex(hash(c[0])));
  ChainWalker late(agent(), 2, hash(c[1]));
  expect_refused(late, c[1], Errc::protocol,
                 "seq 2: expected seq 3; a duplicated or replayed entry");
}

TEST(LedgerChain, LastSeqOfAChain) {
  Hash head{};
  head.fill(9);
  ChainWalker w(agent(), kMaxSeq - 1, head);
  Entry e = next_entry(agent(), kMaxSeq - 1, head);
  e.request_id = "last";
  e.model = "m";
  e.price_version = 1;
  ASSERT_TRUE(w.add(e).ok()) << w.add(e).to_string();
  EXPECT_EQ(w.seq(), kMaxSeq);
  Entry after = next_entry(agent(), kMaxSeq, w.head());
  after.request_id = "after";
  after.model = "m";
  after.price_version = 1;
  expect_refused(w, after, Errc::protocol,
                 "seq 9007199254740992: entry.seq: must be 1..9007199254740991, got "
                 "9007199254740992");
}

TEST(LedgerChain, TotalsStayWithinTheLimit) {
  ChainWalker w(agent());
  Entry e = next_entry(agent(), 0, Hash{});
  e.request_id = "big-1";
  e.model = "m";
  e.price_version = 1;
  e.cost = kMaxAmount - 5;
  e.credit = kMaxAmount - 5;
  ASSERT_TRUE(w.add(e).ok());
  Entry f = next_entry(agent(), 1, w.head());
  f.request_id = "big-2";
  f.model = "m";
  f.price_version = 1;
  f.cost = 5;
  f.credit = 5;
  Entry g = f;
  g.cost = 6;
  expect_refused(w, g, Errc::limit,
                 "seq 2: total cost 8999999999999995 + 6 would pass the limit of 9000000000000000");
  ASSERT_TRUE(w.add(f).ok());
  EXPECT_EQ(w.total_cost(), kMaxTotal);
  EXPECT_EQ(w.total_credit(), kMaxTotal);
}

}  // namespace
}  // namespace tg::ledger
