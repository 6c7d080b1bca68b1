// The hub's persistent agent registry in one SQLite (WAL) file shared by the
// running hub and the operator CLI: approved/revoked agent keys with owner and
// tier, one-time enrollment tokens (stored only as SHA-256), an append-only
// change log the hub polls to act on CLI changes, and the live-session table.
// Synchronous and short; never touches the network or the event loop.
//
// Schema (migration 1 of hub/schema.cc):
//   agents(pubkey TEXT PK        -- standard base64 of the 32-byte Ed25519 key, canonical form
//          owner TEXT            -- [A-Za-z0-9._@-]{1,64}
//          status TEXT           -- 'approved' | 'revoked'
//          tier_ppm INTEGER      -- credit ratio in parts per million, 0..1000000
//          first_seen, last_seen INTEGER NULL  -- unix ms of first/last authenticated tunnel
//          last_addr TEXT NULL   -- peer address of the last tunnel
//          created_at, updated_at INTEGER)     -- unix ms
//   enroll_tokens(token_sha256 TEXT PK  -- lowercase hex SHA-256 of the token; the token is never stored
//          owner, tier_ppm, created_at, expires_at, used_at NULL, used_by_pubkey NULL)
//   agent_events(seq INTEGER PK AUTOINCREMENT, pubkey, event 'approved'|'revoked'|'tier', at)
//   sessions(pubkey PK, hub_pid, connected_at, addr)  -- agents with a live tunnel
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/sqlite/db.h"

namespace tg::hub {

inline constexpr uint32_t kTierPpmMax = 1000000;  // ratio 1.0
inline constexpr size_t kMaxOwnerBytes = 64;
inline constexpr size_t kMaxAddrBytes = 128;
inline constexpr int64_t kMinTokenTtlMs = 60 * 1000;                  // 1 minute
inline constexpr int64_t kMaxTokenTtlMs = 30LL * 24 * 3600 * 1000;    // 30 days
inline constexpr int64_t kMaxOpenTokens = 10000;   // unused, unexpired tokens at once
inline constexpr size_t kMaxEventsPerPoll = 1000;  // events_since() returns at most this many
inline constexpr const char* kEnrollTokenPrefix = "tge_";
inline constexpr size_t kEnrollTokenBytes = 32;    // random bytes behind a token (hex encoded)

enum class AgentStatus { approved, revoked };
enum class AgentEventKind { approved, revoked, tier };

const char* agent_status_name(AgentStatus s) noexcept;
const char* agent_event_name(AgentEventKind k) noexcept;

struct AgentRecord {
  std::string pubkey;  // canonical base64
  std::string owner;
  AgentStatus status = AgentStatus::approved;
  uint32_t tier_ppm = kTierPpmMax;
  std::optional<int64_t> first_seen_ms;
  std::optional<int64_t> last_seen_ms;
  std::string last_addr;  // "" if never seen
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  bool online = false;  // a live session row exists
};

struct AgentEvent {
  int64_t seq = 0;
  std::string pubkey;
  AgentEventKind kind = AgentEventKind::approved;
  int64_t at_ms = 0;
};

// What approve() did.
enum class ApproveOutcome {
  created,     // a new key
  reapproved,  // a revoked key is approved again
  tier_changed,
  unchanged,   // already approved with this owner and tier
};

// unix_now_ms() (shared/core/loop.h) is the default `now` of the methods below.

// Input checks shared with the CLI; errors are Errc::invalid_argument and
// name the bad value.
Status validate_owner(std::string_view owner);
Status validate_tier_ppm(int64_t tier_ppm);
// Parses and canonicalises an agent public key (base64 of exactly 32 bytes).
Result<std::string> canonical_pubkey(std::string_view pubkey_b64);

class AgentStore {
 public:
  // Opens or creates the registry at `path` and migrates its schema. With
  // create=false a missing file is Errc::not_found.
  static Result<AgentStore> open(const std::string& path, bool create = true);
  // The same on a connection the daemon already holds (sqlite::Db::share()).
  static Result<AgentStore> open(sqlite::Db db);

  // Approves `pubkey` for `owner` at `tier_ppm`. A revoked key is approved
  // again (any owner). An approved key may change tier, never owner: that
  // needs an explicit revoke first (Errc::permission). Each change appends an
  // event ('approved' or 'tier').
  Result<ApproveOutcome> approve(std::string_view pubkey, std::string_view owner,
                                 int64_t tier_ppm, int64_t now_ms = unix_now_ms());
  // Revokes a known key and appends a 'revoked' event; returns false if it was
  // already revoked (no event). Unknown key: Errc::not_found.
  Result<bool> revoke(std::string_view pubkey, int64_t now_ms = unix_now_ms());

  Result<std::optional<AgentRecord>> lookup(std::string_view pubkey);
  // Every agent, ordered by owner then key, with its online flag.
  Result<std::vector<AgentRecord>> list();

  // Creates a one-time token binding the next key that presents it to
  // `owner` at `tier_ppm`, valid for `ttl_ms`. Returns "tge_" + 64 hex digits;
  // only its SHA-256 is stored, so this is the only time it exists.
  Result<std::string> create_enroll_token(std::string_view owner, int64_t tier_ppm,
                                          int64_t ttl_ms, int64_t now_ms = unix_now_ms());
  // In one transaction: checks the token, approves `pubkey` with the token's
  // owner and tier and marks the token used by it. Failures (nothing changes):
  //   invalid_argument  malformed token or key
  //   not_found         no such token
  //   timeout           token expired
  //   limit             token already used (one use only)
  //   permission        key is revoked, or approved for another owner
  Result<AgentRecord> consume_enroll_token(std::string_view token, std::string_view pubkey,
                                           int64_t now_ms = unix_now_ms());

  // Notes an authenticated tunnel from `addr`. Unknown key: Errc::not_found.
  Status record_seen(std::string_view pubkey, std::string_view addr,
                     int64_t now_ms = unix_now_ms());
  // Live tunnel bookkeeping for `agent list`; the running hub is the only writer.
  Status session_open(std::string_view pubkey, std::string_view addr, int64_t hub_pid,
                      int64_t now_ms = unix_now_ms());
  Status session_close(std::string_view pubkey);
  // Forgets every session (called when the hub starts: none survive a restart).
  Status sessions_clear();

  // Events with seq > `after_seq` in seq order, at most kMaxEventsPerPoll
  // (poll again with the last seq to get more).
  Result<std::vector<AgentEvent>> events_since(int64_t after_seq);
  // The highest seq so far (0 if none): where a starting hub begins polling.
  Result<int64_t> latest_event_seq();

  sqlite::Db& db() noexcept { return db_; }

 private:
  explicit AgentStore(sqlite::Db db) : db_(std::move(db)) {}
  Result<std::optional<AgentRecord>> lookup_canonical(const std::string& key);
  Status append_event(const std::string& key, AgentEventKind kind, int64_t now_ms);
  // approve() inside the caller's transaction; `key` is canonical.
  Result<ApproveOutcome> approve_in_tx(const std::string& key, std::string_view owner,
                                       int64_t tier_ppm, int64_t now_ms);
  sqlite::Db db_;
};

}  // namespace tg::hub
