#include "hub/agent_store.h"

#include <ctime>
#include <utility>

#include "hub/schema.h"
#include "shared/crypto/ed25519.h"
#include "shared/crypto/hash.h"

namespace tg::hub {
namespace {

constexpr const char* kSelectAgent =
    "SELECT a.pubkey, a.owner, a.status, a.tier_ppm, a.first_seen, a.last_seen, a.last_addr, "
    "a.created_at, a.updated_at, s.pubkey IS NOT NULL "
    "FROM agents a LEFT JOIN sessions s ON s.pubkey = a.pubkey";

AgentRecord read_agent(const sqlite::Stmt& st) {
  AgentRecord r;
  r.pubkey = st.column_text(0);
  r.owner = st.column_text(1);
  r.status = st.column_text(2) == "revoked" ? AgentStatus::revoked : AgentStatus::approved;
  r.tier_ppm = static_cast<uint32_t>(st.column_int64(3));
  if (!st.column_is_null(4)) r.first_seen_ms = st.column_int64(4);
  if (!st.column_is_null(5)) r.last_seen_ms = st.column_int64(5);
  r.last_addr = st.column_text(6);
  r.created_at_ms = st.column_int64(7);
  r.updated_at_ms = st.column_int64(8);
  r.online = st.column_int64(9) != 0;
  return r;
}

// Parses the event column; the CHECK constraint admits nothing else.
AgentEventKind event_kind(const std::string& name) {
  if (name == "revoked") return AgentEventKind::revoked;
  if (name == "tier") return AgentEventKind::tier;
  return AgentEventKind::approved;
}

std::string token_hash(std::string_view token) {
  return crypto::hex_encode(crypto::as_view(crypto::sha256(token)));
}

std::string short_key(std::string_view key) { return std::string(key.substr(0, 12)) + "..."; }

}  // namespace

const char* agent_status_name(AgentStatus s) noexcept {
  return s == AgentStatus::revoked ? "revoked" : "approved";
}

const char* agent_event_name(AgentEventKind k) noexcept {
  switch (k) {
    case AgentEventKind::approved: return "approved";
    case AgentEventKind::revoked: return "revoked";
    case AgentEventKind::tier: return "tier";
  }
  return "approved";
}

Status validate_owner(std::string_view owner) {
  if (owner.empty()) return error(Errc::invalid_argument, "owner name is empty");
  if (owner.size() > kMaxOwnerBytes) {
    return error(Errc::invalid_argument, "owner name is " + std::to_string(owner.size()) +
                                             " characters, at most " +
                                             std::to_string(kMaxOwnerBytes) + " allowed");
  }
  for (char c : owner) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) {
      // The name may hold control bytes: echo only what is printable.
      std::string shown;
      for (char d : owner.substr(0, kMaxOwnerBytes)) shown += (d >= 0x20 && d < 0x7f) ? d : '?';
      return error(Errc::invalid_argument,
                   "owner name '" + shown +
                       "' has a character other than letters, digits, '.', '_', '@', '-'");
    }
  }
  return Status::success();
}

Status validate_tier_ppm(int64_t tier_ppm) {
  if (tier_ppm < 0 || tier_ppm > static_cast<int64_t>(kTierPpmMax)) {
    return error(Errc::invalid_argument, "tier " + std::to_string(tier_ppm) +
                                             " ppm is outside 0..1000000");
  }
  return Status::success();
}

Result<std::string> canonical_pubkey(std::string_view pubkey_b64) {
  constexpr size_t kEcho = 60;
  auto key = crypto::parse_public_key(pubkey_b64);
  if (!key.ok()) {
    std::string shown;
    for (char d : pubkey_b64.substr(0, kEcho)) shown += (d >= 0x20 && d < 0x7f) ? d : '?';
    return error(Errc::invalid_argument,
                 "agent public key '" + shown + "' is not base64 of 32 bytes (" +
                     key.status().message() + "); paste the output of 'tokengo-agent pubkey'");
  }
  return crypto::base64_encode(
      std::string_view(reinterpret_cast<const char*>(key->data()), key->size()));
}

Result<AgentStore> AgentStore::open(const std::string& path, bool create) {
  sqlite::OpenOptions options;
  options.create = create;
  auto db = sqlite::Db::open(path, options);
  if (!db.ok()) return db.status();
  return open(std::move(db).value());
}

