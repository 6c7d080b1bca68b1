// Helpers the operator commands share (agent, enroll, user, token): error
// output in the program's "tokengo-hub: <what>: <message>" form, strict
// option checks per subcommand, and where the database is.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "shared/cli/args.h"
#include "shared/core/status.h"

namespace tg::hub {

// Prints the failure and returns `code` (1: runtime error).
int fail(const std::string& what, const Status& s, int code = 1);
// Prints a usage error with the --help hint; returns 2.
int usage_error(const std::string& what, const std::string& message);
// False (after printing a usage error) if an option not in `allowed` was given.
bool only_options(const cli::Parsed& args, std::initializer_list<const char*> allowed,
                  const std::string& what);
// A unix-ms time as "2026-11-22T10:00:00Z" (UTC), or `absent` when unset.
std::string format_time(std::optional<int64_t> ms, const char* absent);
// The database: --db, else `database` from the --config file, else the
// default file. A config file with errors is refused with every error listed.
Result<std::string> database_path(const cli::Parsed& args);

}  // namespace tg::hub
