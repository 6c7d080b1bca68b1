// Settlement's commits, on a real LedgerMirror file: a finished call is on
// disk and claimed within the loop turn it finished in, the calls of one turn
// in one commit, and nothing is claimed before the commit; settles wait for one
// transaction (or ride along with a finished call's), their acks go out only
// after it, one bad entry does not undo the batch, and what is queued at
// destruction is still written.
#include "agent/settlement.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shared/billing/money.h"
#include "shared/ledger/chain.h"
#include "shared/core/loop.h"
#include "shared/crypto/ed25519.h"
#include "tests/unit/temp_dir.h"

namespace tg::agent {
namespace {

const billing::ModelPrice kPrice{3000000, 1000000, 7000000};

class SettlementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = LedgerMirror::open(dir_ + "/agent.db", self_.public_key());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    mirror_ = std::move(*m);
    auto table = billing::PriceTable::make(1, {{"*", kPrice}});
    ASSERT_TRUE(table.ok());
    ASSERT_TRUE(mirror_->store_prices(*table).ok());
  }
  void TearDown() override {
    mirror_.reset();
  }

  std::unique_ptr<Settlement> make(uint64_t delay_ms) {
    return std::make_unique<Settlement>(loop_.get(), mirror_.get(),
                                        [this](const tunnel::Message& m) -> Status {
                                          sent_.push_back(m);
                                          return Status::success();
                                        },
                                        delay_ms);
  }

  static FinishedCall finished(const std::string& id) {
    FinishedCall f;
    f.request_id = id;
    f.model = "gpt-x";
    f.usage = billing::Usage{10, 0, 20, false};
    f.status = 200;
    return f;
  }

  // The hub's settle for `id` as entry `seq` after `prev`.
  tunnel::Settle settle_for(const std::string& id, uint64_t seq, const ledger::Hash& prev) {
    ledger::Entry e = ledger::next_entry(self_.public_key(), seq - 1, prev);
    e.request_id = id;
    e.model = "gpt-x";
    e.input = 10;
    e.output = 20;
    e.price_version = 1;
    e.cost = *billing::cost(billing::Usage{10, 0, 20, false}, kPrice);
    e.tier_ppm = 800000;
    e.credit = billing::credit(e.cost, e.tier_ppm);
    e.time_ms = 1700000000000;
    tunnel::Settle s;
    s.seq = e.seq;
    s.request_id = e.request_id;
    s.model = e.model;
    s.input = e.input;
    s.output = e.output;
    s.price_version = e.price_version;
    s.cost = e.cost;
    s.tier_ppm = e.tier_ppm;
    s.credit = e.credit;
    s.time_ms = e.time_ms;
    s.prev = e.prev;
    s.hash = ledger::hash(e);
    return s;
  }

  // Finishes the current loop turn without waiting: what call_finished
  // posted for this turn (the outbox commit, then the claims) runs.
  void turn() { uv_run(loop_.get(), UV_RUN_NOWAIT); }

  // Runs the loop until the settlement's timer has fired (bounded).
  void run_loop() {
    for (int i = 0; i < 200 && uv_loop_alive(loop_.get()); ++i) uv_run(loop_.get(), UV_RUN_ONCE);
  }

  template <typename T>
  std::vector<T> sent_of() const {
    std::vector<T> out;
    for (const auto& m : sent_) {
      if (auto* p = std::get_if<T>(&m)) out.push_back(*p);
    }
    return out;
  }

  crypto::KeyPair self_ = crypto::KeyPair::generate();
  test::TempDir tmp_{"tg-settlement"};
  std::string dir_ = tmp_.path();
  std::unique_ptr<LedgerMirror> mirror_;
  Loop loop_;
  std::vector<tunnel::Message> sent_;
};

