#include "shared/core/status.h"

#include <gtest/gtest.h>

namespace tg {
namespace {

Status fails() { return error(Errc::parse, "bad byte at 3"); }
Status propagates() {
  TG_TRY(fails());
  return Status();
}

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status s = fails();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.to_string(), "parse error: bad byte at 3");
}

TEST(Status, TryReturnsFirstFailure) { EXPECT_EQ(propagates().code(), Errc::parse); }

TEST(Result, HoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(error(Errc::limit, "too big"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Errc::limit);
}

}  // namespace
}  // namespace tg
