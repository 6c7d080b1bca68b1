#include "agent/ledger_mirror.h"

#include <utility>

#include "shared/billing/money.h"
#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"

namespace tg::agent {
namespace {

const std::vector<std::string_view> kMigrations = {
    // 1: the whole ledger.
    R"sql(
CREATE TABLE identity (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  agent        BLOB NOT NULL,
  hub_key      BLOB,
  head_seq     INTEGER NOT NULL DEFAULT 0,
  head_hash    BLOB NOT NULL,
  total_cost   INTEGER NOT NULL DEFAULT 0,
  total_credit INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE outbox (
  request_id  TEXT PRIMARY KEY NOT NULL,
  model       TEXT NOT NULL,
  input       INTEGER NOT NULL,
  cached      INTEGER NOT NULL,
  output      INTEGER NOT NULL,
  estimated   INTEGER NOT NULL,
  status      INTEGER NOT NULL,
  finished_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE prices (
  version      INTEGER NOT NULL,
  model        TEXT NOT NULL,
  input        INTEGER NOT NULL,
  cached_input INTEGER NOT NULL,
  output       INTEGER NOT NULL,
  PRIMARY KEY (version, model)
) WITHOUT ROWID;
CREATE TABLE chain (
  seq           INTEGER PRIMARY KEY,
  request_id    TEXT NOT NULL UNIQUE,
  model         TEXT NOT NULL,
  input         INTEGER NOT NULL,
  cached        INTEGER NOT NULL,
  output        INTEGER NOT NULL,
  estimated     INTEGER NOT NULL,
  price_version INTEGER NOT NULL,
  cost          INTEGER NOT NULL,
  tier_ppm      INTEGER NOT NULL,
  credit        INTEGER NOT NULL,
  time_ms       INTEGER NOT NULL,
  prev          BLOB NOT NULL,
  hash          BLOB NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('agreed', 'disputed', 'unobserved')),
  received_at   INTEGER NOT NULL
);
CREATE TABLE disputes (
  seq        INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  reason     TEXT NOT NULL,
  at         INTEGER NOT NULL
);
CREATE TABLE rejected_claims (
  request_id TEXT PRIMARY KEY NOT NULL,
  code       TEXT NOT NULL,
  message    TEXT NOT NULL,
  at         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE checkpoints (
  seq          INTEGER PRIMARY KEY,
  head         BLOB NOT NULL,
  total_cost   INTEGER NOT NULL,
  total_credit INTEGER NOT NULL,
  time_ms      INTEGER NOT NULL,
  sig          BLOB NOT NULL,
  hub_key      BLOB NOT NULL
);
)sql",
    // 2: the hub's call ticket of each outbox row, returned with its claim
    // (a hub that restarted bills the claim from it).
    R"sql(
ALTER TABLE outbox ADD COLUMN ticket TEXT NOT NULL DEFAULT '';
)sql",
};

constexpr const char* kSelectEntry =
    "SELECT seq, request_id, model, input, cached, output, estimated, price_version, cost, "
    "tier_ppm, credit, time_ms, prev, hash, status, received_at FROM chain";

EntryStatus status_from(const std::string& s) {
  if (s == "disputed") return EntryStatus::disputed;
  if (s == "unobserved") return EntryStatus::unobserved;
  return EntryStatus::agreed;
}

std::string usage_text(const billing::Usage& u) {
  return "in=" + std::to_string(u.input) + " cached=" + std::to_string(u.cached) +
         " out=" + std::to_string(u.output) + (u.estimated ? " estimated" : "");
}

}  // namespace

const char* entry_status_name(EntryStatus s) noexcept {
  switch (s) {
    case EntryStatus::agreed: return "agreed";
    case EntryStatus::disputed: return "disputed";
    case EntryStatus::unobserved: return "unobserved";
  }
  return "?";
}

Result<std::unique_ptr<LedgerMirror>> LedgerMirror::open(const std::string& path,
                                                         const crypto::PublicKey& self,
                                                         bool create) {
  sqlite::OpenOptions options;
  options.create = create;
  options.page_size = kLedgerPageSize;
  auto db = sqlite::Db::open(path, options);
  if (!db.ok()) return db.status();
  TG_TRY(sqlite::migrate(*db, kMigrations));
  auto sel = db->prepare("SELECT agent FROM identity WHERE id = 1");
  if (!sel.ok()) return sel.status();
  auto step = sel->step();
  if (!step.ok()) return step.status();
  if (*step == sqlite::Step::row) {
    crypto::PublicKey stored{};
    if (!crypto::copy_exact(sel->column_blob(0), &stored) || stored != self) {
      return error(Errc::permission,
                   "ledger " + path + " belongs to another agent key (" +
                       crypto::base64_encode(sel->column_blob(0)) +
                       "); point 'ledger' at this agent's own file");
    }
  } else {
    auto ins = db->prepare("INSERT INTO identity(id, agent, head_hash) VALUES (1, ?, ?)");
    if (!ins.ok()) return ins.status();
    TG_TRY(ins->bind_blob(1, crypto::as_view(self)));
    TG_TRY(ins->bind_blob(2, crypto::as_view(ledger::Hash{})));
    TG_TRY(ins->run());
  }
  return std::unique_ptr<LedgerMirror>(new LedgerMirror(std::move(*db), self));
}

Result<std::unique_ptr<LedgerMirror>> LedgerMirror::open_existing(const std::string& path) {
  sqlite::OpenOptions options;
  options.create = false;
  crypto::PublicKey self{};
  {
    auto db = sqlite::Db::open(path, options);
    if (!db.ok()) return db.status();
    TG_TRY(sqlite::migrate(*db, kMigrations));
    auto sel = db->prepare("SELECT agent FROM identity WHERE id = 1");
    if (!sel.ok()) return sel.status();
    auto step = sel->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row || !crypto::copy_exact(sel->column_blob(0), &self)) {
      return error(Errc::not_found, "ledger " + path + " has no agent identity (never used)");
    }
  }
  return open(path, self, false);
}

