// Money: integer micro-units (10^-6 of the currency unit) everywhere, never
// floating point. Exact decimal text <-> Micros conversion for config files,
// operator commands and logs. Pure functions: no I/O, no locale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::billing {

using Micros = int64_t;                                // 10^-6 of the currency unit
constexpr Micros kMicrosPerUnit = 1000000;
constexpr Micros kMaxAmount = 9'000'000'000'000'000;   // |amount| limit (9e9 units)
constexpr int kAmountDecimals = 6;                     // digits after the point, at most
constexpr size_t kMaxAmountText = 64;                  // bytes of text parse_amount accepts

// "12", "12.5", "0.000001", "-3.25", "+3" -> micro-units, exactly. A sign (+ or
// -) only when `allow_negative`; digits on both sides of an optional '.', at
// most 6 after it; no exponent, spaces or separators; |amount| <= kMaxAmount.
// Errors are Errc::invalid_argument with a message quoting the text:
// "amount '1.2345678' has more than 6 decimals".
Result<Micros> parse_amount(std::string_view text, bool allow_negative);

// Fixed 6 decimals: 1500000 -> "1.500000", -1 -> "-0.000001", 0 -> "0.000000".
// Exact for every int64 value; parse_amount(format_amount(m), true) == m when
// |m| <= kMaxAmount.
std::string format_amount(Micros m);

// True when a + b does not fit an int64 (chain totals, balances): such a sum
// is refused, never wrapped or saturated.
inline bool add_overflows(Micros a, Micros b) noexcept {
  Micros sum = 0;
  return __builtin_add_overflow(a, b, &sum);
}

}  // namespace tg::billing
