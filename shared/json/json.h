// Untrusted JSON text into a cJSON tree, with the checks cJSON does not make.
//
// Before cJSON sees the text, one pass over it refuses: nesting deeper than
// the caller allows (cJSON recurses, so a hostile nesting must never reach
// it), raw control characters in strings, \u0000 (cJSON would end the
// string there) and a \u without four hex digits (cJSON reads it as a
// NUL). It also hands the caller every number literal as written:
// cJSON keeps numbers only as doubles, which cannot tell 1.0000000000000001
// from 1, nor show whether a ledger number was written as a plain integer.
// cJSON then parses a NUL-terminated copy; bytes after the value (other than
// whitespace) are refused. Every error is Errc::parse, prefixed by `what`.
#pragma once

#include <cjson/cJSON.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "shared/core/status.h"

namespace tg::json {

struct Deleter {
  void operator()(cJSON* j) const noexcept { cJSON_Delete(j); }
};
using Ptr = std::unique_ptr<cJSON, Deleter>;

// A number literal of the text, outside strings.
struct Literal {
  std::string_view text;  // as written (views the parsed text)
  size_t offset = 0;      // where it starts
};

struct Rules {
  const char* what = "json";  // prefix of every error ("message", "entry")
  int max_depth = 16;         // nesting of [ and {
  // Doc only: \u0000 decodes to a NUL byte instead of being an error.
  // json::parse always refuses it (cJSON would cut the string there).
  bool allow_nul = false;
  // Each number literal, in order; an error stops the parse with it.
  std::function<Status(const Literal&)> on_number;
  // The value of each member of the top-level object, in order: its number
  // literal, or empty when it is not a number.
  std::function<void(std::string_view)> on_member_value;
};

Result<Ptr> parse(std::string_view text, const Rules& rules);

// Whether `literal` is a plain integer: "0" or [1-9][0-9]*, no sign,
// fraction or exponent, at most `max_digits` digits. The form the ledger
// writes, so its hashes and signatures are over one text per value.
bool is_plain_integer(std::string_view literal, size_t max_digits);

}  // namespace tg::json