Result<AgentStore> AgentStore::open(sqlite::Db db) {
  TG_TRY(migrate(db));
  return AgentStore(std::move(db));
}

Status AgentStore::append_event(const std::string& key, AgentEventKind kind, int64_t now_ms) {
  auto st = db_.prepare("INSERT INTO agent_events (pubkey, event, at) VALUES (?, ?, ?)");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, key));
  TG_TRY(st->bind_text(2, agent_event_name(kind)));
  TG_TRY(st->bind_int64(3, now_ms));
  return st->run();
}

Result<std::optional<AgentRecord>> AgentStore::lookup_canonical(const std::string& key) {
  auto st = db_.prepare(std::string(kSelectAgent) + " WHERE a.pubkey = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, key));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step == sqlite::Step::done) return std::optional<AgentRecord>();
  return std::optional<AgentRecord>(read_agent(*st));
}

Result<ApproveOutcome> AgentStore::approve_in_tx(const std::string& key, std::string_view owner,
                                                 int64_t tier_ppm, int64_t now_ms) {
  auto existing = lookup_canonical(key);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) {
    auto st = db_.prepare(
        "INSERT INTO agents (pubkey, owner, status, tier_ppm, created_at, updated_at) "
        "VALUES (?, ?, 'approved', ?, ?, ?)");
    if (!st.ok()) return st.status();
    TG_TRY(st->bind_text(1, key));
    TG_TRY(st->bind_text(2, owner));
    TG_TRY(st->bind_int64(3, tier_ppm));
    TG_TRY(st->bind_int64(4, now_ms));
    TG_TRY(st->bind_int64(5, now_ms));
    TG_TRY(st->run());
    TG_TRY(append_event(key, AgentEventKind::approved, now_ms));
    return ApproveOutcome::created;
  }
  const AgentRecord& rec = **existing;
  ApproveOutcome outcome = ApproveOutcome::unchanged;
  AgentEventKind kind = AgentEventKind::approved;
  if (rec.status == AgentStatus::revoked) {
    outcome = ApproveOutcome::reapproved;
  } else if (rec.owner != owner) {
    return error(Errc::permission, "agent " + short_key(key) + " is already approved for owner '" +
                                       rec.owner + "'; revoke it first to give it to '" +
                                       std::string(owner) + "'");
  } else if (rec.tier_ppm != tier_ppm) {
    outcome = ApproveOutcome::tier_changed;
    kind = AgentEventKind::tier;
  } else {
    return ApproveOutcome::unchanged;
  }
  auto st = db_.prepare(
      "UPDATE agents SET owner = ?, status = 'approved', tier_ppm = ?, updated_at = ? "
      "WHERE pubkey = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, owner));
  TG_TRY(st->bind_int64(2, tier_ppm));
  TG_TRY(st->bind_int64(3, now_ms));
  TG_TRY(st->bind_text(4, key));
  TG_TRY(st->run());
  TG_TRY(append_event(key, kind, now_ms));
  return outcome;
}

Result<ApproveOutcome> AgentStore::approve(std::string_view pubkey, std::string_view owner,
                                           int64_t tier_ppm, int64_t now_ms) {
  auto key = canonical_pubkey(pubkey);
  if (!key.ok()) return key.status();
  TG_TRY(validate_owner(owner));
  TG_TRY(validate_tier_ppm(tier_ppm));
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto outcome = approve_in_tx(*key, owner, tier_ppm, now_ms);
  if (!outcome.ok()) return outcome.status();
  TG_TRY(tx->commit());
  return outcome;
}

Result<bool> AgentStore::revoke(std::string_view pubkey, int64_t now_ms) {
  auto key = canonical_pubkey(pubkey);
  if (!key.ok()) return key.status();
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto existing = lookup_canonical(*key);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) {
    return error(Errc::not_found, "agent " + *key + " is not in the registry");
  }
  if ((*existing)->status == AgentStatus::revoked) return false;
  auto st = db_.prepare("UPDATE agents SET status = 'revoked', updated_at = ? WHERE pubkey = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, now_ms));
  TG_TRY(st->bind_text(2, *key));
  TG_TRY(st->run());
  TG_TRY(append_event(*key, AgentEventKind::revoked, now_ms));
  TG_TRY(tx->commit());
  return true;
}

Result<std::optional<AgentRecord>> AgentStore::lookup(std::string_view pubkey) {
  auto key = canonical_pubkey(pubkey);
  if (!key.ok()) return key.status();
  return lookup_canonical(*key);
}

Result<std::vector<AgentRecord>> AgentStore::list() {
  auto st = db_.prepare(std::string(kSelectAgent) + " ORDER BY a.owner, a.pubkey");
  if (!st.ok()) return st.status();
  std::vector<AgentRecord> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step == sqlite::Step::done) return out;
    out.push_back(read_agent(*st));
  }
}

