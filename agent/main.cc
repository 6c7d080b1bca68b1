// tokengo-agent: entry point. Declares the commands and dispatches; the
// agent's work lives in the modules beside this file.
#include <string>

#include "agent/config.h"
#include "agent/keystore.h"
#include "agent/ledger_commands.h"
#include "agent/run.h"
#include "shared/cli/check_config.h"
#include "shared/cli/keys.h"
#include "shared/cli/program.h"

namespace {

constexpr const char* kDefaultKey = "agent.key";

int dispatch(const tg::cli::Parsed& args) {
  const std::string config = args.get("config", tg::agent::kDefaultConfigPath);
  if (args.command == "run") return tg::agent::run(config);
  if (args.command == "keygen") return tg::cli::run_keygen(args, kDefaultKey);
  if (args.command == "pubkey") return tg::cli::run_pubkey(args, kDefaultKey);
  if (args.command == "check-config") return tg::cli::report_config(config, tg::agent::load(config).errors);
  if (args.command == "keys") return tg::agent::run_keys(args, config);
  if (args.command == "ledger") return tg::agent::run_ledger(args);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const tg::cli::Program program{
      "tokengo-agent",
      "Shares AI API capacity from a small always-on device: dials out to a TokenGo\n"
      "hub over WebSocket-over-TLS and serves requests with the vendor keys it holds.",
      {
          tg::agent::run_command(),
          tg::cli::keygen_command("create the agent's Ed25519 identity key (mode 0600; default "
                                  "agent.key) and print its public key"),
          tg::cli::pubkey_command(),
          tg::cli::check_config_command(tg::agent::kDefaultConfigPath),
          tg::agent::keys_command(),
          tg::agent::ledger_command(),
      },
      dispatch,
  };
  return tg::cli::run_program(program, argc, argv);
}
