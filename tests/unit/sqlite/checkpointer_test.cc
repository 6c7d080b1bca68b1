#include "shared/sqlite/checkpointer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "shared/core/loop.h"
#include "tests/unit/temp_dir.h"

namespace tg::sqlite {
namespace {

constexpr uint64_t kWaitMs = 10000;

class CheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ + "/test.db";
    auto db = Db::open(path_);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    db_ = std::move(db).value();
    ASSERT_TRUE(db_.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").ok());
  }
  void TearDown() override {
    db_ = Db();
    EXPECT_TRUE(loop_.close().ok());
  }
  // One commit of one row with a 4 KiB value: about two WAL pages.
  void insert_row() {
    auto st = db_.prepare_cached("INSERT INTO t(v) VALUES (zeroblob(4000))");
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    auto r = st->step();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  int64_t wal_bytes() {
    struct stat st {};
    return ::stat((path_ + "-wal").c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
  }
  int64_t rows_seen_by_another_connection() {
    auto other = Db::open(path_);
    EXPECT_TRUE(other.ok());
    auto st = other->prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(st.ok());
    auto r = st->step();
    EXPECT_TRUE(r.ok() && *r == Step::row);
    return st->column_int64(0);
  }
  Loop loop_;
  test::TempDir tmp_{"tg-ckpt"};
  std::string dir_ = tmp_.path();
  std::string path_;
  Db db_;
};

TEST_F(CheckpointerTest, CheckpointsRunInThePoolAndKeepTheWalBounded) {
  Checkpointer ck(loop_, db_, 20);
  int64_t largest = 0;
  for (int i = 0; i < 400; ++i) {
    insert_row();
    // Let a finished run report back between commits, as the daemons' loops do.
    (void)loop_.run_until([&] { return !ck.running(); }, kWaitMs);
    largest = std::max(largest, wal_bytes());
  }
  ASSERT_TRUE(loop_.run_until([&] { return !ck.running(); }, kWaitMs));
  EXPECT_TRUE(ck.active());
  EXPECT_GE(ck.stats().runs, 10u);
  EXPECT_EQ(ck.stats().failures, 0u);
  EXPECT_GT(ck.stats().last_log, 0);
  EXPECT_EQ(ck.stats().last_copied, ck.stats().last_log);
  // 400 commits of about 2 pages each would be 800+ pages (3+ MiB) without
  // checkpoints; the WAL restarts after each complete one.
  EXPECT_LT(largest, 80 * 4096 + 4096) << "largest WAL " << largest;
  EXPECT_EQ(rows_seen_by_another_connection(), 400);
}

// A WAL that cannot restart (a reader holds an old snapshot) stays over the
// threshold after a complete run: the next run waits for `pages` new frames
// instead of starting (and fsyncing twice) after every commit.
TEST_F(CheckpointerTest, AWalThatDoesNotRestartIsCheckpointedPerNewPagesNotPerCommit) {
  Checkpointer ck(loop_, db_, 20);
  for (int i = 0; i < 12; ++i) insert_row();  // about 24 pages: one run starts
  ASSERT_TRUE(ck.running());
  auto reader = Db::open(path_);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(reader->exec("BEGIN").ok());
  auto st = reader->prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->step().ok());  // the reader's snapshot: all 12 rows, kept
  ASSERT_TRUE(loop_.run_until([&] { return !ck.running(); }, kWaitMs));
  ASSERT_EQ(ck.stats().runs, 1u);
  ASSERT_GE(ck.stats().last_copied, 20);
  insert_row();  // the WAL keeps growing (no restart) and is over 20 pages
  EXPECT_FALSE(ck.running()) << "a run for " << ck.stats().last_log - ck.stats().last_copied
                             << " new pages";
  for (int i = 0; i < 12 && !ck.running(); ++i) insert_row();
  EXPECT_TRUE(ck.running()) << "no run after 20+ new pages";
  ASSERT_TRUE(loop_.run_until([&] { return !ck.running(); }, kWaitMs));
  EXPECT_EQ(ck.stats().runs, 2u);
  st = Stmt();
  ASSERT_TRUE(reader->exec("COMMIT").ok());
}

TEST_F(CheckpointerTest, TheConnectionNoLongerCheckpointsItself) {
  // A threshold never reached: no run starts, and SQLite's automatic
  // checkpoint (at 1000 pages) is off, so the WAL only grows.
  Checkpointer ck(loop_, db_, 1000000);
  for (int i = 0; i < 700; ++i) insert_row();
  EXPECT_FALSE(ck.running());
  EXPECT_GT(wal_bytes(), 1100 * 4096);
  EXPECT_EQ(rows_seen_by_another_connection(), 700);
}

TEST_F(CheckpointerTest, DestroyedWhileARunIsInThePool) {
  {
    Checkpointer ck(loop_, db_, 5);
    for (int i = 0; i < 10; ++i) insert_row();
    EXPECT_TRUE(ck.running());
  }
  // The run finishes in its thread and is freed when it reports back.
  loop_.run();
  // The connection checkpoints itself again (SQLite's threshold, 1000 pages).
  for (int i = 0; i < 600; ++i) insert_row();
  EXPECT_LT(wal_bytes(), 1100 * 4096 + 4096);
  EXPECT_EQ(rows_seen_by_another_connection(), 610);
}

TEST_F(CheckpointerTest, AFailedCheckpointGivesTheJobBackToSqlite) {
  Checkpointer ck(loop_, db_, 5);
  // The checkpoint connection opens by path: remove the path (the open
  // connection keeps its file) and the run cannot open it.
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".moved").c_str()), 0);
  for (int i = 0; i < 10; ++i) insert_row();
  ASSERT_TRUE(loop_.run_until([&] { return !ck.running(); }, kWaitMs));
  EXPECT_FALSE(ck.active());
  EXPECT_EQ(ck.stats().failures, 1u);
  EXPECT_EQ(ck.stats().runs, 0u);
  // No more runs are started; SQLite checkpoints in the commits again.
  for (int i = 0; i < 10; ++i) insert_row();
  EXPECT_FALSE(ck.running());
  ASSERT_EQ(::rename((path_ + ".moved").c_str(), path_.c_str()), 0);
}

}  // namespace
}  // namespace tg::sqlite
