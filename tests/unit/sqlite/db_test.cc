#include "shared/sqlite/db.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tests/unit/temp_dir.h"

namespace tg::sqlite {
namespace {

// A fresh temporary directory per test, removed at the end.
class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ + "/test.db";
  }
  Db open_db(int busy_ms = kDefaultBusyTimeoutMs) {
    OpenOptions o;
    o.busy_timeout_ms = busy_ms;
    auto db = Db::open(path_, o);
    EXPECT_TRUE(db.ok()) << db.status().to_string();
    return db.ok() ? std::move(db).value() : Db();
  }
  int64_t count(Db& db, const char* table) {
    auto st = db.prepare(std::string("SELECT count(*) FROM ") + table);
    EXPECT_TRUE(st.ok()) << st.status().to_string();
    if (!st.ok()) return -1;
    auto r = st->step();
    EXPECT_TRUE(r.ok() && *r == Step::row);
    return st->column_int64(0);
  }
  test::TempDir tmp_{"tg-sqlite"};
  std::string dir_ = tmp_.path();
  std::string path_;
};

TEST_F(SqliteTest, DataVersionIsReadOncePerTickAndSharedByTheConnection) {
  Db a = open_db();
  Db other = open_db();
  ASSERT_TRUE(a.exec("CREATE TABLE t (x INTEGER)").ok());
  auto v0 = a.data_version(1);
  ASSERT_TRUE(v0.ok()) << v0.status().to_string();
  ASSERT_TRUE(a.exec("INSERT INTO t VALUES (1)").ok());  // its own commit: no change
  EXPECT_EQ(*a.data_version(), *v0);
  ASSERT_TRUE(other.exec("INSERT INTO t VALUES (2)").ok());
  EXPECT_EQ(*a.data_version(1), *v0);  // the same tick: the same reading
  Db shared = a.share();
  EXPECT_EQ(*shared.data_version(1), *v0);  // shared by the connection's owners
  auto v1 = a.data_version(2);
  ASSERT_TRUE(v1.ok());
  EXPECT_NE(*v1, *v0);  // the next tick reads again
  EXPECT_EQ(*a.data_version(), *v1);
  ASSERT_TRUE(other.exec("INSERT INTO t VALUES (3)").ok());
  EXPECT_NE(*a.data_version(), *v1);  // without a tick: always read
}

TEST_F(SqliteTest, AWalThatRestartsIsCutBackToTheSizeLimit) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("PRAGMA wal_autocheckpoint=0; CREATE TABLE t (v BLOB)").ok());
  for (int i = 0; i < 1400; ++i) {  // one 4000-byte row per commit: 5+ MiB of WAL
    ASSERT_TRUE(db.exec("INSERT INTO t VALUES (zeroblob(4000))").ok());
  }
  struct stat st {};
  ASSERT_EQ(::stat((path_ + "-wal").c_str(), &st), 0);
  EXPECT_GT(st.st_size, kWalSizeLimit);
  ASSERT_TRUE(db.exec("PRAGMA wal_checkpoint(PASSIVE)").ok());  // all copied
  ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)").ok());  // the WAL restarts
  ASSERT_EQ(::stat((path_ + "-wal").c_str(), &st), 0);
  EXPECT_LE(st.st_size, kWalSizeLimit);
}

// Statements currently prepared on the connection (cached ones included).
int live_statements(const Db& db) {
  int n = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db.handle(), nullptr); s; s = sqlite3_next_stmt(db.handle(), s)) ++n;
  return n;
}

