#include "shared/cli/output.h"

#include <ctime>

namespace tg::cli {

std::string utc_time(int64_t unix_ms) {
  // Floor division: -1 ms is 1969-12-31T23:59:59Z.
  const int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : -((-(unix_ms + 1)) / 1000) - 1;
  const auto t = static_cast<time_t>(secs);
  if (static_cast<int64_t>(t) != secs) return "?";
  tm parts{};
  if (!gmtime_r(&t, &parts) || parts.tm_year < -1900 || parts.tm_year > 9999 - 1900) return "?";
  char buf[64];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &parts) == 0) return "?";
  return buf;
}

}  // namespace tg::cli
