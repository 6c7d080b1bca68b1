#include "hub/user_store.h"

#include <sodium.h>

#include <utility>

#include "hub/schema.h"
#include "shared/crypto/hash.h"

namespace tg::hub {
namespace {

constexpr size_t kEcho = 40;  // bytes of a bad argument quoted back

std::string shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kEcho)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kEcho) out += "...";
  return out;
}

bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

constexpr const char* kSelectToken =
    "SELECT t.id, u.name, t.hint, t.created_at, t.revoked_at "
    "FROM user_tokens t JOIN users u ON u.id = t.user_id";

TokenRecord read_token(const sqlite::Stmt& st) {
  TokenRecord r;
  r.id = st.column_int64(0);
  r.user = st.column_text(1);
  r.hint = st.column_text(2);
  r.created_at_ms = st.column_int64(3);
  if (!st.column_is_null(4)) r.revoked_at_ms = st.column_int64(4);
  return r;
}

}  // namespace

Status validate_user_name(std::string_view name) {
  if (name.empty()) return error(Errc::invalid_argument, "user name is empty");
  if (name.size() > kMaxUserNameBytes) {
    return error(Errc::invalid_argument, "user name is " + std::to_string(name.size()) +
                                             " characters, at most " +
                                             std::to_string(kMaxUserNameBytes) + " allowed");
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) {
      return error(Errc::invalid_argument,
                   "user name '" + shown(name) +
                       "' has a character other than letters, digits, '.', '_', '@', '-'");
    }
  }
  return Status::success();
}

bool is_user_token(std::string_view token) noexcept {
  const std::string_view prefix = kUserTokenPrefix;
  return token.size() == kUserTokenChars && token.substr(0, prefix.size()) == prefix &&
         crypto::lower_hex_span(token.substr(prefix.size())) == kUserTokenChars - prefix.size();
}

Result<UserStore> UserStore::open(const std::string& path, bool create) {
  sqlite::OpenOptions options;
  options.create = create;
  auto db = sqlite::Db::open(path, options);
  if (!db.ok()) return db.status();
  return open(std::move(db).value());
}

Result<UserStore> UserStore::open(sqlite::Db db) {
  TG_TRY(migrate(db));
  return UserStore(std::move(db));
}

Result<std::optional<UserRecord>> UserStore::find_user(std::string_view name) {
  auto st = db_.prepare(
      "SELECT u.id, u.name, u.created_at, "
      "(SELECT COUNT(*) FROM user_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) "
      "FROM users u WHERE u.name = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, name));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step == sqlite::Step::done) return std::optional<UserRecord>();
  UserRecord r;
  r.id = st->column_int64(0);
  r.name = st->column_text(1);
  r.created_at_ms = st->column_int64(2);
  r.active_tokens = st->column_int64(3);
  return std::optional<UserRecord>(std::move(r));
}

Result<UserRecord> UserStore::add_user(std::string_view name, int64_t now_ms) {
  TG_TRY(validate_user_name(name));
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto existing = find_user(name);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return error(Errc::invalid_argument, "user '" + std::string(name) + "' already exists");
  }
  auto st = db_.prepare("INSERT INTO users (name, created_at) VALUES (?, ?)");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, name));
  TG_TRY(st->bind_int64(2, now_ms));
  TG_TRY(st->run());
  UserRecord r;
  r.id = db_.last_insert_rowid();
  r.name = std::string(name);
  r.created_at_ms = now_ms;
  TG_TRY(tx->commit());
  return r;
}

Result<std::vector<UserRecord>> UserStore::list_users() {
  auto st = db_.prepare(
      "SELECT u.id, u.name, u.created_at, "
      "(SELECT COUNT(*) FROM user_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) "
      "FROM users u ORDER BY u.name");
  if (!st.ok()) return st.status();
  std::vector<UserRecord> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step == sqlite::Step::done) break;
    UserRecord r;
    r.id = st->column_int64(0);
    r.name = st->column_text(1);
    r.created_at_ms = st->column_int64(2);
    r.active_tokens = st->column_int64(3);
    out.push_back(std::move(r));
  }
  return out;
}

