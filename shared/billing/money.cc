#include "shared/billing/money.h"

#include <cstdio>

namespace tg::billing {
namespace {

// The text quoted for an error message: printable ASCII kept, other bytes as
// \xNN, cut after kMaxAmountText bytes.
std::string quote(std::string_view s) {
  std::string out = "'";
  const size_t n = s.size() < kMaxAmountText ? s.size() : kMaxAmountText;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '\'';
  if (s.size() > n) out += "...";
  return out;
}

Status bad(std::string_view text, const std::string& what) {
  return error(Errc::invalid_argument, "amount " + quote(text) + " " + what);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr const char* kNotDecimal =
    "is not a decimal number (digits, an optional '.' and up to 6 decimals)";

}  // namespace

Result<Micros> parse_amount(std::string_view text, bool allow_negative) {
  if (text.empty()) return error(Errc::invalid_argument, "amount is empty");
  if (text.size() > kMaxAmountText) return bad(text, "is too long");
  std::string_view s = text;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    if (!allow_negative) {
      return bad(text, s[0] == '-' ? "must not be negative" : "must not have a sign");
    }
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  const size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  const bool has_dot = dot != std::string_view::npos;
  if (whole.empty() || (has_dot && frac.empty())) {
    return bad(text, kNotDecimal);
  }
  for (char c : whole) {
    if (!is_digit(c)) return bad(text, kNotDecimal);
  }
  for (char c : frac) {
    if (!is_digit(c)) return bad(text, kNotDecimal);
  }
  if (frac.size() > static_cast<size_t>(kAmountDecimals)) return bad(text, "has more than 6 decimals");

  // kMaxAmount has 16 digits; whole units above kMaxAmount / 10^6 fail early,
  // so nothing below can overflow.
  constexpr Micros kMaxUnits = kMaxAmount / kMicrosPerUnit;
  Micros units = 0;
  for (char c : whole) {
    units = units * 10 + (c - '0');
    if (units > kMaxUnits) return bad(text, "is over the limit " + format_amount(kMaxAmount));
  }
  Micros micros = 0;
  for (int i = 0; i < kAmountDecimals; ++i) {
    micros = micros * 10 + (static_cast<size_t>(i) < frac.size() ? frac[static_cast<size_t>(i)] - '0' : 0);
  }
  const Micros value = units * kMicrosPerUnit + micros;
  if (value > kMaxAmount) return bad(text, "is over the limit " + format_amount(kMaxAmount));
  return negative ? -value : value;
}

std::string format_amount(Micros m) {
  // Magnitude as unsigned so that INT64_MIN formats too.
  const uint64_t mag = m < 0 ? uint64_t{0} - static_cast<uint64_t>(m) : static_cast<uint64_t>(m);
  const uint64_t per = static_cast<uint64_t>(kMicrosPerUnit);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%llu.%06llu", m < 0 ? "-" : "",
                static_cast<unsigned long long>(mag / per), static_cast<unsigned long long>(mag % per));
  return buf;
}

}  // namespace tg::billing
