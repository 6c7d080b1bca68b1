#include "shared/json/json.h"

#include <algorithm>
#include <string>

namespace tg::json {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_number_char(char c) {
  return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

Status fail(const Rules& r, const std::string& why) {
  return error(Errc::parse, std::string(r.what) + ": " + why);
}

// The checks before parsing (see json.h).
Status prescan(std::string_view s, const Rules& r) {
  int depth = 0;
  bool in_string = false;
  bool member_value = false;  // the next value is a top-level member's
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    const auto c = static_cast<unsigned char>(ch);
    if (in_string) {
      if (c == '"') {
        in_string = false;
      } else if (c == '\\') {
        if (i + 1 < s.size() && s[i + 1] == 'u') {
          const std::string_view hex = s.substr(i + 2, 4);
          if (hex == "0000") return fail(r, "\\u0000 in a string at offset " + std::to_string(i));
          // cJSON reads a \u escape without four hex digits as a NUL.
          if (hex.size() < 4 || !std::all_of(hex.begin(), hex.end(), is_hex)) {
            return fail(r, "\\u without four hex digits in a string at offset " + std::to_string(i));
          }
        }
        ++i;  // the escaped character; cJSON checks the escape itself
      } else if (c < 0x20) {
        return fail(r, "control character in a string at offset " + std::to_string(i));
      }
      continue;
    }
    if (is_space(ch)) continue;
    const bool value_here = member_value;
    member_value = false;
    if (ch == '-' || is_digit(ch) || (value_here && is_number_char(ch))) {
      size_t end = i;
      while (end < s.size() && is_number_char(s[end])) ++end;
      const Literal lit{s.substr(i, end - i), i};
      if (value_here && r.on_member_value) r.on_member_value(lit.text);
      if (r.on_number) TG_TRY(r.on_number(lit));
      i = end - 1;
      continue;
    }
    if (value_here && r.on_member_value) r.on_member_value(std::string_view());
    if (ch == '"') {
      in_string = true;
    } else if (ch == ':') {
      member_value = depth == 1;
    } else if (ch == '[' || ch == '{') {
      if (++depth > r.max_depth) {
        return fail(r, "nesting deeper than " + std::to_string(r.max_depth) + " at offset " +
                           std::to_string(i));
      }
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return Status();
}

}  // namespace

Result<Ptr> parse(std::string_view text, const Rules& rules) {
  TG_TRY(prescan(text, rules));
  const std::string copy(text);  // cJSON gets a NUL-terminated buffer whatever happens
  const char* end = nullptr;
  Ptr root(cJSON_ParseWithLengthOpts(copy.c_str(), copy.size(), &end, 0));
  if (!root) {
    const size_t at = end != nullptr ? static_cast<size_t>(end - copy.c_str()) : 0;
    return fail(rules, "invalid JSON at offset " + std::to_string(at));
  }
  for (const char* p = end; p < copy.c_str() + copy.size(); ++p) {
    if (!is_space(*p)) {
      return fail(rules, "trailing bytes after the JSON value at offset " +
                             std::to_string(static_cast<size_t>(end - copy.c_str())));
    }
  }
  return root;
}

bool is_plain_integer(std::string_view t, size_t max_digits) {
  if (t.empty() || t.size() > max_digits) return false;
  if (t[0] == '0' && t.size() > 1) return false;
  for (char c : t) {
    if (!is_digit(c)) return false;
  }
  return true;
}

}  // namespace tg::json