int64_t data_version(Db& db) {
  auto st = db.prepare("PRAGMA data_version");
  EXPECT_TRUE(st.ok());
  auto r = st->step();
  EXPECT_TRUE(r.ok() && *r == Step::row);
  return st->column_int64(0);
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

TEST_F(SqliteTest, OpenCreatesFileWithMode0600) {
  Db db = open_db();
  ASSERT_TRUE(db.is_open());
  EXPECT_EQ(mode_of(path_), 0600u);
}

TEST_F(SqliteTest, WalAndShmFilesAreAlso0600) {
  mode_t old = ::umask(0);
  Db db = open_db();
  ::umask(old);
  ASSERT_TRUE(db.exec("CREATE TABLE t(x)").ok());
  EXPECT_EQ(mode_of(path_ + "-wal"), 0600u);
  EXPECT_EQ(mode_of(path_ + "-shm"), 0600u);
}

TEST_F(SqliteTest, OpenUsesWalForeignKeysAndNormalSync) {
  Db db = open_db();
  auto jm = db.prepare("PRAGMA journal_mode");
  ASSERT_TRUE(jm.ok());
  ASSERT_EQ(*jm->step(), Step::row);
  EXPECT_EQ(jm->column_text(0), "wal");
  auto fk = db.prepare("PRAGMA foreign_keys");
  ASSERT_TRUE(fk.ok());
  ASSERT_EQ(*fk->step(), Step::row);
  EXPECT_EQ(fk->column_int64(0), 1);
  auto sync = db.prepare("PRAGMA synchronous");
  ASSERT_TRUE(sync.ok());
  ASSERT_EQ(*sync->step(), Step::row);
  EXPECT_EQ(sync->column_int64(0), 1);  // NORMAL
}

TEST_F(SqliteTest, ANewFileTakesThePageSizeAndAnOlderFileKeepsItsOwn) {
  auto page_size = [](Db& db) {
    auto st = db.prepare("PRAGMA page_size");
    EXPECT_TRUE(st.ok());
    EXPECT_EQ(*st->step(), Step::row);
    return st->column_int64(0);
  };
  OpenOptions small;
  small.page_size = 1024;
  {
    auto db = Db::open(path_, small);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    ASSERT_TRUE(db->exec("CREATE TABLE t(x)").ok());
    EXPECT_EQ(page_size(*db), 1024);
  }
  {
    auto db = Db::open(path_);  // reopened without the option: still 1024
    ASSERT_TRUE(db.ok());
    EXPECT_EQ(page_size(*db), 1024);
  }
  const std::string older = dir_ + "/older.db";
  {
    OpenOptions other;
    other.page_size = 2048;
    auto db = Db::open(older, other);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->exec("CREATE TABLE t(x)").ok());
    EXPECT_EQ(page_size(*db), 2048);
  }
  auto db = Db::open(older, small);  // made before: keeps its own
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  EXPECT_EQ(page_size(*db), 2048);
  ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)").ok());
}

TEST_F(SqliteTest, APageSizeThatSqliteCannotUseIsRefused) {
  for (int bad : {256, 1000, 131072, -1024}) {
    OpenOptions o;
    o.page_size = bad;
    auto db = Db::open(path_, o);
    ASSERT_FALSE(db.ok()) << bad;
    EXPECT_EQ(db.status().code(), Errc::invalid_argument);
    EXPECT_NE(db.status().message().find("page size"), std::string::npos) << db.status().message();
  }
}

TEST_F(SqliteTest, OpenWithoutCreateRefusesMissingFile) {
  OpenOptions o;
  o.create = false;
  auto db = Db::open(path_, o);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Errc::not_found);
  EXPECT_NE(db.status().message().find(path_), std::string::npos);
}

TEST_F(SqliteTest, OpenRefusesAFileThatIsNotADatabase) {
  FILE* f = std::fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("this is not an sqlite database, not at all, no header here....\n", f);
  std::fclose(f);
  auto db = Db::open(path_);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("not a database"), std::string::npos)
      << db.status().message();
}

