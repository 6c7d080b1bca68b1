// What the JSON reader (doc.h) is told about a text: its limits and a check
// of every number literal as written; and the plain integers the ledger
// writes, recognised and read exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "shared/core/status.h"

namespace tg::json {

// A number literal of the text, outside strings.
struct Literal {
  std::string_view text;  // as written (views the parsed text)
  size_t offset = 0;      // where it starts
};

struct Rules {
  const char* what = "json";  // prefix of every error ("message", "entry")
  int max_depth = 16;         // nesting of [ and {
  // \u0000 decodes to a NUL byte instead of being an error.
  bool allow_nul = false;
  // Each number literal, in order; an error stops the parse with it.
  std::function<Status(const Literal&)> on_number;
};

// Whether `literal` is a plain integer: "0" or [1-9][0-9]*, no sign,
// fraction or exponent, at most `max_digits` digits. The form the ledger
// writes, so its hashes and signatures are over one text per value.
bool is_plain_integer(std::string_view literal, size_t max_digits);
// The value of such a literal, exactly (max_digits at most 19, so it fits);
// false if it is not one.
bool read_plain_integer(std::string_view literal, size_t max_digits, uint64_t* out);

}  // namespace tg::json
