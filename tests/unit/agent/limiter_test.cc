// The agent's limiter without a loop: request and token buckets at their
// edges, debt, AIMD down and up, the 429 pause, capacity-report throttling,
// and the Retry-After parser (delay-seconds, the three HTTP-date forms,
// garbage). Time is a number the tests pass in.
#include "agent/limiter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace tg::agent {
namespace {

constexpr uint64_t kT0 = 1000000;  // an arbitrary loop time, well past 60 s

Limiter one(uint32_t rpm, uint64_t tpm = 0) { return Limiter({ProviderLimits{rpm, tpm}}); }

// Admits until the first refusal at `now`; how many were admitted.
int drain(Limiter& l, uint64_t now, int max = 100000) {
  int n = 0;
  while (n < max && l.admit(0, now).admitted) ++n;
  return n;
}

// ---- request bucket ----

TEST(Limiter, UnlimitedProviderAdmitsEverything) {
  Limiter l = one(0);
  EXPECT_EQ(drain(l, kT0, 5000), 5000);
  EXPECT_EQ(l.ready_in_ms(0, kT0), 0u);
  EXPECT_EQ(l.effective_rpm(0), 0u);
  EXPECT_EQ(l.recent_calls(0, kT0), 5000u);
  EXPECT_FALSE(l.poll_report(0, kT0));
  EXPECT_FALSE(l.next_report_ms(0, kT0));
}

TEST(Limiter, RequestBucketHoldsTenSecondsOfBurst) {
  Limiter l = one(60);  // 1 per second, 10 in the bucket
  EXPECT_EQ(drain(l, kT0), 10);
  Admission a = l.admit(0, kT0);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.refusal, Refusal::requests);
  EXPECT_EQ(a.wait_ms, 1000u);
  EXPECT_EQ(l.admit(0, kT0 + 999).wait_ms, 1u);
  EXPECT_TRUE(l.admit(0, kT0 + 1000).admitted);
  EXPECT_FALSE(l.admit(0, kT0 + 1000).admitted);
}

TEST(Limiter, BelowSixRequestsPerMinuteTheBucketHoldsOne) {
  Limiter l = one(5);
  EXPECT_EQ(drain(l, kT0), 1);
  EXPECT_EQ(l.admit(0, kT0).wait_ms, 12000u);
  EXPECT_EQ(l.ready_in_ms(0, kT0 + 2000), 10000u);
}

TEST(Limiter, RefillIsExactAndNeverPastTheCapacity) {
  Limiter l = one(6000);  // 100 per second, 1000 in the bucket
  EXPECT_EQ(drain(l, kT0), 1000);
  EXPECT_EQ(drain(l, kT0 + 10), 1);  // 6000 x 10 ms = one request
  EXPECT_EQ(l.admit(0, kT0 + 10).wait_ms, 10u);
  EXPECT_EQ(drain(l, kT0 + 15), 0);
  EXPECT_EQ(drain(l, kT0 + 1000000000), 1000);  // a long idle fills it, no more
}

