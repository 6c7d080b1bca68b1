// Whole small JSON documents read by the billing files (SSE event data, a
// captured usage value), with json::Doc. Internal to tg_billing: nothing
// outside shared/billing includes it.
#pragma once

#include <cstddef>
#include <string_view>

#include "shared/json/doc.h"

namespace tg::billing::detail {

// What the thread's reused json::Doc (json::ScratchDoc) keeps between the
// texts read here: an SSE event or a usage value is a few dozen values.
constexpr size_t kKeptDocBytes = 16 * 1024;

// Reads `text` as exactly one JSON value (whitespace around it allowed) into
// `doc`; false when it is not one (strict RFC 8259 grammar, nesting at most
// 256). A vendor's \u0000 is read as a NUL byte, not refused: the counts
// only measure strings.
bool parse_document(std::string_view text, json::Doc* doc);

// The member `name` of `obj` (exact, case-sensitive; the first of
// duplicates), or null when `obj` is null, not an object or has no such
// member.
const json::Value* member(const json::Value* obj, std::string_view name);

}  // namespace tg::billing::detail
