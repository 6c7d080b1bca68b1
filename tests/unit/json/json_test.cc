#include "shared/json/json.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace tg::json {
namespace {

TEST(Json, PlainIntegers) {
  EXPECT_TRUE(is_plain_integer("0", 16));
  EXPECT_TRUE(is_plain_integer("9007199254740991", 16));
  EXPECT_FALSE(is_plain_integer("90071992547409910", 16));
  for (const char* bad : {"", "01", "-1", "+1", "1.0", "1e3", "1 ", "0x1"}) {
    EXPECT_FALSE(is_plain_integer(bad, 16)) << bad;
  }
}

TEST(Json, ReadPlainIntegersExactly) {
  uint64_t v = 1;
  ASSERT_TRUE(read_plain_integer("0", 16, &v));
  EXPECT_EQ(v, 0u);
  ASSERT_TRUE(read_plain_integer("9007199254740993", 16, &v));  // not a double
  EXPECT_EQ(v, 9007199254740993u);
  ASSERT_TRUE(read_plain_integer("9999999999999999999", 19, &v));
  EXPECT_EQ(v, 9999999999999999999u);
  v = 7;
  for (const char* bad : {"", "01", "-1", "1.0", "1e3", "12345678901234567"}) {
    EXPECT_FALSE(read_plain_integer(bad, 16, &v)) << bad;
    EXPECT_EQ(v, 7u) << bad;  // untouched
  }
  EXPECT_FALSE(read_plain_integer("1", 20, &v));  // 20 digits could overflow: refused
}

}  // namespace
}  // namespace tg::json
