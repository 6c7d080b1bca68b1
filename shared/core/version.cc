#include "shared/core/version.h"

#include <sodium.h>
#include <sqlite3.h>
#include <uv.h>

#ifndef TG_VERSION
#error "TG_VERSION must be defined by the build"
#endif
#ifndef TG_TARGET
#define TG_TARGET "unknown"
#endif

namespace tg {

const char* version() noexcept { return TG_VERSION; }

std::string version_line() {
  return std::string(TG_VERSION) + " (" + TG_TARGET + "; libuv " + uv_version_string() +
         ", libsodium " + sodium_version_string() + ", sqlite " + sqlite3_libversion() + ")";
}

}  // namespace tg
