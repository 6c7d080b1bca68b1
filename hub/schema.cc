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
};

}  // namespace

const std::vector<std::string_view>& migrations() { return kMigrations; }

Status migrate(sqlite::Db& db) { return sqlite::migrate(db, kMigrations); }

}  // namespace tg::hub
