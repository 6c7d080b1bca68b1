#include "shared/sqlite/db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <utility>

namespace tg::sqlite {
namespace {

constexpr size_t kSqlEcho = 60;  // bytes of SQL quoted in an error message

Errc errc_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Errc::timeout;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG: return Errc::invalid_argument;
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_READONLY: return Errc::permission;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL: return Errc::io;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return Errc::parse;
    default: return Errc::internal;
  }
}

std::string echo(std::string_view sql) {
  while (!sql.empty() && (sql.front() == ' ' || sql.front() == '\n')) sql.remove_prefix(1);
  std::string out(sql.substr(0, kSqlEcho));
  for (char& c : out) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (sql.size() > kSqlEcho) out += "...";
  return out;
}

// Creates `path` with mode 0600 if it does not exist, so SQLite (and its -wal
// and -shm files, which copy the database file's mode) never use 0644.
Status create_private(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return Status::success();
  }
  if (errno == EEXIST) return Status::success();
  return error(Errc::io, "sqlite: cannot create database '" + path + "': " + std::strerror(errno));
}

}  // namespace

// ---- Db ----

// The connection itself, shared by every Db that share() made from it, with
// the statements kept for prepare_cached().
struct Db::Conn {
  struct Cached {
    std::string sql;  // the cache's key views it
    sqlite3_stmt* stmt = nullptr;
    bool borrowed = false;
  };
  sqlite3* db = nullptr;
  std::string path;
  // Keyed by views of Cached::sql, so a lookup copies nothing.
  std::unordered_map<std::string_view, std::unique_ptr<Cached>> cache;
  sqlite3_stmt* control[static_cast<size_t>(Control::count)] = {};
  bool data_version_read = false;  // data_version holds a reading
  uint64_t data_version_tick = 0;
  int64_t data_version = 0;

  ~Conn() {
    for (auto& [sql, c] : cache) sqlite3_finalize(c->stmt);
    for (sqlite3_stmt* st : control) sqlite3_finalize(st);
    if (db) sqlite3_close_v2(db);
  }
};

Result<Db> Db::open(const std::string& path, const OpenOptions& options) {
  if (path.empty()) return error(Errc::invalid_argument, "sqlite: empty database path");
  // Once per process, before SQLite initialises itself: no memory
  // statistics, which cost every SQLite allocation and free a global mutex
  // (SQLITE_MISUSE if something initialised SQLite first: harmless).
  static const int kConfigured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kConfigured;
  if (options.create) {
    TG_TRY(create_private(path));
  } else if (::access(path.c_str(), F_OK) != 0) {
    return error(Errc::not_found, "sqlite: database '" + path + "' does not exist");
  }
  Db db;
  db.conn_ = std::make_shared<Conn>();
  db.conn_->path = path;
  int rc = sqlite3_open_v2(path.c_str(), &db.conn_->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = db.conn_->db ? db.error_of(rc, "open", "")
                            : error(Errc::internal, "sqlite: open '" + path + "': out of memory");
    return s;
  }
  sqlite3* h = db.conn_->db;
  sqlite3_extended_result_codes(h, 1);
  rc = sqlite3_busy_timeout(h, options.busy_timeout_ms);
  if (rc != SQLITE_OK) return db.error_of(rc, "busy_timeout", "");

  if (options.page_size != 0) {
    const int n = options.page_size;
    if (n < 512 || n > 65536 || (n & (n - 1)) != 0) {
      return error(Errc::invalid_argument, "sqlite: page size " + std::to_string(n) +
                                               " is not a power of two in 512..65536");
    }
    // Takes effect only while the file is empty: before WAL mode is set.
    TG_TRY(db.exec("PRAGMA page_size=" + std::to_string(n)));
  }
  // journal_mode answers with the mode in force: anything but "wal" means the
  // file cannot be shared safely with another process.
  auto mode = db.prepare("PRAGMA journal_mode=WAL");
  if (!mode.ok()) return mode.status();
  auto step = mode->step();
  if (!step.ok()) return step.status();
  std::string got = *step == Step::row ? mode->column_text(0) : "";
  if (got != "wal") {
    return error(Errc::io, "sqlite: database '" + path + "' cannot use WAL mode (journal_mode is '" +
                               got + "')");
  }
  mode = Stmt();
  // journal_size_limit: a WAL that grew under a burst is cut back to 4 MiB
  // when it restarts, instead of keeping its largest size on disk (on
  // OpenWrt, perhaps in RAM) for good.
  TG_TRY(db.exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                 "PRAGMA journal_size_limit=" + std::to_string(kWalSizeLimit) + ";"));
  return db;
}

