// Operator commands over the hub's ledger:
//   ledger verify [--json]   walks every agent chain (hashes, links, costs
//                            recomputed from the recorded price versions,
//                            credits from the tier), checks the signed
//                            checkpoints and that user balances add up;
//                            prints each head hash and the totals.
//   ledger import FILE [--unsigned]
//                            rebuild-from-edge: reads an agent's
//                            `tokengo-agent ledger export`, checks that it
//                            extends the hub's own chain for that agent and
//                            that every restored entry is covered by a
//                            checkpoint the hub signed (unless --unsigned),
//                            then restores the missing entries (debiting the
//                            user when the hub still knows who sent the request).
// They open the database directly (--db, or `database` of --config), so they
// work while the hub runs. Exit codes: 0 ok, 1 failure found or runtime
// error, 2 usage error.
#pragma once

#include "shared/cli/args.h"

namespace tg::hub {

cli::Command ledger_command();
int run_ledger(const cli::Parsed& args);

}  // namespace tg::hub
