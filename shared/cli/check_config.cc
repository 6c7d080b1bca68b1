#include "shared/cli/check_config.h"

#include <cstdio>

namespace tg::cli {

Command check_config_command(const char* default_path) {
  static std::string summary;
  summary = std::string("check a config file (default ") + default_path +
            ") and print every error with file and line";
  return {"check-config", summary.c_str(), {{"config", true}}};
}

int report_config(const std::string& path, const std::vector<config::Diagnostic>& errors) {
  if (errors.empty()) {
    std::printf("%s: ok\n", path.c_str());
    return 0;
  }
  for (const auto& d : errors) std::fprintf(stderr, "%s\n", d.to_string().c_str());
  std::fprintf(stderr, "%zu error%s\n", errors.size(), errors.size() == 1 ? "" : "s");
  return 1;
}

}  // namespace tg::cli