// ---- outbox ----

Status LedgerMirror::record_finished(const OutboxItem& item) {
  auto st = db_.prepare_cached(
      "INSERT OR REPLACE INTO outbox(request_id, model, input, cached, output, estimated, status, "
      "finished_at, ticket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, item.request_id));
  TG_TRY(st->bind_text(2, item.model));
  TG_TRY(st->bind_int64(3, static_cast<int64_t>(item.usage.input)));
  TG_TRY(st->bind_int64(4, static_cast<int64_t>(item.usage.cached)));
  TG_TRY(st->bind_int64(5, static_cast<int64_t>(item.usage.output)));
  TG_TRY(st->bind_int64(6, item.usage.estimated ? 1 : 0));
  TG_TRY(st->bind_int64(7, item.status));
  TG_TRY(st->bind_int64(8, item.finished_ms));
  TG_TRY(st->bind_text(9, item.ticket));
  return st->run();
}

namespace {
OutboxItem read_outbox(const sqlite::Stmt& st) {
  OutboxItem o;
  o.request_id = st.column_text(0);
  o.model = st.column_text(1);
  o.usage.input = static_cast<uint64_t>(st.column_int64(2));
  o.usage.cached = static_cast<uint64_t>(st.column_int64(3));
  o.usage.output = static_cast<uint64_t>(st.column_int64(4));
  o.usage.estimated = st.column_int64(5) != 0;
  o.status = static_cast<int>(st.column_int64(6));
  o.finished_ms = st.column_int64(7);
  o.ticket = st.column_text(8);
  return o;
}
constexpr const char* kSelectOutbox =
    "SELECT request_id, model, input, cached, output, estimated, status, finished_at, ticket "
    "FROM outbox";
// Built once: every settled entry takes its outbox row.
const std::string& select_outbox_by_request() {
  static const std::string sql = std::string(kSelectOutbox) + " WHERE request_id = ?";
  return sql;
}
}  // namespace

Result<std::vector<OutboxItem>> LedgerMirror::outbox(size_t limit) {
  auto st = db_.prepare_cached(std::string(kSelectOutbox) + " ORDER BY finished_at, request_id LIMIT ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, static_cast<int64_t>(limit)));
  std::vector<OutboxItem> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    out.push_back(read_outbox(*st));
  }
  return out;
}

Result<uint64_t> LedgerMirror::outbox_count() {
  auto st = db_.prepare_cached("SELECT COUNT(*) FROM outbox");
  if (!st.ok()) return st.status();
  auto step = st->step();
  if (!step.ok()) return step.status();
  return static_cast<uint64_t>(st->column_int64(0));
}

Result<std::optional<OutboxItem>> LedgerMirror::outbox_item(std::string_view request_id) {
  // A SELECT here and a DELETE once the entry is kept. `DELETE ... RETURNING`
  // would be one statement, but SQLite runs it through an ephemeral table:
  // twice the instructions of the two (callgrind, settle_bench).
  auto st = db_.prepare_cached(select_outbox_by_request());
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, request_id));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return std::optional<OutboxItem>();
  return std::optional<OutboxItem>(read_outbox(*st));
}

