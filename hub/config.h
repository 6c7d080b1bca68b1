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
  uint32_t max_handshakes_per_address;  // connections from one address not yet upgraded; 0 = none
  uint32_t max_streams;           // concurrent streams per tunnel
  uint64_t window_bytes;          // per-stream credit window
  uint64_t write_high_water;      // per-tunnel write queue before producers pause
  uint64_t drain_timeout_ms;      // SIGTERM: time for in-flight streams
  uint64_t goaway_spread_ms;      // agents reconnect spread over this after GOAWAY
  uint64_t events_poll_ms;        // how often the registry change log is read
  uint64_t tcp_keepalive_ms;
  uint64_t tcp_user_timeout_ms;
};

// The user-facing API (OpenAI/Anthropic compatible).
struct ApiSettings {
  uint64_t max_request_body;      // bytes; over it: 413
  uint64_t request_deadline_ms;   // whole request, user's first byte to last; then 504 / abort
  uint64_t sse_keepalive_ms;      // idle SSE stream gets ": keep-alive" comments; 0 = never
  uint32_t max_connections;       // concurrent user connections (over: 503)
  uint32_t max_connections_per_address;  // from one address (IPv4, or IPv6 /64); over: 503; 0 = none
  uint64_t header_timeout_ms;     // request head must arrive within this (408)
  uint64_t idle_timeout_ms;       // keep-alive connection idle before it is closed
  uint64_t body_timeout_ms;       // request body stalled this long: 408
};

// Money: prices, settlement, checkpoints (billing.h).
struct BillingSettings {
  std::string prices;               // prices.conf, resolved
  std::string ledger_key;           // Ed25519 key signing checkpoints (created if absent)
  int64_t min_balance = 0;          // micro-units; under it a request gets 402
  uint64_t linger_ms = 10000;       // aborted stream: wait for the agent's claim
  uint64_t claim_wait_ms = 30000;   // finished stream: wait for the agent's claim
  uint64_t claim_grace_ms = 600000; // lost stream: the hub's reading waits this long for a claim
  uint64_t claim_window_ms = 0;     // an attempt never observed is forgotten after this
  uint64_t checkpoint_every = 1000; // entries between signed checkpoints
  uint64_t checkpoint_interval_ms = 60000;  // and at least this often while the chain moves
  size_t settle_batch = 1024;       // settlements per transaction at most
  uint64_t settle_delay_ms = 20;    // the first settlement waits this long for others
};

// Per-token rate limits on the user API (rate_limit.h); users may override.
struct LimitSettings {
  uint64_t rpm = 0;  // requests per minute per token; 0 = none
  uint64_t tpm = 0;  // tokens (input + output) per minute per token; 0 = none
};

// Routing and failover (router.h, api_server.h).
struct RoutingSettings {
  uint32_t max_attempts = 3;      // agents tried per request, before any byte reached the user
  uint64_t penalty_ms = 60000;    // a failed agent gets no new request this long, then one probe
};

struct HubConfig {
  std::string file;
  net::HostPort agent_listen;     // TLS + WebSocket for agents
  net::HostPort user_listen;      // the user API (HTTP, or HTTPS with user_tls)
  bool user_tls = false;          // serve the user API over TLS with tls_cert/tls_key
  std::string tls_cert;           // created on first start if absent
  std::string tls_key;
  std::string tls_name;           // CN/SAN of a created certificate; "" = host name
  std::string database;           // SQLite file (WAL)
  std::string log_level;
  TunnelSettings tunnel;
  ApiSettings api;
  BillingSettings billing;
  LimitSettings limits;
  RoutingSettings routing;
};

const config::Schema& schema();

struct LoadResult {
  std::optional<HubConfig> config;
  std::vector<config::Diagnostic> errors;
};
LoadResult load(const std::string& path);
LoadResult parse(std::string_view text, const std::string& file_name);

}  // namespace tg::hub
