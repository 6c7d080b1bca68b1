#include "tests/support/cjson_reference.h"

#include <algorithm>
#include <string>

namespace tg::test {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_number_char(char c) {
  return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

Status fail(const json::Rules& r, const std::string& why) {
  return error(Errc::parse, std::string(r.what) + ": " + why);
}

// The checks before parsing (see cjson_reference.h).
Status prescan(std::string_view s, const json::Rules& r) {
  int depth = 0;
  bool in_string = false;
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
    if (ch == '-' || is_digit(ch)) {
      size_t end = i;
      while (end < s.size() && is_number_char(s[end])) ++end;
      const json::Literal lit{s.substr(i, end - i), i};
      if (r.on_number) TG_TRY(r.on_number(lit));
      i = end - 1;
      continue;
    }
    if (ch == '"') {
      in_string = true;
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

Result<CjsonPtr> cjson_parse(std::string_view text, const json::Rules& rules) {
  TG_TRY(prescan(text, rules));
  const std::string copy(text);  // cJSON gets a NUL-terminated buffer whatever happens
  const char* end = nullptr;
  CjsonPtr root(cJSON_ParseWithLengthOpts(copy.c_str(), copy.size(), &end, 0));
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

}  // namespace tg::test