TEST(Limiter, LargestLimitsAndHugeTimesDoNotOverflow) {
  Limiter l({ProviderLimits{10000000, 10000000000}});
  EXPECT_EQ(drain(l, kT0, 3000000), 1666666);  // rpm/6
  const uint64_t far = std::numeric_limits<uint64_t>::max() / 2;
  EXPECT_EQ(drain(l, far, 3000000), 1666666);
  l.finished(0, far, 200, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(l.tokens(0, far), -600000000000);  // one hour of refill, not more
  EXPECT_EQ(l.ready_in_ms(0, far), kMaxReportReadyMs);
  EXPECT_EQ(l.tokens(0, std::numeric_limits<uint64_t>::max()), 1666666666);
}

TEST(Limiter, ClockValuesNearTheTopDoNotWrap) {
  const uint64_t top = std::numeric_limits<uint64_t>::max() - 10;
  Limiter l = one(60);
  EXPECT_EQ(l.throttled(0, top, top, uint64_t{5000}), 10u);  // paused "until the end of time"
  ASSERT_TRUE(l.poll_report(0, top));
  EXPECT_EQ(l.next_report_ms(0, top), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(l.poll_report(0, top + 5));  // within the 250 ms throttle
  EXPECT_FALSE(l.admit(0, top + 9).admitted);
}

TEST(Limiter, AClockGoingBackwardsRefillsNothing) {
  Limiter l = one(60);
  EXPECT_EQ(drain(l, kT0), 10);
  EXPECT_EQ(drain(l, kT0 - 5000), 0);
  EXPECT_EQ(l.admit(0, kT0 - 5000).wait_ms, 1000u);
  EXPECT_EQ(drain(l, kT0 + 1000), 1);
}

// ---- token bucket ----

TEST(Limiter, TokenBucketAdmitsUntilItIsInDebt) {
  Limiter l = one(0, 600);  // 10 tokens per second, 100 in the bucket
  EXPECT_EQ(l.tokens(0, kT0), 100);
  ASSERT_TRUE(l.admit(0, kT0).admitted);
  ASSERT_TRUE(l.admit(0, kT0).admitted);  // nothing is charged before the end
  l.finished(0, kT0, 200, 99);
  EXPECT_EQ(l.tokens(0, kT0), 1);
  EXPECT_TRUE(l.admit(0, kT0).admitted);  // not in debt: admitted, whatever it will cost
  l.finished(0, kT0, 200, 51);
  EXPECT_EQ(l.tokens(0, kT0), -50);
  Admission a = l.admit(0, kT0);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.refusal, Refusal::tokens);
  EXPECT_EQ(a.wait_ms, 5000u);
  EXPECT_FALSE(l.admit(0, kT0 + 4999).admitted);
  EXPECT_EQ(l.tokens(0, kT0 + 4999), -1);  // whole tokens round down
  EXPECT_TRUE(l.admit(0, kT0 + 5000).admitted);
  EXPECT_EQ(l.tokens(0, kT0 + 5000), 0);
}

TEST(Limiter, TokenDebtStopsAtOneHourOfRefill) {
  Limiter l = one(0, 60);
  l.finished(0, kT0, 200, 1000000000000);
  EXPECT_EQ(l.tokens(0, kT0), -3600);
  EXPECT_EQ(l.ready_in_ms(0, kT0), 3600000u);
  EXPECT_EQ(l.admit(0, kT0 + 3599999).wait_ms, 1u);
  EXPECT_TRUE(l.admit(0, kT0 + 3600000).admitted);
}

TEST(Limiter, TokensAreIgnoredWithoutATokenLimit) {
  Limiter l = one(60);
  l.finished(0, kT0, 200, 1000000);
  EXPECT_EQ(l.tokens(0, kT0), 0);
  EXPECT_EQ(drain(l, kT0), 10);
}

TEST(Limiter, BothBucketsRefuseWithTheLongerWait) {
  Limiter l = one(60, 60);
  EXPECT_EQ(drain(l, kT0), 10);
  l.finished(0, kT0, 200, 30);  // 10 in the bucket, 30 used: 20 in debt, 20 s at 1/s
  Admission a = l.admit(0, kT0);
  EXPECT_EQ(a.refusal, Refusal::tokens);
  EXPECT_EQ(a.wait_ms, 20000u);
}

// ---- AIMD ----

TEST(Limiter, A429HalvesTheRateAndPausesOneSecond) {
  Limiter l = one(100);
  ASSERT_TRUE(l.admit(0, kT0).admitted);
  EXPECT_EQ(l.throttled(0, kT0 + 5, kT0, std::nullopt), 1000u);
  EXPECT_EQ(l.effective_rpm(0), 50u);
  Admission a = l.admit(0, kT0 + 500);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.refusal, Refusal::paused);
  EXPECT_EQ(a.wait_ms, 505u);
  // The bucket shrank to 50/6 = 8 requests.
  EXPECT_EQ(drain(l, kT0 + 1005), 8);
}

