#include "shared/core/loop.h"

#include <gtest/gtest.h>

#include <csignal>
#include <memory>

namespace tg {
namespace {

TEST(Timer, FiresOnceFromTheLoop) {
  Loop loop;
  int fired = 0;
  {
    Timer t(loop);
    t.start(1, 0, [&] { ++fired; });
    EXPECT_EQ(fired, 0);  // never inside start()
    ASSERT_TRUE(loop.run_until([&] { return fired == 1; }, 2000));
    EXPECT_FALSE(t.active());
  }
  EXPECT_TRUE(loop.close().ok());
  EXPECT_EQ(fired, 1);
}

TEST(Timer, RepeatsUntilStopped) {
  Loop loop;
  int fired = 0;
  {
    Timer t(loop);
    t.start(1, 1, [&] {
      if (++fired == 3) t.stop();
    });
    ASSERT_TRUE(loop.run_until([&] { return fired == 3; }, 2000));
  }
  EXPECT_TRUE(loop.close().ok());
  EXPECT_EQ(fired, 3);
}

TEST(Timer, DestroyedInsideItsOwnCallback) {
  Loop loop;
  auto t = std::make_unique<Timer>(loop);
  int fired = 0;
  t->start(1, 1, [&] {
    ++fired;
    t.reset();
  });
  ASSERT_TRUE(loop.run_until([&] { return !t; }, 2000));
  EXPECT_TRUE(loop.close().ok());
  EXPECT_EQ(fired, 1);
}

TEST(Timer, DestroyedBeforeFiringNeverCallsBack) {
  Loop loop;
  int fired = 0;
  {
    Timer t(loop);
    t.start(1, 0, [&] { ++fired; });
  }
  loop.run();
  EXPECT_TRUE(loop.close().ok());
  EXPECT_EQ(fired, 0);
}

TEST(Loop, CloseReportsLeakedHandles) {
  Loop loop;
  auto* raw = new uv_timer_t;
  uv_timer_init(loop, raw);
  Status s = loop.close();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("timer"), std::string::npos);
  detail::close_and_free(raw);
  EXPECT_TRUE(loop.close().ok());
}

TEST(Loop, RunUntilTimesOut) {
  Loop loop;
  EXPECT_FALSE(loop.run_until([] { return false; }, 30));
  EXPECT_TRUE(loop.close().ok());
}

TEST(Signal, DeliversSignal) {
  Loop loop;
  int got = 0;
  {
    Signal sig(loop);
    ASSERT_TRUE(sig.start(SIGUSR1, [&](int signum) { got = signum; }).ok());
    raise(SIGUSR1);
    ASSERT_TRUE(loop.run_until([&] { return got != 0; }, 2000));
  }
  EXPECT_TRUE(loop.close().ok());
  EXPECT_EQ(got, SIGUSR1);
}

}  // namespace
}  // namespace tg
