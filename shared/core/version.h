// Build identity: the project version and the versions of the libraries we
// were built against, for --version and for bug reports.
#pragma once

#include <string>

namespace tg {

const char* version() noexcept;      // "0.1.0"
std::string version_line();          // "0.1.0 (linux x86_64; libuv 1.44.2, ...)"

}  // namespace tg
