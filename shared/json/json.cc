#include "shared/json/json.h"

namespace tg::json {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool is_plain_integer(std::string_view t, size_t max_digits) {
  if (t.empty() || t.size() > max_digits) return false;
  if (t[0] == '0' && t.size() > 1) return false;
  for (char c : t) {
    if (!is_digit(c)) return false;
  }
  return true;
}

bool read_plain_integer(std::string_view t, size_t max_digits, uint64_t* out) {
  if (max_digits > 19 || !is_plain_integer(t, max_digits)) return false;
  uint64_t v = 0;
  for (char c : t) v = v * 10 + static_cast<uint64_t>(c - '0');
  *out = v;
  return true;
}

}  // namespace tg::json