TEST(Limiter, Consecutive429sDoubleThePauseUpToAMinute) {
  Limiter l = one(10000000);  // a bucket that never runs dry here
  const uint64_t want_pause[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
  const uint32_t want_rpm[] = {5000000, 2500000, 1250000, 625000, 312500, 156250, 78125, 39062, 19531};
  uint64_t now = kT0;
  for (size_t i = 0; i < std::size(want_pause); ++i) {
    now += 100000;
    ASSERT_TRUE(l.admit(0, now).admitted) << i;
    EXPECT_EQ(l.throttled(0, now + 1, now, std::nullopt), want_pause[i]) << i;
    EXPECT_EQ(l.effective_rpm(0), want_rpm[i]) << i;
  }
}

TEST(Limiter, TheRateNeverHalvesBelowOne) {
  Limiter l = one(4);
  const uint32_t want_rpm[] = {2, 1, 1, 1};
  uint64_t now = kT0;
  for (uint32_t want : want_rpm) {
    now += 1000000;
    l.throttled(0, now, now, uint64_t{0});
    EXPECT_EQ(l.effective_rpm(0), want);
  }
  EXPECT_EQ(drain(l, now), 1);
  EXPECT_EQ(l.admit(0, now).wait_ms, 60000u);
}

TEST(Limiter, RetryAfterIsHonouredAndCapped) {
  Limiter l = one(100);
  EXPECT_EQ(l.throttled(0, kT0, kT0, uint64_t{5000}), 5000u);
  EXPECT_EQ(l.admit(0, kT0 + 4000).wait_ms, 1000u);
  Limiter m = one(100);
  EXPECT_EQ(m.throttled(0, kT0, kT0, uint64_t{36000000}), kMaxRetryAfterMs);
  Limiter z = one(100);
  EXPECT_EQ(z.throttled(0, kT0, kT0, uint64_t{0}), 0u);  // "Retry-After: 0": lowered, not paused
  EXPECT_EQ(z.effective_rpm(0), 50u);
}

TEST(Limiter, A429WhenUnlimitedStartsFromTheCallsOfTheLastMinute) {
  Limiter l = one(0);
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(l.admit(0, kT0 + i * 1000).admitted);
  l.throttled(0, kT0 + 20000, kT0 + 9000, std::nullopt);
  EXPECT_EQ(l.effective_rpm(0), 5u);
  // Limited now: a bucket of one (5/6), full after the pause.
  EXPECT_EQ(drain(l, kT0 + 21000), 1);
  EXPECT_EQ(l.admit(0, kT0 + 21000).wait_ms, 12000u);

  Limiter idle = one(0);
  idle.throttled(0, kT0, 0, std::nullopt);  // no call in the last minute: from 1
  EXPECT_EQ(idle.effective_rpm(0), 1u);
}

TEST(Limiter, A429ForACallSentBeforeTheLastDecreaseDoesNotDecreaseAgain) {
  Limiter l = one(100);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(l.admit(0, kT0).admitted);
  l.throttled(0, kT0 + 50, kT0, std::nullopt);
  ASSERT_EQ(l.effective_rpm(0), 50u);
  // The other three were sent at the old rate: no second halving, no longer pause.
  EXPECT_EQ(l.throttled(0, kT0 + 60, kT0, std::nullopt), 990u);
  EXPECT_EQ(l.throttled(0, kT0 + 70, kT0 + 50, std::nullopt), 980u);  // same tick as the decrease
  EXPECT_EQ(l.effective_rpm(0), 50u);
  // Their Retry-After still extends the pause.
  EXPECT_EQ(l.throttled(0, kT0 + 80, kT0, uint64_t{3000}), 3000u);
  EXPECT_EQ(l.effective_rpm(0), 50u);
  // A call admitted after the decrease counts again.
  ASSERT_TRUE(l.admit(0, kT0 + 3080).admitted);
  EXPECT_EQ(l.throttled(0, kT0 + 3100, kT0 + 3080, std::nullopt), 2000u);
  EXPECT_EQ(l.effective_rpm(0), 25u);
}

TEST(Limiter, EachSuccessAddsOneBackUpToTheConfiguredRate) {
  Limiter l = one(10);
  l.throttled(0, kT0, kT0, uint64_t{0});
  ASSERT_EQ(l.effective_rpm(0), 5u);
  for (uint32_t want = 6; want <= 10; ++want) {
    l.finished(0, kT0, 200, 0);
    EXPECT_EQ(l.effective_rpm(0), want);
  }
  l.finished(0, kT0, 204, 0);
  EXPECT_EQ(l.effective_rpm(0), 10u);
}

TEST(Limiter, OnlyA2xxGrowsTheRate) {
  Limiter l = one(10);
  l.throttled(0, kT0, kT0, uint64_t{0});
  for (int status : {0, 199, 300, 400, 429, 500, 503}) {
    l.finished(0, kT0, status, 0);
    EXPECT_EQ(l.effective_rpm(0), 5u) << status;
  }
  l.finished(0, kT0, 299, 0);
  EXPECT_EQ(l.effective_rpm(0), 6u);
}

TEST(Limiter, ASuccessEndsTheRunOf429s) {
  Limiter l = one(1000);
  EXPECT_EQ(l.throttled(0, kT0, kT0, std::nullopt), 1000u);
  EXPECT_EQ(l.throttled(0, kT0 + 2000, kT0 + 1500, std::nullopt), 2000u);
  l.finished(0, kT0 + 5000, 500, 0);  // not a success
  EXPECT_EQ(l.throttled(0, kT0 + 9000, kT0 + 8000, std::nullopt), 4000u);
  l.finished(0, kT0 + 20000, 200, 0);
  EXPECT_EQ(l.throttled(0, kT0 + 30000, kT0 + 25000, std::nullopt), 1000u);
}

TEST(Limiter, UnlimitedAgainOnceTheLimitIsTwiceTheTraffic) {
  Limiter l = one(0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(l.admit(0, kT0).admitted);
  l.throttled(0, kT0, kT0, uint64_t{0});
  ASSERT_EQ(l.effective_rpm(0), 5u);
  for (uint32_t want = 6; want <= 20; ++want) {
    l.finished(0, kT0, 200, 0);
    EXPECT_EQ(l.effective_rpm(0), want);
  }
  l.finished(0, kT0, 200, 0);  // 21 > 2 x 10
  EXPECT_EQ(l.effective_rpm(0), 0u);
  EXPECT_EQ(drain(l, kT0, 1000), 1000);
}

TEST(Limiter, UnlimitedAgainWhenTheTrafficOfTheLastMinuteIsGone) {
  Limiter l = one(0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(l.admit(0, kT0).admitted);
  l.throttled(0, kT0, kT0, uint64_t{0});
  ASSERT_EQ(l.effective_rpm(0), 5u);
  EXPECT_EQ(l.recent_calls(0, kT0 + 59999), 10u);
  EXPECT_EQ(l.recent_calls(0, kT0 + 60000), 0u);
  l.finished(0, kT0 + 60000, 200, 0);
  EXPECT_EQ(l.effective_rpm(0), 0u);
}

TEST(Limiter, RecentCallsAreCountedPerSecondOverSixtySeconds) {
  Limiter l = one(0);
  for (uint64_t s = 0; s < 120; ++s) ASSERT_TRUE(l.admit(0, kT0 + s * 1000).admitted);
  EXPECT_EQ(l.recent_calls(0, kT0 + 119000), 60u);
  EXPECT_EQ(l.recent_calls(0, kT0 + 119999), 60u);
  EXPECT_EQ(l.recent_calls(0, kT0 + 150000), 29u);
  EXPECT_EQ(l.recent_calls(0, kT0 + 1000000), 0u);
}

TEST(Limiter, ProvidersAreIndependent) {
  Limiter l({ProviderLimits{60, 0}, ProviderLimits{0, 0}});
  EXPECT_EQ(drain(l, kT0), 10);
  l.throttled(0, kT0, kT0, uint64_t{60000});
  EXPECT_TRUE(l.admit(1, kT0).admitted);
  EXPECT_EQ(l.effective_rpm(1), 0u);
  EXPECT_EQ(l.ready_in_ms(1, kT0), 0u);
  EXPECT_FALSE(l.poll_report(1, kT0));
}

// ---- capacity reports ----

TEST(Limiter, AnEmptiedBucketIsReportedAndThenItsReturn) {
  Limiter l = one(6);  // a bucket of one, refilled every 10 s
  ASSERT_TRUE(l.admit(0, kT0).admitted);
  auto r = l.poll_report(0, kT0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ready_in_ms, 10000u);
  EXPECT_EQ(r->rpm, 6u);
  EXPECT_FALSE(l.poll_report(0, kT0 + 300));  // nothing new
  EXPECT_EQ(l.next_report_ms(0, kT0 + 300), kT0 + 10000);
  EXPECT_FALSE(l.poll_report(0, kT0 + 9999));
  r = l.poll_report(0, kT0 + 10000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ready_in_ms, 0u);
  EXPECT_FALSE(l.next_report_ms(0, kT0 + 10000));
  EXPECT_FALSE(l.poll_report(0, kT0 + 20000));
}

TEST(Limiter, ReportsAreAtLeast250msApart) {
  Limiter l = one(6);
  ASSERT_TRUE(l.admit(0, kT0).admitted);
  ASSERT_TRUE(l.poll_report(0, kT0));
  EXPECT_FALSE(l.admit(0, kT0 + 100).admitted);  // a refusal: due again, but throttled
  EXPECT_FALSE(l.poll_report(0, kT0 + 100));
  EXPECT_EQ(l.next_report_ms(0, kT0 + 100), kT0 + kReportIntervalMs);
  EXPECT_FALSE(l.poll_report(0, kT0 + 249));
  auto r = l.poll_report(0, kT0 + 250);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ready_in_ms, 9750u);
}

TEST(Limiter, A429IsReportedWithItsPauseAndTheLowerRate) {
  Limiter l = one(120);
  ASSERT_TRUE(l.admit(0, kT0).admitted);
  EXPECT_FALSE(l.poll_report(0, kT0));  // 19 left: nothing to say
  l.throttled(0, kT0 + 10, kT0, uint64_t{2000});
  auto r = l.poll_report(0, kT0 + 10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ready_in_ms, 2000u);
  EXPECT_EQ(r->rpm, 60u);
  r = l.poll_report(0, kT0 + 2010);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ready_in_ms, 0u);
  EXPECT_EQ(r->rpm, 60u);
}

TEST(Limiter, TokenDebtIsReported) {
  Limiter l = one(0, 600);
  ASSERT_TRUE(l.admit(0, kT0).admitted);
  l.finished(0, kT0, 200, 150);
  auto r = l.poll_report(0, kT0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ready_in_ms, 5000u);
  EXPECT_EQ(r->rpm, 0u);
}

TEST(Limiter, NoAvailableReportWithoutAnUnavailableOneFirst) {
  Limiter l = one(6);
  ASSERT_TRUE(l.admit(0, kT0).admitted);  // due...
  EXPECT_FALSE(l.poll_report(0, kT0 + 10000));  // ...but available again by the time it is polled
  EXPECT_FALSE(l.next_report_ms(0, kT0 + 10000));
}

TEST(Limiter, ANewTunnelHearsOfProvidersStillUnavailable) {
  Limiter l({ProviderLimits{6, 0}, ProviderLimits{60, 0}});
  ASSERT_TRUE(l.admit(0, kT0).admitted);
  ASSERT_TRUE(l.admit(1, kT0).admitted);
  ASSERT_TRUE(l.poll_report(0, kT0));
  l.reset_reports(kT0 + 100);
  auto r = l.poll_report(0, kT0 + 100);  // no throttle after a reset
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ready_in_ms, 9900u);
  EXPECT_FALSE(l.poll_report(1, kT0 + 100));  // available: nothing to say
  EXPECT_FALSE(l.next_report_ms(1, kT0 + 100));
}

