#include "platform/linux/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "platform/service_notify.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"

namespace tg::platform {
namespace sd {
namespace {

constexpr size_t kMaxStatus = 512;

// Closes the descriptor when the scope ends.
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// A positive decimal without sign, spaces or overflow; nullopt otherwise.
std::optional<uint64_t> parse_positive(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  uint64_t v = 0;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(*p - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  if (v == 0) return std::nullopt;
  return v;
}

std::string quoted(std::string_view socket) {
  std::string out = "NOTIFY_SOCKET '";
  for (char c : socket.substr(0, 128)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out + "'";
}

}  // namespace

Status notify(std::string_view socket, std::string_view state) {
  if (socket.empty()) return Status::success();
  if (state.empty()) return error(Errc::invalid_argument, "sd_notify: empty message");
  if (state.size() > kMaxMessage) {
    return error(Errc::invalid_argument, "sd_notify: message of " + std::to_string(state.size()) +
                                             " bytes exceeds " + std::to_string(kMaxMessage));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t len = 0;
  const size_t base = offsetof(sockaddr_un, sun_path);
  if (socket[0] == '/') {
    // A path: the NUL terminator must fit too.
    if (socket.size() >= sizeof addr.sun_path || socket.find('\0') != std::string_view::npos) {
      return error(Errc::invalid_argument, quoted(socket) + ": path longer than " +
                                               std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, socket.data(), socket.size());
    len = static_cast<socklen_t>(base + socket.size() + 1);
  } else if (socket[0] == '@') {
    // Abstract namespace: '@' stands for the leading NUL; no terminator.
    if (socket.size() < 2 || socket.size() > sizeof addr.sun_path) {
      return error(Errc::invalid_argument, quoted(socket) + ": abstract name must be 1.." +
                                               std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    addr.sun_path[0] = '\0';
    std::memcpy(addr.sun_path + 1, socket.data() + 1, socket.size() - 1);
    len = static_cast<socklen_t>(base + socket.size());
  } else {
    return error(Errc::invalid_argument,
                 quoted(socket) + ": not an absolute path or @abstract name (unsupported)");
  }
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return error(Errc::io,
                 "sd_notify: socket(AF_UNIX, SOCK_DGRAM): " + std::string(std::strerror(errno)));
  }
  // Through void*: sockaddr_un starts with the sockaddr fields.
  const auto* sa = static_cast<const sockaddr*>(static_cast<const void*>(&addr));
  ssize_t n;
  do {
    n = ::sendto(fd.get(), state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL, sa, len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return error(Errc::io, "sd_notify to " + quoted(socket) + ": " + std::strerror(errno));
  if (static_cast<size_t>(n) != state.size()) {
    return error(Errc::io, "sd_notify to " + quoted(socket) + ": short datagram");
  }
  return Status::success();
}

std::optional<uint64_t> parse_watchdog(const char* watchdog_usec, const char* watchdog_pid,
                                       long own_pid) {
  auto usec = parse_positive(watchdog_usec);
  if (!usec) return std::nullopt;
  if (watchdog_pid != nullptr && *watchdog_pid != '\0') {
    auto pid = parse_positive(watchdog_pid);
    if (!pid || own_pid <= 0 || *pid != static_cast<uint64_t>(own_pid)) return std::nullopt;
  }
  return usec;
}

std::string status_assignment(std::string_view text) {
  std::string out = "STATUS=";
  for (char c : text.substr(0, kMaxStatus)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

}  // namespace sd

namespace {
constexpr const char* kLog = "sd_notify";
}  // namespace

NotifySettings notify_settings_from_environment() {
  NotifySettings s;
  if (const char* sock = std::getenv("NOTIFY_SOCKET")) s.socket = sock;
  if (auto usec = sd::parse_watchdog(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"),
                                     static_cast<long>(::getpid()))) {
    s.watchdog_usec = *usec;
  }
  return s;
}

ServiceNotifier::ServiceNotifier(uv_loop_t* loop, NotifySettings settings)
    : settings_(std::move(settings)) {
  const uint64_t interval = watchdog_interval_ms();
  if (interval == 0) return;
  watchdog_ = std::make_unique<Timer>(loop);
  watchdog_->start(interval, interval, [this] { on_watchdog(); });
  watchdog_->unref();
}

ServiceNotifier::~ServiceNotifier() = default;

uint64_t ServiceNotifier::watchdog_interval_ms() const noexcept {
  if (!enabled() || settings_.watchdog_usec == 0) return 0;
  const uint64_t ms = settings_.watchdog_usec / 2000;
  return ms == 0 ? 1 : ms;
}

void ServiceNotifier::ready(std::string_view text) {
  send("READY=1\n" + sd::status_assignment(text));
}

void ServiceNotifier::stopping(std::string_view text) {
  send("STOPPING=1\n" + sd::status_assignment(text));
}

void ServiceNotifier::status(std::string_view text) { send(sd::status_assignment(text)); }

void ServiceNotifier::on_watchdog() noexcept { send("WATCHDOG=1"); }

void ServiceNotifier::send(const std::string& state) noexcept {
  if (!enabled()) return;
  Status s = sd::notify(settings_.socket, state);
  if (!s.ok()) {
    if (!failing_) TG_WARN(kLog, "%s (further failures are not logged until one succeeds)",
                           s.message().c_str());
    failing_ = true;
    return;
  }
  if (failing_) TG_INFO(kLog, "notifications to the service manager work again");
  failing_ = false;
}

}  // namespace tg::platform
