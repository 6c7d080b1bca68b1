// Settlement throughput: the hub's LedgerStore::settle() in batches (one
// transaction each, WAL) and the agent's LedgerMirror::apply() (one
// transaction per entry, and 16 to a transaction in savepoints as
// Settlement::flush runs them under load), each next to a baseline measured in
// the same run on the same disk: plain SQLite INSERTs of rows of the same
// shape, batched the same way. Driven by scripts/bench-settle; prints one
// line per measurement. Not a test: no thresholds here.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/ledger_mirror.h"
#include "hub/ledger_sqlite.h"
#include "hub/user_store.h"
#include "shared/billing/prices.h"
#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"
#include "shared/sqlite/db.h"

namespace {

// Settles per transaction in the agent's batched run (Settlement::flush
// commits what one loop turn gathered).
constexpr size_t kAgentBatch = 16;

using Clock = std::chrono::steady_clock;
using namespace tg;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "settle_bench: %s: %s\n", what.c_str(), s.to_string().c_str());
  std::exit(1);
}

billing::PriceTable prices() {
  auto t = billing::PriceTable::make(1, {{"*", billing::ModelPrice{3000000, 1000000, 7000000}}});
  if (!t.ok()) die("prices", t.status());
  return std::move(*t);
}

// Raw INSERTs of `n` ledger-shaped rows, `batch` per transaction: rows/s.
double baseline(const std::string& path, size_t n, size_t batch) {
  auto db = sqlite::Db::open(path);
  if (!db.ok()) die("baseline db", db.status());
  Status s = db->exec(
      "CREATE TABLE t (agent TEXT NOT NULL, seq INTEGER NOT NULL, request_id TEXT NOT NULL UNIQUE, "
      "model TEXT, input INTEGER, cached INTEGER, output INTEGER, estimated INTEGER, "
      "price_version INTEGER, cost INTEGER, tier_ppm INTEGER, credit INTEGER, time_ms INTEGER, "
      "prev BLOB, hash BLOB, user_id INTEGER, PRIMARY KEY (agent, seq)) WITHOUT ROWID");
  if (!s.ok()) die("baseline schema", s);
  auto ins = db->prepare("INSERT INTO t VALUES (?, ?, ?, 'gpt-x', 10, 0, 20, 0, 1, 170, 800000, "
                         "136, 0, zeroblob(32), zeroblob(32), 1)");
  if (!ins.ok()) die("baseline prepare", ins.status());
  const auto t0 = Clock::now();
  for (size_t done = 0; done < n;) {
    if (!(s = db->exec("BEGIN IMMEDIATE")).ok()) die("begin", s);
    for (size_t i = 0; i < batch && done < n; ++i, ++done) {
      (void)ins->reset();
      (void)ins->bind_text(1, "agent-" + std::to_string(done % 16));
      (void)ins->bind_int64(2, static_cast<int64_t>(done));
      (void)ins->bind_text(3, "req-" + std::to_string(done));
      if (!(s = ins->run()).ok()) die("insert", s);
    }
    if (!(s = db->exec("COMMIT")).ok()) die("commit", s);
  }
  return static_cast<double>(n) / seconds_since(t0);
}

struct HubResult {
  double settle_per_s = 0;
  double open_per_s = 0;
};

// Dispatch rows (one autocommit INSERT each, as the request path does), then
// settle() in batches over 16 agents' chains: settlements/s.
HubResult hub_settle(const std::string& path, size_t n, size_t batch) {
  {
    auto users = hub::UserStore::open(path);
    if (!users.ok()) die("users", users.status());
    if (auto u = users->add_user("bench", 1); !u.ok()) die("user", u.status());
  }
  auto store = hub::SqliteLedgerStore::open(path);
  if (!store.ok()) die("store", store.status());
  hub::SqliteLedgerStore& st = **store;
  if (Status s = st.record_prices(prices(), 1); !s.ok()) die("prices", s);
  auto bal = st.user_balance("bench");
  const int64_t user = (*bal)->user_id;
  std::vector<std::string> agents;
  for (int i = 0; i < 16; ++i) agents.push_back(crypto::KeyPair::generate().public_base64());

  HubResult r;
  auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    hub::PendingRequest p;
    p.request_id = "req-" + std::to_string(i);
    p.agent = agents[i % agents.size()];
    p.user_id = user;
    p.model = "gpt-x";
    p.price_version = 1;
    p.created_ms = 1;
    if (Status s = st.put_pending(p); !s.ok()) die("put_pending", s);
  }
  r.open_per_s = static_cast<double>(n) / seconds_since(t0);

  const billing::ModelPrice price{3000000, 1000000, 7000000};
  t0 = Clock::now();
  std::vector<hub::SettleOrder> orders;
  for (size_t i = 0; i < n;) {
    orders.clear();
    for (size_t k = 0; k < batch && i < n; ++k, ++i) {
      hub::SettleOrder o;
      o.request_id = "req-" + std::to_string(i);
      o.agent = agents[i % agents.size()];
      o.user_id = user;
      o.model = "gpt-x";
      o.usage = billing::Usage{10 + i % 7, 0, 20 + i % 11, false};
      o.price_version = 1;
      o.cost = *billing::cost(o.usage, price);
      o.tier_ppm = 800000;
      o.credit = billing::credit(o.cost, o.tier_ppm);
      o.time_ms = 1700000000000;
      orders.push_back(std::move(o));
    }
    auto done = st.settle(orders);
    if (!done.ok()) die("settle", done.status());
  }
  r.settle_per_s = static_cast<double>(n) / seconds_since(t0);
  return r;
}