Status LedgerMirror::drop_outbox_item(std::string_view request_id) {
  auto del = db_.prepare_cached("DELETE FROM outbox WHERE request_id = ?");
  if (!del.ok()) return del.status();
  TG_TRY(del->bind_text(1, request_id));
  return del->run();
}

Status LedgerMirror::claim_rejected(const RejectedClaim& r) {
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto ins = db_.prepare_cached(
      "INSERT OR REPLACE INTO rejected_claims(request_id, code, message, at) VALUES (?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  TG_TRY(ins->bind_text(1, r.request_id));
  TG_TRY(ins->bind_text(2, r.code));
  TG_TRY(ins->bind_text(3, r.message));
  TG_TRY(ins->bind_int64(4, r.at_ms));
  TG_TRY(ins->run());
  TG_TRY(drop_outbox_item(r.request_id));
  return tx->commit();
}

Result<std::vector<RejectedClaim>> LedgerMirror::rejected_claims() {
  auto st = db_.prepare_cached("SELECT request_id, code, message, at FROM rejected_claims ORDER BY at");
  if (!st.ok()) return st.status();
  std::vector<RejectedClaim> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    out.push_back(RejectedClaim{st->column_text(0), st->column_text(1), st->column_text(2),
                                st->column_int64(3)});
  }
  return out;
}

// ---- prices ----

Status LedgerMirror::store_prices(const billing::PriceTable& table) {
  auto existing = prices(table.version());
  if (!existing.ok()) return existing.status();
  if (*existing) {
    if ((*existing)->entries() == table.entries()) return Status::success();
    return error(Errc::protocol, "the hub sent price version " + std::to_string(table.version()) +
                                     " with prices other than before; keeping the first");
  }
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto ins = db_.prepare_cached(
      "INSERT INTO prices(version, model, input, cached_input, output) VALUES (?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  for (const auto& [model, p] : table.entries()) {
    TG_TRY(ins->reset());
    TG_TRY(ins->bind_int64(1, static_cast<int64_t>(table.version())));
    TG_TRY(ins->bind_text(2, model));
    TG_TRY(ins->bind_int64(3, p.input));
    TG_TRY(ins->bind_int64(4, p.cached_input));
    TG_TRY(ins->bind_int64(5, p.output));
    TG_TRY(ins->run());
  }
  return tx->commit();
}

Result<std::optional<billing::PriceTable>> LedgerMirror::prices(uint64_t version) {
  if (auto it = price_cache_.find(version); it != price_cache_.end()) {
    return std::optional<billing::PriceTable>(it->second);
  }
  auto st = db_.prepare_cached(
      "SELECT model, input, cached_input, output FROM prices WHERE version = ? ORDER BY model");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, static_cast<int64_t>(version)));
  std::vector<std::pair<std::string, billing::ModelPrice>> entries;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    billing::ModelPrice p;
    p.input = st->column_int64(1);
    p.cached_input = st->column_int64(2);
    p.output = st->column_int64(3);
    entries.emplace_back(st->column_text(0), p);
  }
  if (entries.empty()) return std::optional<billing::PriceTable>();
  auto t = billing::PriceTable::make(version, std::move(entries));
  if (!t.ok()) return t.status();
  if (price_cache_.size() >= kCachedPriceVersions) price_cache_.erase(price_cache_.begin());
  price_cache_.emplace(version, *t);
  return std::optional<billing::PriceTable>(std::move(*t));
}

