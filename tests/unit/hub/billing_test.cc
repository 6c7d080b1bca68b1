// Billing over a real SQLite ledger store and a real loop; the agent's side
// of the tunnel is a list of the messages Billing sent.
#include "hub/billing.h"

#include <gtest/gtest.h>

#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/call_ticket.h"
#include "hub/ledger_sqlite.h"
#include "hub/user_store.h"
#include "shared/crypto/hash.h"
#include "shared/ledger/checkpoint.h"
#include "tests/unit/hub/hub_test_util.h"

namespace tg::hub {
namespace {

constexpr uint32_t kTier = 800000;
// An OpenAI answer with usage: 12 prompt tokens (4 cached), 30 completion.
constexpr const char* kAnswer =
    R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",)"
    R"("content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,)"
    R"("prompt_tokens_details":{"cached_tokens":4}}})";

billing::PriceTable prices(uint64_t version = 1) {
  auto t = billing::PriceTable::make(
      version, {{"*", billing::ModelPrice{3000000, 1000000, 7000000}},
                {"gpt-cheap", billing::ModelPrice{100000, 50000, 400000}}});
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(*t);
}

class BillingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto users = UserStore::open(dir.file("hub.db"));
    ASSERT_TRUE(users.ok());
    ASSERT_TRUE(users->add_user("alice", 1).ok());
    auto s = SqliteLedgerStore::open(dir.file("hub.db"));
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store = std::move(*s);
    ASSERT_TRUE(store->credit_user("alice", 10 * billing::kMicrosPerUnit, 1).ok());
    auto bal = store->user_balance("alice");
    ASSERT_TRUE(bal.ok() && *bal);
    user_id = (*bal)->user_id;
    agent = crypto::KeyPair::generate().public_base64();
    other = crypto::KeyPair::generate().public_base64();
    settings.settle_batch = 1024;
    settings.claim_grace_ms = 200;
    settings.claim_window_ms = 3600000;
    settings.checkpoint_every = 2;
    make_billing();
  }
  // (Re)creates `billing` with `settings`.
  void make_billing() {
    if (billing) billing->stop();
    billing = std::make_unique<Billing>(
        loop, settings, store.get(), prices(), &key,
        [this](const std::string& to, const tunnel::Message& m) {
          sent.emplace_back(to, m);
          return online;
        },
        [](const std::string&) -> Result<uint32_t> { return kTier; });
    ASSERT_TRUE(billing->start().ok());
  }
  // Another hub process with the same key over `over` (a restart, or a
  // restored database); what it sends to agents goes to `to_agent`.
  std::unique_ptr<Billing> second_hub(LedgerStore* over, std::vector<tunnel::Message>* to_agent) {
    return std::make_unique<Billing>(
        loop, settings, over, prices(), &key,
        [to_agent](const std::string&, const tunnel::Message& m) {
          to_agent->push_back(m);
          return true;
        },
        [](const std::string&) -> Result<uint32_t> { return kTier; });
  }
  void TearDown() override {
    billing->stop();
    billing.reset();
    ASSERT_TRUE(loop.close().ok());
  }

  // Runs the loop until `done` or 5 s.
  template <typename F>
  void run_until(F done) {
    const uint64_t end = uv_now(loop) + 5000;
    while (!done() && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
    ASSERT_TRUE(done());
  }
  void run_for(uint64_t ms) {
    Timer t(loop);
    bool fired = false;
    t.start(ms, 0, [&] { fired = true; });
    while (!fired) uv_run(loop, UV_RUN_ONCE);
  }

  template <typename T>
  std::vector<T> sent_of() const {
    std::vector<T> out;
    for (const auto& [to, m] : sent) {
      if (auto* p = std::get_if<T>(&m)) out.push_back(*p);
    }
    return out;
  }

  Ticket* open(const std::string& id, const std::string& model = "gpt-x") {
    auto t = billing->open(id, agent, user_id, model, billing::Api::chat, false, 100);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? *t : nullptr;
  }
  static void answer(Ticket* t, std::string_view body = kAnswer) {
    t->meter().response_status(200);
    t->meter().response_body(body);
  }
  static tunnel::Claim claim(const std::string& id, uint64_t in, uint64_t cached, uint64_t out,
                             const std::string& model = "gpt-x") {
    tunnel::Claim c;
    c.request_id = id;
    c.model = model;
    c.input = in;
    c.cached = cached;
    c.output = out;
    return c;
  }

  // Requests req-1..req-n answered, ended and claimed (8/4/30 tokens), then
  // waits until all n are settled.
  void settle_requests(int n) {
    const uint64_t before = billing->settled_count();
    for (int i = 1; i <= n; ++i) {
      const std::string id = "req-" + std::to_string(i);
      Ticket* t = open(id);
      answer(t);
      billing->ended(t);
      billing->on_claim(agent, claim(id, 8, 4, 30));
    }
    run_until([&] { return billing->settled_count() == before + static_cast<uint64_t>(n); });
  }

  testing::TempDir dir;
  Loop loop;
  std::unique_ptr<SqliteLedgerStore> store;
  crypto::KeyPair key = crypto::KeyPair::generate();
  BillingSettings settings;
  std::unique_ptr<Billing> billing;
  std::vector<std::pair<std::string, tunnel::Message>> sent;
  bool online = true;
  int64_t user_id = 0;
  std::string agent;
  std::string other;
};

