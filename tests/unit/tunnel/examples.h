// The example message of every type, as frozen in shared/tunnel/PROTOCOL.md:
// the exact wire text and the struct it decodes to.
#pragma once

#include <string>
#include <vector>

#include "shared/tunnel/messages.h"

namespace tg::tunnel::test {

// welcome.ledger_key of the examples: the Ed25519 public key of the seed
// 20 21 ... 3f (vectors_test.cc derives it).
constexpr const char* kLedgerKeyHex = "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7";

struct Example {
  std::string json;
  Message message;
  Phase phase;
};

std::vector<Example> examples();

}  // namespace tg::tunnel::test
