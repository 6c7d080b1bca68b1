// LedgerMirror's verification of the hub's entries on a real SQLite file:
// each Verdict (agreed, disputed, unobserved, duplicate, gap, rejected), the
// outbox row an entry takes, and runs: the head read once and written once,
// nothing kept without finish(), one refused entry leaving the others, and
// chain totals that would overflow refused.
#include "agent/ledger_mirror.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shared/billing/money.h"
#include "shared/crypto/ed25519.h"
#include "shared/ledger/chain.h"
#include "shared/sqlite/db.h"
#include "tests/unit/temp_dir.h"

namespace tg::agent {
namespace {

const billing::ModelPrice kPrice{3000000, 1000000, 7000000};
const billing::Usage kUsage{10, 0, 20, false};

class LedgerMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = LedgerMirror::open(tmp_.path() + "/agent.db", self_.public_key());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    mirror_ = std::move(*m);
    auto table = billing::PriceTable::make(1, {{"*", kPrice}});
    ASSERT_TRUE(table.ok());
    ASSERT_TRUE(mirror_->store_prices(*table).ok());
  }

  void record(const std::string& id, const billing::Usage& usage = kUsage) {
    OutboxItem item;
    item.request_id = id;
    item.model = "gpt-x";
    item.usage = usage;
    item.status = 200;
    item.finished_ms = 1700000000000;
    ASSERT_TRUE(mirror_->record_finished(item).ok());
  }

  // The hub's entry for `id` after `prev`, priced as the hub would.
  ledger::Entry entry(const std::string& id, uint64_t seq, const ledger::Hash& prev) const {
    ledger::Entry e = ledger::next_entry(self_.public_key(), seq - 1, prev);
    e.request_id = id;
    e.model = "gpt-x";
    e.input = kUsage.input;
    e.output = kUsage.output;
    e.price_version = 1;
    e.cost = *billing::cost(kUsage, kPrice);
    e.tier_ppm = 800000;
    e.credit = billing::credit(e.cost, e.tier_ppm);
    e.time_ms = 1700000000000;
    return e;
  }

  Verdict apply(const ledger::Entry& e) {
    auto v = mirror_->apply(e, ledger::hash(e), 1);
    EXPECT_TRUE(v.ok()) << v.status().to_string();
    return v.ok() ? *v : Verdict{};
  }

  MirrorHead head() {
    auto h = mirror_->head();
    EXPECT_TRUE(h.ok()) << h.status().to_string();
    return h.ok() ? *h : MirrorHead{};
  }

  uint64_t outbox_count() {
    auto n = mirror_->outbox_count();
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : UINT64_MAX;
  }

  crypto::KeyPair self_ = crypto::KeyPair::generate();
  test::TempDir tmp_{"tg-mirror"};
  std::unique_ptr<LedgerMirror> mirror_;
};

TEST_F(LedgerMirrorTest, ANewLedgerUsesSmallPages) {
  auto st = mirror_->db().prepare("PRAGMA page_size");
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(*st->step(), sqlite::Step::row);
  EXPECT_EQ(st->column_int64(0), kLedgerPageSize);
}

TEST_F(LedgerMirrorTest, AnEntryMatchingOurReadingIsAgreedAndTakesItsOutboxRow) {
  record("r1");
  const ledger::Entry e = entry("r1", 1, ledger::Hash{});
  const Verdict v = apply(e);
  EXPECT_EQ(v.kind, Verdict::Kind::appended);
  EXPECT_EQ(v.status, EntryStatus::agreed) << v.message;
  EXPECT_EQ(outbox_count(), 0u);
  const MirrorHead h = head();
  EXPECT_EQ(h.seq, 1u);
  EXPECT_EQ(h.head, ledger::hash(e));
  EXPECT_EQ(h.total_cost, e.cost);
  EXPECT_EQ(h.total_credit, e.credit);
}

TEST_F(LedgerMirrorTest, AnEntryWhoseUsageDiffersFromOursIsKeptAsADispute) {
  record("r1", billing::Usage{10, 0, 19, false});
  const Verdict v = apply(entry("r1", 1, ledger::Hash{}));
  EXPECT_EQ(v.kind, Verdict::Kind::appended);
  EXPECT_EQ(v.status, EntryStatus::disputed);
  EXPECT_NE(v.message.find("we saw"), std::string::npos) << v.message;
  auto d = mirror_->disputes();
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].request_id, "r1");
  EXPECT_EQ(outbox_count(), 0u);
  EXPECT_EQ(head().seq, 1u);
}

TEST_F(LedgerMirrorTest, AnEntryForACallWeHaveNoRowOfIsKeptAsUnobserved) {
  const Verdict v = apply(entry("lost", 1, ledger::Hash{}));
  EXPECT_EQ(v.kind, Verdict::Kind::appended);
  EXPECT_EQ(v.status, EntryStatus::unobserved);
  EXPECT_EQ(head().seq, 1u);
}

