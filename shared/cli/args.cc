#include "shared/cli/args.h"

#include <algorithm>

namespace tg::cli {
namespace {

const Command* find_command(const std::vector<Command>& commands, std::string_view name) {
  for (const auto& c : commands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

const Option* find_option(const Command& c, std::string_view name) {
  for (const auto& o : c.options) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

}  // namespace

bool Parsed::has(std::string_view name) const {
  return std::any_of(options.begin(), options.end(),
                     [&](const auto& kv) { return kv.first == name; });
}

std::string Parsed::get(std::string_view name, std::string fallback) const {
  for (auto it = options.rbegin(); it != options.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return fallback;
}

std::vector<std::string> Parsed::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& kv : options) {
    if (kv.first == name) out.push_back(kv.second);
  }
  return out;
}

Result<Parsed> parse(int argc, const char* const* argv, const std::vector<Command>& commands) {
  Parsed p;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      p.command = "help";
      return p;
    }
    if (a == "--version" || a == "-V") {
      p.command = "version";
      return p;
    }
  }
  if (argc < 2) return error(Errc::invalid_argument, "no command given");
  std::string_view word = argv[1];
  if (!word.empty() && word[0] == '-') {
    return error(Errc::invalid_argument, "unknown option '" + std::string(word) + "'");
  }
  const Command* cmd = find_command(commands, word);
  if (!cmd) return error(Errc::invalid_argument, "unknown command '" + std::string(word) + "'");
  p.command = cmd->name;

  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!options_done && a == "--") {
      options_done = true;
      continue;
    }
    if (options_done || a.size() < 2 || a.substr(0, 2) != "--") {
      if (!options_done && a.size() > 1 && a[0] == '-') {
        return error(Errc::invalid_argument,
                     std::string(cmd->name) + ": unknown option '" + std::string(a) + "'");
      }
      p.positional.emplace_back(a);
      continue;
    }
    std::string_view body = a.substr(2);
    std::string_view name = body;
    std::string value;
    bool inline_value = false;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      name = body.substr(0, eq);
      value = std::string(body.substr(eq + 1));
      inline_value = true;
    }
    const Option* opt = find_option(*cmd, name);
    if (!opt) {
      return error(Errc::invalid_argument,
                   std::string(cmd->name) + ": unknown option '--" + std::string(name) + "'");
    }
    if (opt->takes_value && !inline_value) {
      if (i + 1 >= argc) {
        return error(Errc::invalid_argument, std::string(cmd->name) + ": option '--" +
                                                 std::string(name) + "' needs a value");
      }
      value = argv[++i];
    } else if (!opt->takes_value && inline_value) {
      return error(Errc::invalid_argument, std::string(cmd->name) + ": option '--" +
                                               std::string(name) + "' takes no value");
    }
    if (!opt->repeatable && p.has(name)) {
      return error(Errc::invalid_argument, std::string(cmd->name) + ": option '--" +
                                               std::string(name) + "' given twice");
    }
    p.options.emplace_back(std::string(name), std::move(value));
  }
  if (p.positional.size() < cmd->min_positional || p.positional.size() > cmd->max_positional) {
    std::string want = cmd->max_positional == 0 ? "no arguments"
                                                : std::string("arguments: ") + cmd->positional_help;
    return error(Errc::invalid_argument, std::string(cmd->name) + ": takes " + want + ", got " +
                                             std::to_string(p.positional.size()));
  }
  return p;
}

std::string usage(const char* program, const char* description,
                  const std::vector<Command>& commands) {
  std::string u = std::string("usage: ") + program + " COMMAND [OPTIONS]\n\n" + description +
                  "\n\ncommands:\n";
  for (const auto& c : commands) {
    std::string line = std::string("  ") + c.name;
    if (*c.positional_help) line += std::string(" ") + c.positional_help;
    for (const auto& o : c.options) {
      line += std::string(" [--") + o.name + (o.takes_value ? " VALUE]" : "]");
    }
    u += line + "\n      " + c.summary + "\n";
  }
  u += "\nglobal flags:\n  --help     show this help\n  --version  print the version\n";
  return u;
}

}  // namespace tg::cli
