#include "shared/sqlite/checkpointer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
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
  // The WAL header's checkpoint sequence number (bytes 12..15, big-endian):
  // one more at every restart of the WAL.
  uint32_t wal_checkpoint_sequence() {
    std::ifstream f(path_ + "-wal", std::ios::binary);
    unsigned char h[16] = {};
    f.read(reinterpret_cast<char*>(h), sizeof h);
    return (uint32_t{h[12]} << 24) | (uint32_t{h[13]} << 16) | (uint32_t{h[14]} << 8) | uint32_t{h[15]};
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

// Commits back to back, the loop only polled between them: a passive run
// never ends before the next commit, so the WAL would never restart (every
// frame of the 3000 commits stays in it). Past kRestartFactor x pages a
// RESTART run lets the next commit start the WAL over: the WAL header's
// checkpoint sequence number counts those restarts.
TEST_F(CheckpointerTest, SteadyCommitsStillRestartTheWal) {
  Checkpointer ck(loop_, db_, 20);
  for (int i = 0; i < 3000; ++i) {
    insert_row();
    uv_run(loop_, UV_RUN_NOWAIT);
  }
  ASSERT_TRUE(loop_.run_until([&] { return !ck.running(); }, kWaitMs));
  EXPECT_TRUE(ck.active());
  EXPECT_EQ(ck.stats().failures, 0u);
  EXPECT_GE(ck.stats().restarts, 1u);
  insert_row();  // after a RESTART run, this commit restarts the WAL
  ASSERT_TRUE(loop_.run_until([&] { return !ck.running(); }, kWaitMs));
  EXPECT_GE(wal_checkpoint_sequence(), 1u) << "the WAL never restarted";
  EXPECT_EQ(rows_seen_by_another_connection(), 3001);
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
