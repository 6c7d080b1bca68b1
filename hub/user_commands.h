// Operator commands over users and their API tokens: `user add NAME`,
// `user list [--json]`, `token create NAME` (prints the sk-tg- token once),
// `token revoke TOKEN-or-ID`, `token list NAME [--json]`. They open the hub
// database directly (--db FILE, or `database` of --config FILE), so they
// work while the hub runs; the hub sees a revocation on the next request.
// Exit codes: 0 ok, 1 runtime error, 2 usage error.
#pragma once

#include "shared/cli/args.h"

namespace tg::hub {

cli::Command user_command();
cli::Command token_command();
int run_user(const cli::Parsed& args);
int run_token(const cli::Parsed& args);

}  // namespace tg::hub
