// The agent's ledger commands (they read the `ledger` file named by agent.conf,
// or --ledger FILE, and work while the agent runs):
//   ledger verify [--json]  walks the mirrored chain (hashes, links, costs
//                           from the price tables the hub sent, credits),
//                           checks the hub's signed checkpoints, and prints
//                           the head hash, totals, disputes and the outbox.
//   ledger show [--last N]  recent entries with their status, disputes,
//                           refused claims, unsettled calls, last checkpoint.
//   ledger export           the chain and checkpoints as JSON lines, for the
//                           hub's `ledger import` (rebuild-from-edge).
// Exit codes: 0 ok, 1 problem found or runtime error, 2 usage error.
#pragma once

#include "shared/cli/args.h"

namespace tg::agent {

cli::Command ledger_command();
int run_ledger(const cli::Parsed& args);

}  // namespace tg::agent