Result<std::string> AgentStore::create_enroll_token(std::string_view owner, int64_t tier_ppm,
                                                    int64_t ttl_ms, int64_t now_ms) {
  TG_TRY(validate_owner(owner));
  TG_TRY(validate_tier_ppm(tier_ppm));
  if (ttl_ms < kMinTokenTtlMs || ttl_ms > kMaxTokenTtlMs) {
    return error(Errc::invalid_argument, "token lifetime " + std::to_string(ttl_ms) +
                                             " ms is outside 1 minute..30 days");
  }
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto count = db_.prepare(
      "SELECT count(*) FROM enroll_tokens WHERE used_at IS NULL AND expires_at > ?");
  if (!count.ok()) return count.status();
  TG_TRY(count->bind_int64(1, now_ms));
  auto step = count->step();
  if (!step.ok()) return step.status();
  if (count->column_int64(0) >= kMaxOpenTokens) {
    return error(Errc::limit, "there are already " + std::to_string(kMaxOpenTokens) +
                                  " unused enrollment tokens; wait for some to expire");
  }
  count = sqlite::Stmt();

  std::string raw(kEnrollTokenBytes, '\0');
  crypto::random_bytes(raw.data(), raw.size());
  std::string token = kEnrollTokenPrefix + crypto::hex_encode(raw);
  sodium_memzero(raw.data(), raw.size());

  auto st = db_.prepare(
      "INSERT INTO enroll_tokens (token_sha256, owner, tier_ppm, created_at, expires_at) "
      "VALUES (?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, token_hash(token)));
  TG_TRY(st->bind_text(2, owner));
  TG_TRY(st->bind_int64(3, tier_ppm));
  TG_TRY(st->bind_int64(4, now_ms));
  TG_TRY(st->bind_int64(5, now_ms + ttl_ms));
  TG_TRY(st->run());
  TG_TRY(tx->commit());
  return token;
}

Result<AgentRecord> AgentStore::consume_enroll_token(std::string_view token,
                                                     std::string_view pubkey, int64_t now_ms) {
  const size_t prefix = std::string_view(kEnrollTokenPrefix).size();
  if (token.size() != prefix + 2 * kEnrollTokenBytes || token.substr(0, prefix) != kEnrollTokenPrefix ||
      crypto::lower_hex_span(token.substr(prefix)) != 2 * kEnrollTokenBytes) {
    return error(Errc::invalid_argument, "enrollment token is malformed (want 'tge_' and " +
                                             std::to_string(2 * kEnrollTokenBytes) +
                                             " hex digits)");
  }
  auto key = canonical_pubkey(pubkey);
  if (!key.ok()) return key.status();
  const std::string hash = token_hash(token);

  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto st = db_.prepare(
      "SELECT owner, tier_ppm, expires_at, used_at FROM enroll_tokens WHERE token_sha256 = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, hash));
  auto step = st->step();
  if (!step.ok()) return step.status();
  // Token errors name the token by a prefix of its hash, never by its text.
  const std::string label = "enrollment token " + hash.substr(0, 12);
  if (*step == sqlite::Step::done) return error(Errc::not_found, label + " is unknown");
  if (!st->column_is_null(3)) return error(Errc::limit, label + " was already used");
  if (st->column_int64(2) <= now_ms) return error(Errc::timeout, label + " has expired");
  const std::string owner = st->column_text(0);
  const int64_t tier = st->column_int64(1);
  st = sqlite::Stmt();

  auto existing = lookup_canonical(*key);
  if (!existing.ok()) return existing.status();
  if (existing->has_value() && (*existing)->status == AgentStatus::revoked) {
    return error(Errc::permission,
                 "agent " + *key + " is revoked; an enrollment token cannot undo a revocation");
  }
  auto outcome = approve_in_tx(*key, owner, tier, now_ms);
  if (!outcome.ok()) return outcome.status();

  auto use = db_.prepare(
      "UPDATE enroll_tokens SET used_at = ?, used_by_pubkey = ? "
      "WHERE token_sha256 = ? AND used_at IS NULL");
  if (!use.ok()) return use.status();
  TG_TRY(use->bind_int64(1, now_ms));
  TG_TRY(use->bind_text(2, *key));
  TG_TRY(use->bind_text(3, hash));
  TG_TRY(use->run());
  if (db_.changes() != 1) return error(Errc::limit, label + " was already used");
  auto rec = lookup_canonical(*key);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return error(Errc::internal, "agent " + *key + " vanished while enrolling");
  TG_TRY(tx->commit());
  return std::move(**rec);
}

Status AgentStore::record_seen(std::string_view pubkey, std::string_view addr, int64_t now_ms) {
  if (addr.size() > kMaxAddrBytes) {
    return error(Errc::invalid_argument, "peer address is longer than " +
                                             std::to_string(kMaxAddrBytes) + " bytes");
  }
  auto key = canonical_pubkey(pubkey);
  if (!key.ok()) return key.status();
  auto st = db_.prepare(
      "UPDATE agents SET first_seen = COALESCE(first_seen, ?1), last_seen = ?1, last_addr = ?2 "
      "WHERE pubkey = ?3");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, now_ms));
  TG_TRY(st->bind_text(2, addr));
  TG_TRY(st->bind_text(3, *key));
  TG_TRY(st->run());
  if (db_.changes() == 0) return error(Errc::not_found, "agent " + *key + " is not in the registry");
  return Status::success();
}

