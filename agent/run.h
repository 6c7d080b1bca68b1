// `tokengo-agent run`: loads agent.conf and the identity key, keeps the tunnel
// to the hub up (TunnelClient) until SIGTERM or SIGINT, then drains in-flight
// calls and exits. Owns the loop, the signal watchers and the client for the
// life of the process; opens no listening socket.
#pragma once

#include <string>

#include "shared/cli/args.h"

namespace tg::agent {

cli::Command run_command();

// Runs the agent in the foreground; returns the process exit code: 0 after a
// signal-driven stop, 1 when the config or the key cannot be used (every
// error printed as "tokengo-agent: ..."), when the hub replaced this agent's
// tunnel (another agent uses the key), or when a second signal forced an
// immediate exit.
int run(const std::string& config_path);

}  // namespace tg::agent
