// Event-loop primitives over libuv: the Loop itself and RAII owners for timer
// and signal handles. An owner closes its handle with uv_close exactly once and
// the close callback frees the handle's memory, so an owner may be destroyed at
// any time, even from inside its own callback; no callback fires afterwards.
// Every trampoline into our code is noexcept: no exception crosses libuv.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "shared/core/status.h"

namespace tg {

class Loop {
 public:
  Loop();
  ~Loop();  // closes what is left and aborts if handles still leak
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() noexcept { return &loop_; }
  operator uv_loop_t*() noexcept { return &loop_; }  // NOLINT: convenience

  // Runs until no active handles remain or stop() is called.
  void run() noexcept { uv_run(&loop_, UV_RUN_DEFAULT); }
  // Runs until `done()` is true or `timeout_ms` passes; false on timeout.
  // Meant for tests and command-line tools.
  bool run_until(const std::function<bool()>& done, uint64_t timeout_ms);
  void stop() noexcept { uv_stop(&loop_); }
  uint64_t now_ms() noexcept { return uv_now(&loop_); }

  // Runs pending close callbacks and closes the loop. Fails (naming the
  // handle types) if anything is still open: tests assert this is ok.
  Status close();

 private:
  uv_loop_t loop_;
  bool closed_ = false;
};

// Converts a libuv error number into a Status that names the operation.
Status uv_status(int err, const char* what);

namespace detail {
// Closes a heap-allocated handle and deletes it in the close callback.
template <typename H>
void close_and_free(H* h) noexcept {
  if (!h) return;
  h->data = nullptr;
  // Through void*: every uv handle type starts with the uv_handle_t fields
  // and was allocated as H, so the cast is exact (and 32-bit targets do not
  // warn about alignment).
  uv_close(reinterpret_cast<uv_handle_t*>(h),
           [](uv_handle_t* hh) { delete static_cast<H*>(static_cast<void*>(hh)); });
}
[[noreturn]] void fatal_exception(const char* where) noexcept;
// Runs a user callback from a libuv callback: an exception escaping it
// aborts with `where` in the log. Built with -fno-exceptions (TG_EXCEPTIONS
// off) nothing can be thrown, and it only runs the callback.
template <typename F>
void run_guarded(const char* where, F&& f) noexcept {
#if defined(__cpp_exceptions)
  try {
    f();
  } catch (...) {
    fatal_exception(where);
  }
#else
  (void)where;
  f();
#endif
}
}  // namespace detail

// One-shot or repeating timer. The callback runs on the loop, never inside
// start(). Destroying the Timer (even inside its callback) cancels it.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms: first fire after timeout_ms, then every repeat_ms (0 = once).
  void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb);
  void stop() noexcept;
  bool active() const noexcept;
  // Keeps the loop from running just for this timer (uv_unref).
  void unref() noexcept;

 private:
  static void on_timer(uv_timer_t* h) noexcept;
  uv_timer_t* handle_;
  std::function<void()> cb_;
};

// Runs a callback later in this turn of the loop, after its I/O callbacks
// (libuv's check phase), never inside post(): for work that must wait until
// the caller's callback has returned, such as freeing the object whose
// callback is running. Unlike a 0 ms Timer, which runs at the start of the
// next turn, the handles the callback closes are finished before the loop
// next polls, so that poll may block instead of returning at once only to
// complete their closing (one epoll_wait per request on a quiet loop).
// Posted from a timer or close callback, it still runs before the loop can
// block. Destroying the Deferred (even inside its callback) cancels it.
class Deferred {
 public:
  explicit Deferred(uv_loop_t* loop);
  ~Deferred();
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;

  // Schedules `cb`, replacing one not yet run.
  void post(std::function<void()> cb);
  bool pending() const noexcept;
  void cancel() noexcept;

 private:
  static void on_check(uv_check_t* h) noexcept;
  uv_check_t* check_;
  uv_idle_t* idle_;  // active while pending: the loop must not block first
  std::function<void()> cb_;
};

// Signal watcher (SIGTERM, SIGINT, SIGHUP).
class Signal {
 public:
  explicit Signal(uv_loop_t* loop);
  ~Signal();
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

  Status start(int signum, std::function<void(int)> cb);
  void stop() noexcept;
  void unref() noexcept;

 private:
  static void on_signal(uv_signal_t* h, int signum) noexcept;
  uv_signal_t* handle_;
  std::function<void(int)> cb_;
};

// Wall clock in unix milliseconds (CLOCK_REALTIME): timestamps that are
// stored or sent. Durations use the loop's monotonic uv_now() instead.
int64_t unix_now_ms() noexcept;

}  // namespace tg