// ---- chain ----

Result<MirrorHead> LedgerMirror::head() {
  auto st = db_.prepare_cached("SELECT head_seq, head_hash, total_cost, total_credit FROM identity WHERE id = 1");
  if (!st.ok()) return st.status();
  auto step = st->step();
  if (!step.ok()) return step.status();
  MirrorHead h;
  if (*step != sqlite::Step::row) return h;
  h.seq = static_cast<uint64_t>(st->column_int64(0));
  if (!crypto::copy_exact(st->column_blob(1), &h.head)) return error(Errc::internal, "ledger head hash is malformed");
  h.total_cost = st->column_int64(2);
  h.total_credit = st->column_int64(3);
  return h;
}

namespace {
Result<StoredEntry> read_entry(const sqlite::Stmt& st, const crypto::PublicKey& self) {
  StoredEntry s;
  ledger::Entry& e = s.entry;
  e.agent = self;
  e.seq = static_cast<uint64_t>(st.column_int64(0));
  e.request_id = st.column_text(1);
  e.model = st.column_text(2);
  e.input = static_cast<uint64_t>(st.column_int64(3));
  e.cached = static_cast<uint64_t>(st.column_int64(4));
  e.output = static_cast<uint64_t>(st.column_int64(5));
  e.estimated = st.column_int64(6) != 0;
  e.price_version = static_cast<uint64_t>(st.column_int64(7));
  e.cost = st.column_int64(8);
  e.tier_ppm = static_cast<uint32_t>(st.column_int64(9));
  e.credit = st.column_int64(10);
  e.time_ms = st.column_int64(11);
  if (!crypto::copy_exact(st.column_blob(12), &e.prev) || !crypto::copy_exact(st.column_blob(13), &s.hash)) {
    return error(Errc::internal, "ledger entry " + std::to_string(e.seq) + " has a malformed hash");
  }
  s.status = status_from(st.column_text(14));
  s.received_ms = st.column_int64(15);
  return s;
}
}  // namespace