Db::~Db() = default;
Db::Db(Db&& other) noexcept = default;
Db& Db::operator=(Db&& other) noexcept = default;

const std::string& Db::path() const noexcept {
  static const std::string none;
  return conn_ ? conn_->path : none;
}

sqlite3* Db::handle() const noexcept { return conn_ ? conn_->db : nullptr; }

Db Db::share() const noexcept {
  Db other;
  other.conn_ = conn_;
  return other;
}

Status Db::error_of(int rc, const char* op, std::string_view sql) const {
  std::string msg = std::string("sqlite: ") + op;
  if (!sql.empty()) msg += " '" + echo(sql) + "'";
  msg += " on '" + path() + "': ";
  msg += handle() ? sqlite3_errmsg(handle()) : sqlite3_errstr(rc);
  return error(errc_of(rc), std::move(msg));
}

Status Db::exec(std::string_view sql) {
  if (!handle()) return error(Errc::invalid_argument, "sqlite: exec on a closed database");
  if (sql.size() > kMaxSqlBytes) return error(Errc::limit, "sqlite: exec: SQL text too long");
  std::string text(sql);  // sqlite3_exec needs a terminated string
  int rc = sqlite3_exec(handle(), text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error_of(rc, "exec", sql);
  return Status::success();
}

Status Db::control(Control c) {
  static constexpr const char* kSql[] = {"BEGIN IMMEDIATE",      "COMMIT",
                                         "ROLLBACK",             "SAVEPOINT tg_nested",
                                         "RELEASE tg_nested",    "ROLLBACK TO tg_nested"};
  static_assert(sizeof kSql / sizeof kSql[0] == static_cast<size_t>(Control::count));
  if (!handle()) return error(Errc::invalid_argument, "sqlite: exec on a closed database");
  const char* sql = kSql[static_cast<size_t>(c)];
  sqlite3_stmt*& st = conn_->control[static_cast<size_t>(c)];
  if (!st) {
    int rc = sqlite3_prepare_v2(handle(), sql, -1, &st, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(st);
      st = nullptr;
      return error_of(rc, "exec", sql);
    }
  }
  int rc = sqlite3_step(st);
  // The error is read before the reset, which would repeat it on the handle.
  Status s = rc == SQLITE_DONE || rc == SQLITE_ROW ? Status::success() : error_of(rc, "exec", sql);
  sqlite3_reset(st);
  return s;
}

Result<Stmt> Db::prepare_cached(std::string_view sql) {
  if (!handle()) return error(Errc::invalid_argument, "sqlite: prepare on a closed database");
  auto& cache = conn_->cache;
  auto it = cache.find(sql);
  if (it != cache.end()) {
    if (it->second->borrowed) return prepare(sql);  // nested use: a private copy
    it->second->borrowed = true;
    return Stmt(it->second->stmt, &it->second->borrowed);
  }
  auto fresh = prepare(sql);
  if (!fresh.ok() || cache.size() >= kMaxCachedStatements) return fresh;
  auto entry = std::make_unique<Conn::Cached>();
  entry->sql = std::string(sql);
  entry->stmt = std::exchange(fresh->stmt_, nullptr);
  entry->borrowed = true;
  Stmt out(entry->stmt, &entry->borrowed);
  const std::string_view key = entry->sql;
  cache.emplace(key, std::move(entry));
  return out;
}

Result<Stmt> Db::prepare(std::string_view sql) {
  if (!handle()) return error(Errc::invalid_argument, "sqlite: prepare on a closed database");
  if (sql.size() > kMaxSqlBytes) return error(Errc::limit, "sqlite: prepare: SQL text too long");
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(handle(), sql.data(), static_cast<int>(sql.size()), &raw, &tail);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return error_of(rc, "prepare", sql);
  }
  Stmt stmt(raw);
  if (!raw) return error(Errc::invalid_argument, "sqlite: prepare '" + echo(sql) + "': no statement");
  for (const char* p = tail; p && p < sql.data() + sql.size(); ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
      return error(Errc::invalid_argument,
                   "sqlite: prepare '" + echo(sql) + "': more than one statement");
    }
  }
  return stmt;
}