Result<CreatedToken> UserStore::create_token(std::string_view user, int64_t now_ms) {
  TG_TRY(validate_user_name(user));
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto rec = find_user(user);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) {
    return error(Errc::not_found, "no user '" + std::string(user) +
                                      "' (create it with 'tokengo-hub user add " +
                                      std::string(user) + "')");
  }
  if ((*rec)->active_tokens >= static_cast<int64_t>(kMaxTokensPerUser)) {
    return error(Errc::limit, "user '" + std::string(user) + "' already has " +
                                  std::to_string(kMaxTokensPerUser) +
                                  " active tokens; revoke one first");
  }
  uint8_t raw[kUserTokenBytes];
  crypto::random_bytes(raw, sizeof raw);
  CreatedToken out;
  out.token = std::string(kUserTokenPrefix) +
              crypto::hex_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  sodium_memzero(raw, sizeof raw);
  const std::string hash = crypto::hex_encode(crypto::as_view(crypto::sha256(out.token)));
  const std::string hint = std::string(kUserTokenPrefix) + "..." + out.token.substr(out.token.size() - 4);
  auto st = db_.prepare(
      "INSERT INTO user_tokens (user_id, token_sha256, hint, created_at) VALUES (?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, (*rec)->id));
  TG_TRY(st->bind_text(2, hash));
  TG_TRY(st->bind_text(3, hint));
  TG_TRY(st->bind_int64(4, now_ms));
  TG_TRY(st->run());
  out.id = db_.last_insert_rowid();
  TG_TRY(tx->commit());
  return out;
}

Result<TokenRecord> UserStore::revoke_token(std::string_view token_or_id, int64_t now_ms,
                                            bool* changed) {
  std::string where;
  std::string arg;
  int64_t id = 0;
  if (all_digits(token_or_id) && token_or_id.size() <= 18) {
    for (char c : token_or_id) id = id * 10 + (c - '0');
    where = " WHERE t.id = ?";
  } else if (is_user_token(token_or_id)) {
    arg = crypto::hex_encode(crypto::as_view(crypto::sha256(token_or_id)));
    where = " WHERE t.token_sha256 = ?";
  } else {
    return error(Errc::invalid_argument,
                 "'" + shown(token_or_id) + "' is neither a token (sk-tg-...) nor a token id");
  }
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto st = db_.prepare(std::string(kSelectToken) + where);
  if (!st.ok()) return st.status();
  if (arg.empty()) {
    TG_TRY(st->bind_int64(1, id));
  } else {
    TG_TRY(st->bind_text(1, arg));
  }
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step == sqlite::Step::done) {
    return error(Errc::not_found, arg.empty() ? "no token with id " + std::to_string(id)
                                              : std::string("no such token"));
  }
  TokenRecord r = read_token(*st);
  if (changed) *changed = false;
  if (!r.revoked_at_ms) {
    auto up = db_.prepare("UPDATE user_tokens SET revoked_at = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    TG_TRY(up->bind_int64(1, now_ms));
    TG_TRY(up->bind_int64(2, r.id));
    TG_TRY(up->run());
    r.revoked_at_ms = now_ms;
    if (changed) *changed = true;
  }
  TG_TRY(tx->commit());
  cache_.clear();  // our own writes do not change our data_version
  return r;
}

Result<std::vector<TokenRecord>> UserStore::list_tokens(std::string_view user) {
  TG_TRY(validate_user_name(user));
  auto rec = find_user(user);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return error(Errc::not_found, "no user '" + std::string(user) + "'");
  auto st = db_.prepare(std::string(kSelectToken) + " WHERE t.user_id = ? ORDER BY t.id DESC");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_int64(1, (*rec)->id));
  std::vector<TokenRecord> out;
  for (;;) {
    auto step = st->step();
    if (!step.ok()) return step.status();
    if (*step == sqlite::Step::done) break;
    out.push_back(read_token(*st));
  }
  return out;
}

