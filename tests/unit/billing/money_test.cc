// Amount text <-> micro-units: every accepted form, every rejected one with
// its message, the limits at their edges, and exact formatting.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "shared/billing/money.h"

namespace tg::billing {
namespace {

Micros ok(const std::string& text, bool allow_negative = false) {
  Result<Micros> r = parse_amount(text, allow_negative);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().to_string();
  return r.ok() ? *r : -1;
}

std::string bad(const std::string& text, bool allow_negative = false) {
  Result<Micros> r = parse_amount(text, allow_negative);
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  return r.status().message();
}

TEST(BillingMoney, ParsesWholeAndFractionalUnitsExactly) {
  EXPECT_EQ(ok("12"), 12000000);
  EXPECT_EQ(ok("12.5"), 12500000);
  EXPECT_EQ(ok("0.000001"), 1);
  EXPECT_EQ(ok("0"), 0);
  EXPECT_EQ(ok("0.0"), 0);
  EXPECT_EQ(ok("007.10"), 7100000);
  EXPECT_EQ(ok("1.123456"), 1123456);
  // 0.1 + 0.2 style values stay exact: no floating point anywhere.
  EXPECT_EQ(ok("0.3"), 300000);
  EXPECT_EQ(ok("123456789.999999"), 123456789999999);
}

TEST(BillingMoney, SignsOnlyWhenNegativeAllowed) {
  EXPECT_EQ(ok("+3", true), 3000000);
  EXPECT_EQ(ok("-3.25", true), -3250000);
  EXPECT_EQ(ok("-0", true), 0);
  EXPECT_EQ(ok("-0.000001", true), -1);
  EXPECT_EQ(bad("-3"), "amount '-3' must not be negative");
  EXPECT_EQ(bad("+3"), "amount '+3' must not have a sign");
}

TEST(BillingMoney, AtMostSixDecimals) {
  EXPECT_EQ(ok("1.234567"), 1234567);
  EXPECT_EQ(bad("1.2345678"), "amount '1.2345678' has more than 6 decimals");
  EXPECT_EQ(bad("0.0000000"), "amount '0.0000000' has more than 6 decimals");
}

TEST(BillingMoney, RejectsEverythingButPlainDecimals) {
  const std::string msg = " is not a decimal number (digits, an optional '.' and up to 6 decimals)";
  EXPECT_EQ(bad(""), "amount is empty");
  for (const char* t : {"1e3", "1E3", " 1", "1 ", "1,000", "1_000", ".5", "5.", "1.2.3", "abc", "0x10",
                        "--1", "+-1", "1.-2", "inf", "nan"}) {
    EXPECT_EQ(bad(t, true), std::string("amount '") + t + "'" + msg) << t;
  }
  EXPECT_EQ(bad("\xd9\xa1"), "amount '\\xd9\\xa1'" + msg);  // an Arabic-Indic digit
  EXPECT_EQ(bad("-", true), "amount '-'" + msg);
  EXPECT_EQ(bad("+", true), "amount '+'" + msg);
  EXPECT_EQ(bad("1\n"), "amount '1\\x0a'" + msg);
}

TEST(BillingMoney, LimitIsNineBillionUnits) {
  EXPECT_EQ(ok("9000000000"), kMaxAmount);
  EXPECT_EQ(ok("9000000000.000000"), kMaxAmount);
  EXPECT_EQ(ok("-9000000000", true), -kMaxAmount);
  EXPECT_EQ(ok("8999999999.999999"), kMaxAmount - 1);
  EXPECT_EQ(bad("9000000000.000001"), "amount '9000000000.000001' is over the limit 9000000000.000000");
  EXPECT_EQ(bad("-9000000000.000001", true),
            "amount '-9000000000.000001' is over the limit 9000000000.000000");
  EXPECT_EQ(bad("9000000001"), "amount '9000000001' is over the limit 9000000000.000000");
  // Far over int64: stopped before any overflow.
  EXPECT_EQ(bad("99999999999999999999999999"),
            "amount '99999999999999999999999999' is over the limit 9000000000.000000");
}

TEST(BillingMoney, TextLengthIsBounded) {
  const std::string at_limit = "0." + std::string(5, '0') + "1";
  EXPECT_EQ(ok(std::string(kMaxAmountText - at_limit.size(), '0') + at_limit), 1);
  const std::string over(kMaxAmountText + 1, '0');
  EXPECT_EQ(bad(over), "amount '" + std::string(kMaxAmountText, '0') + "'... is too long");
}

TEST(BillingMoney, FormatsSixDecimals) {
  EXPECT_EQ(format_amount(1500000), "1.500000");
  EXPECT_EQ(format_amount(-1), "-0.000001");
  EXPECT_EQ(format_amount(0), "0.000000");
  EXPECT_EQ(format_amount(kMaxAmount), "9000000000.000000");
  EXPECT_EQ(format_amount(-kMaxAmount), "-9000000000.000000");
  EXPECT_EQ(format_amount(std::numeric_limits<int64_t>::max()), "9223372036854.775807");
  EXPECT_EQ(format_amount(std::numeric_limits<int64_t>::min()), "-9223372036854.775808");
}

TEST(BillingMoney, FormatThenParseIsIdentity) {
  for (Micros m : {Micros{0}, Micros{1}, Micros{-1}, Micros{999999}, Micros{1000000}, Micros{-1000001},
                   Micros{123456789012345}, kMaxAmount, -kMaxAmount}) {
    EXPECT_EQ(ok(format_amount(m), true), m) << m;
  }
}

}  // namespace
}  // namespace tg::billing