TEST_F(LedgerMirrorTest, AnEntryHeldAlreadyIsADuplicateAndAConflictingOneIsRejected) {
  record("r1");
  const ledger::Entry e = entry("r1", 1, ledger::Hash{});
  ASSERT_EQ(apply(e).kind, Verdict::Kind::appended);
  record("r1");  // the call's row written again (a replay): the duplicate drops it
  EXPECT_EQ(apply(e).kind, Verdict::Kind::duplicate);
  EXPECT_EQ(outbox_count(), 0u);

  const ledger::Entry other = entry("r9", 1, ledger::Hash{});
  const Verdict v = apply(other);
  EXPECT_EQ(v.kind, Verdict::Kind::rejected);
  EXPECT_NE(v.message.find("conflicts"), std::string::npos) << v.message;
  EXPECT_EQ(head().head, ledger::hash(e));
}

TEST_F(LedgerMirrorTest, AnEntryBeyondTheHeadIsAGapAndNothingIsKept) {
  record("r2");
  const ledger::Entry e = entry("r2", 2, ledger::hash(entry("r1", 1, ledger::Hash{})));
  EXPECT_EQ(apply(e).kind, Verdict::Kind::gap);
  EXPECT_EQ(head().seq, 0u);
  EXPECT_EQ(outbox_count(), 1u);
}

TEST_F(LedgerMirrorTest, AWrongHashPrevOrAgentIsRejected) {
  record("r1");
  ledger::Entry e = entry("r1", 1, ledger::Hash{});
  ledger::Hash wrong = ledger::hash(e);
  wrong[0] ^= 1;
  auto v = mirror_->apply(e, wrong, 1);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, Verdict::Kind::rejected);
  EXPECT_NE(v->message.find("does not match"), std::string::npos) << v->message;

  ASSERT_EQ(apply(e).kind, Verdict::Kind::appended);
  ledger::Hash not_head{};
  not_head[5] = 7;
  const Verdict bad_prev = apply(entry("r2", 2, not_head));
  EXPECT_EQ(bad_prev.kind, Verdict::Kind::rejected);
  EXPECT_NE(bad_prev.message.find("does not follow"), std::string::npos) << bad_prev.message;

  ledger::Entry foreign = entry("r2", 2, ledger::hash(e));
  foreign.agent = crypto::KeyPair::generate().public_key();
  EXPECT_EQ(apply(foreign).kind, Verdict::Kind::rejected);
  EXPECT_EQ(head().seq, 1u);
}

TEST_F(LedgerMirrorTest, ARequestSettledTwiceIsRejectedAndItsOutboxRowStays) {
  record("r1");
  const ledger::Entry first = entry("r1", 1, ledger::Hash{});
  ASSERT_EQ(apply(first).kind, Verdict::Kind::appended);
  record("r1");
  const Verdict v = apply(entry("r1", 2, ledger::hash(first)));
  EXPECT_EQ(v.kind, Verdict::Kind::rejected);
  EXPECT_NE(v.message.find("repeats request r1"), std::string::npos) << v.message;
  EXPECT_EQ(outbox_count(), 1u);  // the entry's writes were undone together
  EXPECT_EQ(head().seq, 1u);
}

TEST_F(LedgerMirrorTest, ARunWritesItsHeadOnceAtFinish) {
  std::vector<ledger::Entry> entries;
  ledger::Hash prev{};
  for (int i = 1; i <= 3; ++i) {
    const std::string id = "r" + std::to_string(i);
    record(id);
    entries.push_back(entry(id, static_cast<uint64_t>(i), prev));
    prev = ledger::hash(entries.back());
  }
  auto run = mirror_->begin_run();
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  for (const ledger::Entry& e : entries) {
    auto v = run->apply(e, ledger::hash(e), 1);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->kind, Verdict::Kind::appended);
  }
  EXPECT_EQ(run->head().seq, 3u);
  EXPECT_EQ(head().seq, 0u);  // the identity row is written by finish() only
  ASSERT_TRUE(run->finish().ok());
  const MirrorHead h = head();
  EXPECT_EQ(h.seq, 3u);
  EXPECT_EQ(h.head, prev);
  EXPECT_EQ(h.total_cost, 3 * entries[0].cost);
  EXPECT_EQ(h.total_credit, 3 * entries[0].credit);
  EXPECT_EQ(outbox_count(), 0u);
  auto held = mirror_->entries(0, 10);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->size(), 3u);
}

