// Reads the two fields the hub needs from a user's JSON request body: the
// top-level "model" (string) and "stream" (boolean). A strict RFC 8259 scan
// of the whole body that builds no tree, so its memory does not grow with the
// body; nesting is limited. Pure code: no I/O, no allocation beyond the model
// name.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::hub {

constexpr int kMaxProbeDepth = 128;       // nesting of [ and {
constexpr size_t kMaxProbeModel = 128;    // bytes of the model name (tunnel limit)

struct RequestProbe {
  std::string model;    // "" when the body has none
  bool has_model = false;
  bool stream = false;  // false when absent or null
};

// Errc::parse for malformed JSON (message names the offset), a top-level
// value that is not an object, nesting over kMaxProbeDepth;
// Errc::invalid_argument for "model" that is not a string, or "stream" that
// is not a boolean or null. The last occurrence of a repeated key wins.
Result<RequestProbe> probe_request(std::string_view body);

}  // namespace tg::hub
