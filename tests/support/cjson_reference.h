// The reference reader for json::Doc's tests and differential fuzzer: cJSON,
// behind the checks cJSON does not make, so that what it accepts can be
// compared with what Doc reads.
//
// Before cJSON sees the text, one pass over it refuses: nesting deeper than
// rules.max_depth (cJSON recurses), raw control characters in strings,
// \u0000 (cJSON would end the string there) and a \u without four hex
// digits (cJSON reads it as a NUL); it hands rules.on_number every number
// literal as written. cJSON then parses a NUL-terminated copy; bytes after
// the value (other than whitespace) are refused. Every error is Errc::parse,
// prefixed by rules.what, with the texts Doc uses for the same faults.
//
// Until 2026-12-07 this was json::parse, the product's reader of ledger
// entries and export lines; those read json::Doc now, and this stays as the
// independent implementation Doc is checked against.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string_view>

#include "shared/core/status.h"
#include "shared/json/json.h"

namespace tg::test {

struct CjsonDeleter {
  void operator()(cJSON* j) const noexcept { cJSON_Delete(j); }
};
using CjsonPtr = std::unique_ptr<cJSON, CjsonDeleter>;

Result<CjsonPtr> cjson_parse(std::string_view text, const json::Rules& rules);

}  // namespace tg::test