Result<std::optional<StoredEntry>> LedgerMirror::entry_at(uint64_t seq) {
  auto st = db_.prepare_cached(std::string(kSelectEntry) + " WHERE seq = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, static_cast<int64_t>(seq)));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return std::optional<StoredEntry>();
  auto e = read_entry(*st, self_);
  if (!e.ok()) return e.status();
  return std::optional<StoredEntry>(std::move(*e));
}

Result<LedgerMirror::Run> LedgerMirror::begin_run() {
  std::optional<sqlite::Tx> tx;
  if (!db_.in_transaction()) {
    auto own = sqlite::Tx::begin(db_);
    if (!own.ok()) return own.status();
    tx.emplace(std::move(*own));
  }
  auto hd = head();
  if (!hd.ok()) return hd.status();
  return Run(this, std::move(tx), *hd);
}

Result<Verdict> LedgerMirror::apply(const ledger::Entry& e, const ledger::Hash& claimed,
                                    int64_t now_ms) {
  auto run = begin_run();
  if (!run.ok()) return run.status();
  auto v = run->apply(e, claimed, now_ms);
  if (!v.ok()) return v.status();
  TG_TRY(run->finish());
  return v;
}

Result<Verdict> LedgerMirror::Run::apply(const ledger::Entry& e, const ledger::Hash& claimed,
                                         int64_t now_ms) {
  if (!failed_.ok()) return failed_;
  auto v = append(e, claimed, now_ms);
  if (!v.ok()) failed_ = v.status();
  return v;
}

Result<Verdict> LedgerMirror::Run::append(const ledger::Entry& e, const ledger::Hash& claimed,
                                          int64_t now_ms) {
  LedgerMirror& m = *mirror_;
  Verdict v;
  if (e.agent != m.self_) {
    v.message = "entry " + std::to_string(e.seq) + " is for another agent's chain";
    return v;
  }
  Status valid = ledger::validate(e);
  if (!valid.ok()) {
    v.message = "entry " + std::to_string(e.seq) + " is invalid: " + valid.message();
    return v;
  }
  const ledger::Hash h = ledger::hash(e);
  if (h != claimed) {
    v.message = "entry " + std::to_string(e.seq) + ": hash " + ledger::to_hex(claimed) +
                " does not match its fields (" + ledger::to_hex(h) + ")";
    return v;
  }
  if (e.seq <= head_.seq) {
    auto held = m.entry_at(e.seq);
    if (!held.ok()) return held.status();
    if (*held && (*held)->hash == h) {
      TG_TRY(m.drop_outbox_item(e.request_id));
      v.kind = Verdict::Kind::duplicate;
      v.status = (*held)->status;
      return v;
    }
    v.message = "entry " + std::to_string(e.seq) + " conflicts with the entry held at that position";
    return v;
  }
  if (e.seq > head_.seq + 1) {
    v.kind = Verdict::Kind::gap;
    v.message = "entry " + std::to_string(e.seq) + " arrived while the chain ends at " +
                std::to_string(head_.seq);
    return v;
  }
  if (e.prev != head_.head) {
    v.message = "entry " + std::to_string(e.seq) + " does not follow our head (prev " +
                ledger::to_hex(e.prev) + ", head " + ledger::to_hex(head_.head) + ")";
    return v;
  }
  if (billing::add_overflows(head_.total_cost, e.cost) || billing::add_overflows(head_.total_credit, e.credit)) {
    v.message = "entry " + std::to_string(e.seq) + " would overflow the chain's totals";
    return v;
  }

  // Recompute from what we saw ourselves.
  std::string dispute;
  auto table = m.prices(e.price_version);
  if (!table.ok()) return table.status();
  billing::Usage usage;
  usage.input = e.input;
  usage.cached = e.cached;
  usage.output = e.output;
  usage.estimated = e.estimated;
  if (!*table) {
    dispute = "price version " + std::to_string(e.price_version) + " was never sent to us";
  } else if (const billing::ModelPrice* p = (*table)->find(e.model); !p) {
    dispute = "model " + e.model + " has no price in version " + std::to_string(e.price_version);
  } else {
    auto cost = billing::cost(usage, *p);
    if (!cost.ok() || *cost != e.cost) {
      dispute = "cost " + std::to_string(e.cost) + " should be " +
                (cost.ok() ? std::to_string(*cost) : cost.status().message());
    } else if (billing::credit(e.cost, e.tier_ppm) != e.credit) {
      dispute = "credit " + std::to_string(e.credit) + " should be " +
                std::to_string(billing::credit(e.cost, e.tier_ppm));
    }
  }

  auto own = m.outbox_item(e.request_id);
  if (!own.ok()) return own.status();
  EntryStatus status = EntryStatus::agreed;
  if (!*own) {
    status = EntryStatus::unobserved;
  } else if ((*own)->usage != usage || (*own)->model != e.model) {
    dispute = "usage " + usage_text(usage) + " for " + e.model + ", we saw " +
              usage_text((*own)->usage) + " for " + (*own)->model;
  }
  if (!dispute.empty()) status = EntryStatus::disputed;

  auto ins = m.db_.prepare_cached(
      "INSERT INTO chain(seq, request_id, model, input, cached, output, estimated, price_version, "
      "cost, tier_ppm, credit, time_ms, prev, hash, status, received_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  TG_TRY(ins->bind_int64(1, static_cast<int64_t>(e.seq)));
  TG_TRY(ins->bind_text(2, e.request_id));
  TG_TRY(ins->bind_text(3, e.model));
  TG_TRY(ins->bind_int64(4, static_cast<int64_t>(e.input)));
  TG_TRY(ins->bind_int64(5, static_cast<int64_t>(e.cached)));
  TG_TRY(ins->bind_int64(6, static_cast<int64_t>(e.output)));
  TG_TRY(ins->bind_int64(7, e.estimated ? 1 : 0));
  TG_TRY(ins->bind_int64(8, static_cast<int64_t>(e.price_version)));
  TG_TRY(ins->bind_int64(9, e.cost));
  TG_TRY(ins->bind_int64(10, e.tier_ppm));
  TG_TRY(ins->bind_int64(11, e.credit));
  TG_TRY(ins->bind_int64(12, e.time_ms));
  TG_TRY(ins->bind_blob(13, crypto::as_view(e.prev)));
  TG_TRY(ins->bind_blob(14, crypto::as_view(h)));
  TG_TRY(ins->bind_text(15, entry_status_name(status)));
  TG_TRY(ins->bind_int64(16, now_ms));
  Status s = ins->run();
  if (s.code() == Errc::invalid_argument) {
    // A constraint: the request id is settled already at another position,
    // so the hub broke exactly-once. Nothing of the entry was written.
    v.message = "entry " + std::to_string(e.seq) + " repeats request " + e.request_id + ": " +
                s.message();
    return v;
  }
  TG_TRY(s);
  if (status == EntryStatus::disputed) {
    auto d = m.db_.prepare_cached("INSERT INTO disputes(seq, request_id, reason, at) VALUES (?, ?, ?, ?)");
    if (!d.ok()) return d.status();
    TG_TRY(d->bind_int64(1, static_cast<int64_t>(e.seq)));
    TG_TRY(d->bind_text(2, e.request_id));
    TG_TRY(d->bind_text(3, dispute));
    TG_TRY(d->bind_int64(4, now_ms));
    TG_TRY(d->run());
  }
  if (*own) TG_TRY(m.drop_outbox_item(e.request_id));
  head_.seq = e.seq;
  head_.head = h;
  head_.total_cost += e.cost;
  head_.total_credit += e.credit;
  advanced_ = true;
  v.kind = Verdict::Kind::appended;
  v.status = status;
  v.message = dispute;
  return v;
}

Status LedgerMirror::Run::finish() {
  if (!failed_.ok()) return failed_;  // ~Tx rolls the run's own transaction back
  if (advanced_) {
    auto up = mirror_->db_.prepare_cached(
        "UPDATE identity SET head_seq = ?, head_hash = ?, total_cost = ?, total_credit = ? WHERE id = 1");
    if (!up.ok()) return up.status();
    TG_TRY(up->bind_int64(1, static_cast<int64_t>(head_.seq)));
    TG_TRY(up->bind_blob(2, crypto::as_view(head_.head)));
    TG_TRY(up->bind_int64(3, head_.total_cost));
    TG_TRY(up->bind_int64(4, head_.total_credit));
    TG_TRY(up->run());
    if (mirror_->db_.changes() != 1) return error(Errc::internal, "ledger: the identity row is missing");
  }
  return tx_ ? tx_->commit() : Status::success();
}

Result<std::vector<StoredEntry>> LedgerMirror::entries(uint64_t after_seq, size_t limit) {
  auto st = db_.prepare_cached(std::string(kSelectEntry) + " WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, static_cast<int64_t>(after_seq)));
  TG_TRY(st->bind_int64(2, static_cast<int64_t>(limit)));
  std::vector<StoredEntry> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    auto e = read_entry(*st, self_);
    if (!e.ok()) return e.status();
    out.push_back(std::move(*e));
  }
  return out;
}

Result<std::vector<Dispute>> LedgerMirror::disputes() {
  auto st = db_.prepare_cached("SELECT seq, request_id, reason, at FROM disputes ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<Dispute> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    out.push_back(Dispute{static_cast<uint64_t>(st->column_int64(0)), st->column_text(1),
                          st->column_text(2), st->column_int64(3)});
  }
  return out;
}

