// platform/linux/sd_notify.h and platform/service_notify.h against a real
// AF_UNIX datagram socket standing in for systemd's notification socket.
#include "platform/linux/sd_notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "platform/service_notify.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"

namespace tg::platform {
namespace {

// A bound, non-blocking AF_UNIX datagram socket: at a path in a fresh
// temporary directory, or at a unique abstract name.
class Receiver {
 public:
  explicit Receiver(bool abstract) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = 0;
    static int counter = 0;
    if (abstract) {
      name_ = "@tg-sd-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
      std::memcpy(addr.sun_path + 1, name_.data() + 1, name_.size() - 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    } else {
      char tmpl[] = "/tmp/tg-sd-test-XXXXXX";
      const char* dir = mkdtemp(tmpl);
      EXPECT_NE(dir, nullptr);
      dir_ = dir ? dir : "";
      name_ = dir_ + "/notify";
      std::memcpy(addr.sun_path, name_.c_str(), name_.size() + 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + 1);
    }
    const auto* sa = static_cast<const sockaddr*>(static_cast<const void*>(&addr));
    EXPECT_EQ(::bind(fd_, sa, len), 0) << std::strerror(errno);
  }
  ~Receiver() {
    if (fd_ >= 0) ::close(fd_);
    if (!dir_.empty()) {
      ::unlink(name_.c_str());
      ::rmdir(dir_.c_str());
    }
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  const std::string& name() const { return name_; }
  int fd() const { return fd_; }

  // Every datagram queued now.
  std::vector<std::string> take() {
    std::vector<std::string> out;
    char buf[8192];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) break;
      out.emplace_back(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  std::string name_;
  std::string dir_;
};

TEST(SdNotify, UnsetSocketIsANoOp) {
  EXPECT_TRUE(sd::notify("", "READY=1").ok());
}

TEST(SdNotify, SendsOneDatagramToAFilesystemSocket) {
  Receiver r(false);
  ASSERT_TRUE(sd::notify(r.name(), "READY=1\nSTATUS=up").ok());
  EXPECT_EQ(r.take(), std::vector<std::string>{"READY=1\nSTATUS=up"});
}

TEST(SdNotify, SendsToAnAbstractSocketNamedWithAt) {
  Receiver r(true);
  ASSERT_EQ(r.name()[0], '@');
  ASSERT_TRUE(sd::notify(r.name(), "STOPPING=1").ok());
  EXPECT_EQ(r.take(), std::vector<std::string>{"STOPPING=1"});
}

TEST(SdNotify, RelativeAddressIsRefusedAndNamed) {
  Status s = sd::notify("run/notify", "READY=1");
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_NE(s.message().find("'run/notify'"), std::string::npos) << s.message();
}

TEST(SdNotify, PathLongerThanSunPathIsRefused) {
  const std::string path = "/" + std::string(sizeof(sockaddr_un::sun_path), 'x');
  Status s = sd::notify(path, "READY=1");
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_NE(s.message().find("longer than"), std::string::npos) << s.message();
}

TEST(SdNotify, EmptyAndOversizedMessagesAreRefused) {
  Receiver r(false);
  EXPECT_EQ(sd::notify(r.name(), "").code(), Errc::invalid_argument);
  EXPECT_EQ(sd::notify(r.name(), std::string(sd::kMaxMessage + 1, 'a')).code(),
            Errc::invalid_argument);
  EXPECT_TRUE(r.take().empty());
}

TEST(SdNotify, MissingReceiverIsAnIoErrorNamingTheSocket) {
  Status s = sd::notify("/nonexistent-tg-dir/notify", "READY=1");
  EXPECT_EQ(s.code(), Errc::io);
  EXPECT_NE(s.message().find("/nonexistent-tg-dir/notify"), std::string::npos) << s.message();
}

TEST(SdNotify, FullReceiverFailsInsteadOfBlocking) {
  Receiver r(false);
  Status s;
  // The receiver never reads: its queue fills within a few hundred datagrams.
  for (int i = 0; i < 100000 && s.ok(); ++i) s = sd::notify(r.name(), "WATCHDOG=1");
  EXPECT_EQ(s.code(), Errc::io);
}

TEST(SdNotify, WatchdogParsing) {
  EXPECT_EQ(sd::parse_watchdog("30000000", nullptr, 42), 30000000u);
  EXPECT_EQ(sd::parse_watchdog("30000000", "", 42), 30000000u);
  EXPECT_EQ(sd::parse_watchdog("30000000", "42", 42), 30000000u);
  EXPECT_EQ(sd::parse_watchdog("30000000", "43", 42), std::nullopt);  // another process's
  EXPECT_EQ(sd::parse_watchdog("30000000", "x", 42), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog(nullptr, nullptr, 42), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("0", nullptr, 42), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("-5", nullptr, 42), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("12s", nullptr, 42), std::nullopt);
  EXPECT_EQ(sd::parse_watchdog("99999999999999999999999", nullptr, 42), std::nullopt);
}

TEST(SdNotify, StatusCannotInjectAnotherAssignment) {
  EXPECT_EQ(sd::status_assignment("up\nREADY=1\r\t"), "STATUS=up READY=1  ");
  EXPECT_EQ(sd::status_assignment(std::string(600, 'a')).size(), 7u + 512u);
}

TEST(NotifySettings, ReadFromTheEnvironment) {
  ::setenv("NOTIFY_SOCKET", "@tg-env-test", 1);
  ::setenv("WATCHDOG_USEC", "20000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  NotifySettings s = notify_settings_from_environment();
  ::setenv("WATCHDOG_PID", "1", 1);
  NotifySettings other = notify_settings_from_environment();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  NotifySettings none = notify_settings_from_environment();
  EXPECT_EQ(s.socket, "@tg-env-test");
  EXPECT_EQ(s.watchdog_usec, 20000000u);
  EXPECT_EQ(other.watchdog_usec, 0u);
  EXPECT_TRUE(none.socket.empty());
  EXPECT_EQ(none.watchdog_usec, 0u);
}

TEST(ServiceNotifier, WithoutSocketEverythingIsANoOp) {
  Loop loop;
  {
    ServiceNotifier n(loop, NotifySettings{"", 20000});
    EXPECT_FALSE(n.enabled());
    EXPECT_EQ(n.watchdog_interval_ms(), 0u);
    n.ready("up");
    n.stopping("down");
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(ServiceNotifier, ReadyStoppingAndStatusDatagrams) {
  Receiver r(true);
  Loop loop;
  {
    ServiceNotifier n(loop, NotifySettings{r.name(), 0});
    EXPECT_TRUE(n.enabled());
    EXPECT_EQ(n.watchdog_interval_ms(), 0u);
    n.ready("listening on 127.0.0.1:1");
    n.status("2 tunnels");
    n.stopping("SIGTERM: draining");
    EXPECT_EQ(r.take(), (std::vector<std::string>{"READY=1\nSTATUS=listening on 127.0.0.1:1",
                                                  "STATUS=2 tunnels",
                                                  "STOPPING=1\nSTATUS=SIGTERM: draining"}));
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(ServiceNotifier, WatchdogPingsFromTheLoopEveryHalfInterval) {
  Receiver r(false);
  Loop loop;
  {
    ServiceNotifier n(loop, NotifySettings{r.name(), 40000});  // 40 ms -> every 20 ms
    EXPECT_EQ(n.watchdog_interval_ms(), 20u);
    EXPECT_TRUE(r.take().empty());  // nothing inside the constructor
    std::vector<std::string> got;
    EXPECT_TRUE(loop.run_until(
        [&] {
          for (auto& d : r.take()) got.push_back(d);
          return got.size() >= 3;
        },
        5000));
    for (const auto& d : got) EXPECT_EQ(d, "WATCHDOG=1");
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(ServiceNotifier, WatchdogTimerDoesNotKeepTheLoopAlive) {
  Receiver r(false);
  Loop loop;
  {
    ServiceNotifier n(loop, NotifySettings{r.name(), 30000000});
    loop.run();  // returns at once: the timer is unreferenced
  }
  EXPECT_TRUE(loop.close().ok());
}

void capture(log::Level, const char* line, void* user) {
  static_cast<std::vector<std::string>*>(user)->emplace_back(line);
}

TEST(ServiceNotifier, SendFailuresAreLoggedOnceUntilOneSucceeds) {
  std::vector<std::string> lines;
  log::set_sink(&capture, &lines);
  Loop loop;
  {
    ServiceNotifier n(loop, NotifySettings{"/nonexistent-tg-dir/notify", 0});
    n.ready("a");
    n.status("b");
    n.stopping("c");
  }
  log::set_sink(nullptr, nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("WARN"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("sd_notify: sd_notify to NOTIFY_SOCKET '/nonexistent-tg-dir/notify'"),
            std::string::npos)
      << lines[0];
  EXPECT_TRUE(loop.close().ok());
}

}  // namespace
}  // namespace tg::platform