Status UserStore::check_data_version(std::optional<uint64_t> tick) {
  auto v = tick ? db_.data_version(*tick) : db_.data_version();
  if (!v.ok()) return v.status();
  if (*v != data_version_) {
    cache_.clear();
    data_version_ = *v;
  }
  return Status::success();
}

Result<std::optional<TokenOwner>> UserStore::authenticate(std::string_view token,
                                                           std::optional<uint64_t> tick) {
  if (!is_user_token(token)) return std::optional<TokenOwner>();
  const crypto::Sha256 digest = crypto::sha256(token);
  const std::string key(crypto::as_view(digest));
  TG_TRY(check_data_version(tick));
  if (auto it = cache_.find(key); it != cache_.end()) return std::optional<TokenOwner>(it->second);

  const std::string hex = crypto::hex_encode(crypto::as_view(digest));
  auto st = db_.prepare_cached(
      "SELECT t.id, t.token_sha256, u.id, u.name, u.rpm, u.tpm FROM user_tokens t "
      "JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ? AND t.revoked_at IS NULL");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, hex));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step == sqlite::Step::done) return std::optional<TokenOwner>();
  const std::string stored = st->column_text(1);
  if (stored.size() != hex.size() ||
      sodium_memcmp(stored.data(), hex.data(), hex.size()) != 0) {
    return std::optional<TokenOwner>();
  }
  TokenOwner owner;
  owner.token_id = st->column_int64(0);
  owner.user_id = st->column_int64(2);
  owner.user = st->column_text(3);
  if (!st->column_is_null(4)) owner.rpm = static_cast<uint64_t>(st->column_int64(4));
  if (!st->column_is_null(5)) owner.tpm = static_cast<uint64_t>(st->column_int64(5));
  if (cache_.size() >= kMaxCachedTokens) cache_.clear();
  cache_.emplace(key, owner);
  return std::optional<TokenOwner>(std::move(owner));
}

Status UserStore::set_limits(std::string_view user, std::optional<std::optional<uint64_t>> rpm,
                             std::optional<std::optional<uint64_t>> tpm) {
  auto tx = sqlite::Tx::begin(db_);
  if (!tx.ok()) return tx.status();
  auto found = find_user(user);
  if (!found.ok()) return found.status();
  if (!*found) return error(Errc::not_found, "no user '" + shown(user) + "'");
  auto set = [&](const char* column, const std::optional<uint64_t>& v) -> Status {
    auto st = db_.prepare(std::string("UPDATE users SET ") + column + " = ? WHERE id = ?");
    if (!st.ok()) return st.status();
    if (v) {
      TG_TRY(st->bind_int64(1, static_cast<int64_t>(*v)));
    } else {
      TG_TRY(st->bind_null(1));
    }
    TG_TRY(st->bind_int64(2, (*found)->id));
    return st->run();
  };
  if (rpm) TG_TRY(set("rpm", *rpm));
  if (tpm) TG_TRY(set("tpm", *tpm));
  return tx->commit();
}

Result<std::pair<std::optional<uint64_t>, std::optional<uint64_t>>> UserStore::limits(
    std::string_view user) {
  auto st = db_.prepare("SELECT rpm, tpm FROM users WHERE name = ?");
  if (!st.ok()) return st.status();
  TG_TRY(st->bind_text(1, user));
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != sqlite::Step::row) return error(Errc::not_found, "no user '" + shown(user) + "'");
  std::pair<std::optional<uint64_t>, std::optional<uint64_t>> out;
  if (!st->column_is_null(0)) out.first = static_cast<uint64_t>(st->column_int64(0));
  if (!st->column_is_null(1)) out.second = static_cast<uint64_t>(st->column_int64(1));
  return out;
}

}  // namespace tg::hub
