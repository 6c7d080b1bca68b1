// tokengo-hub: entry point. Parses the command line and dispatches; the
// hub's work lives in the modules beside this file.
#include <cstdio>
#include <string>
#include <vector>

#include "hub/agent_commands.h"
#include "hub/cert_command.h"
#include "hub/config.h"
#include "hub/run.h"
#include "shared/cli/args.h"
#include "shared/cli/check_config.h"
#include "shared/cli/keys.h"
#include "shared/core/version.h"

namespace {

constexpr const char* kProgram = "tokengo-hub";
constexpr const char* kDefaultKey = "hub.key";
constexpr const char* kDescription =
    "Gives users an OpenAI/Anthropic-compatible API and routes each request to an\n"
    "agent connected over a WebSocket-over-TLS tunnel; bills and keeps the ledger.";

std::vector<tg::cli::Command> commands() {
  return {
      tg::hub::run_command(),
      tg::cli::keygen_command("create the hub's Ed25519 signing key (mode 0600; default "
                              "hub.key) and print its public key"),
      tg::cli::pubkey_command(),
      tg::cli::check_config_command(tg::hub::kDefaultConfigPath),
      tg::hub::cert_command(),
      tg::hub::pin_command(),
      tg::hub::agent_command(),
      tg::hub::enroll_command(),
  };
}

}  // namespace

int main(int argc, char** argv) {
  const auto cmds = commands();
  auto parsed = tg::cli::parse(argc, argv, cmds);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s: %s\nrun '%s --help' for usage\n", kProgram,
                 parsed.status().message().c_str(), kProgram);
    return 2;
  }
  const auto& args = parsed.value();
  if (args.command == "help") {
    std::fputs(tg::cli::usage(kProgram, kDescription, cmds).c_str(), stdout);
    return 0;
  }
  if (args.command == "version") {
    std::printf("%s %s\n", kProgram, tg::version_line().c_str());
    return 0;
  }
  if (args.command == "run") return tg::hub::run_daemon(args);
  if (args.command == "keygen") return tg::cli::run_keygen(args, kDefaultKey);
  if (args.command == "pubkey") return tg::cli::run_pubkey(args, kDefaultKey);
  if (args.command == "check-config") {
    const std::string path = args.get("config", tg::hub::kDefaultConfigPath);
    return tg::cli::report_config(path, tg::hub::load(path).errors);
  }
  if (args.command == "cert") return tg::hub::run_cert(args);
  if (args.command == "pin") return tg::hub::run_pin(args);
  if (args.command == "agent") return tg::hub::run_agent(args);
  if (args.command == "enroll") return tg::hub::run_enroll(args);
  return 2;
}
