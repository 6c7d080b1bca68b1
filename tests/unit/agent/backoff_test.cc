// Reconnect back-off arithmetic: bounds, growth, cap, the reset rule, the
// rejected and goaway delays, overflow at large attempt numbers and the shape
// of the jitter. No clock anywhere: the random source is injected.
#include "agent/backoff.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <set>

namespace tg::agent {
namespace {

// Always the upper end of the range.
uint64_t top(uint64_t bound) { return bound; }
// Always zero.
uint64_t bottom(uint64_t) { return 0; }

BackoffSettings settings(uint64_t min_ms, uint64_t max_ms, uint64_t reset_ms = 60000) {
  return BackoffSettings{min_ms, max_ms, reset_ms};
}

TEST(Backoff, FirstDelayIsWithinZeroAndMin) {
  Backoff hi(settings(500, 60000), top);
  EXPECT_EQ(hi.next(), 500u);
  Backoff lo(settings(500, 60000), bottom);
  EXPECT_EQ(lo.next(), 0u);
}

TEST(Backoff, CeilingDoublesPerAttempt) {
  Backoff b(settings(500, 60000), top);
  EXPECT_EQ(b.next(), 500u);
  EXPECT_EQ(b.next(), 1000u);
  EXPECT_EQ(b.next(), 2000u);
  EXPECT_EQ(b.next(), 4000u);
  EXPECT_EQ(b.attempt(), 4u);
}

TEST(Backoff, CeilingIsCappedAtMax) {
  Backoff b(settings(500, 60000), top);
  for (int i = 0; i < 7; ++i) b.next();  // 500 .. 32000
  EXPECT_EQ(b.next(), 60000u);           // 64000 capped
  EXPECT_EQ(b.next(), 60000u);
}

TEST(Backoff, NoOverflowAtLargeAttemptNumbers) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  Backoff b(settings(uint64_t{1} << 40, max), top);
  EXPECT_EQ(b.ceiling(23), uint64_t{1} << 63);
  EXPECT_EQ(b.ceiling(24), max);  // 2^64 would wrap
  EXPECT_EQ(b.ceiling(63), max);
  EXPECT_EQ(b.ceiling(64), max);
  EXPECT_EQ(b.ceiling(1000), max);
  EXPECT_EQ(b.ceiling(std::numeric_limits<uint32_t>::max()), max);
  Backoff small(settings(3, 100), top);
  EXPECT_EQ(small.ceiling(std::numeric_limits<uint32_t>::max()), 100u);
}

TEST(Backoff, AttemptCounterSaturates) {
  Backoff b(settings(10, 1000), top);
  for (int i = 0; i < 1000; ++i) EXPECT_LE(b.next(), 1000u);
  EXPECT_EQ(b.attempt(), Backoff::kMaxAttempt);
  EXPECT_EQ(b.next(), 1000u);
}

TEST(Backoff, ResetsOnlyAfterTunnelStayedUpLongEnough) {
  Backoff b(settings(100, 10000, 5000), top);
  b.next();
  b.next();
  b.next();
  b.tunnel_ended(4999);  // too short: keeps growing
  EXPECT_EQ(b.next(), 800u);
  b.tunnel_ended(5000);
  EXPECT_EQ(b.attempt(), 0u);
  EXPECT_EQ(b.next(), 100u);
}

TEST(Backoff, RejectedDelayIsInUpperHalfOfMax) {
  Backoff lo(settings(100, 10000), bottom);
  EXPECT_EQ(lo.next_rejected(), 5000u);
  Backoff hi(settings(100, 10000), top);
  EXPECT_EQ(hi.next_rejected(), 10000u);
  // Later ordinary delays stay at the full ceiling.
  EXPECT_EQ(hi.next(), 10000u);
}

TEST(Backoff, OverrideIsUsedExactlyOnce) {
  Backoff b(settings(100, 10000), top);
  b.override_next(1234);
  EXPECT_EQ(b.next(), 1234u);
  EXPECT_EQ(b.next(), 200u);  // the attempt still counted
  b.override_next(0);
  EXPECT_EQ(b.next_rejected(), 0u);  // the override wins over the rejected delay
  EXPECT_EQ(b.next_rejected(), 10000u);
}

TEST(Backoff, InjectedRandomAboveBoundIsClamped) {
  Backoff b(settings(100, 1000), [](uint64_t) { return uint64_t{1} << 50; });
  EXPECT_EQ(b.next(), 100u);
  EXPECT_EQ(b.next_rejected(), 1000u);
}

TEST(Backoff, MaxBelowMinIsRaisedToMin) {
  Backoff b(settings(500, 100), top);
  EXPECT_EQ(b.settings().max_ms, 500u);
  EXPECT_EQ(b.next(), 500u);
  EXPECT_EQ(b.next(), 500u);
}

TEST(Backoff, FullJitterIsSpreadOverTheWholeRange) {
  std::mt19937_64 rng(42);
  Backoff b(settings(1000, 1000), [&rng](uint64_t bound) {
    return std::uniform_int_distribution<uint64_t>(0, bound)(rng);
  });
  constexpr int kSamples = 20000;
  uint64_t sum = 0, lo = UINT64_MAX, hi = 0;
  int buckets[10] = {};
  for (int i = 0; i < kSamples; ++i) {
    uint64_t d = b.next();
    ASSERT_LE(d, 1000u);
    sum += d;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    ++buckets[std::min<uint64_t>(d / 100, 9)];
  }
  const double mean = static_cast<double>(sum) / kSamples;
  EXPECT_GT(mean, 470.0);
  EXPECT_LT(mean, 530.0);
  EXPECT_LT(lo, 20u);
  EXPECT_GT(hi, 980u);
  for (int n : buckets) EXPECT_GT(n, kSamples / 10 * 8 / 10);  // each tenth within 20% of even
}

TEST(Backoff, DefaultRandomSourceStaysInBoundsAndVaries) {
  Backoff b(settings(1000, 1000));
  std::set<uint64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    uint64_t d = b.next();
    ASSERT_LE(d, 1000u);
    seen.insert(d);
  }
  EXPECT_GT(seen.size(), 500u);
  for (int i = 0; i < 200; ++i) {
    uint64_t d = b.next_rejected();
    ASSERT_GE(d, 500u);
    ASSERT_LE(d, 1000u);
  }
}

}  // namespace
}  // namespace tg::agent
