// ServiceNotifier: tells the service manager that started this process when it
// is ready or stopping, and keeps the manager's watchdog fed from the loop.
// Owns one repeating timer (unreferenced: it never keeps the loop alive).
// Never fails the program: a notification that cannot be sent is logged.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tg {
class Timer;
}

namespace tg::platform {

// Where and how often to notify. Empty `socket`: not started by a service
// manager that listens, every call is a no-op.
struct NotifySettings {
  std::string socket;          // systemd: NOTIFY_SOCKET ("/path" or "@abstract")
  uint64_t watchdog_usec = 0;  // systemd: WATCHDOG_USEC for this process; 0: no watchdog
};

// Reads the settings the service manager passed in the environment. A
// watchdog meant for another process (WATCHDOG_PID set and not ours) or an
// unparsable WATCHDOG_USEC gives watchdog_usec = 0.
NotifySettings notify_settings_from_environment();

class ServiceNotifier {
 public:
  // Starts the watchdog timer at once when settings.watchdog_usec > 0: a
  // "WATCHDOG=1" every watchdog_usec / 2 (at least 1 ms), from the loop only.
  ServiceNotifier(uv_loop_t* loop, NotifySettings settings);
  ~ServiceNotifier();  // stops the timer; sends nothing
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  bool enabled() const noexcept { return !settings_.socket.empty(); }
  uint64_t watchdog_interval_ms() const noexcept;  // 0 when there is no watchdog

  // "READY=1" and "STATUS=<status>" in one datagram. Newlines and other
  // control characters in `status` become spaces (one assignment per line).
  void ready(std::string_view status);
  // "STOPPING=1" and "STATUS=<status>". The watchdog keeps running: a drain
  // is still a live process.
  void stopping(std::string_view status);
  // "STATUS=<status>".
  void status(std::string_view status);

 private:
  void send(const std::string& state) noexcept;
  void on_watchdog() noexcept;

  NotifySettings settings_;
  std::unique_ptr<Timer> watchdog_;
  bool failing_ = false;  // the last send failed (logged once until one succeeds)
};

}  // namespace tg::platform