TEST_F(BillingTest, AgreeingClaimSettlesOnceWithExactCostAndCredit) {
  Ticket* t = open("req-1");
  answer(t);
  billing->ended(t);
  billing->on_claim(agent, claim("req-1", 8, 4, 30));
  run_until([&] { return billing->settled_count() == 1; });
  // 8 x 3 + 4 x 1 + 30 x 7 = 238 micro-units; credit floor(238 x 0.8) = 190.
  auto s = store->settled("req-1");
  ASSERT_TRUE(s.ok() && *s);
  EXPECT_EQ((*s)->entry.cost, 238);
  EXPECT_EQ((*s)->entry.credit, 190);
  EXPECT_EQ((*s)->entry.seq, 1u);
  EXPECT_FALSE((*s)->entry.estimated);
  EXPECT_EQ(billing->mismatch_count(), 0u);
  auto bal = store->user_balance("alice");
  EXPECT_EQ((*bal)->balance, 10 * billing::kMicrosPerUnit - 238);
  // The agent got the prices first, then the entry with its hash.
  auto p = sent_of<tunnel::Prices>();
  auto st = sent_of<tunnel::Settle>();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].version, 1u);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].hash, ledger::hash((*s)->entry));
  EXPECT_EQ(st[0].cost, 238);
  // Pending row gone.
  auto pending = store->pending("req-1");
  EXPECT_TRUE(pending.ok() && !*pending);
}

