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

TEST(Deferred, RunsOnceFromTheLoopWithTheLastCallbackPosted) {
  Loop loop;
  int first = 0, second = 0;
  {
    Deferred d(loop);
    d.post([&] { ++first; });
    d.post([&] { ++second; });  // replaces the first
    EXPECT_EQ(first + second, 0);  // never inside post()
    EXPECT_TRUE(d.pending());
    ASSERT_TRUE(loop.run_until([&] { return second == 1; }, 2000));
    EXPECT_EQ(first, 0);
    EXPECT_FALSE(d.pending());
    loop.run_until([] { return false; }, 20);
    EXPECT_EQ(second, 1);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Deferred, CancelledOrDestroyedNeverCallsBack) {
  Loop loop;
  int fired = 0;
  {
    Deferred kept(loop);
    kept.post([&] { ++fired; });
    kept.cancel();
    auto gone = std::make_unique<Deferred>(loop);
    gone->post([&] { ++fired; });
    gone.reset();
    loop.run_until([] { return false; }, 20);
  }
  EXPECT_EQ(fired, 0);
  EXPECT_TRUE(loop.close().ok());
}

TEST(Deferred, DestroyedOrRepostedInsideItsOwnCallback) {
  Loop loop;
  int runs = 0;
  {
    auto d = std::make_unique<Deferred>(loop);
    d->post([&] {
      ++runs;
      d->post([&] {
        ++runs;
        d.reset();
      });
    });
    ASSERT_TRUE(loop.run_until([&] { return !d; }, 2000));
  }
  EXPECT_EQ(runs, 2);
  EXPECT_TRUE(loop.close().ok());
}

// Posted by an I/O callback, it runs in that same turn, and the handles it
// closes are finished before the loop polls again: the next poll may block
// (a 0 ms Timer would run at the start of the next turn instead, and make
// that turn's poll return at once to complete the closing).
TEST(Deferred, RunsInTheTurnOfItsIoCallbackAndLetsTheNextPollBlock) {
  Loop loop;
  {
    Timer far(loop);
    far.start(10000, 0, [] {});  // something to wait for
    auto victim = std::make_unique<Timer>(loop);
    victim->start(10000, 0, [] {});
    Deferred d(loop);
    bool freed = false;
    uv_async_t async;
    struct Ctx {
      Deferred* d;
      std::unique_ptr<Timer>* victim;
      bool* freed;
    } ctx{&d, &victim, &freed};
    async.data = &ctx;
    uv_async_init(loop, &async, [](uv_async_t* a) {
      auto* c = static_cast<Ctx*>(a->data);
      c->d->post([c] {
        c->victim->reset();
        *c->freed = true;
      });
    });
    uv_async_send(&async);
    uv_run(loop, UV_RUN_ONCE);  // the async callback runs in this turn's poll
    EXPECT_TRUE(freed);
    EXPECT_GT(uv_backend_timeout(loop), 0);  // nothing left to finish: may block
    uv_close(reinterpret_cast<uv_handle_t*>(&async), nullptr);
  }
  EXPECT_TRUE(loop.close().ok());
}

// Posted from a timer callback (before the turn's poll), it keeps that poll
// from blocking: one turn runs it, long before the other timer is due.
TEST(Deferred, PostedFromATimerDoesNotLetTheLoopBlockFirst) {
  Loop loop;
  {
    bool far_fired = false;
    Timer far(loop);
    far.start(5000, 0, [&] { far_fired = true; });
    Deferred d(loop);
    bool ran = false;
    Timer now(loop);
    now.start(0, 0, [&] { d.post([&] { ran = true; }); });
    for (int i = 0; i < 100 && !ran; ++i) uv_run(loop, UV_RUN_ONCE);  // the 0 ms timer may need a turn
    EXPECT_TRUE(ran);
    EXPECT_FALSE(far_fired);  // the turn did not wait for the next timer
  }
  EXPECT_TRUE(loop.close().ok());
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
