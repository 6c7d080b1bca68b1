// hub.conf: the schema (one row per key, with type, range and default), the
// typed HubConfig built from it, and the cross-field checks. Relative paths
// in the file are resolved against the file's own directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/config/config.h"
#include "shared/net/url.h"

namespace tg::hub {

constexpr const char* kDefaultConfigPath = "/etc/tokengo/hub.conf";

struct TunnelSettings {
  std::string path;               // WebSocket path agents dial, e.g. /tunnel
  uint64_t heartbeat_ms;          // ping interval, both sides
  uint32_t dead_after;            // missed heartbeats before the peer is dead
  uint64_t auth_timeout_ms;       // TLS + upgrade + auth must finish within this
  uint32_t handshake_rate;        // new tunnels accepted per second (token bucket)
  uint32_t handshake_burst;       // bucket size
  uint32_t max_tunnels;           // concurrent tunnel connections
  uint32_t max_streams;           // concurrent streams per tunnel
  uint64_t window_bytes;          // per-stream credit window
  uint64_t write_high_water;      // per-tunnel write queue before producers pause
  uint64_t drain_timeout_ms;      // SIGTERM: time for in-flight streams
  uint64_t goaway_spread_ms;      // agents reconnect spread over this after GOAWAY
  uint64_t events_poll_ms;        // how often the registry change log is read
  uint64_t tcp_keepalive_ms;
  uint64_t tcp_user_timeout_ms;
};

struct HubConfig {
  std::string file;
  net::HostPort agent_listen;     // TLS + WebSocket for agents
  std::string tls_cert;           // created on first start if absent
  std::string tls_key;
  std::string tls_name;           // CN/SAN of a created certificate; "" = host name
  std::string database;           // SQLite file (WAL)
  std::string log_level;
  TunnelSettings tunnel;
};

const config::Schema& schema();

struct LoadResult {
  std::optional<HubConfig> config;
  std::vector<config::Diagnostic> errors;
};
LoadResult load(const std::string& path);
LoadResult parse(std::string_view text, const std::string& file_name);

}  // namespace tg::hub