Status AgentStore::session_open(std::string_view pubkey, std::string_view addr, int64_t hub_pid,
                                int64_t now_ms) {
  if (addr.size() > kMaxAddrBytes) {
    return error(Errc::invalid_argument, "peer address is longer than " +
                                             std::to_string(kMaxAddrBytes) + " bytes");
  }
  auto key = canonical_pubkey(pubkey);
  if (!key.ok()) return key.status();
  auto st = db_.prepare(
      "INSERT OR REPLACE INTO sessions (pubkey, hub_pid, connected_at, addr) VALUES (?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, *key));
  TG_TRY(st->bind_int64(2, hub_pid));
  TG_TRY(st->bind_int64(3, now_ms));
  TG_TRY(st->bind_text(4, addr));
  Status s = st->run();
  if (s.code() == Errc::invalid_argument) {  // the foreign key: not a registered agent
    return error(Errc::not_found, "agent " + *key + " is not in the registry");
  }
  return s;
}

Status AgentStore::session_close(std::string_view pubkey) {
  auto key = canonical_pubkey(pubkey);
  if (!key.ok()) return key.status();
  auto st = db_.prepare("DELETE FROM sessions WHERE pubkey = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, *key));
  return st->run();
}

Status AgentStore::sessions_clear() { return db_.exec("DELETE FROM sessions"); }

Result<std::vector<AgentEvent>> AgentStore::events_since(int64_t after_seq) {
  auto st = db_.prepare(
      "SELECT seq, pubkey, event, at FROM agent_events WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, after_seq));
  TG_TRY(st->bind_int64(2, static_cast<int64_t>(kMaxEventsPerPoll)));
  std::vector<AgentEvent> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step == sqlite::Step::done) return out;
    AgentEvent e;
    e.seq = st->column_int64(0);
    e.pubkey = st->column_text(1);
    e.kind = event_kind(st->column_text(2));
    e.at_ms = st->column_int64(3);
    out.push_back(std::move(e));
  }
}

Result<int64_t> AgentStore::latest_event_seq() {
  auto st = db_.prepare("SELECT COALESCE(MAX(seq), 0) FROM agent_events");
  if (!st.ok()) return st.status();
  auto step = st->step();
  if (!step.ok()) return step.status();
  return st->column_int64(0);
}

}  // namespace tg::hub