TEST_F(SqliteTest, BindStepAndColumnsRoundTrip) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t(i INTEGER, s TEXT, b BLOB, n)").ok());
  auto ins = db.prepare("INSERT INTO t VALUES (?, ?, ?, ?)");
  ASSERT_TRUE(ins.ok()) << ins.status().to_string();
  ASSERT_TRUE(ins->bind_int64(1, INT64_MIN).ok());
  ASSERT_TRUE(ins->bind_text(2, "h\xc3\xa9llo").ok());
  ASSERT_TRUE(ins->bind_blob(3, std::string("a\0b", 3)).ok());
  ASSERT_TRUE(ins->bind_null(4).ok());
  ASSERT_TRUE(ins->run().ok());
  EXPECT_EQ(db.changes(), 1);
  EXPECT_EQ(db.last_insert_rowid(), 1);

  auto sel = db.prepare("SELECT i, s, b, n FROM t");
  ASSERT_TRUE(sel.ok());
  auto r = sel->step();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(*r, Step::row);
  EXPECT_EQ(sel->column_count(), 4);
  EXPECT_EQ(sel->column_int64(0), INT64_MIN);
  EXPECT_EQ(sel->column_text(1), "h\xc3\xa9llo");
  EXPECT_EQ(sel->column_blob(2), std::string("a\0b", 3));
  EXPECT_TRUE(sel->column_is_null(3));
  EXPECT_FALSE(sel->column_is_null(0));
  EXPECT_EQ(sel->column_text(3), "");
  r = sel->step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Step::done);
}

TEST_F(SqliteTest, ResetClearsBindingsAndAllowsReuse) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t(x)").ok());
  auto ins = db.prepare("INSERT INTO t VALUES (?)");
  ASSERT_TRUE(ins.ok());
  ASSERT_TRUE(ins->bind_int64(1, 7).ok());
  ASSERT_TRUE(ins->run().ok());
  ASSERT_TRUE(ins->reset().ok());
  ASSERT_TRUE(ins->run().ok());  // binding cleared: inserts NULL
  auto sel = db.prepare("SELECT count(*), count(x) FROM t");
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ(*sel->step(), Step::row);
  EXPECT_EQ(sel->column_int64(0), 2);
  EXPECT_EQ(sel->column_int64(1), 1);
}

TEST_F(SqliteTest, PrepareErrorNamesTheSqlAndTheReason) {
  Db db = open_db();
  auto st = db.prepare("SELECT * FROM missing_table");
  ASSERT_FALSE(st.ok());
  const std::string& m = st.status().message();
  EXPECT_NE(m.find("prepare"), std::string::npos) << m;
  EXPECT_NE(m.find("SELECT * FROM missing_table"), std::string::npos) << m;
  EXPECT_NE(m.find("no such table"), std::string::npos) << m;
}

TEST_F(SqliteTest, PrepareRefusesASecondStatement) {
  Db db = open_db();
  auto st = db.prepare("SELECT 1; SELECT 2");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("more than one statement"), std::string::npos);
  EXPECT_TRUE(db.prepare("SELECT 1;  ").ok());
}

TEST_F(SqliteTest, ConstraintViolationIsInvalidArgument) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t(x PRIMARY KEY)").ok());
  ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)").ok());
  auto ins = db.prepare("INSERT INTO t VALUES (1)");
  ASSERT_TRUE(ins.ok());
  Status s = ins->run();
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_NE(s.message().find("UNIQUE"), std::string::npos) << s.message();
}

TEST_F(SqliteTest, TxRollsBackWhenDestroyedUncommitted) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t(x)").ok());
  {
    auto tx = Tx::begin(db);
    ASSERT_TRUE(tx.ok()) << tx.status().to_string();
    ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)").ok());
  }
  EXPECT_EQ(count(db, "t"), 0);
}

TEST_F(SqliteTest, TxCommitKeepsChanges) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t(x)").ok());
  {
    auto tx = Tx::begin(db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)").ok());
    ASSERT_TRUE(tx->commit().ok());
    EXPECT_FALSE(tx->commit().ok());  // a finished transaction cannot commit again
  }
  EXPECT_EQ(count(db, "t"), 1);
}

TEST_F(SqliteTest, MigrationsApplyInOrderAndOnlyOnce) {
  Db db = open_db();
  std::vector<std::string_view> m = {
      "CREATE TABLE log(step INTEGER); INSERT INTO log VALUES (1);",
      "INSERT INTO log VALUES (2);",
  };
  ASSERT_TRUE(migrate(db, m).ok());
  EXPECT_EQ(*db.user_version(), 2);
  ASSERT_TRUE(migrate(db, m).ok());  // nothing pending: nothing runs again
  EXPECT_EQ(count(db, "log"), 2);
  m.push_back("INSERT INTO log VALUES (3);");
  ASSERT_TRUE(migrate(db, m).ok());
  EXPECT_EQ(*db.user_version(), 3);
  auto st = db.prepare("SELECT group_concat(step, ',') FROM (SELECT step FROM log ORDER BY rowid)");
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(*st->step(), Step::row);
  EXPECT_EQ(st->column_text(0), "1,2,3");
}

