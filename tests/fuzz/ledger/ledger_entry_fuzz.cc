// Fuzzes the ledger's JSON line decoder: it must never crash, refuse only with
// limit/parse/protocol, and every entry it accepts must validate, re-encode to
// a line under the limit that decodes to an equal entry (and re-encodes to the
// same text), and be accepted by a chain walker resuming just before it.
// Mutated lines almost never carry their own hash, so a "hash mismatch" input
// gets the computed hash written in place of the claimed one: everything else
// passed, so the fixed line must then decode, and goes through the checks too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/ledger/chain.h"
#include "shared/ledger/entry.h"

namespace {

using namespace tg::ledger;

void check_accepted(const Entry& first) {
  if (!validate(first).ok()) std::abort();
  const std::string line = to_json(first);
  if (line.size() > kMaxJsonLine) std::abort();
  tg::Result<Entry> second = from_json(line);
  if (!second.ok()) std::abort();
  if (*second != first) std::abort();
  if (to_json(*second) != line) std::abort();
  if (hash(*second) != hash(first)) std::abort();
  ChainWalker walker(first.agent, first.seq - 1, first.prev);
  if (!walker.add(first).ok()) std::abort();
  if (walker.head() != hash(first)) std::abort();
}

// "hash mismatch at seq N: line says <claimed>, the entry hashes to <computed>"
void retry_with_computed_hash(std::string_view text, const std::string& message) {
  constexpr std::string_view kSays = "line says ";
  constexpr std::string_view kHashesTo = "the entry hashes to ";
  const size_t says = message.find(kSays);
  const size_t to = message.find(kHashesTo);
  if (says == std::string::npos || to == std::string::npos) std::abort();
  const std::string claimed = message.substr(says + kSays.size(), 64);
  const std::string computed = message.substr(to + kHashesTo.size(), 64);
  if (claimed.size() != 64 || computed.size() != 64 || claimed == computed) std::abort();
  const size_t at = text.find(claimed);
  // Only when the claimed hash is written once and plainly (not escaped).
  if (at == std::string_view::npos || text.find(claimed, at + 1) != std::string_view::npos) return;
  std::string fixed(text);
  fixed.replace(at, 64, computed);
  tg::Result<Entry> e = from_json(fixed);
  if (!e.ok()) std::abort();
  check_accepted(*e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  tg::Result<Entry> first = from_json(text);
  if (first.ok()) {
    check_accepted(*first);
    return 0;
  }
  const tg::Status& s = first.status();
  if (s.code() != tg::Errc::limit && s.code() != tg::Errc::parse && s.code() != tg::Errc::protocol) {
    std::abort();
  }
  if (s.message().empty()) std::abort();
  if (s.message().rfind("hash mismatch at seq ", 0) == 0) retry_with_computed_hash(text, s.message());
  return 0;
}
