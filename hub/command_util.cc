#include "hub/command_util.h"

#include <cstdio>

#include "hub/agent_commands.h"
#include "hub/config.h"
#include "shared/cli/output.h"

namespace tg::hub {

int fail(const std::string& what, const Status& s, int code) {
  std::fprintf(stderr, "tokengo-hub: %s: %s\n", what.c_str(), s.message().c_str());
  return code;
}

int usage_error(const std::string& what, const std::string& message) {
  std::fprintf(stderr, "tokengo-hub: %s: %s\nrun 'tokengo-hub --help' for usage\n", what.c_str(),
               message.c_str());
  return 2;
}

bool only_options(const cli::Parsed& args, std::initializer_list<const char*> allowed,
                  const std::string& what) {
  for (const auto& kv : args.options) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || kv.first == a;
    if (!ok) {
      usage_error(what, "option '--" + kv.first + "' does not apply here");
      return false;
    }
  }
  return true;
}

std::string format_time(std::optional<int64_t> ms, const char* absent) {
  return ms ? cli::utc_time(*ms) : absent;
}

Result<std::string> database_path(const cli::Parsed& args) {
  if (args.has("db")) return args.get("db");
  if (!args.has("config")) return std::string(kDefaultRegistryPath);
  LoadResult loaded = load(args.get("config"));
  if (!loaded.config) {
    std::string msg;
    for (const auto& d : loaded.errors) msg += (msg.empty() ? "" : "\n") + d.to_string();
    return error(Errc::invalid_argument, msg);
  }
  return loaded.config->database;
}

}  // namespace tg::hub
