// WAL checkpoints off the event loop. In WAL mode every commit appends pages
// to the -wal file, and SQLite's automatic checkpoint copies them back into
// the database (and fsyncs it) inside the commit that crosses 1000 pages: a
// daemon whose loop commits a few times per request stalls every stream for
// that copy, milliseconds at a time (docs/BENCH.md, "Passthrough latency").
// A Checkpointer turns the connection's automatic checkpoint off and runs
// PASSIVE checkpoints instead on a connection of its own, in libuv's thread
// pool, one at a time, once the WAL holds `pages` pages. PASSIVE never
// blocks the loop's readers or writers; what it cannot copy now (a frame a
// reader still needs) is copied by the next run. The WAL starts over only
// when a run has copied everything before the next commit; under steady
// writes that may never happen, so once the WAL holds kRestartFactor x
// `pages` pages the next run is a RESTART checkpoint: the loop's next commit
// waits (in its busy handler) while it copies the frames since the last run,
// and then starts the WAL over. Should the checkpoint connection fail to
// open or a checkpoint fail, the connection's automatic checkpoint comes
// back.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "shared/sqlite/db.h"

namespace tg::sqlite {

inline constexpr int kCheckpointPages = 1000;  // SQLite's own automatic threshold
inline constexpr int kRestartFactor = 4;  // WAL over this x pages: the next run restarts it
inline constexpr int kRestartWaitMs = 1000;  // how long a RESTART run waits for writers

struct CheckpointStats {
  uint64_t runs = 0;        // checkpoints finished (in the thread pool)
  uint64_t restarts = 0;    // of which RESTART runs (the WAL was over kRestartFactor x pages)
  uint64_t failures = 0;    // checkpoints that failed (the automatic one took over)
  int64_t last_log = 0;     // WAL frames at the last run
  int64_t last_copied = 0;  // of which copied into the database
  uint64_t last_us = 0;     // how long the last run took, in its thread
};

class Checkpointer {
 public:
  // Takes over `db`'s checkpoints (db must stay open while this lives; the
  // loop thread is the only user of db). `pages`: WAL size that starts one.
  Checkpointer(uv_loop_t* loop, Db& db, int pages = kCheckpointPages);
  // Waits for a checkpoint still running in the pool (its report is dropped
  // at the loop's next turn); db gets its automatic checkpoint back.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  const CheckpointStats& stats() const noexcept { return stats_; }
  bool running() const noexcept { return job_ != nullptr; }
  // Whether checkpoints run here (false once a failure gave them back to SQLite).
  bool active() const noexcept { return active_; }

 private:
  struct Job;
  static int on_wal(void* self, sqlite3* db, const char* name, int pages);
  static void work(uv_work_t* req);
  static void run(Job* job);  // in the pool's thread
  static void after_work(uv_work_t* req, int status);
  void start(bool restart);
  void finished(Job* job);
  void give_back(const std::string& why);

  uv_loop_t* loop_;
  Db& db_;
  int pages_;
  bool active_ = true;
  Job* job_ = nullptr;      // the run in the thread pool, if any
  sqlite3* conn_ = nullptr; // the checkpoint connection, used by one job at a time
  CheckpointStats stats_;
};

}  // namespace tg::sqlite