// One batch with entries of two agents, interleaved: each chain grows from
// its own head with its own key (parsed once per agent and batch). A batch
// naming a malformed agent key is refused whole.
TEST_F(BillingTest, ABatchSettlesEachAgentsEntriesOnItsOwnChain) {
  auto order = [&](const std::string& id, const std::string& who) {
    SettleOrder o;
    o.request_id = id;
    o.agent = who;
    o.user_id = user_id;
    o.model = "gpt-cheap";
    o.usage.input = 10;
    o.price_version = 1;
    o.cost = 1;
    o.tier_ppm = 800000;
    o.credit = 0;
    o.time_ms = 1700000000000;
    return o;
  };
  auto done = store->settle({order("b-1", agent), order("b-2", other), order("b-3", agent),
                             order("b-4", other), order("b-5", agent)});
  ASSERT_TRUE(done.ok()) << done.status().to_string();
  ASSERT_EQ(done->size(), 5u);
  const uint64_t want_seq[] = {1, 1, 2, 2, 3};
  for (size_t i = 0; i < done->size(); ++i) {
    const Settled& s = (*done)[i];
    EXPECT_EQ(s.agent, i % 2 == 0 ? agent : other) << i;
    EXPECT_EQ(s.entry.agent, *crypto::parse_public_key(s.agent)) << i;
    EXPECT_EQ(s.entry.seq, want_seq[i]) << i;
    EXPECT_EQ(s.hash, ledger::hash(s.entry)) << i;
  }
  EXPECT_EQ((*done)[2].entry.prev, (*done)[0].hash);
  EXPECT_EQ((*done)[4].entry.prev, (*done)[2].hash);
  EXPECT_EQ((*done)[3].entry.prev, (*done)[1].hash);
  auto a = store->chain(agent);
  auto b = store->chain(other);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->seq, 3u);
  EXPECT_EQ(a->head, (*done)[4].hash);
  EXPECT_EQ(b->seq, 2u);
  EXPECT_EQ(b->head, (*done)[3].hash);

  auto bad = store->settle({order("b-6", agent), order("b-7", "not-a-key")});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Errc::invalid_argument);
  EXPECT_NE(bad.status().message().find("bad agent key 'not-a-key'"), std::string::npos)
      << bad.status().message();
  auto kept = store->settled("b-6");
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(*kept) << "an entry of the refused batch was kept";
  auto a2 = store->chain(agent);
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a2->seq, 3u);

  // Repeats, from an earlier batch and within this one: the entry already
  // held comes back (created false), debited once, and the chain goes on.
  auto before = store->user_balance("alice");
  ASSERT_TRUE(before.ok() && *before);
  auto again = store->settle({order("b-1", agent), order("b-8", agent), order("b-8", agent)});
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  ASSERT_EQ(again->size(), 3u);
  EXPECT_FALSE((*again)[0].created);
  EXPECT_EQ((*again)[0].hash, (*done)[0].hash);
  EXPECT_EQ((*again)[0].entry.seq, 1u);
  EXPECT_TRUE((*again)[1].created);
  EXPECT_EQ((*again)[1].entry.seq, 4u);
  EXPECT_EQ((*again)[1].entry.prev, (*done)[4].hash);
  EXPECT_FALSE((*again)[2].created);
  EXPECT_EQ((*again)[2].hash, (*again)[1].hash);
  auto a3 = store->chain(agent);
  ASSERT_TRUE(a3.ok());
  EXPECT_EQ(a3->seq, 4u);
  EXPECT_EQ(a3->head, (*again)[1].hash);
  auto after = store->user_balance("alice");
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_EQ((*before)->balance - (*after)->balance, 1);  // only b-8, once
}

TEST_F(BillingTest, ReplayedClaimGetsTheSameEntryNotASecondOne) {
  Ticket* t = open("req-1");
  answer(t);
  billing->ended(t);
  billing->on_claim(agent, claim("req-1", 8, 4, 30));
  run_until([&] { return billing->settled_count() == 1; });
  billing->on_claim(agent, claim("req-1", 8, 4, 30));
  billing->on_claim(agent, claim("req-1", 999, 0, 999));  // even with other numbers
  run_until([&] { return sent_of<tunnel::Settle>().size() == 3; });
  auto st = sent_of<tunnel::Settle>();
  EXPECT_EQ(st[1], st[0]);
  EXPECT_EQ(st[2], st[0]);
  EXPECT_EQ(billing->settled_count(), 1u);
  auto chain = store->chain(agent);
  EXPECT_EQ(chain->seq, 1u);
}

TEST_F(BillingTest, MismatchSettlesTheHubsReading) {
  Ticket* t = open("req-1");
  answer(t);
  billing->ended(t);
  billing->on_claim(agent, claim("req-1", 80, 4, 300));  // an agent inflating its usage
  run_until([&] { return billing->settled_count() == 1; });
  EXPECT_EQ(billing->mismatch_count(), 1u);
  auto s = store->settled("req-1");
  EXPECT_EQ((*s)->entry.input, 8u);
  EXPECT_EQ((*s)->entry.output, 30u);
}

