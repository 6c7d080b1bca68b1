// Command-line parsing shared by tokengo-agent and tokengo-hub: one command
// word, then --long options (with or without a value) and positional words.
// Strict: an unknown option, a missing value or a stray value is an error
// that names it. No I/O here; the programs print the errors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shared/core/status.h"

namespace tg::cli {

struct Option {
  const char* name;        // without the leading "--"
  bool takes_value;
  bool repeatable = false;
};

struct Command {
  const char* name;
  const char* summary;            // one line for --help
  std::vector<Option> options;
  size_t min_positional = 0;
  size_t max_positional = 0;
  const char* positional_help = "";  // e.g. "PUBKEY"
};

struct Parsed {
  std::string command;
  std::vector<std::pair<std::string, std::string>> options;  // in order given
  std::vector<std::string> positional;

  bool has(std::string_view name) const;
  // Last value given for `name`, or `fallback`.
  std::string get(std::string_view name, std::string fallback = "") const;
  std::vector<std::string> all(std::string_view name) const;
};

// Parses argv[1..]. Global flags --help and --version are reported as the
// commands "help" and "version" wherever they appear. "--opt=value" and
// "--opt value" are both accepted; "--" ends options.
Result<Parsed> parse(int argc, const char* const* argv, const std::vector<Command>& commands);

// The usage text: program line, then one line per command.
std::string usage(const char* program, const char* description,
                  const std::vector<Command>& commands);

}  // namespace tg::cli