TEST_F(LedgerMirrorTest, ARunEndedWithoutFinishKeepsNothing) {
  record("r1");
  record("r2");
  const ledger::Entry e1 = entry("r1", 1, ledger::Hash{});
  const ledger::Entry e2 = entry("r2", 2, ledger::hash(e1));
  {
    auto run = mirror_->begin_run();
    ASSERT_TRUE(run.ok());
    ASSERT_EQ(run->apply(e1, ledger::hash(e1), 1)->kind, Verdict::Kind::appended);
    ASSERT_EQ(run->apply(e2, ledger::hash(e2), 1)->kind, Verdict::Kind::appended);
  }
  EXPECT_EQ(head().seq, 0u);
  EXPECT_EQ(outbox_count(), 2u);
  auto held = mirror_->entries(0, 10);
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->empty());
  // The same entries apply afterwards as if the run never happened.
  EXPECT_EQ(apply(e1).kind, Verdict::Kind::appended);
  EXPECT_EQ(apply(e2).kind, Verdict::Kind::appended);
}

TEST_F(LedgerMirrorTest, ARunInsideTheCallersTransactionIsKeptOrUndoneWithIt) {
  record("r1");
  const ledger::Entry e1 = entry("r1", 1, ledger::Hash{});
  for (bool commit : {false, true}) {
    auto outer = sqlite::Tx::begin(mirror_->db());
    ASSERT_TRUE(outer.ok());
    auto run = mirror_->begin_run();
    ASSERT_TRUE(run.ok());
    ASSERT_EQ(run->apply(e1, ledger::hash(e1), 1)->kind, Verdict::Kind::appended);
    ASSERT_TRUE(run->finish().ok());
    if (commit) {
      ASSERT_TRUE(outer->commit().ok());
    } else {
      outer->rollback();
    }
    EXPECT_EQ(head().seq, commit ? 1u : 0u);
    EXPECT_EQ(outbox_count(), commit ? 0u : 1u);
  }
}

TEST_F(LedgerMirrorTest, AfterAStorageErrorARunRefusesToFinish) {
  record("r1");
  const ledger::Entry e1 = entry("r1", 1, ledger::Hash{});
  auto run = mirror_->begin_run();
  ASSERT_TRUE(run.ok());
  // The chain table is gone: the entry's first write fails, not for a
  // reason of the entry's own.
  ASSERT_TRUE(mirror_->db().exec("ALTER TABLE chain RENAME TO chain_gone").ok());
  auto v = run->apply(e1, ledger::hash(e1), 1);
  EXPECT_FALSE(v.ok());
  EXPECT_FALSE(run->finish().ok());
}

TEST_F(LedgerMirrorTest, ARefusedEntryInARunLeavesTheOthers) {
  record("r1");
  record("r2");
  const ledger::Entry e1 = entry("r1", 1, ledger::Hash{});
  const ledger::Entry repeat = entry("r1", 2, ledger::hash(e1));  // exactly-once broken
  const ledger::Entry e2 = entry("r2", 2, ledger::hash(e1));
  auto run = mirror_->begin_run();
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->apply(e1, ledger::hash(e1), 1)->kind, Verdict::Kind::appended);
  EXPECT_EQ(run->apply(repeat, ledger::hash(repeat), 1)->kind, Verdict::Kind::rejected);
  EXPECT_EQ(run->apply(e2, ledger::hash(e2), 1)->kind, Verdict::Kind::appended);
  ASSERT_TRUE(run->finish().ok());
  const MirrorHead h = head();
  EXPECT_EQ(h.seq, 2u);
  EXPECT_EQ(h.head, ledger::hash(e2));
  EXPECT_EQ(h.total_cost, 2 * e1.cost);
  EXPECT_EQ(outbox_count(), 0u);
}

TEST_F(LedgerMirrorTest, ChainTotalsThatWouldOverflowAreRefused) {
  // The largest cost an entry may name; 1,024 of them still fit an int64,
  // the 1,025th does not. They are the hub's statements, kept as disputes.
  auto run = mirror_->begin_run();
  ASSERT_TRUE(run.ok());
  ledger::Hash prev{};
  for (uint64_t seq = 1; seq <= 1025; ++seq) {
    ledger::Entry e = entry("big" + std::to_string(seq), seq, prev);
    e.cost = billing::kMaxAmount;
    e.credit = billing::kMaxAmount;
    auto v = run->apply(e, ledger::hash(e), 1);
    ASSERT_TRUE(v.ok());
    if (seq <= 1024) {
      ASSERT_EQ(v->kind, Verdict::Kind::appended) << seq << ": " << v->message;
      prev = ledger::hash(e);
    } else {
      EXPECT_EQ(v->kind, Verdict::Kind::rejected);
      EXPECT_NE(v->message.find("overflow"), std::string::npos) << v->message;
    }
  }
  ASSERT_TRUE(run->finish().ok());
  const MirrorHead h = head();
  EXPECT_EQ(h.seq, 1024u);
  EXPECT_EQ(h.total_cost, 1024 * billing::kMaxAmount);
}

}  // namespace
}  // namespace tg::agent