TEST_F(BillingTest, ClaimsForOthersOrUnknownRequestsAreRefused) {
  Ticket* t = open("req-1");
  answer(t);
  billing->ended(t);
  billing->on_claim(other, claim("req-1", 8, 4, 30));
  billing->on_claim(agent, claim("never-sent", 1, 0, 1));
  auto r = sent_of<tunnel::ClaimRejected>();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].code, "not_yours");
  EXPECT_EQ(r[1].code, "unknown_request");
  EXPECT_EQ(sent[0].first, other);
  // The real agent's claim still settles.
  billing->on_claim(agent, claim("req-1", 8, 4, 30));
  run_until([&] { return billing->settled_count() == 1; });
}

TEST_F(BillingTest, LostStreamSettlesTheAgentsLaterClaim) {
  Ticket* t = open("req-1");
  t->meter().response_status(200);
  billing->lost(t);  // tunnel died before any byte
  auto p = store->pending("req-1");
  ASSERT_TRUE(p.ok() && *p && (*p)->observed);
  // After a reconnect the agent claims what it forwarded.
  billing->on_claim(agent, claim("req-1", 8, 4, 30));
  run_until([&] { return billing->settled_count() == 1; });
  auto s = store->settled("req-1");
  EXPECT_EQ((*s)->entry.output, 30u);
}

TEST_F(BillingTest, UnclaimedLostStreamSettlesTheHubsReadingAfterTheGrace) {
  Ticket* t = open("req-1");
  t->meter().response_status(200);
  t->meter().response_body(kAnswer);
  billing->lost(t);
  Ticket* t2 = open("req-2");
  const std::string ticket2 = t2->token();
  billing->lost(t2);  // nothing delivered: nothing owed
  run_until([&] { return billing->settled_count() == 1; });
  auto s = store->settled("req-1");
  ASSERT_TRUE(s.ok() && *s);
  EXPECT_EQ((*s)->entry.cost, 238);
  // req-2: nothing owed, and that stands: its row is kept, cancelled, for
  // the claim window, so the agent's ticket cannot reopen it.
  run_until([&] {
    auto p = store->pending("req-2");
    return p.ok() && *p && (*p)->cancelled;
  });
  auto none = store->settled("req-2");
  EXPECT_TRUE(none.ok() && !*none);
  tunnel::Claim late = claim("req-2", 8, 4, 30);
  late.ticket = ticket2;
  billing->on_claim(agent, late);
  auto r = sent_of<tunnel::ClaimRejected>();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, "unknown_request");
  // Dropped once the claim window is over.
  settings.claim_window_ms = 1;
  make_billing();
  run_until([&] {
    auto p = store->pending("req-2");
    return p.ok() && !*p;
  });
}

// ---- call tickets ----

TEST_F(BillingTest, OpeningWritesNothingAndTheTicketNamesTheAttempt) {
  Ticket* t = open("req-1");
  auto p = store->pending("req-1");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_value());
  CallTickets tickets(key);
  auto back = tickets.check(t->token(), "req-1", agent, "gpt-x");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->user_id, user_id);
  EXPECT_EQ(back->price_version, 1u);
  EXPECT_GT(back->created_ms, 0);
  EXPECT_LE(t->token().size(), tunnel::kMaxTicket);
  // Sealed: the agent learns neither the user nor the time, and two tickets
  // of the same attempt differ.
  EXPECT_EQ(t->token().find(std::to_string(back->created_ms)), std::string::npos);
  EXPECT_NE(tickets.issue(*back), tickets.issue(*back));
}

// A hub killed mid-request kept nothing of it; the restarted hub bills the
// agent's claim from the ticket it carries, once, to the right user.
TEST_F(BillingTest, AClaimTheHubNoLongerHoldsIsBilledFromItsTicket) {
  Ticket* t = open("req-1");
  const std::string ticket = t->token();
  answer(t);
  std::vector<tunnel::Message> to_agent;
  auto second = second_hub(store.get(), &to_agent);
  Billing& restarted = *second;
  ASSERT_TRUE(restarted.start().ok());
  tunnel::Claim c = claim("req-1", 8, 4, 30);
  c.ticket = ticket;
  restarted.on_claim(agent, c);
  restarted.on_claim(agent, c);  // a replay before the flush: still one entry
  run_until([&] { return restarted.settled_count() == 1; });
  auto s = store->settled("req-1");
  ASSERT_TRUE(s.ok() && *s);
  EXPECT_EQ((*s)->entry.cost, 238);
  EXPECT_EQ(store->user_balance("alice").value()->balance, 10 * billing::kMicrosPerUnit - 238);
  restarted.on_claim(agent, c);  // after it: the same entry again
  run_until([&] {
    size_t n = 0;
    for (const auto& m : to_agent) n += std::holds_alternative<tunnel::Settle>(m);
    return n == 2;
  });
  EXPECT_EQ(restarted.settled_count(), 1u);
  restarted.stop();
}

