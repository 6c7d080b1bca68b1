#include "shared/core/loop.h"

#include <time.h>

#include <cstdlib>
#include <exception>
#include <string>

#include "shared/core/log.h"

namespace tg {
namespace {

void abort_on(int rc, const char* what) {
  if (rc != 0) {
    TG_ERROR("loop", "%s failed: %s", what, uv_strerror(rc));
    std::abort();
  }
}

}  // namespace

namespace detail {
void fatal_exception(const char* where) noexcept {
  TG_ERROR("loop", "exception escaped into the event loop at %s; aborting", where);
  std::abort();
}
}  // namespace detail

Status uv_status(int err, const char* what) {
  if (err == 0) return Status();
  Errc code = Errc::io;
  switch (err) {
    case UV_ETIMEDOUT: code = Errc::timeout; break;
    case UV_EOF:
    case UV_ECONNRESET:
    case UV_EPIPE: code = Errc::closed; break;
    case UV_EACCES:
    case UV_EPERM: code = Errc::permission; break;
    case UV_ENOENT: code = Errc::not_found; break;
    case UV_EINVAL: code = Errc::invalid_argument; break;
    default: break;
  }
  return Status(code, std::string(what) + ": " + uv_strerror(err));
}

Loop::Loop() { abort_on(uv_loop_init(&loop_), "uv_loop_init"); }

Loop::~Loop() {
  if (closed_) return;
  Status s = close();
  if (!s.ok()) {
    TG_ERROR("loop", "destroyed with open handles: %s", s.message().c_str());
    std::abort();
  }
}

bool Loop::run_until(const std::function<bool()>& done, uint64_t timeout_ms) {
  const uint64_t deadline = uv_hrtime() + timeout_ms * 1000000ULL;
  // A private ticker wakes the loop every 10 ms so the deadline is honoured
  // even when nothing else happens.
  uv_timer_t tick;
  uv_timer_init(&loop_, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 10, 10);
  bool ok = true;
  while (!done()) {
    if (uv_hrtime() >= deadline) {
      ok = false;
      break;
    }
    uv_run(&loop_, UV_RUN_ONCE);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);  // completes the close of `tick`
  return ok;
}

Status Loop::close() {
  if (closed_) return Status();
  // Let pending close callbacks run and in-flight requests finish.
  for (int i = 0; i < 16 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  int rc = uv_loop_close(&loop_);
  if (rc == UV_EBUSY) {
    std::string open;
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void* arg) {
          auto* names = static_cast<std::string*>(arg);
          if (!names->empty()) *names += ", ";
          *names += uv_handle_type_name(uv_handle_get_type(h));
          if (uv_is_closing(h)) *names += "(closing)";
        },
        &open);
    return Status(Errc::internal, "loop still has open handles: " + open);
  }
  closed_ = true;
  return uv_status(rc, "uv_loop_close");
}

// ---- Timer ----

Timer::Timer(uv_loop_t* loop) : handle_(new uv_timer_t) {
  uv_timer_init(loop, handle_);
  handle_->data = this;
}

Timer::~Timer() { detail::close_and_free(handle_); }

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb) {
  cb_ = std::move(cb);
  uv_timer_start(handle_, &Timer::on_timer, timeout_ms, repeat_ms);
}

void Timer::stop() noexcept { uv_timer_stop(handle_); }

bool Timer::active() const noexcept {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0;
}

void Timer::unref() noexcept { uv_unref(reinterpret_cast<uv_handle_t*>(handle_)); }

void Timer::on_timer(uv_timer_t* h) noexcept {
  auto* self = static_cast<Timer*>(h->data);
  if (!self || !self->cb_) return;
  // The callback may destroy or re-arm this Timer: run it from a copy.
  detail::run_guarded("Timer callback", [cb = self->cb_] { cb(); });
}

// ---- Deferred ----

Deferred::Deferred(uv_loop_t* loop) : check_(new uv_check_t), idle_(new uv_idle_t) {
  uv_check_init(loop, check_);
  uv_idle_init(loop, idle_);
  check_->data = this;
}

Deferred::~Deferred() {
  detail::close_and_free(check_);
  detail::close_and_free(idle_);
}

void Deferred::post(std::function<void()> cb) {
  cb_ = std::move(cb);
  uv_check_start(check_, &Deferred::on_check);
  uv_idle_start(idle_, [](uv_idle_t*) {});
}

bool Deferred::pending() const noexcept {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(check_)) != 0;
}

void Deferred::cancel() noexcept {
  uv_check_stop(check_);
  uv_idle_stop(idle_);
}

void Deferred::on_check(uv_check_t* h) noexcept {
  auto* self = static_cast<Deferred*>(h->data);
  if (!self) return;
  self->cancel();
  if (!self->cb_) return;
  // The callback may destroy this Deferred or post again: run it from a copy.
  detail::run_guarded("Deferred callback", [cb = self->cb_] { cb(); });
}

// ---- Signal ----

Signal::Signal(uv_loop_t* loop) : handle_(new uv_signal_t) {
  uv_signal_init(loop, handle_);
  handle_->data = this;
}

Signal::~Signal() { detail::close_and_free(handle_); }

Status Signal::start(int signum, std::function<void(int)> cb) {
  cb_ = std::move(cb);
  return uv_status(uv_signal_start(handle_, &Signal::on_signal, signum), "uv_signal_start");
}

void Signal::stop() noexcept { uv_signal_stop(handle_); }

void Signal::unref() noexcept { uv_unref(reinterpret_cast<uv_handle_t*>(handle_)); }

void Signal::on_signal(uv_signal_t* h, int signum) noexcept {
  auto* self = static_cast<Signal*>(h->data);
  if (!self || !self->cb_) return;
  detail::run_guarded("Signal callback", [cb = self->cb_, signum] { cb(signum); });
}

int64_t unix_now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace tg