// ---- checkpoints ----

Status LedgerMirror::remember_hub_key(const crypto::PublicKey& key) {
  auto cur = hub_key();
  if (!cur.ok()) return cur.status();
  if (*cur && **cur == key) return Status::success();
  auto up = db_.prepare_cached("UPDATE identity SET hub_key = ? WHERE id = 1");
  if (!up.ok()) return up.status();
  TG_TRY(up->bind_blob(1, crypto::as_view(key)));
  TG_TRY(up->run());
  if (*cur) {
    return error(Errc::permission,
                 "the hub's ledger key changed from " + crypto::base64_encode(crypto::as_view(**cur)) +
                     " to " + crypto::base64_encode(crypto::as_view(key)) +
                     "; checkpoints from now on are checked against the new key");
  }
  return Status::success();
}

Result<std::optional<crypto::PublicKey>> LedgerMirror::hub_key() {
  auto st = db_.prepare_cached("SELECT hub_key FROM identity WHERE id = 1");
  if (!st.ok()) return st.status();
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row || st->column_is_null(0)) return std::optional<crypto::PublicKey>();
  crypto::PublicKey k{};
  if (!crypto::copy_exact(st->column_blob(0), &k)) return error(Errc::internal, "stored hub key is malformed");
  return std::optional<crypto::PublicKey>(k);
}