TEST_F(BillingTest, AForgedAlteredMovedOrExpiredTicketIsRefused) {
  auto rejected_code = [&](const std::string& who, tunnel::Claim c) {
    const size_t before = sent_of<tunnel::ClaimRejected>().size();
    billing->on_claim(who, c);
    auto r = sent_of<tunnel::ClaimRejected>();
    return r.size() == before + 1 ? r.back().code : std::string("(no refusal)");
  };
  auto with = [&](const std::string& id, const std::string& ticket,
                  const std::string& model = "gpt-x") {
    tunnel::Claim c = claim(id, 8, 4, 30, model);
    c.ticket = ticket;
    return c;
  };
  // A ticket of this hub for req-9, which the hub no longer holds (as after
  // a restart): it would settle. Every variation of it must not.
  PendingRequest p;
  p.request_id = "req-9";
  p.agent = agent;
  p.user_id = user_id;
  p.model = "gpt-x";
  p.price_version = 1;
  p.created_ms = unix_now_ms();
  const std::string good = CallTickets(key).issue(p);
  EXPECT_EQ(good.size(), 130u);
  // Moved to another request id, agent or model.
  EXPECT_EQ(rejected_code(agent, with("req-8", good)), "bad_ticket");
  EXPECT_EQ(rejected_code(other, with("req-9", good)), "bad_ticket");
  EXPECT_EQ(rejected_code(agent, with("req-9", good, "gpt-cheap")), "bad_ticket");
  // Any hex digit changed (nonce, sealed fields, tag); other shapes.
  for (size_t i = 2; i < good.size(); i += 7) {
    std::string changed = good;
    changed[i] = changed[i] == '0' ? '1' : '0';
    EXPECT_EQ(rejected_code(agent, with("req-9", changed)), "bad_ticket") << i;
  }
  std::string upper = good;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (const std::string& bad :
       {upper, good.substr(0, good.size() - 2), std::string("1.2.3"), "2" + good.substr(1),
        good + "00", std::string("1.") + std::string(128, 'g')}) {
    EXPECT_EQ(rejected_code(agent, with("req-9", bad)), "bad_ticket") << bad;
  }
  // Another hub's key.
  const crypto::KeyPair stranger = crypto::KeyPair::generate();
  EXPECT_EQ(rejected_code(agent, with("req-9", CallTickets(stranger).issue(p))), "bad_ticket");
  // Issued here but older than the claim window.
  PendingRequest old = p;
  old.created_ms = unix_now_ms() - static_cast<int64_t>(settings.claim_window_ms) - 1000;
  EXPECT_EQ(rejected_code(agent, with("req-9", CallTickets(key).issue(old))), "expired");
  // None of it moved money or the chain; the real ticket settles.
  EXPECT_EQ(billing->settled_count(), 0u);
  EXPECT_EQ(rejected_code(agent, with("req-9", good)), "(no refusal)");
  run_until([&] { return billing->settled_count() == 1; });
  auto s = store->settled("req-9");
  ASSERT_TRUE(s.ok() && *s);
  EXPECT_EQ(s.value()->entry.cost, 238);
}