// ---- Retry-After ----

constexpr int64_t kRfcExample = 784111777000;  // Sun, 06 Nov 1994 08:49:37 GMT

uint64_t ra(std::string_view v, int64_t now = kRfcExample - 7000) {
  Result<uint64_t> r = parse_retry_after(v, now);
  EXPECT_TRUE(r.ok()) << v << ": " << r.status().to_string();
  return r.ok() ? *r : ~uint64_t{0};
}

std::string ra_error(std::string_view v, int64_t now = kRfcExample) {
  Result<uint64_t> r = parse_retry_after(v, now);
  EXPECT_FALSE(r.ok()) << v;
  return r.ok() ? "(accepted)" : r.status().message();
}

TEST(RetryAfter, DelaySeconds) {
  EXPECT_EQ(ra("0"), 0u);
  EXPECT_EQ(ra("2"), 2000u);
  EXPECT_EQ(ra(" \t120 "), 120000u);
  EXPECT_EQ(ra("0003"), 3000u);
  EXPECT_EQ(ra("3600"), 3600000u);
  EXPECT_EQ(ra("3601"), kMaxRetryAfterMs);
  EXPECT_EQ(ra("9999999999"), kMaxRetryAfterMs);
  EXPECT_EQ(ra("99999999999999999999999999"), kMaxRetryAfterMs);
}