TEST_F(SettlementTest, AFinishedCallIsCommittedAndClaimedInTheSameLoopTurn) {
  auto s = make(1000);  // the commit delay does not hold a finished call
  s->call_finished(finished("r1"));
  EXPECT_EQ(s->stats().commits, 0u);  // not inside the vendor's callback...
  EXPECT_TRUE(sent_.empty());         // ...and no claim before its row is on disk
  turn();
  EXPECT_EQ(s->stats().commits, 1u);
  EXPECT_EQ(s->stats().recorded, 1u);
  ASSERT_EQ(sent_of<tunnel::Claim>().size(), 1u);
  EXPECT_EQ(sent_of<tunnel::Claim>()[0].request_id, "r1");
  // On disk: another connection sees the row now (a kill -9 here keeps it).
  auto other = LedgerMirror::open(dir_ + "/agent.db", self_.public_key());
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  auto items = (*other)->outbox(10);
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].request_id, "r1");
  s->call_finished(finished("r2"));
  turn();
  EXPECT_EQ(s->stats().commits, 2u);
  EXPECT_EQ(sent_of<tunnel::Claim>().size(), 2u);
}

// Under load several calls finish in one turn (one poll returns several
// vendor responses): their rows share one commit, and every claim follows it.
TEST_F(SettlementTest, CallsFinishingInOneTurnShareOneCommit) {
  auto s = make(1000);
  for (int i = 0; i < 5; ++i) s->call_finished(finished("r" + std::to_string(i)));
  EXPECT_TRUE(sent_.empty());
  turn();
  EXPECT_EQ(s->stats().commits, 1u);
  EXPECT_EQ(s->stats().recorded, 5u);
  auto claims = sent_of<tunnel::Claim>();
  ASSERT_EQ(claims.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(claims[static_cast<size_t>(i)].request_id, "r" + std::to_string(i));
  auto n = mirror_->outbox_count();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
}

TEST_F(SettlementTest, QueuedSettlesRideAlongWithAFinishedCallsCommit) {
  auto s = make(1000);
  s->call_finished(finished("r1"));
  turn();
  sent_.clear();
  s->on_ledger_message(settle_for("r1", 1, ledger::Hash{}));
  EXPECT_TRUE(sent_.empty());  // waiting for the commit delay
  s->call_finished(finished("r2"));  // one commit for both, in arrival order
  turn();
  EXPECT_EQ(s->stats().commits, 2u);
  EXPECT_EQ(s->stats().appended, 1u);
  ASSERT_EQ(sent_.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<tunnel::Ack>(sent_[0]));
  EXPECT_EQ(std::get<tunnel::Ack>(sent_[0]).result, "ok");
  ASSERT_TRUE(std::holds_alternative<tunnel::Claim>(sent_[1]));
  EXPECT_EQ(std::get<tunnel::Claim>(sent_[1]).request_id, "r2");
}

TEST_F(SettlementTest, ARunThatCannotFinishUndoesItsBatchAndSendsNoAck) {
  auto s = make(1000);
  s->call_finished(finished("r1"));
  turn();
  sent_.clear();
  // Storage trouble at the end of the run: the head cannot be written.
  ASSERT_TRUE(mirror_->db().exec("DELETE FROM identity").ok());
  s->on_ledger_message(settle_for("r1", 1, ledger::Hash{}));
  s->call_finished(finished("r2"));  // the same batch
  turn();
  EXPECT_TRUE(sent_of<tunnel::Ack>().empty());  // r1 comes again after a sync
  ASSERT_EQ(sent_of<tunnel::Claim>().size(), 1u);  // the claim still goes out
  EXPECT_EQ(sent_of<tunnel::Claim>()[0].request_id, "r2");
  auto held = mirror_->entries(0, 10);
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->empty());
  auto n = mirror_->outbox_count();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);  // r1's row is back; r2's went with the batch (its entry arrives unobserved)
}

TEST_F(SettlementTest, SettlesOfOneBatchAreAppendedTogetherAndABadOneDoesNotUndoThem) {
  auto s = make(5);
  s->call_finished(finished("r1"));
  s->call_finished(finished("r2"));
  run_loop();
  sent_.clear();

  const tunnel::Settle first = settle_for("r1", 1, ledger::Hash{});
  const tunnel::Settle second = settle_for("r2", 2, first.hash);
  tunnel::Settle forged = settle_for("r3", 3, second.hash);
  forged.cost += 1;  // the hash no longer matches its fields
  s->on_ledger_message(first);
  s->on_ledger_message(second);
  s->on_ledger_message(forged);
  EXPECT_TRUE(sent_.empty());  // no ack before the commit
  run_loop();

  const auto acks = sent_of<tunnel::Ack>();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0].result, "ok");
  EXPECT_EQ(acks[1].result, "ok");
  EXPECT_EQ(acks[2].result, "dispute");
  EXPECT_EQ(s->stats().commits, 2u);  // one for the two calls of one turn, one for the three settles
  EXPECT_EQ(s->stats().appended, 2u);
  EXPECT_EQ(s->stats().rejected, 1u);
  auto head = mirror_->head();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 2u);
  EXPECT_EQ(head->head, second.hash);
  auto n = mirror_->outbox_count();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);  // both settled rows left the outbox
}

