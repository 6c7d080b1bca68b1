// cJSON helpers shared by the billing files that read whole small JSON
// documents (SSE event data, a captured usage value). Internal to tg_billing:
// nothing outside shared/billing includes it.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string_view>

namespace tg::billing::detail {

struct JsonDeleter {
  void operator()(cJSON* j) const noexcept { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

// `text` parsed as exactly one JSON value (whitespace around it allowed), or
// null. cJSON's own limits apply (nesting 1000).
JsonPtr parse_document(std::string_view text);

// The member `name` of `obj` (exact, case-sensitive; the first of duplicates),
// or null when `obj` is not an object or has no such member.
const cJSON* member(const cJSON* obj, const char* name);

}  // namespace tg::billing::detail