// A call the agent refused before calling a vendor owes nothing, even
// after the hub restarted: its ticket cannot be claimed.
TEST_F(BillingTest, ARefusedCallsTicketCannotBeClaimed) {
  Ticket* t = open("req-1");
  const std::string ticket = t->token();
  billing->cancel(t);
  auto p = store->pending("req-1");
  ASSERT_TRUE(p.ok() && *p);
  EXPECT_TRUE((*p)->cancelled);
  make_billing();  // the hub restarts
  tunnel::Claim c = claim("req-1", 8, 4, 30);
  c.ticket = ticket;
  billing->on_claim(agent, c);
  auto r = sent_of<tunnel::ClaimRejected>();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, "unknown_request");
  run_for(50);
  EXPECT_EQ(billing->settled_count(), 0u);
  // A call that was never sent leaves nothing at all.
  Ticket* u = open("req-2");
  billing->unsent(u);
  auto none = store->pending("req-2");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(BillingTest, CheckpointsAreSignedEveryNEntries) {
  settle_requests(4);
  auto cps = sent_of<tunnel::Checkpoint>();
  ASSERT_FALSE(cps.empty());
  const tunnel::Checkpoint& last = cps.back();
  EXPECT_EQ(last.seq, 4u);
  ledger::Checkpoint c;
  c.agent = *crypto::parse_public_key(agent);
  c.seq = last.seq;
  c.head = last.head;
  c.total_cost = last.total_cost;
  c.total_credit = last.total_credit;
  c.time_ms = last.time_ms;
  EXPECT_TRUE(ledger::verify(key.public_key(), c, last.sig));
  EXPECT_EQ(last.total_cost, 4 * 238);
  auto stored = store->last_checkpoint(agent);
  ASSERT_TRUE(stored.ok() && *stored);
  EXPECT_EQ((*stored)->checkpoint.seq, 4u);
}

TEST_F(BillingTest, SyncSendsWhatTheAgentMissed) {
  online = false;  // the agent is away while two requests settle
  settle_requests(2);
  online = true;
  sent.clear();
  billing->agent_online(agent);
  tunnel::Sync s;  // the agent holds nothing
  billing->on_sync(agent, s);
  auto st = sent_of<tunnel::Settle>();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].seq, 1u);
  EXPECT_EQ(st[1].seq, 2u);
  EXPECT_EQ(st[1].prev, st[0].hash);
  ASSERT_FALSE(sent_of<tunnel::Prices>().empty());
}

// Settlements wait for settle_delay and go in one commit: freeing a
// finished ticket once started the flush at 0 ms, which settled every
// request alone (docs/BENCH.md, "One settle commit per batch again").
TEST_F(BillingTest, SettlementsWaitForTheSettleDelayAndGoTogether) {
  settings.settle_delay_ms = 300;
  make_billing();
  for (int i = 1; i <= 3; ++i) {
    const std::string id = "req-" + std::to_string(i);
    Ticket* t = open(id);
    answer(t);
    billing->ended(t);
    billing->on_claim(agent, claim(id, 8, 4, 30));
    run_for(10);  // the tickets are freed; nothing is settled yet
    EXPECT_EQ(billing->settled_count(), 0u) << "settled before settle_delay";
  }
  EXPECT_EQ(billing->queued(), 3u);
  run_until([&] { return billing->settled_count() == 3; });
  EXPECT_EQ(billing->open_tickets(), 0u);
  auto held = store->entries(agent, 0, 10);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->size(), 3u);
}