TEST_F(SettlementTest, AGapAsksForASyncAfterTheCommit) {
  auto s = make(0);
  const tunnel::Settle first = settle_for("r1", 1, ledger::Hash{});
  const tunnel::Settle third = settle_for("r3", 3, first.hash);  // seq 2 missing
  s->on_ledger_message(third);
  run_loop();
  EXPECT_TRUE(sent_of<tunnel::Ack>().empty());
  ASSERT_EQ(sent_of<tunnel::Sync>().size(), 1u);
  EXPECT_EQ(sent_of<tunnel::Sync>()[0].seq, 0u);
}

TEST_F(SettlementTest, QueuedSettlesAreCommittedWhenItIsDestroyed) {
  auto s = make(1000);
  s->call_finished(finished("r1"));
  turn();
  sent_.clear();
  const tunnel::Settle first = settle_for("r1", 1, ledger::Hash{});
  s->on_ledger_message(first);
  s.reset();  // the agent is stopping: the tunnel is gone
  EXPECT_TRUE(sent_.empty());
  auto head = mirror_->head();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 1u);
  EXPECT_EQ(head->head, first.hash);
  auto n = mirror_->outbox_count();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_F(SettlementTest, ReconnectCommitsQueuedSettlesBeforeSyncing) {
  auto s = make(1000);
  s->call_finished(finished("r1"));  // committed and claimed in this turn
  turn();
  ASSERT_EQ(sent_.size(), 1u);
  s->on_ledger_message(settle_for("r1", 1, ledger::Hash{}));
  EXPECT_EQ(sent_.size(), 1u);
  s->on_ready();  // commits the queue, then syncs and claims the whole outbox
  EXPECT_EQ(s->stats().commits, 2u);
  // The ack of the queued settle, then the sync at the new head; r1 left
  // the outbox with its settle, so nothing is claimed again.
  ASSERT_EQ(sent_.size(), 3u);
  ASSERT_TRUE(std::holds_alternative<tunnel::Ack>(sent_[1]));
  EXPECT_EQ(std::get<tunnel::Ack>(sent_[1]).result, "ok");
  ASSERT_TRUE(std::holds_alternative<tunnel::Sync>(sent_[2]));
  EXPECT_EQ(std::get<tunnel::Sync>(sent_[2]).seq, 1u);
}

// The hub's call ticket goes to disk with the outbox row and back in every
// claim, the first and those replayed after a reconnect (a restarted hub
// bills them from it).
TEST_F(SettlementTest, TheCallTicketIsKeptAndReturnedWithEveryClaim) {
  auto s = make(1000);
  FinishedCall f = finished("r1");
  f.ticket = "1.7.1.1700000000000." + std::string(64, 'c');
  s->call_finished(f);
  s->call_finished(finished("r2"));  // from a hub without tickets
  turn();
  auto claims = sent_of<tunnel::Claim>();
  ASSERT_EQ(claims.size(), 2u);
  EXPECT_EQ(claims[0].ticket, f.ticket);
  EXPECT_EQ(claims[1].ticket, "");
  auto item = mirror_->outbox(10);
  ASSERT_TRUE(item.ok());
  ASSERT_EQ(item->size(), 2u);
  EXPECT_EQ((*item)[0].ticket, f.ticket);
  // The agent restarts: a new mirror and settlement over the same file.
  s.reset();
  mirror_.reset();
  sent_.clear();
  auto m = LedgerMirror::open(dir_ + "/agent.db", self_.public_key());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  mirror_ = std::move(*m);
  s = make(1000);
  s->on_ready();
  claims = sent_of<tunnel::Claim>();
  ASSERT_EQ(claims.size(), 2u);
  EXPECT_EQ(claims[0].request_id, "r1");
  EXPECT_EQ(claims[0].ticket, f.ticket);
  EXPECT_EQ(claims[1].ticket, "");
}

}  // namespace
}  // namespace tg::agent
