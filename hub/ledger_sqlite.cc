#include "hub/ledger_sqlite.h"

#include <map>
#include <utility>

#include "hub/schema.h"
#include "shared/billing/money.h"
#include "shared/crypto/hash.h"

namespace tg::hub {
namespace {

constexpr const char* kSelectPending =
    "SELECT request_id, agent, user_id, model, price_version, created_at, obs_input, obs_cached, "
    "obs_output, obs_estimated, observed_at, cancelled FROM pending_requests";

constexpr const char* kSelectEntry =
    "SELECT agent, seq, request_id, model, input, cached, output, estimated, price_version, cost, "
    "tier_ppm, credit, time_ms, prev, hash FROM ledger";

// The settled entry of one request: looked up per claim, and per settle order
// whose ledger row was refused as a repeat.
const std::string& select_entry_by_request() {
  static const std::string sql = std::string(kSelectEntry) + " WHERE request_id = ?";
  return sql;
}

constexpr const char* kSelectCheckpoint =
    "SELECT agent, seq, head, total_cost, total_credit, time_ms, sig FROM checkpoints";

constexpr const char* kSelectBalance =
    "SELECT u.id, u.name, u.balance, "
    "(SELECT COALESCE(SUM(amount), 0) FROM user_credits c WHERE c.user_id = u.id), "
    "(SELECT COALESCE(SUM(cost), 0) FROM ledger l WHERE l.user_id = u.id), "
    "(SELECT COUNT(*) FROM ledger l WHERE l.user_id = u.id) FROM users u";

PendingRequest read_pending(const sqlite::Stmt& st) {
  PendingRequest r;
  r.request_id = st.column_text(0);
  r.agent = st.column_text(1);
  r.user_id = st.column_int64(2);
  r.model = st.column_text(3);
  r.price_version = static_cast<uint64_t>(st.column_int64(4));
  r.created_ms = st.column_int64(5);
  if (!st.column_is_null(10)) {
    billing::Usage u;
    u.input = static_cast<uint64_t>(st.column_int64(6));
    u.cached = static_cast<uint64_t>(st.column_int64(7));
    u.output = static_cast<uint64_t>(st.column_int64(8));
    u.estimated = st.column_int64(9) != 0;
    r.observed = u;
    r.observed_ms = st.column_int64(10);
  }
  r.cancelled = st.column_int64(11) != 0;
  return r;
}

Result<Settled> read_entry(const sqlite::Stmt& st) {
  Settled s;
  s.agent = st.column_text(0);
  auto key = crypto::parse_public_key(s.agent);
  if (!key.ok()) return error(Errc::internal, "ledger row has a bad agent key '" + s.agent + "'");
  ledger::Entry& e = s.entry;
  e.agent = *key;
  e.seq = static_cast<uint64_t>(st.column_int64(1));
  e.request_id = st.column_text(2);
  e.model = st.column_text(3);
  e.input = static_cast<uint64_t>(st.column_int64(4));
  e.cached = static_cast<uint64_t>(st.column_int64(5));
  e.output = static_cast<uint64_t>(st.column_int64(6));
  e.estimated = st.column_int64(7) != 0;
  e.price_version = static_cast<uint64_t>(st.column_int64(8));
  e.cost = st.column_int64(9);
  e.tier_ppm = static_cast<uint32_t>(st.column_int64(10));
  e.credit = st.column_int64(11);
  e.time_ms = st.column_int64(12);
  if (!crypto::copy_exact(st.column_blob(13), &e.prev) || !crypto::copy_exact(st.column_blob(14), &s.hash)) {
    return error(Errc::internal, "ledger row " + s.agent + " #" + std::to_string(e.seq) +
                                    " has a malformed hash");
  }
  return s;
}

Result<StoredCheckpoint> read_checkpoint(const sqlite::Stmt& st) {
  StoredCheckpoint c;
  const std::string agent = st.column_text(0);
  auto key = crypto::parse_public_key(agent);
  if (!key.ok()) return error(Errc::internal, "checkpoint row has a bad agent key");
  c.checkpoint.agent = *key;
  c.checkpoint.seq = static_cast<uint64_t>(st.column_int64(1));
  c.checkpoint.total_cost = st.column_int64(3);
  c.checkpoint.total_credit = st.column_int64(4);
  c.checkpoint.time_ms = st.column_int64(5);
  if (!crypto::copy_exact(st.column_blob(2), &c.checkpoint.head) || !crypto::copy_exact(st.column_blob(6), &c.sig)) {
    return error(Errc::internal, "checkpoint row " + agent + " has a malformed hash or signature");
  }
  return c;
}

UserBalance read_balance(const sqlite::Stmt& st) {
  UserBalance b;
  b.user_id = st.column_int64(0);
  b.name = st.column_text(1);
  b.balance = st.column_int64(2);
  b.credited = st.column_int64(3);
  b.spent = st.column_int64(4);
  b.requests = static_cast<uint64_t>(st.column_int64(5));
  return b;
}

// A non-negative decimal written by price_table_text().
bool parse_stored_int(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string price_table_text(const billing::PriceTable& table) {
  std::string out;
  for (const auto& [model, p] : table.entries()) {
    out += model + "\t" + std::to_string(p.input) + "\t" + std::to_string(p.cached_input) + "\t" +
           std::to_string(p.output) + "\n";
  }
  return out;
}

SqliteLedgerStore::SqliteLedgerStore(sqlite::Db db) : db_(std::move(db)) {}

SqliteLedgerStore::~SqliteLedgerStore() = default;

Result<std::unique_ptr<SqliteLedgerStore>> SqliteLedgerStore::open(const std::string& path,
                                                                   bool create) {
  sqlite::OpenOptions options;
  options.create = create;
  auto db = sqlite::Db::open(path, options);
  if (!db.ok()) return db.status();
  return open(std::move(db).value());
}

Result<std::unique_ptr<SqliteLedgerStore>> SqliteLedgerStore::open(sqlite::Db db) {
  TG_TRY(migrate(db));
  return std::unique_ptr<SqliteLedgerStore>(new SqliteLedgerStore(std::move(db)));
}

// ---- prices ----

Status SqliteLedgerStore::record_prices(const billing::PriceTable& table, int64_t now_ms) {
  const std::string text = price_table_text(table);
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto sel = db_.prepare("SELECT prices, recorded_at FROM price_versions WHERE version = ?");
  if (!sel.ok()) return sel.status();
  TG_TRY(sel->bind_int64(1, static_cast<int64_t>(table.version())));
  auto step = sel->step();
  if (!step.ok()) return step.status();
  if (*step == sqlite::Step::row) {
    if (sel->column_text(0) != text) {
      return error(Errc::invalid_argument,
                   "price table version " + std::to_string(table.version()) +
                       " was recorded before with other prices; a version never changes meaning: "
                       "give the new prices a higher version");
    }
    return Status::success();
  }
  auto ins = db_.prepare("INSERT INTO price_versions(version, prices, recorded_at) VALUES (?, ?, ?)");
  if (!ins.ok()) return ins.status();
  TG_TRY(ins->bind_int64(1, static_cast<int64_t>(table.version())));
  TG_TRY(ins->bind_text(2, text));
  TG_TRY(ins->bind_int64(3, now_ms));
  TG_TRY(ins->run());
  return tx->commit();
}

Result<std::optional<billing::PriceTable>> SqliteLedgerStore::prices(uint64_t version) {
  auto sel = db_.prepare("SELECT prices FROM price_versions WHERE version = ?");
  if (!sel.ok()) return sel.status();
  TG_TRY(sel->bind_int64(1, static_cast<int64_t>(version)));
  auto step = sel->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return std::optional<billing::PriceTable>();
  const std::string text = sel->column_text(0);
  std::vector<std::pair<std::string, billing::ModelPrice>> entries;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::vector<std::string> f;
    size_t start = 0;
    for (;;) {
      const size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    billing::ModelPrice p;
    if (f.size() != 4 || !parse_stored_int(f[1], &p.input) ||
        !parse_stored_int(f[2], &p.cached_input) || !parse_stored_int(f[3], &p.output)) {
      return error(Errc::internal, "price version " + std::to_string(version) + " is malformed");
    }
    entries.emplace_back(f[0], p);
  }
  auto table = billing::PriceTable::make(version, std::move(entries));
  if (!table.ok()) {
    return error(Errc::internal, "price version " + std::to_string(version) + ": " +
                                    table.status().message());
  }
  return std::optional<billing::PriceTable>(std::move(*table));
}

// ---- pending attempts ----

Status SqliteLedgerStore::put_pending(const PendingRequest& r) {
  auto st = db_.prepare_cached(
      "INSERT OR REPLACE INTO pending_requests(request_id, agent, user_id, model, price_version, "
      "created_at, obs_input, obs_cached, obs_output, obs_estimated, observed_at, cancelled) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, r.request_id));
  TG_TRY(st->bind_text(2, r.agent));
  TG_TRY(st->bind_int64(3, r.user_id));
  TG_TRY(st->bind_text(4, r.model));
  TG_TRY(st->bind_int64(5, static_cast<int64_t>(r.price_version)));
  TG_TRY(st->bind_int64(6, r.created_ms));
  if (r.observed) {
    TG_TRY(st->bind_int64(7, static_cast<int64_t>(r.observed->input)));
    TG_TRY(st->bind_int64(8, static_cast<int64_t>(r.observed->cached)));
    TG_TRY(st->bind_int64(9, static_cast<int64_t>(r.observed->output)));
    TG_TRY(st->bind_int64(10, r.observed->estimated ? 1 : 0));
    TG_TRY(st->bind_int64(11, r.observed_ms));
  } else {
    for (int i = 7; i <= 11; ++i) TG_TRY(st->bind_null(i));
  }
  TG_TRY(st->bind_int64(12, r.cancelled ? 1 : 0));
  return st->run();
}

Result<std::optional<PendingRequest>> SqliteLedgerStore::pending(std::string_view request_id) {
  auto st = db_.prepare_cached(std::string(kSelectPending) + " WHERE request_id = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, request_id));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return std::optional<PendingRequest>();
  return std::optional<PendingRequest>(read_pending(*st));
}

Result<std::vector<PendingRequest>> SqliteLedgerStore::pending_due(int64_t observed_before_ms,
                                                                   int64_t created_before_ms,
                                                                   size_t limit) {
  auto st = db_.prepare_cached(std::string(kSelectPending) +
                        " WHERE (observed_at IS NOT NULL AND observed_at < ?) OR "
                        "(observed_at IS NULL AND created_at < ?) ORDER BY created_at LIMIT ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, observed_before_ms));
  TG_TRY(st->bind_int64(2, created_before_ms));
  TG_TRY(st->bind_int64(3, static_cast<int64_t>(limit)));
  std::vector<PendingRequest> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    out.push_back(read_pending(*st));
  }
  return out;
}

Status SqliteLedgerStore::drop_pending(std::string_view request_id) {
  auto st = db_.prepare_cached("DELETE FROM pending_requests WHERE request_id = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, request_id));
  return st->run();
}

// ---- settlement ----

Result<ChainInfo> SqliteLedgerStore::chain_in_tx(const std::string& agent) {
  auto cached =
      db_.prepare_cached("SELECT seq, head, total_cost, total_credit FROM chains WHERE agent = ?");
  if (!cached.ok()) return cached.status();
  sqlite::Stmt& st = *cached;
  TG_TRY(st.bind_text(1, agent));
  ChainInfo c;
  c.agent = agent;
  auto step = st.step();
  if (!step.ok()) return step.status();
  if (*step == sqlite::Step::row) {
    c.seq = static_cast<uint64_t>(st.column_int64(0));
    if (!crypto::copy_exact(st.column_blob(1), &c.head)) {
      return error(Errc::internal, "chain head of " + agent + " is malformed");
    }
    c.total_cost = st.column_int64(2);
    c.total_credit = st.column_int64(3);
  }
  return c;
}

Result<std::vector<Settled>> SqliteLedgerStore::settle(const std::vector<SettleOrder>& orders) {
  std::vector<Settled> out;
  if (orders.empty()) return out;
  // Borrowed from the connection's cache for the whole batch.
  struct {
    sqlite::Stmt insert_entry, upsert_chain, debit_user, end_pending;
  } st;
  const std::pair<sqlite::Stmt*, std::string_view> statements[] = {
      {&st.insert_entry,
       "INSERT INTO ledger(agent, seq, request_id, model, input, cached, output, estimated, "
       "price_version, cost, tier_ppm, credit, time_ms, prev, hash, user_id) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&st.upsert_chain,
       "INSERT INTO chains(agent, seq, head, total_cost, total_credit) VALUES (?, ?, ?, ?, ?) "
       "ON CONFLICT(agent) DO UPDATE SET seq = excluded.seq, head = excluded.head, "
       "total_cost = excluded.total_cost, total_credit = excluded.total_credit"},
      {&st.debit_user, "UPDATE users SET balance = balance - ? WHERE id = ?"},
      {&st.end_pending, "DELETE FROM pending_requests WHERE request_id = ?"},
  };
  for (const auto& [stmt, sql] : statements) {
    auto p = db_.prepare_cached(sql);
    if (!p.ok()) return p.status();
    *stmt = std::move(*p);
  }

  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  // Chains touched by this batch: their head as it grows, and the agent's
  // key, parsed once per batch rather than once per entry.
  struct Touched {
    ChainInfo head;
    crypto::PublicKey key;
  };
  std::map<std::string, Touched> heads;
  for (const SettleOrder& o : orders) {
    auto it = heads.find(o.agent);
    if (it == heads.end()) {
      auto key = crypto::parse_public_key(o.agent);
      if (!key.ok()) return error(Errc::invalid_argument, "settle: bad agent key '" + o.agent + "'");
      auto c = chain_in_tx(o.agent);
      if (!c.ok()) return c.status();
      it = heads.emplace(o.agent, Touched{*c, *key}).first;
    }
    ChainInfo& head = it->second.head;
    if (billing::add_overflows(head.total_cost, o.cost) || billing::add_overflows(head.total_credit, o.credit)) {
      return error(Errc::limit, "chain totals of " + o.agent + " would overflow");
    }
    Settled s;
    s.agent = o.agent;
    s.created = true;
    ledger::Entry& e = s.entry;
    e = ledger::next_entry(it->second.key, head.seq, head.head);
    e.request_id = o.request_id;
    e.model = o.model;
    e.input = o.usage.input;
    e.cached = o.usage.cached;
    e.output = o.usage.output;
    e.estimated = o.usage.estimated;
    e.price_version = o.price_version;
    e.cost = o.cost;
    e.tier_ppm = o.tier_ppm;
    e.credit = o.credit;
    e.time_ms = o.time_ms;
    TG_TRY(ledger::validate(e));
    s.hash = ledger::hash(e);

    sqlite::Stmt& ins = st.insert_entry;
    TG_TRY(ins.reset());
    TG_TRY(ins.bind_text(1, o.agent));
    TG_TRY(ins.bind_int64(2, static_cast<int64_t>(e.seq)));
    TG_TRY(ins.bind_text(3, e.request_id));
    TG_TRY(ins.bind_text(4, e.model));
    TG_TRY(ins.bind_int64(5, static_cast<int64_t>(e.input)));
    TG_TRY(ins.bind_int64(6, static_cast<int64_t>(e.cached)));
    TG_TRY(ins.bind_int64(7, static_cast<int64_t>(e.output)));
    TG_TRY(ins.bind_int64(8, e.estimated ? 1 : 0));
    TG_TRY(ins.bind_int64(9, static_cast<int64_t>(e.price_version)));
    TG_TRY(ins.bind_int64(10, e.cost));
    TG_TRY(ins.bind_int64(11, e.tier_ppm));
    TG_TRY(ins.bind_int64(12, e.credit));
    TG_TRY(ins.bind_int64(13, e.time_ms));
    TG_TRY(ins.bind_blob(14, crypto::as_view(e.prev)));
    TG_TRY(ins.bind_blob(15, crypto::as_view(s.hash)));
    if (o.user_id) {
      TG_TRY(ins.bind_int64(16, *o.user_id));
    } else {
      TG_TRY(ins.bind_null(16));
    }
    // The ledger row first: a request settled before (a replayed claim) is
    // refused by its UNIQUE request_id without a write, and then its entry
    // is read back and handed out again. The common case costs no lookup.
    Status inserted = ins.run();
    (void)ins.reset();
    if (!inserted.ok()) {
      if (inserted.code() != Errc::invalid_argument) return inserted;  // not a constraint
      auto existing = settled(o.request_id);
      if (!existing.ok()) return existing.status();
      if (!*existing) return inserted;  // another constraint: a real failure
      (*existing)->created = false;
      out.push_back(std::move(**existing));
      continue;
    }

    if (o.user_id && o.cost != 0) {
      TG_TRY(st.debit_user.reset());
      TG_TRY(st.debit_user.bind_int64(1, o.cost));
      TG_TRY(st.debit_user.bind_int64(2, *o.user_id));
      TG_TRY(st.debit_user.run());
      (void)st.debit_user.reset();
    }
    TG_TRY(st.end_pending.reset());
    TG_TRY(st.end_pending.bind_text(1, o.request_id));
    TG_TRY(st.end_pending.run());
    (void)st.end_pending.reset();

    head.seq = e.seq;
    head.head = s.hash;
    head.total_cost += e.cost;
    head.total_credit += e.credit;
    out.push_back(std::move(s));
  }
  for (const auto& [agent, touched] : heads) {
    const ChainInfo& head = touched.head;
    sqlite::Stmt& up = st.upsert_chain;
    TG_TRY(up.reset());
    TG_TRY(up.bind_text(1, agent));
    TG_TRY(up.bind_int64(2, static_cast<int64_t>(head.seq)));
    TG_TRY(up.bind_blob(3, crypto::as_view(head.head)));
    TG_TRY(up.bind_int64(4, head.total_cost));
    TG_TRY(up.bind_int64(5, head.total_credit));
    TG_TRY(up.run());
    (void)up.reset();
  }
  TG_TRY(tx->commit());
  return out;
}

Result<std::optional<Settled>> SqliteLedgerStore::settled(std::string_view request_id) {
  auto st = db_.prepare_cached(select_entry_by_request());
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, request_id));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return std::optional<Settled>();
  auto e = read_entry(*st);
  if (!e.ok()) return e.status();
  return std::optional<Settled>(std::move(*e));
}

Result<std::vector<ledger::Entry>> SqliteLedgerStore::entries(std::string_view agent,
                                                              uint64_t after_seq, size_t limit) {
  auto st = db_.prepare(std::string(kSelectEntry) + " WHERE agent = ? AND seq > ? ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, agent));
  TG_TRY(st->bind_int64(2, static_cast<int64_t>(after_seq)));
  TG_TRY(st->bind_int64(3, static_cast<int64_t>(limit)));
  std::vector<ledger::Entry> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    auto e = read_entry(*st);
    if (!e.ok()) return e.status();
    out.push_back(std::move(e->entry));
  }
  return out;
}

Result<ChainInfo> SqliteLedgerStore::chain(std::string_view agent) {
  return chain_in_tx(std::string(agent));
}

Result<std::vector<ChainInfo>> SqliteLedgerStore::chains() {
  auto st = db_.prepare("SELECT agent, seq, head, total_cost, total_credit FROM chains ORDER BY agent");
  if (!st.ok()) return st.status();
  std::vector<ChainInfo> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    ChainInfo c;
    c.agent = st->column_text(0);
    c.seq = static_cast<uint64_t>(st->column_int64(1));
    if (!crypto::copy_exact(st->column_blob(2), &c.head)) {
      return error(Errc::internal, "chain head of " + c.agent + " is malformed");
    }
    c.total_cost = st->column_int64(3);
    c.total_credit = st->column_int64(4);
    out.push_back(std::move(c));
  }
  return out;
}

// ---- checkpoints ----

Status SqliteLedgerStore::add_checkpoint(const StoredCheckpoint& cp) {
  auto st = db_.prepare(
      "INSERT OR IGNORE INTO checkpoints(agent, seq, head, total_cost, total_credit, time_ms, sig) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  const ledger::Checkpoint& c = cp.checkpoint;
  TG_TRY(st->bind_text(1, crypto::base64_encode(crypto::as_view(c.agent))));
  TG_TRY(st->bind_int64(2, static_cast<int64_t>(c.seq)));
  TG_TRY(st->bind_blob(3, crypto::as_view(c.head)));
  TG_TRY(st->bind_int64(4, c.total_cost));
  TG_TRY(st->bind_int64(5, c.total_credit));
  TG_TRY(st->bind_int64(6, c.time_ms));
  TG_TRY(st->bind_blob(7, crypto::as_view(cp.sig)));
  return st->run();
}

Result<std::optional<StoredCheckpoint>> SqliteLedgerStore::last_checkpoint(std::string_view agent) {
  auto st = db_.prepare(std::string(kSelectCheckpoint) + " WHERE agent = ? ORDER BY seq DESC LIMIT 1");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, agent));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return std::optional<StoredCheckpoint>();
  auto c = read_checkpoint(*st);
  if (!c.ok()) return c.status();
  return std::optional<StoredCheckpoint>(*c);
}

Result<std::vector<StoredCheckpoint>> SqliteLedgerStore::checkpoints(std::string_view agent) {
  auto st = db_.prepare(std::string(kSelectCheckpoint) + " WHERE agent = ? ORDER BY seq");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, agent));
  std::vector<StoredCheckpoint> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    auto c = read_checkpoint(*st);
    if (!c.ok()) return c.status();
    out.push_back(*c);
  }
  return out;
}