Result<int64_t> Db::pragma_int(std::string_view sql) {
  auto st = prepare_cached(sql);
  if (!st.ok()) return st.status();
  auto step = st->step();
  if (!step.ok()) return step.status();
  if (*step != Step::row) {
    return error(Errc::internal, "sqlite: '" + std::string(sql) + "' returned no row");
  }
  return st->column_int64(0);
}

Result<int64_t> Db::data_version() { return pragma_int("PRAGMA data_version"); }

Result<int64_t> Db::data_version(uint64_t tick) {
  if (!handle()) return error(Errc::invalid_argument, "sqlite: data_version on a closed database");
  Conn& c = *conn_;
  if (c.data_version_read && c.data_version_tick == tick) return c.data_version;
  auto v = data_version();
  if (!v.ok()) return v.status();
  c.data_version_read = true;
  c.data_version_tick = tick;
  c.data_version = *v;
  return *v;
}

int64_t Db::changes() const noexcept { return handle() ? sqlite3_changes(handle()) : 0; }

int64_t Db::last_insert_rowid() const noexcept {
  return handle() ? sqlite3_last_insert_rowid(handle()) : 0;
}

Result<int64_t> Db::user_version() { return pragma_int("PRAGMA user_version"); }

// ---- Stmt ----

Stmt::~Stmt() { release(); }

void Stmt::release() noexcept {
  if (!stmt_) return;
  if (borrowed_) {  // a cached statement: ready for its next borrower
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *borrowed_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
  borrowed_ = nullptr;
}

Stmt::Stmt(Stmt&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), borrowed_(std::exchange(other.borrowed_, nullptr)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    release();
    stmt_ = std::exchange(other.stmt_, nullptr);
    borrowed_ = std::exchange(other.borrowed_, nullptr);
  }
  return *this;
}

Status Stmt::error_of(int rc, const char* op) const {
  std::string msg = std::string("sqlite: ") + op;
  if (!stmt_) return error(Errc::invalid_argument, msg + ": statement is not prepared");
  const char* sql = sqlite3_sql(stmt_);
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (sql) msg += " '" + echo(sql) + "'";
  if (const char* file = sqlite3_db_filename(db, "main"); file && *file) {
    msg += std::string(" on '") + file + "'";
  }
  msg += ": ";
  msg += sqlite3_errmsg(db);
  return error(errc_of(rc), std::move(msg));
}

Status Stmt::bind_int64(int index, int64_t value) {
  if (!stmt_) return error_of(SQLITE_MISUSE, "bind");
  int rc = sqlite3_bind_int64(stmt_, index, value);
  return rc == SQLITE_OK ? Status::success() : error_of(rc, "bind");
}

Status Stmt::bind_text(int index, std::string_view text) {
  if (!stmt_) return error_of(SQLITE_MISUSE, "bind");
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8);
  return rc == SQLITE_OK ? Status::success() : error_of(rc, "bind");
}

Status Stmt::bind_blob(int index, std::string_view bytes) {
  if (!stmt_) return error_of(SQLITE_MISUSE, "bind");
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  return rc == SQLITE_OK ? Status::success() : error_of(rc, "bind");
}

Status Stmt::bind_null(int index) {
  if (!stmt_) return error_of(SQLITE_MISUSE, "bind");
  int rc = sqlite3_bind_null(stmt_, index);
  return rc == SQLITE_OK ? Status::success() : error_of(rc, "bind");
}

