// tokengo-agent: entry point. Parses the command line and dispatches; the
// agent's work lives in the modules beside this file.
#include <cstdio>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/run.h"
#include "shared/cli/args.h"
#include "shared/cli/check_config.h"
#include "shared/cli/keys.h"
#include "shared/core/version.h"

namespace {

constexpr const char* kProgram = "tokengo-agent";
constexpr const char* kDefaultKey = "agent.key";
constexpr const char* kDescription =
    "Shares AI API capacity from a small always-on device: dials out to a TokenGo\n"
    "hub over WebSocket-over-TLS and serves requests with the vendor keys it holds.";

std::vector<tg::cli::Command> commands() {
  return {
      tg::agent::run_command(),
      tg::cli::keygen_command("create the agent's Ed25519 identity key (mode 0600; default "
                              "agent.key) and print its public key"),
      tg::cli::pubkey_command(),
      tg::cli::check_config_command(tg::agent::kDefaultConfigPath),
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
  if (args.command == "run") return tg::agent::run(args.get("config", tg::agent::kDefaultConfigPath));
  if (args.command == "keygen") return tg::cli::run_keygen(args, kDefaultKey);
  if (args.command == "pubkey") return tg::cli::run_pubkey(args, kDefaultKey);
  if (args.command == "check-config") {
    const std::string path = args.get("config", tg::agent::kDefaultConfigPath);
    return tg::cli::report_config(path, tg::agent::load(path).errors);
  }
  return 2;
}
