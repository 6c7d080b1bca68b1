#include "hub/schema.h"

namespace tg::hub {
namespace {

const std::vector<std::string_view> kMigrations = {
    // 1: the agent registry.
    R"sql(
CREATE TABLE agents (
  pubkey     TEXT PRIMARY KEY NOT NULL,
  owner      TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('approved', 'revoked')),
  tier_ppm   INTEGER NOT NULL DEFAULT 1000000 CHECK (tier_ppm BETWEEN 0 AND 1000000),
  first_seen INTEGER,
  last_seen  INTEGER,
  last_addr  TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX agents_owner ON agents(owner);
CREATE TABLE enroll_tokens (
  token_sha256   TEXT PRIMARY KEY NOT NULL,
  owner          TEXT NOT NULL,
  tier_ppm       INTEGER NOT NULL CHECK (tier_ppm BETWEEN 0 AND 1000000),
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  used_at        INTEGER,
  used_by_pubkey TEXT
);
CREATE TABLE agent_events (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  pubkey TEXT NOT NULL,
  event  TEXT NOT NULL CHECK (event IN ('approved', 'revoked', 'tier')),
  at     INTEGER NOT NULL
);
CREATE TABLE sessions (
  pubkey       TEXT PRIMARY KEY NOT NULL REFERENCES agents(pubkey),
  hub_pid      INTEGER NOT NULL,
  connected_at INTEGER NOT NULL,
  addr         TEXT NOT NULL
);
)sql",
    // 2: users of the API and their tokens (only SHA-256 hashes are stored).
    R"sql(
CREATE TABLE users (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE user_tokens (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id      INTEGER NOT NULL REFERENCES users(id),
  token_sha256 TEXT NOT NULL UNIQUE,
  hint         TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  revoked_at   INTEGER
);
CREATE INDEX user_tokens_user ON user_tokens(user_id);
)sql",
    // 3: money. Balances, operator credits, price versions, dispatched
    // attempts awaiting settlement, the per-agent settlement chains with
    // their heads, and signed checkpoints (hub/ledger_sqlite.h).
    R"sql(
ALTER TABLE users ADD COLUMN balance INTEGER NOT NULL DEFAULT 0;
CREATE TABLE user_credits (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id),
  amount  INTEGER NOT NULL,
  at      INTEGER NOT NULL
);
CREATE INDEX user_credits_user ON user_credits(user_id);
CREATE TABLE price_versions (
  version     INTEGER PRIMARY KEY NOT NULL,
  prices      TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE TABLE pending_requests (
  request_id    TEXT PRIMARY KEY NOT NULL,
  agent         TEXT NOT NULL,
  user_id       INTEGER NOT NULL,
  model         TEXT NOT NULL,
  price_version INTEGER NOT NULL,
  created_at    INTEGER NOT NULL,
  obs_input     INTEGER,
  obs_cached    INTEGER,
  obs_output    INTEGER,
  obs_estimated INTEGER,
  observed_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX pending_created ON pending_requests(created_at);
CREATE TABLE chains (
  agent        TEXT PRIMARY KEY NOT NULL,
  seq          INTEGER NOT NULL,
  head         BLOB NOT NULL,
  total_cost   INTEGER NOT NULL,
  total_credit INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE ledger (
  agent         TEXT NOT NULL,
  seq           INTEGER NOT NULL,
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
  user_id       INTEGER,
  PRIMARY KEY (agent, seq)
) WITHOUT ROWID;
CREATE INDEX ledger_user ON ledger(user_id);
CREATE TABLE checkpoints (
  agent        TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  head         BLOB NOT NULL,
  total_cost   INTEGER NOT NULL,
  total_credit INTEGER NOT NULL,
  time_ms      INTEGER NOT NULL,
  sig          BLOB NOT NULL,
  PRIMARY KEY (agent, seq)
) WITHOUT ROWID;
)sql",
    // 4: per-user rate limit overrides (NULL: hub.conf [limits]).
    R"sql(
ALTER TABLE users ADD COLUMN rpm INTEGER;
ALTER TABLE users ADD COLUMN tpm INTEGER;
)sql",
    // 5: pending_requests holds only calls in flight or awaiting a claim; its
    // sweep (every few seconds) reads the whole small table, and without the
    // index each pending row costs one page write instead of two.
    R"sql(
DROP INDEX pending_created;
)sql",
    // 6: calls carry sealed tickets (hub/call_ticket.h), so a call in flight
    // has no row; a call the agent refused keeps one, cancelled, so its
    // ticket cannot be claimed.
    R"sql(
ALTER TABLE pending_requests ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
)sql",
};

}  // namespace

const std::vector<std::string_view>& migrations() { return kMigrations; }

Status migrate(sqlite::Db& db) { return sqlite::migrate(db, kMigrations); }

}  // namespace tg::hub