Result<Step> Stmt::step() {
  if (!stmt_) return error_of(SQLITE_MISUSE, "step");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return Step::row;
  if (rc == SQLITE_DONE) return Step::done;
  Status s = error_of(rc, "step");
  sqlite3_reset(stmt_);  // leaves the statement reusable after a failure
  return s;
}

Status Stmt::run() {
  for (;;) {
    auto s = step();
    if (!s.ok()) return s.status();
    if (*s == Step::done) return Status::success();
  }
}

int Stmt::column_count() const noexcept { return stmt_ ? sqlite3_column_count(stmt_) : 0; }

bool Stmt::column_is_null(int index) const noexcept {
  return !stmt_ || sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

int64_t Stmt::column_int64(int index) const noexcept {
  return stmt_ ? sqlite3_column_int64(stmt_, index) : 0;
}

std::string Stmt::column_text(int index) const {
  if (!stmt_) return {};
  const unsigned char* p = sqlite3_column_text(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  if (!p || n <= 0) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::string Stmt::column_blob(int index) const {
  if (!stmt_) return {};
  const void* p = sqlite3_column_blob(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  if (!p || n <= 0) return {};
  return std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}

Status Stmt::reset() {
  if (!stmt_) return error_of(SQLITE_MISUSE, "reset");
  sqlite3_reset(stmt_);  // its code repeats the last step's error, already reported
  sqlite3_clear_bindings(stmt_);
  return Status::success();
}

// ---- Tx ----

bool Db::in_transaction() const noexcept { return handle() && sqlite3_get_autocommit(handle()) == 0; }

Result<Tx> Tx::begin(Db& db) {
  if (db.in_transaction()) {
    TG_TRY(db.control(Db::Control::savepoint));
    return Tx(&db, true);
  }
  TG_TRY(db.control(Db::Control::begin));
  return Tx(&db, false);
}

Tx::~Tx() { rollback(); }

Tx::Tx(Tx&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), nested_(other.nested_) {}

Status Tx::commit() {
  if (!db_) return error(Errc::invalid_argument, "sqlite: commit of a finished transaction");
  Status s = db_->control(nested_ ? Db::Control::release : Db::Control::commit);
  if (!s.ok()) {
    rollback();
    return s;
  }
  db_ = nullptr;
  return Status::success();
}

void Tx::rollback() noexcept {
  if (!db_) return;
  Db* db = std::exchange(db_, nullptr);
  // Fails only if SQLite already rolled back on its own (e.g. after SQLITE_FULL).
  if (sqlite3_get_autocommit(db->handle()) == 0) {
    if (nested_) {
      (void)db->control(Db::Control::rollback_to);
      (void)db->control(Db::Control::release);
    } else {
      (void)db->control(Db::Control::rollback);
    }
  }
}

// ---- migrations ----

Status migrate(Db& db, const std::vector<std::string_view>& migrations) {
  const auto target = static_cast<int64_t>(migrations.size());
  // Up to date (the usual case): answer without taking the write lock.
  auto current = db.user_version();
  if (!current.ok()) return current.status();
  if (*current == target) return Status::success();
  for (;;) {
    auto tx = Tx::begin(db);
    if (!tx.ok()) return tx.status();
    auto version = db.user_version();
    if (!version.ok()) return version.status();
    if (*version > target) {
      return error(Errc::invalid_argument,
                   "sqlite: database '" + db.path() + "' has schema version " +
                       std::to_string(*version) + ", newer than this program's " +
                       std::to_string(target) + "; upgrade the program");
    }
    if (*version < 0) {
      return error(Errc::parse, "sqlite: database '" + db.path() + "' has a negative schema version");
    }
    if (*version == target) return Status::success();  // ~Tx ends the empty transaction
    const auto index = static_cast<size_t>(*version);
    Status s = db.exec(migrations[index]);
    if (!s.ok()) {
      return error(s.code(), "migration " + std::to_string(index + 1) + ": " + s.message());
    }
    TG_TRY(db.exec("PRAGMA user_version=" + std::to_string(index + 1)));
    TG_TRY(tx->commit());
  }
}

}  // namespace tg::sqlite
