#include "shared/cli/program.h"

#include <cstdio>

#include "shared/core/version.h"

namespace tg::cli {

int run_program(const Program& p, int argc, const char* const* argv) {
  auto parsed = parse(argc, argv, p.commands);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s: %s\nrun '%s --help' for usage\n", p.name,
                 parsed.status().message().c_str(), p.name);
    return 2;
  }
  if (parsed->command == "help") {
    std::fputs(usage(p.name, p.description, p.commands).c_str(), stdout);
    return 0;
  }
  if (parsed->command == "version") {
    std::printf("%s %s\n", p.name, version_line().c_str());
    return 0;
  }
  return p.dispatch(*parsed);
}

}  // namespace tg::cli
