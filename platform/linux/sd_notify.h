// The systemd notification protocol (sd_notify(3)), spoken directly: one
// AF_UNIX datagram of newline-separated VAR=value assignments sent to the
// socket named by NOTIFY_SOCKET. No libsystemd; no state kept between calls.
// Never blocks: a receiver that cannot take the datagram now is an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::platform::sd {

// A datagram longer than this is refused (systemd reads up to its pipe
// buffer; our messages are a few dozen bytes).
constexpr size_t kMaxMessage = 4096;

// Sends `state` ("READY=1", "STATUS=...\nWATCHDOG=1") to `socket`: a
// filesystem path ("/run/systemd/notify") or an abstract name ("@name", the
// '@' standing for the leading NUL byte). An empty `socket` is a no-op (ok).
// Errors: invalid_argument (relative, too long or otherwise unsupported
// address, empty or oversized state), io (no receiver, receiver full) — each
// naming the socket.
Status notify(std::string_view socket, std::string_view state);

// Parses WATCHDOG_USEC / WATCHDOG_PID as systemd sets them: the interval in
// microseconds if it is a positive decimal and `watchdog_pid` is null, empty
// or equal to `own_pid`; otherwise nullopt (no watchdog for this process).
std::optional<uint64_t> parse_watchdog(const char* watchdog_usec, const char* watchdog_pid,
                                       long own_pid);

// "STATUS=" + text with control characters replaced by spaces, cut at 512
// bytes, so a status can never inject another assignment.
std::string status_assignment(std::string_view text);

}  // namespace tg::platform::sd
