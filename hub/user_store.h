// Users of the hub's API and their bearer tokens, in the hub's SQLite (WAL)
// file (tables: hub/schema.cc migration 2). A token is "sk-tg-" + 64 hex
// digits (32 random bytes); only its SHA-256 is stored, so create_token() is
// the only time it exists. The running hub authenticates with it while the
// operator CLI adds users and revokes tokens in the same file. Synchronous
// and short; never touches the network or the event loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shared/core/status.h"
#include "shared/sqlite/db.h"

namespace tg::hub {

inline constexpr const char* kUserTokenPrefix = "sk-tg-";
inline constexpr size_t kUserTokenBytes = 32;  // random bytes behind a token (hex encoded)
inline constexpr size_t kUserTokenChars = 6 + 2 * kUserTokenBytes;
inline constexpr size_t kMaxUserNameBytes = 64;
inline constexpr size_t kMaxTokensPerUser = 100;   // unrevoked tokens at once
// Authenticated tokens remembered between requests; the cache is emptied
// whenever another process changed the database (PRAGMA data_version).
inline constexpr size_t kMaxCachedTokens = 10000;

struct UserRecord {
  int64_t id = 0;
  std::string name;
  int64_t created_at_ms = 0;
  int64_t active_tokens = 0;  // not revoked
};

struct TokenRecord {
  int64_t id = 0;
  std::string user;
  std::string hint;  // "sk-tg-..." + the last 4 hex digits, for lists
  int64_t created_at_ms = 0;
  std::optional<int64_t> revoked_at_ms;
};

// What create_token() returns: the token, shown once.
struct CreatedToken {
  int64_t id = 0;
  std::string token;
};

// Who a valid token belongs to.
struct TokenOwner {
  int64_t token_id = 0;
  int64_t user_id = 0;
  std::string user;
  // The user's own rate limits; nullopt: hub.conf [limits] applies.
  std::optional<uint64_t> rpm;
  std::optional<uint64_t> tpm;
};

// [A-Za-z0-9._@-]{1,64}; Errc::invalid_argument names the bad value.
Status validate_user_name(std::string_view name);
// True for "sk-tg-" + 64 lowercase hex digits.
bool is_user_token(std::string_view token) noexcept;

class UserStore {
 public:
  // Opens or creates the hub database at `path` and migrates its schema.
  // With create=false a missing file is Errc::not_found.
  static Result<UserStore> open(const std::string& path, bool create = true);
  // The same on a connection the daemon already holds (sqlite::Db::share()).
  static Result<UserStore> open(sqlite::Db db);

  // Errc::invalid_argument for a bad name or one that exists.
  Result<UserRecord> add_user(std::string_view name, int64_t now_ms);
  // Every user, ordered by name.
  Result<std::vector<UserRecord>> list_users();
  // A new token for `user` (Errc::not_found if unknown; Errc::limit at
  // kMaxTokensPerUser unrevoked tokens).
  Result<CreatedToken> create_token(std::string_view user, int64_t now_ms);
  // Revokes the token given as the token itself or as its decimal id.
  // Returns its record (revoked_at set); `*changed` false if it was revoked
  // already. Errc::not_found for no such token.
  Result<TokenRecord> revoke_token(std::string_view token_or_id, int64_t now_ms,
                                   bool* changed = nullptr);
  // Sets (value) or clears (nullopt: back to hub.conf) the user's rate
  // limits; 0 means no limit. Errc::not_found for an unknown user.
  Status set_limits(std::string_view user, std::optional<std::optional<uint64_t>> rpm,
                    std::optional<std::optional<uint64_t>> tpm);
  // The user's overrides (rpm, tpm), nullopt each when hub.conf applies.
  Result<std::pair<std::optional<uint64_t>, std::optional<uint64_t>>> limits(std::string_view user);
  // Tokens of `user`, newest first (Errc::not_found if unknown).
  Result<std::vector<TokenRecord>> list_tokens(std::string_view user);

  // The owner of an unrevoked token, std::nullopt for a malformed, unknown
  // or revoked one. Looks the token up by its SHA-256 and compares the hash
  // in constant time; answers from a cache while no other connection has
  // written to the database.
  // With `tick` (the event loop's milliseconds), the check for other
  // processes' changes is shared by every request of that tick
  // (sqlite::Db::data_version); without, it runs on every call.
  Result<std::optional<TokenOwner>> authenticate(std::string_view token,
                                                 std::optional<uint64_t> tick = std::nullopt);

  sqlite::Db& db() noexcept { return db_; }

 private:
  explicit UserStore(sqlite::Db db) : db_(std::move(db)) {}
  Result<std::optional<UserRecord>> find_user(std::string_view name);
  // Empties the cache if another connection committed since the last call.
  Status check_data_version(std::optional<uint64_t> tick);

  sqlite::Db db_;
  int64_t data_version_ = -1;  // as last read; -1: never
  std::unordered_map<std::string, TokenOwner> cache_;  // by raw SHA-256
};

}  // namespace tg::hub
