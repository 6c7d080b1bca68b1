// `tokengo-hub run`: the hub daemon. Loads hub.conf, creates the TLS
// certificate on first start, opens the registry, serves agent tunnels until
// SIGTERM/SIGINT and then drains (see TunnelServer::shutdown). Owns the loop
// and everything on it for the life of the process; prints config errors
// and exits 1 on any startup failure.
#pragma once

#include "shared/cli/args.h"

namespace tg::hub {

cli::Command run_command();
// Returns the exit code: 0 after a clean or forced shutdown, 1 on a startup
// failure.
int run_daemon(const cli::Parsed& args);

}  // namespace tg::hub