TEST(RetryAfter, TheThreeDateForms) {
  EXPECT_EQ(ra("Sun, 06 Nov 1994 08:49:37 GMT"), 7000u);
  EXPECT_EQ(ra("Sunday, 06-Nov-94 08:49:37 GMT"), 7000u);
  EXPECT_EQ(ra("Sun Nov  6 08:49:37 1994"), 7000u);
  EXPECT_EQ(ra("Wed Nov 16 08:49:37 1994", kRfcExample + 10 * 86400000ll - 7000), 7000u);
}

TEST(RetryAfter, DatesInThePastAreNowAndFarOnesAreCapped) {
  EXPECT_EQ(ra("Sun, 06 Nov 1994 08:49:37 GMT", kRfcExample), 0u);
  EXPECT_EQ(ra("Sun, 06 Nov 1994 08:49:37 GMT", kRfcExample + 1), 0u);
  EXPECT_EQ(ra("Thu, 01 Jan 1970 00:00:00 GMT"), 0u);
  EXPECT_EQ(ra("Thu, 01 Jan 1970 00:00:05 GMT", -1000), 6000u);
  EXPECT_EQ(ra("Fri, 31 Dec 9999 23:59:59 GMT"), kMaxRetryAfterMs);
  EXPECT_EQ(ra("Sun, 06 Nov 1994 09:49:29 GMT"), 3599000u);
  EXPECT_EQ(ra("Sun, 06 Nov 1994 09:49:31 GMT"), kMaxRetryAfterMs);
}

