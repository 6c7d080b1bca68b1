// SQLite3, thinly wrapped: a connection (Db) opened in WAL mode with a busy
// timeout so several processes can share one file, prepared statements (Stmt),
// IMMEDIATE transactions that roll back unless committed (Tx), and schema
// migrations keyed on PRAGMA user_version. Errors are Status values naming the
// operation, the SQL and SQLite's message. A connection can be shared by the
// stores of one process (Db::share) and keeps the statements of its hot paths
// compiled (Db::prepare_cached). No threads, no exceptions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tg::sqlite {

inline constexpr int kDefaultBusyTimeoutMs = 5000;
inline constexpr size_t kMaxSqlBytes = 64 * 1024;  // one statement or script
inline constexpr size_t kMaxCachedStatements = 64;  // per connection; more are prepared each time
inline constexpr int64_t kWalSizeLimit = 4 * 1024 * 1024;  // -wal file size kept after a restart

struct OpenOptions {
  bool create = true;      // create a missing file (mode 0600); false: missing is not_found
  int busy_timeout_ms = kDefaultBusyTimeoutMs;  // how long a locked database is waited for
  // The page size of a file made now (512..65536 bytes, a power of two);
  // 0 keeps SQLite's default (4096). A file made before keeps its own.
  int page_size = 0;
};

class Stmt;

// One connection. Move-only; share() hands out more owners of the same
// connection (it closes with the last one). Every Stmt prepared on it must be
// destroyed before its last owner. Use from one thread at a time.
class Db {
 public:
  // Opens (or creates, with mode 0600) the database file `path` and sets
  // journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON, the busy timeout
  // and journal_size_limit=kWalSizeLimit.
  // The -wal and -shm files SQLite creates inherit the file's mode.
  static Result<Db> open(const std::string& path, const OpenOptions& options = {});

  Db() = default;
  ~Db();
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  bool is_open() const noexcept { return conn_ != nullptr; }
  const std::string& path() const noexcept;

  // Another owner of this connection, for a second store of the same
  // process: one connection means one page cache, and the stores' own writes
  // do not count as another connection's (PRAGMA data_version stays put).
  Db share() const noexcept;

  // Runs one or more statements that return no rows we need (DDL, PRAGMA).
  Status exec(std::string_view sql);
  // Compiles exactly one statement; trailing text other than whitespace or
  // a ';' is an error (no silently ignored second statement).
  Result<Stmt> prepare(std::string_view sql);
  // The same, for a statement run again and again: compiled once per
  // connection and kept (up to kMaxCachedStatements). The Stmt returned
  // borrows it: its destructor resets it and clears its bindings instead of
  // finalizing it. While one borrower holds it, the same SQL is compiled
  // afresh for another (nested use is safe).
  Result<Stmt> prepare_cached(std::string_view sql);

  // PRAGMA data_version: a number that changes when another connection (of
  // this or any process) commits; this connection's own commits leave it.
  // A reading costs a read transaction (its file locks); with `tick` (any
  // clock of the caller's, e.g. the event loop's milliseconds) it is taken
  // at most once per tick value and shared by every caller on the connection
  // in that tick, so another process's commit is seen from the next tick on.
  Result<int64_t> data_version();
  Result<int64_t> data_version(uint64_t tick);

  // True between a Tx's begin and its end (SQLite is not in autocommit mode).
  bool in_transaction() const noexcept;

  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  int64_t changes() const noexcept;
  int64_t last_insert_rowid() const noexcept;
  // PRAGMA user_version.
  Result<int64_t> user_version();

  sqlite3* handle() const noexcept;

 private:
  friend class Tx;
  // The statements of Tx, compiled once per connection (sqlite3_exec would
  // compile them again at every transaction and savepoint).
  enum class Control { begin, commit, rollback, savepoint, release, rollback_to, count };
  Status control(Control c);
  struct Conn;
  Status error_of(int rc, const char* op, std::string_view sql) const;
  // Runs a PRAGMA that answers one integer (a cached statement).
  Result<int64_t> pragma_int(std::string_view sql);
  std::shared_ptr<Conn> conn_;
};

enum class Step { row, done };

// One prepared statement. Bind indexes start at 1, column indexes at 0 (as
// in SQLite). Text and blobs are copied when bound. Move-only.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status bind_int64(int index, int64_t value);
  Status bind_text(int index, std::string_view text);
  Status bind_blob(int index, std::string_view bytes);
  Status bind_null(int index);

  // Advances: Step::row when a row is available to the column getters,
  // Step::done when the statement has finished. A locked database is waited
  // for up to the busy timeout, then fails with Errc::timeout.
  Result<Step> step();
  // Runs the statement to completion, ignoring rows (INSERT/UPDATE/DELETE).
  Status run();

  int column_count() const noexcept;
  bool column_is_null(int index) const noexcept;
  int64_t column_int64(int index) const noexcept;         // NULL reads as 0
  std::string column_text(int index) const;               // NULL reads as ""
  std::string column_blob(int index) const;               // NULL reads as ""

  // Makes the statement runnable again and clears every binding.
  Status reset();
  // False for a default-constructed (or moved-from) Stmt.
  bool valid() const noexcept { return stmt_ != nullptr; }

 private:
  friend class Db;
  explicit Stmt(sqlite3_stmt* stmt, bool* borrowed = nullptr) noexcept
      : stmt_(stmt), borrowed_(borrowed) {}
  Status error_of(int rc, const char* op) const;
  void release() noexcept;
  sqlite3_stmt* stmt_ = nullptr;
  bool* borrowed_ = nullptr;  // set: a cached statement, given back on release
};

// BEGIN IMMEDIATE ... COMMIT. Takes the write lock at begin (waiting up to the
// busy timeout), so a read-then-write inside it never fails with a stale
// snapshot. Rolls back in the destructor unless commit() succeeded. Begun
// while the connection is already inside a transaction, it is a SAVEPOINT
// of that one: its commit keeps its changes for the outer transaction to
// commit, its rollback undoes only its own (so one failed step of a batch
// does not discard the batch). The Db must outlive the Tx; nested ones end
// before their outer one.
class Tx {
 public:
  static Result<Tx> begin(Db& db);
  ~Tx();
  Tx(Tx&& other) noexcept;
  Tx& operator=(Tx&& other) = delete;
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  Status commit();
  // Ends the transaction now, discarding its changes (also done by ~Tx).
  void rollback() noexcept;
  // False once committed or rolled back.
  bool active() const noexcept { return db_ != nullptr; }

 private:
  Tx(Db* db, bool nested) noexcept : db_(db), nested_(nested) {}
  Db* db_ = nullptr;  // null once committed or rolled back
  bool nested_ = false;
};

// Brings the schema up to date: migrations[i] takes user_version i to i + 1.
// Each pending migration runs in its own IMMEDIATE transaction together with
// the user_version bump, so a failure leaves the previous version intact and
// two processes migrating at once apply each step exactly once. A database
// whose version is newer than migrations.size() is refused (Errc::invalid_argument).
Status migrate(Db& db, const std::vector<std::string_view>& migrations);

}  // namespace tg::sqlite
