#include "hub/agent_commands.h"

#include <gtest/gtest.h>

#include "hub/agent_store.h"

namespace tg::hub {
namespace {

uint32_t ppm(std::string_view text) {
  auto r = parse_ratio_ppm(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : 0xffffffffu;
}

std::string ratio_error(std::string_view text) {
  auto r = parse_ratio_ppm(text);
  EXPECT_FALSE(r.ok()) << text << " parsed as " << (r.ok() ? *r : 0);
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  return r.status().message();
}

TEST(RatioParse, AcceptsDecimalsUpToSixPlaces) {
  EXPECT_EQ(ppm("0.85"), 850000u);
  EXPECT_EQ(ppm("1"), 1000000u);
  EXPECT_EQ(ppm("1.0"), 1000000u);
  EXPECT_EQ(ppm("1.000000"), 1000000u);
  EXPECT_EQ(ppm("0"), 0u);
  EXPECT_EQ(ppm("0.000001"), 1u);
  EXPECT_EQ(ppm("0.123456"), 123456u);
  EXPECT_EQ(ppm("00.5"), 500000u);
}

TEST(RatioParse, RejectsAboveOne) {
  EXPECT_NE(ratio_error("1.5").find("'1.5' is above 1"), std::string::npos);
  EXPECT_NE(ratio_error("1.000001").find("above 1"), std::string::npos);
  EXPECT_NE(ratio_error("2").find("above 1"), std::string::npos);
  EXPECT_NE(ratio_error("99999999999999999999999").find("above 1"), std::string::npos);
}

TEST(RatioParse, RejectsNegative) {
  EXPECT_NE(ratio_error("-0.1").find("'-0.1' is negative"), std::string::npos);
}

TEST(RatioParse, RejectsMoreThanSixDecimals) {
  EXPECT_NE(ratio_error("0.1234567").find("more than 6 decimals"), std::string::npos);
}

TEST(RatioParse, RejectsNonNumbers) {
  for (const char* bad : {"abc", "", ".5", "1.", "0,5", "+0.5", "1e-3", "0.5 ", " 0.5", "0x1",
                          "0.5%", "0..5", "nan"}) {
    std::string m = ratio_error(bad);
    EXPECT_NE(m.find("like 0.85"), std::string::npos) << bad << ": " << m;
  }
}

TEST(RatioFormat, ShortestDecimal) {
  EXPECT_EQ(format_ratio_ppm(850000), "0.85");
  EXPECT_EQ(format_ratio_ppm(1000000), "1");
  EXPECT_EQ(format_ratio_ppm(0), "0");
  EXPECT_EQ(format_ratio_ppm(1), "0.000001");
  EXPECT_EQ(format_ratio_ppm(123456), "0.123456");
}

TEST(RatioFormat, RoundTripsEveryStep) {
  for (uint32_t v = 0; v <= kTierPpmMax; v += 997) EXPECT_EQ(ppm(format_ratio_ppm(v)), v);
}

TEST(TtlParse, UnitsAndErrors) {
  EXPECT_EQ(*parse_ttl_ms("90s"), 90000);
  EXPECT_EQ(*parse_ttl_ms("30m"), 1800000);
  EXPECT_EQ(*parse_ttl_ms("24h"), 86400000);
  EXPECT_EQ(*parse_ttl_ms("7d"), 604800000);
  for (const char* bad : {"", "h", "24", "24x", "-1h", "1.5h", "9999999999h", "24 h"}) {
    auto r = parse_ttl_ms(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(OwnerNames, AllowedCharactersAndLength) {
  EXPECT_TRUE(validate_owner("alice").ok());
  EXPECT_TRUE(validate_owner("a.b_c@d-e.F9").ok());
  EXPECT_TRUE(validate_owner(std::string(64, 'x')).ok());
  EXPECT_FALSE(validate_owner("").ok());
  EXPECT_FALSE(validate_owner(std::string(65, 'x')).ok());
  EXPECT_FALSE(validate_owner("ali ce").ok());
  EXPECT_FALSE(validate_owner("alice\n").ok());
  EXPECT_FALSE(validate_owner("al/ice").ok());
  EXPECT_FALSE(validate_owner("\xc3\xa9").ok());
}

}  // namespace
}  // namespace tg::hub