TEST(RetryAfter, CalendarEdges) {
  EXPECT_EQ(ra("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800000 - 1), 1u);
  EXPECT_EQ(ra("Tue, 29 Feb 2000 12:00:00 GMT", 951825600000 - 2500), 2500u);
  EXPECT_EQ(ra("Sun, 01 Mar 2026 00:00:00 GMT", 1772323200000 - 60000), 60000u);
  EXPECT_EQ(ra("Thu, 01 Jan 2026 00:00:00 GMT", 1767225600000 - 1000), 1000u);
  EXPECT_EQ(ra("Sat, 31 Dec 2016 23:59:60 GMT", 1483228800000 - 1000), 1000u);  // a leap second
  EXPECT_EQ(ra_error("Wed, 29 Feb 2023 00:00:00 GMT"),
            "Retry-After \"Wed, 29 Feb 2023 00:00:00 GMT\": not a valid date and time");
  EXPECT_EQ(ra_error("Thu, 29 Feb 1900 00:00:00 GMT"),
            "Retry-After \"Thu, 29 Feb 1900 00:00:00 GMT\": not a valid date and time");
  EXPECT_EQ(ra_error("Sun, 31 Apr 2024 00:00:00 GMT"),
            "Retry-After \"Sun, 31 Apr 2024 00:00:00 GMT\": not a valid date and time");
  EXPECT_EQ(ra_error("Sun, 00 Nov 1994 08:49:37 GMT"),
            "Retry-After \"Sun, 00 Nov 1994 08:49:37 GMT\": not a valid date and time");
  EXPECT_EQ(ra_error("Sun, 06 Nov 1994 24:00:00 GMT"),
            "Retry-After \"Sun, 06 Nov 1994 24:00:00 GMT\": not a valid date and time");
  EXPECT_EQ(ra_error("Sun, 06 Nov 1994 08:60:00 GMT"),
            "Retry-After \"Sun, 06 Nov 1994 08:60:00 GMT\": not a valid date and time");
  EXPECT_EQ(ra_error("Sun, 06 Nov 1994 08:49:61 GMT"),
            "Retry-After \"Sun, 06 Nov 1994 08:49:61 GMT\": not a valid date and time");
}

TEST(RetryAfter, TwoDigitYearsAreNeverMoreThanFiftyYearsAhead) {
  const int64_t now = 1767225600000;  // 2026-01-01
  // 2076 is 50 years ahead: kept (and capped); 2077 would be 51: it is 1977.
  EXPECT_EQ(ra("Friday, 06-Nov-76 08:49:37 GMT", now), kMaxRetryAfterMs);
  EXPECT_EQ(ra("Sunday, 06-Nov-77 08:49:37 GMT", now), 0u);
  EXPECT_EQ(ra("Sunday, 01-Mar-26 00:00:00 GMT", 1772323200000 - 5), 5u);
}

TEST(RetryAfter, GarbageIsRejectedNamingTheValue) {
  EXPECT_EQ(ra_error(""), "Retry-After: empty value");
  EXPECT_EQ(ra_error(" \t "), "Retry-After: empty value");
  const char* bad[] = {
      "-1", "+5", "1.5", "1e3", "0x10", "soon", "2 s",
      "Sun, 06 Nov 1994 08:49:37 UTC",     // only GMT
      "sun, 06 Nov 1994 08:49:37 GMT",     // names are case-sensitive
      "Sun, 06 nov 1994 08:49:37 GMT",
      "Sun, 6 Nov 1994 08:49:37 GMT",      // two-digit day
      "Sun,  06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 94 08:49:37 GMT",
      "Sun, 06 Nov 1994 8:49:37 GMT",
      "Sun, 06 Nov 1994 08:49 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMT x",
      "Sun, 06 Nov 1994 08:49:37",
      "Sunday, 06-Nov-1994 08:49:37 GMT",
      "Sun, 06-Nov-94 08:49:37 GMT",       // rfc850 needs the long day name
      "Sun Nov 6 08:49:37 1994",           // asctime pads the day with a space
      "Sun Nov  6 08:49:37 94",
      "Sun Nov  6 08:49:37 1994 GMT",
      "Xyz, 06 Nov 1994 08:49:37 GMT",
  };
  for (const char* v : bad) {
    EXPECT_EQ(ra_error(v), std::string("Retry-After \"") + v + "\": neither delay-seconds nor an HTTP-date")
        << v;
  }
  EXPECT_EQ(ra_error(std::string_view("1\0", 2)), "Retry-After \"1?\": neither delay-seconds nor an HTTP-date");
  EXPECT_EQ(ra_error("\x01\x7f\xff"), "Retry-After \"???\": neither delay-seconds nor an HTTP-date");
}

TEST(RetryAfter, ExtremeClocksDoNotOverflow) {
  // Found by fuzzing: a wall clock near INT64_MIN overflowed the day count.
  EXPECT_EQ(ra("Sun Nov  6 08:49:37 1994", std::numeric_limits<int64_t>::min()), kMaxRetryAfterMs);
  EXPECT_EQ(ra("Sunday, 06-Nov-94 08:49:37 GMT", std::numeric_limits<int64_t>::min()), kMaxRetryAfterMs);
  EXPECT_EQ(ra("Sun, 06 Nov 1994 08:49:37 GMT", std::numeric_limits<int64_t>::max()), 0u);
  // Two-digit years follow the (clamped) clock: 76 is within 50 years ahead.
  EXPECT_EQ(ra("Friday, 06-Nov-76 08:49:37 GMT", std::numeric_limits<int64_t>::max()), kMaxRetryAfterMs);
  EXPECT_EQ(ra("7", std::numeric_limits<int64_t>::min()), 7000u);
}

TEST(RetryAfter, OverlongValueIsALimitError) {
  const std::string ok(kMaxRetryAfterBytes, '9');
  EXPECT_EQ(ra(ok), kMaxRetryAfterMs);
  Result<uint64_t> r = parse_retry_after(ok + "9", kRfcExample);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::limit);
  EXPECT_EQ(r.status().message(), "Retry-After: 65 bytes, over the limit of 64");
  EXPECT_EQ(parse_retry_after("soon", 0).status().code(), Errc::parse);
}

}  // namespace
}  // namespace tg::agent