TEST_F(SqliteTest, FailedMigrationKeepsThePreviousVersion) {
  Db db = open_db();
  std::vector<std::string_view> m = {
      "CREATE TABLE a(x);",
      "CREATE TABLE b(x); INSERT INTO nowhere VALUES (1);",
  };
  Status s = migrate(db, m);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("migration 2"), std::string::npos) << s.message();
  EXPECT_EQ(*db.user_version(), 1);
  EXPECT_FALSE(db.prepare("SELECT * FROM b").ok());  // rolled back with its step
}

TEST_F(SqliteTest, NewerSchemaIsRefused) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("PRAGMA user_version=5").ok());
  Status s = migrate(db, {"CREATE TABLE a(x);"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("schema version 5"), std::string::npos) << s.message();
}

TEST_F(SqliteTest, ReaderIsNotBlockedByAWriterInWalMode) {
  Db a = open_db();
  Db b = open_db(0);
  ASSERT_TRUE(a.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)").ok());
  auto tx = Tx::begin(a);
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(a.exec("INSERT INTO t VALUES (2)").ok());
  EXPECT_EQ(count(b, "t"), 1);  // the committed snapshot, without waiting
  ASSERT_TRUE(tx->commit().ok());
  EXPECT_EQ(count(b, "t"), 2);
}

TEST_F(SqliteTest, SecondWriterTimesOutWhileTheFirstHoldsTheLock) {
  Db a = open_db();
  Db b = open_db(50);
  auto tx = Tx::begin(a);
  ASSERT_TRUE(tx.ok());
  auto tx2 = Tx::begin(b);
  ASSERT_FALSE(tx2.ok());
  EXPECT_EQ(tx2.status().code(), Errc::timeout);
  EXPECT_NE(tx2.status().message().find("locked"), std::string::npos) << tx2.status().message();
  tx->rollback();
  auto tx3 = Tx::begin(b);
  EXPECT_TRUE(tx3.ok()) << tx3.status().to_string();
}

TEST_F(SqliteTest, SecondWriterWaitsForTheFirstWithinTheBusyTimeout) {
  Db a = open_db();
  Db b = open_db(30000);
  ASSERT_TRUE(a.exec("CREATE TABLE t(x)").ok());
  auto tx = Tx::begin(a);
  ASSERT_TRUE(tx.ok());
  std::atomic<bool> started{false};
  Status got = error(Errc::internal, "not run");
  std::thread writer([&] {
    started = true;
    auto tx2 = Tx::begin(b);
    if (!tx2.ok()) {
      got = tx2.status();
      return;
    }
    Status s = b.exec("INSERT INTO t VALUES (2)");
    got = s.ok() ? tx2->commit() : s;
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(a.exec("INSERT INTO t VALUES (1)").ok());
  ASSERT_TRUE(tx->commit().ok());
  writer.join();
  EXPECT_TRUE(got.ok()) << got.to_string();
  EXPECT_EQ(count(a, "t"), 2);
}

}  // namespace
}  // namespace tg::sqlite

namespace tg::sqlite {
namespace {

TEST_F(SqliteTest, CachedStatementIsCompiledOnceAndComesBackClean) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER)").ok());
  const char* sql = "INSERT INTO t (a) VALUES (?)";
  for (int i = 1; i <= 3; ++i) {
    auto st = db.prepare_cached(sql);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    ASSERT_TRUE(st->bind_int64(1, i).ok());
    ASSERT_TRUE(st->run().ok());
    EXPECT_EQ(live_statements(db), 1);
  }
  EXPECT_EQ(live_statements(db), 1);  // kept after the last borrower
  {
    // Bindings were cleared when the last borrower gave it back: NULL goes in.
    auto st = db.prepare_cached(sql);
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(st->run().ok());
  }
  auto sum = db.prepare("SELECT count(*), sum(a), count(a) FROM t");
  ASSERT_TRUE(sum.ok());
  ASSERT_TRUE(sum->step().ok());
  EXPECT_EQ(sum->column_int64(0), 4);
  EXPECT_EQ(sum->column_int64(1), 6);
  EXPECT_EQ(sum->column_int64(2), 3);
}