// The agent: outbox row per call, then apply() per settled entry:
// microseconds per verify-and-append. With batch 1 each entry is its own
// transaction; with a larger batch, `batch` entries share one as a run (each
// in its own savepoint, the head written once), as Settlement::flush applies
// the settles of a loop turn.
double agent_apply_us(const std::string& path, size_t n, size_t batch) {
  crypto::KeyPair self = crypto::KeyPair::generate();
  auto m = agent::LedgerMirror::open(path, self.public_key());
  if (!m.ok()) die("mirror", m.status());
  agent::LedgerMirror& mirror = **m;
  if (Status s = mirror.store_prices(prices()); !s.ok()) die("prices", s);
  const billing::ModelPrice price{3000000, 1000000, 7000000};
  std::vector<ledger::Entry> entries;
  std::vector<ledger::Hash> hashes;
  ledger::Hash head{};
  for (size_t i = 0; i < n; ++i) {
    ledger::Entry e = ledger::next_entry(self.public_key(), i, head);
    e.request_id = "req-" + std::to_string(i);
    e.model = "gpt-x";
    e.input = 10 + i % 7;
    e.output = 20 + i % 11;
    e.price_version = 1;
    e.cost = *billing::cost(billing::Usage{e.input, 0, e.output, false}, price);
    e.tier_ppm = 800000;
    e.credit = billing::credit(e.cost, e.tier_ppm);
    e.time_ms = 1700000000000;
    head = ledger::hash(e);
    entries.push_back(e);
    hashes.push_back(head);
    agent::OutboxItem o;
    o.request_id = e.request_id;
    o.model = e.model;
    o.usage = billing::Usage{e.input, 0, e.output, false};
    o.status = 200;
    if (Status s = mirror.record_finished(o); !s.ok()) die("outbox", s);
  }
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; i += batch) {
    std::optional<sqlite::Tx> outer;
    std::optional<agent::LedgerMirror::Run> run;
    if (batch > 1) {
      auto tx = sqlite::Tx::begin(mirror.db());
      if (!tx.ok()) die("begin", tx.status());
      outer.emplace(std::move(*tx));
      auto r = mirror.begin_run();
      if (!r.ok()) die("run", r.status());
      run.emplace(std::move(*r));
    }
    for (size_t j = i; j < std::min(n, i + batch); ++j) {
      auto v = run ? run->apply(entries[j], hashes[j], 1) : mirror.apply(entries[j], hashes[j], 1);
      if (!v.ok() || v->kind != agent::Verdict::Kind::appended ||
          v->status != agent::EntryStatus::agreed) {
        std::fprintf(stderr, "settle_bench: entry %zu not agreed\n", j);
        std::exit(1);
      }
    }
    if (run) {
      if (Status s = run->finish(); !s.ok()) die("finish", s);
      run.reset();
    }
    if (outer) {
      if (Status s = outer->commit(); !s.ok()) die("commit", s);
    }
  }
  return seconds_since(t0) * 1e6 / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 50000;
  size_t agent_n = 5000;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--requests") == 0) n = std::strtoul(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--agent-requests") == 0) agent_n = std::strtoul(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  char tmpl[4096];
  std::snprintf(tmpl, sizeof tmpl, "%s/tg-settle-XXXXXX", dir.c_str());
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string root = tmpl;
  std::printf("settlements: %zu over 16 agent chains, WAL, synchronous=NORMAL, in %s\n", n, root.c_str());
  for (size_t batch : {size_t{1}, size_t{64}, size_t{1024}}) {
    const double base = baseline(root + "/base-" + std::to_string(batch) + ".db", n, batch);
    const HubResult hub = hub_settle(root + "/hub-" + std::to_string(batch) + ".db", n, batch);
    std::printf("hub settle   batch %5zu: %9.0f settlements/s   raw insert %9.0f rows/s   ratio %.2f\n",
                batch, hub.settle_per_s, base, hub.settle_per_s / base);
    if (batch == 1) {
      // Since call tickets only lost streams and refused calls write one.
      std::printf("hub pending row (autocommit): %9.0f rows/s\n", hub.open_per_s);
    }
  }
  for (size_t batch : {size_t{1}, kAgentBatch}) {
    const std::string tag = std::to_string(batch);
    const double apply_us = agent_apply_us(root + "/agent-" + tag + ".db", agent_n, batch);
    const double raw_us = 1e6 / baseline(root + "/agent-base-" + tag + ".db", agent_n, batch);
    std::printf("agent verify-and-append batch %2zu: %6.1f us/entry   raw insert %5.1f us/row   "
                "ratio %.2f\n", batch, apply_us, raw_us, apply_us / raw_us);
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return 0;
}
