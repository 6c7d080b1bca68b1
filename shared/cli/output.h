// Helpers for what the programs' commands print.
#pragma once

#include <cstdint>
#include <string>

namespace tg::cli {

// A Unix time in milliseconds as UTC to the second, "2026-12-07T02:03:17Z"
// (the sub-second part is cut, not rounded); "?" outside the years 0000 to
// 9999 or where the platform's time_t cannot hold it.
std::string utc_time(int64_t unix_ms);

}  // namespace tg::cli