// A hub restored from an older backup lacks entries its agent holds.
// Settling on would fork the chain ('ledger import' could not mend it), so
// the agent gets no calls and nothing is settled for it until the hub holds
// the same chain: the sweep compares again and lifts the block.
TEST_F(BillingTest, AnAgentAheadOfTheHubGetsNoCallsUntilTheChainsAgree) {
  online = false;
  settle_requests(2);
  auto held = store->entries(agent, 0, 10);
  ASSERT_TRUE(held.ok() && held->size() == 2u);

  // The restored hub: a database without those two entries.
  auto users = UserStore::open(dir.file("restored.db"));
  ASSERT_TRUE(users.ok());
  ASSERT_TRUE(users->add_user("alice", 1).ok());
  auto opened = SqliteLedgerStore::open(dir.file("restored.db"));
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  std::unique_ptr<SqliteLedgerStore> restored = std::move(*opened);
  std::vector<tunnel::Message> to_agent;  // what the restored hub sent
  auto restored_hub = second_hub(restored.get(), &to_agent);
  Billing& hub = *restored_hub;
  ASSERT_TRUE(hub.start().ok());
  tunnel::Sync s;
  s.seq = 2;
  s.head = ledger::hash(held->back());
  hub.on_sync(agent, s);
  EXPECT_FALSE(hub.takes_calls(agent));
  EXPECT_TRUE(hub.takes_calls(other));
  // Its outbox claims are left unanswered (they stay in the outbox): one
  // of a call the restored hub never saw, with its ticket, and one of a
  // call that had none.
  auto alice = restored->user_balance("alice");
  ASSERT_TRUE(alice.ok() && *alice);
  PendingRequest p3;
  p3.request_id = "req-3";
  p3.agent = agent;
  p3.user_id = (*alice)->user_id;
  p3.model = "gpt-x";
  p3.price_version = 1;
  p3.created_ms = unix_now_ms();
  tunnel::Claim c3 = claim("req-3", 8, 4, 30);
  c3.ticket = CallTickets(key).issue(p3);
  hub.on_claim(agent, c3);
  hub.on_claim(agent, c3);  // sent twice (a reconnect): held once
  hub.on_claim(agent, claim("req-4", 1, 0, 1));
  run_for(50);
  EXPECT_TRUE(to_agent.empty());
  EXPECT_EQ(hub.settled_count(), 0u);
  // Still blocked after a sweep with nothing changed.
  run_for(kSweepMs + 100);
  EXPECT_FALSE(hub.takes_calls(agent));

  // 'ledger import' (another process) restores the two entries.
  std::vector<SettleOrder> orders;
  for (const ledger::Entry& e : *held) {
    SettleOrder o;
    o.request_id = e.request_id;
    o.agent = agent;
    o.model = e.model;
    o.usage.input = e.input;
    o.usage.cached = e.cached;
    o.usage.output = e.output;
    o.price_version = e.price_version;
    o.cost = e.cost;
    o.tier_ppm = e.tier_ppm;
    o.credit = e.credit;
    o.time_ms = e.time_ms;
    orders.push_back(o);
  }
  auto other_process = SqliteLedgerStore::open(dir.file("restored.db"), false);
  ASSERT_TRUE(other_process.ok());
  auto imported = (*other_process)->settle(orders);
  ASSERT_TRUE(imported.ok()) << imported.status().to_string();
  ASSERT_EQ(imported->back().hash, s.head);
  run_until([&] { return hub.takes_calls(agent); });
  // The held claims are answered on the same tunnel: req-3 is settled as
  // entry 3 from its ticket, req-4 (no ticket, no row) refused.
  run_until([&] { return hub.settled_count() == 1; });
  auto e3 = restored->settled("req-3");
  ASSERT_TRUE(e3.ok() && *e3);
  EXPECT_EQ((*e3)->entry.seq, 3u);
  EXPECT_EQ((*e3)->entry.prev, s.head);
  std::vector<std::string> refused;
  for (const auto& m : to_agent) {
    if (auto* r = std::get_if<tunnel::ClaimRejected>(&m)) refused.push_back(r->request_id);
  }
  EXPECT_EQ(refused, std::vector<std::string>{"req-4"});
  run_until([&] {
    size_t settles = 0;
    for (const auto& m : to_agent) settles += std::holds_alternative<tunnel::Settle>(m);
    return settles == 1;
  });
  hub.stop();
}

TEST_F(BillingTest, AnAgentWhoseHeadDiffersGetsNoCalls) {
  Ticket* t = open("req-1");
  answer(t);
  billing->ended(t);
  billing->on_claim(agent, claim("req-1", 8, 4, 30));
  run_until([&] { return billing->settled_count() == 1; });
  tunnel::Sync s;
  s.seq = 1;
  s.head[0] = 1;  // not the hash of the hub's entry 1
  billing->on_sync(agent, s);
  EXPECT_FALSE(billing->takes_calls(agent));
  // A later sync that agrees (the agent's operator restored its ledger).
  auto held = store->entries(agent, 0, 1);
  ASSERT_TRUE(held.ok() && held->size() == 1u);
  s.head = ledger::hash(held->front());
  billing->on_sync(agent, s);
  EXPECT_TRUE(billing->takes_calls(agent));
}

