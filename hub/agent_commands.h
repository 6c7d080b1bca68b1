// Operator commands over the agent registry: `agent approve|revoke|list` and
// `enroll` (one-time token). They open the registry file directly, so they
// work while the hub runs (WAL + busy timeout); the hub notices changes via
// the registry's event log. Exit codes: 0 ok, 1 runtime error, 2 usage error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/cli/args.h"
#include "shared/core/status.h"

namespace tg::hub {

// Registry file used when --db is not given (later: a hub.conf key).
inline constexpr const char* kDefaultRegistryPath = "tokengo-hub.db";
inline constexpr const char* kDefaultEnrollTtl = "24h";

// "0.85" -> 850000: a decimal ratio in 0..1 with at most 6 decimals, parsed
// without floating point. Errors (Errc::invalid_argument) name the value.
Result<uint32_t> parse_ratio_ppm(std::string_view text);
// 850000 -> "0.85", 1000000 -> "1", 0 -> "0".
std::string format_ratio_ppm(uint32_t ppm);
// "90s", "30m", "24h", "7d" -> milliseconds; a positive integer and one unit.
Result<int64_t> parse_ttl_ms(std::string_view text);

cli::Command agent_command();
cli::Command enroll_command();
int run_agent(const cli::Parsed& args);
int run_enroll(const cli::Parsed& args);

}  // namespace tg::hub
