#include "hub/config.h"

#include "shared/billing/money.h"
#include "shared/tunnel/messages.h"

namespace tg::hub {
namespace {

using config::Key;
using config::Type;

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kMiB = 1024 * 1024;

// Ranges of values the hub announces in `welcome` come from the protocol's
// own limits, so a valid config always encodes.
config::Schema make_schema() {
  config::Schema s;
  s.sections.push_back({"", false, false, {
      Key{"agent_listen", Type::string, "0.0.0.0:8443", 0, 0, nullptr,
          "address:port for agent tunnels (TLS + WebSocket)"},
      Key{"user_listen", Type::string, "0.0.0.0:8080", 0, 0, nullptr,
          "address:port of the user API (OpenAI/Anthropic compatible)"},
      Key{"user_tls", Type::boolean, "false", 0, 0, nullptr,
          "serve the user API over TLS with tls_cert/tls_key"},
      Key{"max_request_body", Type::size, "8MiB", 1024, 1024 * kMiB, nullptr, nullptr},
      Key{"request_deadline", Type::duration, "600s", 1000, tunnel::kMaxDeadlineMs, nullptr, nullptr},
      Key{"sse_keepalive", Type::duration, "15s", 0, kHour, nullptr, nullptr},
      Key{"user_max_connections", Type::integer, "4096", 1, 1000000, nullptr, nullptr},
      Key{"user_max_connections_per_address", Type::integer, "512", 0, 1000000, nullptr, nullptr},
      Key{"user_header_timeout", Type::duration, "10s", 100, kHour, nullptr, nullptr},
      Key{"user_idle_timeout", Type::duration, "60s", 100, kHour, nullptr, nullptr},
      Key{"user_body_timeout", Type::duration, "60s", 100, kHour, nullptr, nullptr},
      Key{"tls_cert", Type::string, "hub.crt", 0, 0, nullptr,
          "certificate file; created with tls_key on first start if absent"},
      Key{"tls_key", Type::string, "hub-tls.key", 0, 0, nullptr, "private key file (mode 0600)"},
      Key{"tls_name", Type::string, "", 0, 0, nullptr,
          "name in a created certificate; empty: this host's name"},
      Key{"database", Type::string, "tokengo-hub.db", 0, 0, nullptr, "SQLite database (WAL)"},
      Key{"prices", Type::string, "prices.conf", 0, 0, nullptr, "price table (prices.conf)"},
      Key{"ledger_key", Type::string, "hub.key", 0, 0, nullptr,
          "Ed25519 key that signs ledger checkpoints (mode 0600)"},
      Key{"log_level", Type::choice, "info", 0, 0, "debug|info|warn|error", nullptr},
  }});
  s.sections.push_back({"tunnel", false, false, {
      Key{"path", Type::string, "/tunnel", 0, 0, nullptr, nullptr},
      Key{"heartbeat", Type::duration, "15s", tunnel::kMinHeartbeatMs, tunnel::kMaxHeartbeatMs, nullptr, nullptr},
      Key{"dead_after", Type::integer, "3", 1, tunnel::kMaxDeadAfter, nullptr, nullptr},
      Key{"auth_timeout", Type::duration, "10s", 100, kHour, nullptr, nullptr},
      Key{"handshake_rate", Type::integer, "200", 1, 1000000, nullptr, nullptr},
      Key{"handshake_burst", Type::integer, "400", 1, 1000000, nullptr, nullptr},
      Key{"max_tunnels", Type::integer, "20000", 1, 1000000, nullptr, nullptr},
      Key{"max_handshakes_per_address", Type::integer, "512", 0, 1000000, nullptr, nullptr},
      Key{"max_streams", Type::integer, "64", 1, tunnel::kMaxMaxStreams, nullptr, nullptr},
      Key{"window", Type::size, "256KiB", tunnel::kMinWindow, tunnel::kMaxWindow, nullptr, nullptr},
      Key{"write_high_water", Type::size, "1MiB", 64 * 1024, 256 * kMiB, nullptr, nullptr},
      Key{"drain_timeout", Type::duration, "30s", 0, kHour, nullptr, nullptr},
      Key{"goaway_spread", Type::duration, "10s", 0, kHour, nullptr, nullptr},
      Key{"events_poll", Type::duration, "250ms", 10, 60 * 1000, nullptr, nullptr},
      Key{"tcp_keepalive", Type::duration, "30s", 1000, kHour, nullptr, nullptr},
      Key{"tcp_user_timeout", Type::duration, "45s", 0, kHour, nullptr, nullptr},
  }});
  s.sections.push_back({"billing", false, false, {
      Key{"min_balance", Type::string, "0", 0, 0, nullptr,
          "requests need at least this balance (currency units, up to 6 decimals)"},
      Key{"linger", Type::duration, "10s", 100, kHour, nullptr, nullptr},
      Key{"claim_wait", Type::duration, "30s", 100, kHour, nullptr, nullptr},
      Key{"claim_grace", Type::duration, "10m", 100, 30 * 24 * kHour, nullptr, nullptr},
      Key{"claim_window", Type::duration, "168h", kHour, 365 * 24 * kHour, nullptr, nullptr},
      Key{"checkpoint_every", Type::integer, "1000", 1, 1000000000, nullptr, nullptr},
      Key{"checkpoint_interval", Type::duration, "60s", 100, 24 * kHour, nullptr, nullptr},
      Key{"settle_batch", Type::integer, "1024", 1, 65536, nullptr, nullptr},
      Key{"settle_delay", Type::duration, "20ms", 0, 1000, nullptr, nullptr},
  }});
  s.sections.push_back({"limits", false, false, {
      Key{"rpm", Type::integer, "600", 0, 100000000, nullptr, "requests per minute per token; 0 = no limit"},
      Key{"tpm", Type::integer, "2000000", 0, 1000000000000, nullptr,
          "tokens per minute per token; 0 = no limit"},
  }});
  s.sections.push_back({"routing", false, false, {
      Key{"max_attempts", Type::integer, "3", 1, 10, nullptr, nullptr},
      Key{"penalty", Type::duration, "60s", 0, kHour, nullptr, nullptr},
  }});
  return s;
}

LoadResult finish(config::ParseResult parsed) {
  LoadResult out;
  if (!parsed.config) {
    out.errors = std::move(parsed.errors);
    return out;
  }
  const config::Config& c = *parsed.config;
  auto err = [&](const config::Section& sec, std::string_view key, std::string msg) {
    out.errors.push_back(c.diagnostic(sec, key, std::move(msg)));
  };

  HubConfig h;
  h.file = c.file();
  const config::Section& g = c.global();
  auto listen = net::parse_listen_address(g.str("agent_listen"));
  if (!listen.ok()) err(g, "agent_listen", "agent_listen: " + listen.status().message());
  else h.agent_listen = *listen;
  auto user_listen = net::parse_listen_address(g.str("user_listen"));
  if (!user_listen.ok()) err(g, "user_listen", "user_listen: " + user_listen.status().message());
  else h.user_listen = *user_listen;
  h.user_tls = g.boolean("user_tls");
  ApiSettings& api = h.api;
  api.max_request_body = g.size("max_request_body");
  api.request_deadline_ms = g.duration_ms("request_deadline");
  api.sse_keepalive_ms = g.duration_ms("sse_keepalive");
  api.max_connections = static_cast<uint32_t>(g.integer("user_max_connections"));
  api.max_connections_per_address =
      static_cast<uint32_t>(g.integer("user_max_connections_per_address"));
  api.header_timeout_ms = g.duration_ms("user_header_timeout");
  api.idle_timeout_ms = g.duration_ms("user_idle_timeout");
  api.body_timeout_ms = g.duration_ms("user_body_timeout");
  h.tls_cert = c.resolve_path(g.str("tls_cert"));
  h.tls_key = c.resolve_path(g.str("tls_key"));
  h.tls_name = std::string(g.str("tls_name"));
  h.database = c.resolve_path(g.str("database"));
  h.log_level = std::string(g.str("log_level"));

  const config::Section& t = *c.section("tunnel");
  TunnelSettings& ts = h.tunnel;
  ts.path = std::string(t.str("path"));
  if (ts.path.empty() || ts.path[0] != '/' || ts.path.size() > 256) {
    err(t, "path", "path must start with '/' (at most 256 bytes), got '" + ts.path.substr(0, 64) + "'");
  }
  ts.heartbeat_ms = t.duration_ms("heartbeat");
  ts.dead_after = static_cast<uint32_t>(t.integer("dead_after"));
  ts.auth_timeout_ms = t.duration_ms("auth_timeout");
  ts.handshake_rate = static_cast<uint32_t>(t.integer("handshake_rate"));
  ts.handshake_burst = static_cast<uint32_t>(t.integer("handshake_burst"));
  ts.max_tunnels = static_cast<uint32_t>(t.integer("max_tunnels"));
  ts.max_handshakes_per_address = static_cast<uint32_t>(t.integer("max_handshakes_per_address"));
  ts.max_streams = static_cast<uint32_t>(t.integer("max_streams"));
  ts.window_bytes = t.size("window");
  ts.write_high_water = t.size("write_high_water");
  ts.drain_timeout_ms = t.duration_ms("drain_timeout");
  ts.goaway_spread_ms = t.duration_ms("goaway_spread");
  ts.events_poll_ms = t.duration_ms("events_poll");
  ts.tcp_keepalive_ms = t.duration_ms("tcp_keepalive");
  ts.tcp_user_timeout_ms = t.duration_ms("tcp_user_timeout");
  h.billing.prices = c.resolve_path(g.str("prices"));
  h.billing.ledger_key = c.resolve_path(g.str("ledger_key"));
  const config::Section& b = *c.section("billing");
  BillingSettings& bs = h.billing;
  auto min_balance = billing::parse_amount(b.str("min_balance"), true);
  if (!min_balance.ok()) err(b, "min_balance", "min_balance: " + min_balance.status().message());
  else bs.min_balance = *min_balance;
  bs.linger_ms = b.duration_ms("linger");
  bs.claim_wait_ms = b.duration_ms("claim_wait");
  bs.claim_grace_ms = b.duration_ms("claim_grace");
  bs.claim_window_ms = b.duration_ms("claim_window");
  bs.checkpoint_every = static_cast<uint64_t>(b.integer("checkpoint_every"));
  bs.checkpoint_interval_ms = b.duration_ms("checkpoint_interval");
  bs.settle_batch = static_cast<size_t>(b.integer("settle_batch"));
  bs.settle_delay_ms = b.duration_ms("settle_delay");
  const config::Section& l = *c.section("limits");
  h.limits.rpm = static_cast<uint64_t>(l.integer("rpm"));
  h.limits.tpm = static_cast<uint64_t>(l.integer("tpm"));
  const config::Section& r = *c.section("routing");
  h.routing.max_attempts = static_cast<uint32_t>(r.integer("max_attempts"));
  h.routing.penalty_ms = r.duration_ms("penalty");
  if (bs.claim_window_ms <= api.request_deadline_ms + bs.claim_grace_ms) {
    err(b, "claim_window", "claim_window must be longer than request_deadline + claim_grace");
  }
  if (h.agent_listen.port != 0 && h.agent_listen.port == h.user_listen.port &&
      h.agent_listen.host == h.user_listen.host) {
    err(g, "user_listen", "user_listen and agent_listen are the same address");
  }
  if (ts.handshake_burst < ts.handshake_rate) {
    err(t, "handshake_burst", "handshake_burst must be at least handshake_rate");
  }
  if (out.errors.empty()) out.config = std::move(h);
  return out;
}

}  // namespace

const config::Schema& schema() {
  static const config::Schema s = make_schema();
  return s;
}

LoadResult load(const std::string& path) { return finish(config::load(path, schema())); }

LoadResult parse(std::string_view text, const std::string& file_name) {
  return finish(config::parse(text, file_name, schema()));
}

}  // namespace tg::hub