TEST_F(BillingTest, BalanceUnderTheMinimumIsRefused) {
  EXPECT_TRUE(billing->check_balance(user_id).ok());
  ASSERT_TRUE(store->credit_user("alice", -10 * billing::kMicrosPerUnit, 2).ok());
  EXPECT_TRUE(billing->check_balance(user_id).ok());  // 0 is not under the minimum of 0
  ASSERT_TRUE(store->credit_user("alice", -1, 3).ok());
  Status s = billing->check_balance(user_id);
  EXPECT_EQ(s.code(), Errc::limit);
  EXPECT_NE(s.message().find("-0.000001"), std::string::npos) << s.message();
}

// Credits come from the CLI, another process: the balance cache notices
// from the next loop tick (sqlite::Db::data_version).
TEST_F(BillingTest, ACreditByAnotherProcessIsSeenFromTheNextTick) {
  EXPECT_TRUE(billing->check_balance(user_id).ok());  // cached: 10 units
  auto cli = SqliteLedgerStore::open(dir.file("hub.db"), false);
  ASSERT_TRUE(cli.ok()) << cli.status().to_string();
  ASSERT_TRUE((*cli)->credit_user("alice", -11 * billing::kMicrosPerUnit, 2).ok());
  run_for(2);
  Status s = billing->check_balance(user_id);
  EXPECT_EQ(s.code(), Errc::limit) << s.to_string();
  EXPECT_NE(s.message().find("-1.000000"), std::string::npos) << s.message();
}

// A settlement's debit (this process's own commit, which data_version does
// not show) evicts the user's cached balance.
TEST_F(BillingTest, ASettlementsDebitIsSeenByTheNextBalanceCheck) {
  auto cli = SqliteLedgerStore::open(dir.file("hub.db"), false);
  ASSERT_TRUE(cli.ok()) << cli.status().to_string();
  ASSERT_TRUE((*cli)->credit_user("alice", -10 * billing::kMicrosPerUnit + 100, 2).ok());
  run_for(2);
  EXPECT_TRUE(billing->check_balance(user_id).ok());  // cached: 100 micro-units
  Ticket* t = open("req-1");
  answer(t);
  billing->ended(t);
  billing->on_claim(agent, claim("req-1", 8, 4, 30));  // costs 238
  run_until([&] { return billing->settled_count() == 1; });
  Status s = billing->check_balance(user_id);
  EXPECT_EQ(s.code(), Errc::limit) << s.to_string();
  EXPECT_NE(s.message().find("-0.000138"), std::string::npos) << s.message();
}

TEST_F(BillingTest, UnpricedModelCannotOpen) {
  auto only = billing::PriceTable::make(2, {{"gpt-cheap", billing::ModelPrice{1, 1, 1}}});
  ASSERT_TRUE(only.ok());
  Billing strict(loop, settings, store.get(), std::move(*only), &key,
                 [](const std::string&, const tunnel::Message&) { return true; },
                 [](const std::string&) -> Result<uint32_t> { return kTier; });
  EXPECT_TRUE(strict.priced("gpt-cheap"));
  EXPECT_FALSE(strict.priced("gpt-x"));
  auto t = strict.open("r", agent, user_id, "gpt-x", billing::Api::chat, false, 1);
  EXPECT_EQ(t.status().code(), Errc::not_found);
}

TEST_F(BillingTest, APriceVersionNeverChangesMeaning) {
  auto changed = billing::PriceTable::make(1, {{"*", billing::ModelPrice{1, 1, 1}}});
  ASSERT_TRUE(changed.ok());
  Status s = store->record_prices(*changed, 5);
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_TRUE(store->record_prices(prices(), 5).ok());  // the same table again is fine
}

}  // namespace
}  // namespace tg::hub
