// The ledger export file (agent `ledger export` -> hub `ledger import`): one
// JSON object per line, the chain's entries in order (entry.h to_json(), each
// with its hash) followed by the hub's signed checkpoints:
//   {"checkpoint":{"seq":N,"head":"<hex>","total_cost":N,"total_credit":N,
//                  "time_ms":N,"sig":"<base64>"}}
// A checkpoint line names no agent: it belongs to the file's chain. Blank
// lines are ignored. parse_export() checks every line (limits of entry.h,
// kMaxJsonLine per line) and names the line of the first error.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/ledger/checkpoint.h"
#include "shared/ledger/entry.h"

namespace tg::ledger {

constexpr size_t kMaxExportLines = 100'000'000;

struct SignedCheckpoint {
  Checkpoint checkpoint;
  crypto::Signature sig{};
};

struct ExportFile {
  std::vector<Entry> entries;  // in file order; one agent
  std::vector<SignedCheckpoint> checkpoints;  // agent filled in from the entries
};

std::string checkpoint_to_json(const SignedCheckpoint& c);
// Errc::parse / protocol / limit with "line N: ..." messages. Entries of
// more than one agent, or a checkpoint line before any entry, are errors.
Result<ExportFile> parse_export(std::string_view text);

}  // namespace tg::ledger
