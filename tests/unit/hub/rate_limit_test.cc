// GCRA per-token limits: bursts, smooth refill, token debt, headers.
#include "hub/rate_limit.h"

#include <gtest/gtest.h>

#include <string>

namespace tg::hub {
namespace {

std::string header(const RateDecision& d, const std::string& name) {
  for (const auto& [n, v] : d.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(RateLimit, NoLimitsAdmitEverythingWithoutHeaders) {
  RateLimiter r;
  for (int i = 0; i < 1000; ++i) {
    RateDecision d = r.admit(1, Limits{0, 0}, 0);
    EXPECT_TRUE(d.allowed);
    EXPECT_TRUE(d.headers.empty());
  }
  EXPECT_EQ(r.tracked(), 0u);
}

TEST(RateLimit, BurstIsTenSecondsThenOneIntervalAtATime) {
  RateLimiter r;
  const Limits l{60, 0};  // one per second, burst 10
  int admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += r.admit(7, l, 1000).allowed ? 1 : 0;
  EXPECT_EQ(admitted, 10);
  RateDecision refused = r.admit(7, l, 1000);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 1000);
  EXPECT_EQ(header(refused, "x-ratelimit-limit-requests"), "60");
  EXPECT_EQ(header(refused, "x-ratelimit-remaining-requests"), "0");
  // Capacity returns continuously: one more after one second, not a cliff.
  EXPECT_FALSE(r.admit(7, l, 1999).allowed);
  EXPECT_TRUE(r.admit(7, l, 2000).allowed);
  EXPECT_FALSE(r.admit(7, l, 2000).allowed);
  // Another token is untouched.
  EXPECT_TRUE(r.admit(8, l, 2000).allowed);
}

TEST(RateLimit, SteadyRateAtTheLimitIsNeverRefused) {
  RateLimiter r;
  const Limits l{600, 0};  // one per 100 ms
  for (uint64_t t = 0; t < 60000; t += 100) ASSERT_TRUE(r.admit(1, l, t).allowed) << t;
}

TEST(RateLimit, TokensAreChargedAfterwardsAndDebtBlocks) {
  RateLimiter r;
  const Limits l{0, 6000};  // 100 tokens per second, burst 1000
  ASSERT_TRUE(r.admit(1, l, 0).allowed);
  r.charge_tokens(1, l, 5000, 0);  // one long answer: 4000 over the burst
  RateDecision d = r.admit(1, l, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ms, 40010);  // until the debt is back within the burst
  EXPECT_EQ(header(d, "x-ratelimit-remaining-tokens"), "0");
  EXPECT_FALSE(r.admit(1, l, 40000).allowed);
  EXPECT_TRUE(r.admit(1, l, 40010).allowed);
}

TEST(RateLimit, ChangedLimitsStartOver) {
  RateLimiter r;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(r.admit(1, Limits{60, 0}, 0).allowed);
  EXPECT_FALSE(r.admit(1, Limits{60, 0}, 0).allowed);
  EXPECT_TRUE(r.admit(1, Limits{600, 0}, 0).allowed);  // the operator raised it
}

TEST(RateLimit, MemoryIsBoundedByForgettingTheLeastRecent) {
  RateLimiter r;
  for (int64_t id = 0; id < static_cast<int64_t>(kMaxLimitedTokens) + 500; ++id) {
    (void)r.admit(id, Limits{60, 0}, 0);
  }
  EXPECT_EQ(r.tracked(), kMaxLimitedTokens);
}

TEST(RateLimit, HugeChargesSaturate) {
  Gcra g(1);
  g.charge(0, ~uint64_t{0});
  EXPECT_FALSE(g.conforms(0));
  EXPECT_LE(g.wait_us(0), 86'400'000'000);
}

TEST(RateLimit, ResetText) {
  EXPECT_EQ(reset_text(0), "0ms");
  EXPECT_EQ(reset_text(250000), "250ms");
  EXPECT_EQ(reset_text(1000000), "1s");
  EXPECT_EQ(reset_text(59000000), "59s");
  EXPECT_EQ(reset_text(59500000), "1m0s");  // rounded up, never early
  EXPECT_EQ(reset_text(360000000), "6m0s");
}

}  // namespace
}  // namespace tg::hub
