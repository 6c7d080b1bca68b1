// The entry point both programs share: parses argv against the program's
// commands, answers --help and --version, reports usage errors (exit 2) and
// hands every other command to the program's dispatch function.
#pragma once

#include <functional>
#include <vector>

#include "shared/cli/args.h"

namespace tg::cli {

struct Program {
  const char* name;         // "tokengo-agent"
  const char* description;  // shown under the usage line
  std::vector<Command> commands;
  // Runs a parsed command (never "help" or "version"); returns the exit code.
  std::function<int(const Parsed&)> dispatch;
};

int run_program(const Program& program, int argc, const char* const* argv);

}  // namespace tg::cli
