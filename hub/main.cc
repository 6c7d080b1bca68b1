// tokengo-hub: entry point. Declares the commands and dispatches; the hub's
// work lives in the modules beside this file.
#include <string>
#include <vector>

#include "hub/agent_commands.h"
#include "hub/cert_command.h"
#include "hub/config.h"
#include "hub/ledger_commands.h"
#include "hub/run.h"
#include "shared/billing/prices.h"
#include "hub/user_commands.h"
#include "shared/cli/check_config.h"
#include "shared/cli/keys.h"
#include "shared/cli/program.h"

namespace {

constexpr const char* kDefaultKey = "hub.key";

int dispatch(const tg::cli::Parsed& args) {
  if (args.command == "run") return tg::hub::run_daemon(args);
  if (args.command == "keygen") return tg::cli::run_keygen(args, kDefaultKey);
  if (args.command == "pubkey") return tg::cli::run_pubkey(args, kDefaultKey);
  if (args.command == "check-config") {
    const std::string config = args.get("config", tg::hub::kDefaultConfigPath);
    tg::hub::LoadResult loaded = tg::hub::load(config);
    std::vector<tg::config::Diagnostic> errors = loaded.errors;
    if (loaded.config) {  // the price table it names is part of the configuration
      auto prices = tg::billing::load_prices(loaded.config->billing.prices);
      errors.insert(errors.end(), prices.errors.begin(), prices.errors.end());
    }
    return tg::cli::report_config(config, errors);
  }
  if (args.command == "cert") return tg::hub::run_cert(args);
  if (args.command == "pin") return tg::hub::run_pin(args);
  if (args.command == "agent") return tg::hub::run_agent(args);
  if (args.command == "enroll") return tg::hub::run_enroll(args);
  if (args.command == "user") return tg::hub::run_user(args);
  if (args.command == "token") return tg::hub::run_token(args);
  if (args.command == "ledger") return tg::hub::run_ledger(args);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const tg::cli::Program program{
      "tokengo-hub",
      "Gives users an OpenAI/Anthropic-compatible API and routes each request to an\n"
      "agent connected over a WebSocket-over-TLS tunnel; bills and keeps the ledger.",
      {
          tg::hub::run_command(),
          tg::cli::keygen_command("create the hub's Ed25519 key that signs ledger checkpoints "
                                  "(mode 0600; default hub.key; 'run' creates it when absent) "
                                  "and print its public key"),
          tg::cli::pubkey_command(),
          tg::cli::check_config_command(tg::hub::kDefaultConfigPath),
          tg::hub::cert_command(),
          tg::hub::pin_command(),
          tg::hub::agent_command(),
          tg::hub::enroll_command(),
          tg::hub::user_command(),
          tg::hub::token_command(),
          tg::hub::ledger_command(),
      },
      dispatch,
  };
  return tg::cli::run_program(program, argc, argv);
}