// ---- balances ----

Result<UserBalance> SqliteLedgerStore::credit_user(std::string_view user, int64_t amount,
                                                   int64_t now_ms) {
  ++credits_;  // even if it fails: a cached balance is only ever re-read
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto cur = user_balance(user);
  if (!cur.ok()) return cur.status();
  if (!*cur) return error(Errc::not_found, "no user '" + std::string(user) + "'");
  if (billing::add_overflows((*cur)->balance, amount) || (*cur)->balance + amount > billing::kMaxAmount ||
      (*cur)->balance + amount < -billing::kMaxAmount) {
    return error(Errc::limit, "the balance of '" + std::string(user) + "' would leave the range ±" +
                                  billing::format_amount(billing::kMaxAmount));
  }
  auto ins = db_.prepare("INSERT INTO user_credits(user_id, amount, at) VALUES (?, ?, ?)");
  if (!ins.ok()) return ins.status();
  TG_TRY(ins->bind_int64(1, (*cur)->user_id));
  TG_TRY(ins->bind_int64(2, amount));
  TG_TRY(ins->bind_int64(3, now_ms));
  TG_TRY(ins->run());
  auto up = db_.prepare("UPDATE users SET balance = balance + ? WHERE id = ?");
  if (!up.ok()) return up.status();
  TG_TRY(up->bind_int64(1, amount));
  TG_TRY(up->bind_int64(2, (*cur)->user_id));
  TG_TRY(up->run());
  TG_TRY(tx->commit());
  auto after = user_balance(user);
  if (!after.ok()) return after.status();
  return **after;
}

Result<std::optional<UserBalance>> SqliteLedgerStore::user_balance(std::string_view user) {
  auto st = db_.prepare(std::string(kSelectBalance) + " WHERE u.name = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, user));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return std::optional<UserBalance>();
  return std::optional<UserBalance>(read_balance(*st));
}

Result<int64_t> SqliteLedgerStore::balance_of(int64_t user_id) {
  auto st = db_.prepare_cached("SELECT balance FROM users WHERE id = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, user_id));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return error(Errc::not_found, "no user #" + std::to_string(user_id));
  return st->column_int64(0);
}

Result<BalancesVersion> SqliteLedgerStore::balances_version(uint64_t tick) {
  auto v = db_.data_version(tick);
  if (!v.ok()) return v.status();
  return BalancesVersion{*v, credits_};
}

Result<std::vector<UserBalance>> SqliteLedgerStore::balances() {
  auto st = db_.prepare(std::string(kSelectBalance) + " ORDER BY u.name");
  if (!st.ok()) return st.status();
  std::vector<UserBalance> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    out.push_back(read_balance(*st));
  }
  return out;
}

}  // namespace tg::hub
