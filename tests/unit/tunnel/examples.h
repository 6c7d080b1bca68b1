// The example message of every type, as frozen in shared/tunnel/PROTOCOL.md:
// the exact wire text and the struct it decodes to.
#pragma once

#include <string>
#include <vector>

#include "shared/tunnel/messages.h"

namespace tg::tunnel::test {

struct Example {
  std::string json;
  Message message;
  Phase phase;
};

std::vector<Example> examples();

}  // namespace tg::tunnel::test