TEST_F(SqliteTest, CachedStatementLeftMidRowsIsResetForTheNextBorrower) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1), (2), (3)").ok());
  const char* sql = "SELECT a FROM t ORDER BY a";
  {
    auto st = db.prepare_cached(sql);
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(st->step().ok());
    EXPECT_EQ(st->column_int64(0), 1);
  }  // dropped after one row
  auto st = db.prepare_cached(sql);
  ASSERT_TRUE(st.ok());
  auto r = st->step();
  ASSERT_TRUE(r.ok() && *r == Step::row);
  EXPECT_EQ(st->column_int64(0), 1);  // from the start, not row 2
}

TEST_F(SqliteTest, NestedBorrowOfTheSameSqlGetsItsOwnStatement) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1), (2)").ok());
  const char* sql = "SELECT a FROM t WHERE a >= ? ORDER BY a";
  auto outer = db.prepare_cached(sql);
  ASSERT_TRUE(outer.ok());
  ASSERT_TRUE(outer->bind_int64(1, 2).ok());
  {
    auto inner = db.prepare_cached(sql);
    ASSERT_TRUE(inner.ok());
    EXPECT_EQ(live_statements(db), 2);
    ASSERT_TRUE(inner->bind_int64(1, 1).ok());
    auto r = inner->step();
    ASSERT_TRUE(r.ok() && *r == Step::row);
    EXPECT_EQ(inner->column_int64(0), 1);
  }
  EXPECT_EQ(live_statements(db), 1);  // the private copy was finalized
  auto r = outer->step();
  ASSERT_TRUE(r.ok() && *r == Step::row);
  EXPECT_EQ(outer->column_int64(0), 2);  // its binding untouched by the inner use
}

TEST_F(SqliteTest, StatementCacheIsBounded) {
  Db db = open_db();
  for (size_t i = 0; i < kMaxCachedStatements + 10; ++i) {
    auto st = db.prepare_cached("SELECT " + std::to_string(i));
    ASSERT_TRUE(st.ok());
    auto r = st->step();
    ASSERT_TRUE(r.ok() && *r == Step::row);
    EXPECT_EQ(st->column_int64(0), static_cast<int64_t>(i));
  }
  EXPECT_EQ(live_statements(db), static_cast<int>(kMaxCachedStatements));
}

TEST_F(SqliteTest, CachedPrepareReportsErrorsLikePrepare) {
  Db db = open_db();
  auto st = db.prepare_cached("SELECT nope FROM missing");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("missing"), std::string::npos) << st.status().to_string();
  EXPECT_EQ(live_statements(db), 0);
}

TEST_F(SqliteTest, SharedConnectionOutlivesItsFirstOwner) {
  Db second;
  {
    Db first = open_db();
    ASSERT_TRUE(first.exec("CREATE TABLE t (a INTEGER)").ok());
    second = first.share();
    EXPECT_EQ(second.handle(), first.handle());
    EXPECT_EQ(second.path(), path_);
  }
  ASSERT_TRUE(second.is_open());
  ASSERT_TRUE(second.exec("INSERT INTO t VALUES (7)").ok());
  EXPECT_EQ(count(second, "t"), 1);
}

TEST_F(SqliteTest, WritesThroughASharedConnectionAreNotAnotherConnections) {
  Db a = open_db();
  Db b = a.share();
  Db other = open_db();  // a separate connection, like a CLI command
  ASSERT_TRUE(a.exec("CREATE TABLE t (a INTEGER)").ok());
  const int64_t before = data_version(b);
  ASSERT_TRUE(a.exec("INSERT INTO t VALUES (1)").ok());
  EXPECT_EQ(data_version(b), before);  // the same connection wrote
  ASSERT_TRUE(other.exec("INSERT INTO t VALUES (2)").ok());
  EXPECT_NE(data_version(b), before);  // another one did
}

