#include "shared/sqlite/checkpointer.h"

#include <sqlite3.h>

#include <condition_variable>
#include <mutex>

#include "shared/core/log.h"

namespace tg::sqlite {

namespace {

constexpr const char* kLog = "sqlite";

}  // namespace

// One run in the thread pool. It borrows the checkpoint connection and hands
// it back in after_work; if the Checkpointer is gone by then, after_work
// closes the connection and deletes the job.
struct Checkpointer::Job {
  uv_work_t req{};
  Checkpointer* owner = nullptr;
  std::string path;  // set only while there is no connection yet
  sqlite3* conn = nullptr;
  bool restart = false;  // SQLITE_CHECKPOINT_RESTART instead of PASSIVE
  int rc = SQLITE_OK;
  int log = 0;
  int copied = 0;
  uint64_t us = 0;
  std::string error;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // work() returned (under mu)
};

Checkpointer::Checkpointer(uv_loop_t* loop, Db& db, int pages)
    : loop_(loop), db_(db), pages_(pages > 0 ? pages : kCheckpointPages) {
  // Replaces the automatic checkpoint, which is itself a WAL hook.
  sqlite3_wal_hook(db_.handle(), &Checkpointer::on_wal, this);
}

Checkpointer::~Checkpointer() {
  if (db_.handle() && active_) sqlite3_wal_autocheckpoint(db_.handle(), kCheckpointPages);
  if (job_) {
    // Waits for the run's thread (a checkpoint is bounded by the WAL's
    // size: milliseconds), so that its after_work is ready at the loop's
    // next turn and a closing loop is not held by it.
    std::unique_lock<std::mutex> lock(job_->mu);
    job_->cv.wait(lock, [this] { return job_->done; });
    job_->owner = nullptr;  // after_work closes the connection
  } else if (conn_) {
    sqlite3_close_v2(conn_);
  }
}

int Checkpointer::on_wal(void* self, sqlite3*, const char*, int pages) {
  auto* c = static_cast<Checkpointer*>(self);
  // `pages` is the whole WAL, copied or not. While it stays over the
  // threshold, every commit after a finished run starts the next: frequent
  // short runs give the WAL its chances to restart (a run that copied
  // everything before the next commit). Waiting for `pages` new frames
  // instead cut the fsyncs 15x, but the WAL then never restarted under load
  // (1.2 GB in 40 s). When commits follow each other too closely for any
  // passive run, past kRestartFactor x the threshold a RESTART run makes
  // the next commit start the WAL over (that commit waits in its busy
  // handler while the run copies the frames since the last one).
  if (pages >= c->pages_ && c->active_ && !c->job_) {
    c->start(pages >= static_cast<int64_t>(c->pages_) * kRestartFactor);
  }
  return SQLITE_OK;
}

void Checkpointer::start(bool restart) {
  auto* job = new Job;
  job->req.data = job;
  job->owner = this;
  job->restart = restart;
  if (!conn_) job->path = db_.path();
  job->conn = conn_;
  conn_ = nullptr;
  int rc = uv_queue_work(loop_, &job->req, &Checkpointer::work, &Checkpointer::after_work);
  if (rc != 0) {
    conn_ = job->conn;
    delete job;
    give_back(std::string("cannot queue a checkpoint: ") + uv_strerror(rc));
    return;
  }
  job_ = job;
}

void Checkpointer::work(uv_work_t* req) {
  auto* job = static_cast<Job*>(req->data);
  run(job);
  std::lock_guard<std::mutex> lock(job->mu);
  job->done = true;
  job->cv.notify_all();
}

void Checkpointer::run(Job* job) {
  const uint64_t t0 = uv_hrtime();
  if (!job->conn) {
    int rc = sqlite3_open_v2(job->path.c_str(), &job->conn, SQLITE_OPEN_READWRITE, nullptr);
    if (rc != SQLITE_OK) {
      job->rc = rc;
      job->error = "cannot open a checkpoint connection: " +
                   std::string(job->conn ? sqlite3_errmsg(job->conn) : sqlite3_errstr(rc));
      sqlite3_close_v2(job->conn);
      job->conn = nullptr;
      return;
    }
    // A fresh connection learns that the file is in WAL mode from its
    // header: read it once, or the checkpoint is a no-op answering -1.
    rc = sqlite3_exec(job->conn, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      job->rc = rc;
      job->error = "cannot read through the checkpoint connection: " +
                   std::string(sqlite3_errmsg(job->conn));
      return;
    }
    // A RESTART run waits this long for the loop's write (and its readers).
    sqlite3_busy_timeout(job->conn, kRestartWaitMs);
  }
  job->rc = sqlite3_wal_checkpoint_v2(
      job->conn, "main", job->restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE,
      &job->log, &job->copied);
  if (job->rc != SQLITE_OK && job->rc != SQLITE_BUSY) {
    job->error = std::string("checkpoint failed: ") + sqlite3_errmsg(job->conn);
  } else if (job->rc == SQLITE_OK && job->log < 0) {
    job->rc = SQLITE_ERROR;
    job->error = "checkpoint failed: the database is not in WAL mode";
  }
  job->us = (uv_hrtime() - t0) / 1000;
}

void Checkpointer::after_work(uv_work_t* req, int status) {
  auto* job = static_cast<Job*>(req->data);
  if (!job->owner) {
    sqlite3_close_v2(job->conn);
    delete job;
    return;
  }
  job->owner->finished(job);
  (void)status;  // never cancelled: uv_cancel is not called on these
}

void Checkpointer::finished(Job* job) {
  job_ = nullptr;
  conn_ = job->conn;
  const int rc = job->rc;
  std::string why = std::move(job->error);
  stats_.last_log = job->log;
  stats_.last_copied = job->copied;
  stats_.last_us = job->us;
  const bool restart = job->restart;
  delete job;
  if (rc == SQLITE_OK || rc == SQLITE_BUSY) {  // BUSY: another process checkpoints now
    ++stats_.runs;
    if (restart) ++stats_.restarts;
    TG_DEBUG(kLog, "%s: checkpoint copied %lld of %lld WAL frames in %llu us", db_.path().c_str(),
             static_cast<long long>(stats_.last_copied), static_cast<long long>(stats_.last_log),
             static_cast<unsigned long long>(stats_.last_us));
    return;
  }
  ++stats_.failures;
  give_back(why);
}

void Checkpointer::give_back(const std::string& why) {
  active_ = false;
  if (conn_) {
    sqlite3_close_v2(conn_);
    conn_ = nullptr;
  }
  if (db_.handle()) sqlite3_wal_autocheckpoint(db_.handle(), kCheckpointPages);
  TG_WARN(kLog, "%s: %s; checkpoints run in the commits again", db_.path().c_str(), why.c_str());
}

}  // namespace tg::sqlite
