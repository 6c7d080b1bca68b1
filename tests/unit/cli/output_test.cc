#include "shared/cli/output.h"

#include <gtest/gtest.h>

namespace tg::cli {
namespace {

TEST(UtcTime, PrintsTheSecondInUtc) {
  EXPECT_EQ(utc_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(utc_time(1796609012999), "2026-12-07T02:03:32Z");  // milliseconds cut
  EXPECT_EQ(utc_time(951782400000), "2000-02-29T00:00:00Z");
}

TEST(UtcTime, TimesBefore1970RoundDown) {
  EXPECT_EQ(utc_time(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(utc_time(-1000), "1969-12-31T23:59:59Z");
  EXPECT_EQ(utc_time(-1001), "1969-12-31T23:59:58Z");
}

TEST(UtcTime, OutOfRangeIsAQuestionMark) {
  EXPECT_EQ(utc_time(INT64_MAX), "?");
  EXPECT_EQ(utc_time(INT64_MIN), "?");
}

}  // namespace
}  // namespace tg::cli