Status LedgerMirror::store_checkpoint(const ledger::Checkpoint& c, const crypto::Signature& sig) {
  auto key = hub_key();
  if (!key.ok()) return key.status();
  if (!*key) return error(Errc::protocol, "checkpoint before the hub's ledger key is known");
  if (c.agent != self_) return error(Errc::protocol, "checkpoint for another agent's chain");
  if (!ledger::verify(**key, c, sig)) {
    return error(Errc::permission, "checkpoint " + std::to_string(c.seq) +
                                       " does not verify under the hub's ledger key");
  }
  auto held = entry_at(c.seq);
  if (!held.ok()) return held.status();
  if (*held && (*held)->hash != c.head) {
    return error(Errc::protocol, "checkpoint " + std::to_string(c.seq) + " names head " +
                                     ledger::to_hex(c.head) + ", our entry there is " +
                                     ledger::to_hex((*held)->hash));
  }
  auto ins = db_.prepare_cached(
      "INSERT OR REPLACE INTO checkpoints(seq, head, total_cost, total_credit, time_ms, sig, hub_key) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  TG_TRY(ins->bind_int64(1, static_cast<int64_t>(c.seq)));
  TG_TRY(ins->bind_blob(2, crypto::as_view(c.head)));
  TG_TRY(ins->bind_int64(3, c.total_cost));
  TG_TRY(ins->bind_int64(4, c.total_credit));
  TG_TRY(ins->bind_int64(5, c.time_ms));
  TG_TRY(ins->bind_blob(6, crypto::as_view(sig)));
  TG_TRY(ins->bind_blob(7, crypto::as_view(**key)));
  return ins->run();
}

Result<std::vector<MirrorCheckpoint>> LedgerMirror::checkpoints() {
  auto st = db_.prepare_cached(
      "SELECT seq, head, total_cost, total_credit, time_ms, sig, hub_key FROM checkpoints ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<MirrorCheckpoint> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step != sqlite::Step::row) break;
    MirrorCheckpoint m;
    m.checkpoint.agent = self_;
    m.checkpoint.seq = static_cast<uint64_t>(st->column_int64(0));
    m.checkpoint.total_cost = st->column_int64(2);
    m.checkpoint.total_credit = st->column_int64(3);
    m.checkpoint.time_ms = st->column_int64(4);
    if (!crypto::copy_exact(st->column_blob(1), &m.checkpoint.head) ||
        !crypto::copy_exact(st->column_blob(5), &m.sig) || !crypto::copy_exact(st->column_blob(6), &m.hub_key)) {
      return error(Errc::internal, "checkpoint " + std::to_string(m.checkpoint.seq) + " is malformed");
    }
    out.push_back(m);
  }
  return out;
}

}  // namespace tg::agent
