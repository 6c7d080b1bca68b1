// libFuzzer target: the ledger export file (agent 'ledger export' -> hub
// 'ledger import'). Any input: no crash, bounded memory; what parses
// re-encodes to lines that parse to the same entries and checkpoints.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/ledger/export.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = tg::ledger::parse_export(text);
  if (!parsed.ok()) return 0;
  std::string again;
  for (const auto& e : parsed->entries) again += tg::ledger::to_json(e) + "\n";
  for (const auto& c : parsed->checkpoints) again += tg::ledger::checkpoint_to_json(c) + "\n";
  auto back = tg::ledger::parse_export(again);
  if (!back.ok() || back->entries.size() != parsed->entries.size() ||
      back->checkpoints.size() != parsed->checkpoints.size()) {
    __builtin_trap();
  }
  for (size_t i = 0; i < back->entries.size(); ++i) {
    if (back->entries[i] != parsed->entries[i]) __builtin_trap();
  }
  for (size_t i = 0; i < back->checkpoints.size(); ++i) {
    if (back->checkpoints[i].checkpoint != parsed->checkpoints[i].checkpoint ||
        back->checkpoints[i].sig != parsed->checkpoints[i].sig) {
      __builtin_trap();
    }
  }
  return 0;
}
