// The rules the JSON reader tests parse with: errors prefixed by "thing",
// nesting limited to `depth`.
#pragma once

#include "shared/json/json.h"

namespace tg::json::testing {

inline Rules rules(int depth = 4) {
  Rules r;
  r.what = "thing";
  r.max_depth = depth;
  return r;
}

}  // namespace tg::json::testing
