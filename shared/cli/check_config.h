// `check-config`, shared by both programs: prints every configuration error
// as "file:line: message" on stderr, or "<file>: ok" on stdout.
#pragma once

#include <string>
#include <vector>

#include "shared/cli/args.h"
#include "shared/config/config.h"

namespace tg::cli {

Command check_config_command(const char* default_path);
// Returns the exit code: 0 if `errors` is empty, 1 otherwise.
int report_config(const std::string& path, const std::vector<config::Diagnostic>& errors);

}  // namespace tg::cli