TEST_F(SqliteTest, NestedTxIsASavepointOfTheOuterOne) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER UNIQUE)").ok());
  {
    auto outer = Tx::begin(db);
    ASSERT_TRUE(outer.ok());
    {
      auto kept = Tx::begin(db);
      ASSERT_TRUE(kept.ok()) << kept.status().to_string();
      ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)").ok());
      ASSERT_TRUE(kept->commit().ok());
    }
    {
      auto undone = Tx::begin(db);
      ASSERT_TRUE(undone.ok());
      ASSERT_TRUE(db.exec("INSERT INTO t VALUES (2)").ok());
      EXPECT_FALSE(db.exec("INSERT INTO t VALUES (1)").ok());  // a failed step of the batch
    }  // rolled back: only its own row goes
    EXPECT_EQ(count(db, "t"), 1);
    ASSERT_TRUE(outer->commit().ok());
  }
  EXPECT_EQ(count(db, "t"), 1);
  Db other = open_db();
  EXPECT_EQ(count(other, "t"), 1);  // committed for everyone
}

TEST_F(SqliteTest, NestedCommitIsUndoneWithItsOuterTx) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER)").ok());
  {
    auto outer = Tx::begin(db);
    ASSERT_TRUE(outer.ok());
    auto inner = Tx::begin(db);
    ASSERT_TRUE(inner.ok());
    ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)").ok());
    ASSERT_TRUE(inner->commit().ok());
  }  // the outer one was never committed
  EXPECT_EQ(count(db, "t"), 0);
  auto again = Tx::begin(db);  // the connection is out of any transaction
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->commit().ok());
}

}  // namespace
}  // namespace tg::sqlite

namespace tg::sqlite {
namespace {

int statements_on(Db& db) {
  int n = 0;
  for (sqlite3_stmt* st = sqlite3_next_stmt(db.handle(), nullptr); st;
       st = sqlite3_next_stmt(db.handle(), st)) {
    ++n;
  }
  return n;
}

TEST_F(SqliteTest, TransactionStatementsAreCompiledOncePerConnection) {
  Db db = open_db();
  ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER UNIQUE)").ok());
  auto round = [&](int i) {
    auto outer = Tx::begin(db);
    ASSERT_TRUE(outer.ok()) << outer.status().to_string();
    {
      auto kept = Tx::begin(db);
      ASSERT_TRUE(kept.ok());
      ASSERT_TRUE(db.exec("INSERT INTO t VALUES (" + std::to_string(i) + ")").ok());
      ASSERT_TRUE(kept->commit().ok());
    }
    {
      auto undone = Tx::begin(db);
      ASSERT_TRUE(undone.ok());
      ASSERT_TRUE(db.exec("INSERT INTO t VALUES (-1)").ok());
    }  // ROLLBACK TO and RELEASE
    ASSERT_TRUE(outer->commit().ok());
    auto dropped = Tx::begin(db);
    ASSERT_TRUE(dropped.ok());
  };  // ROLLBACK
  round(0);
  const int compiled = statements_on(db);
  EXPECT_EQ(compiled, 6);  // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO
  for (int i = 1; i <= 50; ++i) round(i);
  EXPECT_EQ(statements_on(db), compiled);
  EXPECT_EQ(count(db, "t"), 51);
  // None of them is left running: a reader on another connection sees every row.
  Db other = open_db();
  EXPECT_EQ(count(other, "t"), 51);
}

TEST_F(SqliteTest, SqliteKeepsNoMemoryStatistics) {
  Db db = open_db();  // the first SQLite call of this test process configures it
  ASSERT_TRUE(db.exec("CREATE TABLE t (a)").ok());
  sqlite3_int64 used = -1;
  sqlite3_int64 highest = -1;
  ASSERT_EQ(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &used, &highest, 0), SQLITE_OK);
  EXPECT_EQ(used, 0) << "SQLITE_CONFIG_MEMSTATUS is on: every allocation takes a global mutex";
}

}  // namespace
}  // namespace tg::sqlite
