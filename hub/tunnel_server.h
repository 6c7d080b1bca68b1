// The hub's side of the tunnel: the agent listener (TCP -> handshake budget ->
// TLS -> HTTP upgrade to WebSocket on the tunnel path) and one HubTunnel per
// connection that runs challenge/auth/welcome/register over a tunnel::Session,
// records sessions in the AgentStore and the live registry (tunnels.h), acts on
// revocations from the store's change log, and drains on shutdown. Opens no
// streams itself (request routing does, through the registry).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub/agent_store.h"
#include "hub/config.h"
#include "hub/tunnels.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/crypto/hash.h"
#include "shared/http/server.h"
#include "shared/net/tcp.h"
#include "shared/net/url.h"
#include "shared/tls/context.h"
#include "shared/tunnel/session.h"
#include "shared/ws/connection.h"

namespace tg::hub {

// The upgrade request on the tunnel port is small: no bodies, short heads.
constexpr size_t kTunnelHeadBytes = 8 * 1024;
constexpr size_t kTunnelHeaderCount = 32;
constexpr size_t kTunnelUrlBytes = 1024;
// Accept times remembered for connections not yet upgraded (see
// TunnelServer::accepted_at_); older entries are dropped first.
constexpr size_t kMaxPendingAccepts = 65536;
// While draining on shutdown: how often open channels are counted.
constexpr uint64_t kDrainCheckMs = 50;
// At most one "refusing connections" warning per this interval.
constexpr uint64_t kRefusalWarnIntervalMs = 1000;

// Token bucket over loop time (milliseconds from uv_now): `rate` tokens per
// second, at most `burst` stored; starts full.
class HandshakeBudget {
 public:
  HandshakeBudget(uint32_t rate_per_s, uint32_t burst, uint64_t now_ms);
  // Takes one token if there is one.
  bool take(uint64_t now_ms) noexcept;

 private:
  double rate_per_ms_;
  double burst_;
  double tokens_;
  uint64_t last_ms_;
};

class TunnelServer;
class Billing;

// One agent connection after the WebSocket upgrade. Owned by its TunnelServer,
// which destroys it from the loop after on_closed; nobody else deletes it.
class HubTunnel final : private tunnel::SessionHandler {
 public:
  enum class State {
    upgrading,       // WebSocket open, session not started
    await_auth,      // challenge sent
    await_register,  // welcome sent (session phase), no register yet
    ready,           // registered: may carry streams
    closing,         // close started (by us or the peer)
    closed,          // on_closed fired; waiting to be destroyed
  };

  HubTunnel(TunnelServer* server, ws::ConnectionPtr ws, uint64_t auth_deadline_ms);
  ~HubTunnel() override;
  HubTunnel(const HubTunnel&) = delete;
  HubTunnel& operator=(const HubTunnel&) = delete;

  // Starts the session and sends the challenge (upgrading -> await_auth).
  void start();
  // Sends `refused{refusal}` (unless empty) and closes with `code`. A no-op
  // once closing.
  void close(uint16_t code, const std::string& why, std::string_view refusal = {},
             const std::string& message = {});
  // Sends goaway (session phase only).
  Status send_goaway(std::string_view reason, uint32_t reconnect_after_ms);

  State state() const noexcept { return state_; }
  bool authenticated() const noexcept {
    return state_ == State::await_register || state_ == State::ready;
  }
  // Canonical base64 of the agent key; "" before authentication.
  const std::string& pubkey() const noexcept { return pubkey_; }
  const std::string& owner() const noexcept { return owner_; }
  const std::string& peer_address() const noexcept { return peer_; }
  tunnel::Session& session() noexcept { return *session_; }
  size_t open_channels() const noexcept { return session_->channel_count(); }

 private:
  friend class TunnelServer;
  void on_message(tunnel::Session& s, const tunnel::Message& m) noexcept override;
  void on_closed(tunnel::Session& s, uint16_t code, const std::string& why) noexcept override;

  void transition(State next);
  void on_auth(const tunnel::Auth& auth);
  void on_register(const tunnel::Register& reg);
  void on_auth_timeout();
  // Auth succeeded for `key` (canonical base64) bound to `owner`: replace
  // any older tunnel of the key, record the session, welcome.
  void admit(const std::string& key, const std::string& owner, uint32_t tier_ppm);

  TunnelServer* server_;
  std::unique_ptr<tunnel::Session> session_;
  State state_ = State::upgrading;
  std::string peer_;
  tunnel::Nonce nonce_{};
  uint64_t auth_deadline_ms_;  // loop time
  Timer auth_timer_;
  bool live_ = false;  // this tunnel is the registry's entry for pubkey_
  std::string pubkey_;
  std::string owner_;
  std::string agent_version_;
  std::string platform_;
};

class TunnelServer final : private http::ServerHandler {
 public:
  // `store` must outlive the server. `settings` are copied.
  TunnelServer(uv_loop_t* loop, const TunnelSettings& settings,
               std::shared_ptr<tls::ServerContext> tls, AgentStore* store);
  // Aborts every connection at once; no callback fires. Must not run inside
  // a callback of this server.
  ~TunnelServer() override;
  TunnelServer(const TunnelServer&) = delete;
  TunnelServer& operator=(const TunnelServer&) = delete;

  // Reads the store's current event position, binds `listen` and starts
  // accepting. Errors name the address.
  Status start(const net::HostPort& listen);
  // The bound port (the real one when `listen` had port 0).
  uint16_t port() const noexcept { return listener_.port(); }

  // Planned stop: closes the listener and pre-auth connections, sends goaway
  // (reconnect_after_ms random in [0, goaway_spread]) to every authenticated
  // tunnel, waits until no tunnel has an open channel or drain_timeout
  // passed, then closes the rest with 1001. `done` fires from the loop once
  // every tunnel is closed. Call once, and not from inside a callback of
  // this server (it destroys the HTTP server of the handshakes).
  void shutdown(std::function<void()> done);
  bool stopping() const noexcept { return phase_ != Phase::running; }

  Tunnels& tunnels() noexcept { return tunnels_; }
  const Tunnels& tunnels() const noexcept { return tunnels_; }
  // Connections being served: TLS/HTTP handshakes plus tunnels.
  size_t connection_count() const noexcept;
  // Connections refused by the handshake budget or max_tunnels so far.
  uint64_t refused_count() const noexcept { return refused_total_; }
  const TunnelSettings& settings() const noexcept { return settings_; }
  // Billing that receives claims, syncs and acks, prices registered models
  // and names the checkpoint key in `welcome` (null: no billing, tests).
  void set_billing(Billing* b) noexcept { billing_ = b; }
  // Sends a control message to `agent`'s registered tunnel; false when it
  // has none (or the send failed).
  bool send_to(const std::string& agent, const tunnel::Message& m);

 private:
  friend class HubTunnel;
  enum class Phase { idle, running, draining, closing, stopped };

  void on_request(http::Exchange& ex) noexcept override;
  void on_accept(net::StreamPtr tcp);
  void refuse_connection(const char* why);
  void on_events_poll();
  void on_drain_check();
  void on_reap();
  // Called by HubTunnel.
  uint64_t auth_deadline_for(const std::string& peer);
  void on_tunnel_closed(HubTunnel* t, uint16_t code, const std::string& why);
  tunnel::SessionOptions session_options() const;
  tunnel::Welcome welcome_for(const std::string& owner, uint32_t tier_ppm) const;

  uv_loop_t* loop_;
  TunnelSettings settings_;
  std::shared_ptr<tls::ServerContext> tls_;
  AgentStore* store_;
  Billing* billing_ = nullptr;
  crypto::Sha256 spki_sha256_{};
  uint32_t announced_heartbeat_ms_ = 0;
  uint32_t window_ = 0;
  Phase phase_ = Phase::idle;

  net::TcpListener listener_;
  std::unique_ptr<http::Server> http_;
  HandshakeBudget budget_;
  uint64_t refused_total_ = 0;
  uint64_t refused_since_warn_ = 0;
  uint64_t last_warn_ms_ = 0;
  bool warned_once_ = false;

  // Accept time of connections not upgraded yet, by peer "ip:port" (unique
  // among live connections to one listener), so the auth timeout counts from
  // the TCP accept. Bounded by kMaxPendingAccepts and pruned by age.
  std::unordered_map<std::string, uint64_t> accepted_at_;
  std::deque<std::pair<uint64_t, std::string>> accept_order_;

  std::unordered_map<HubTunnel*, std::unique_ptr<HubTunnel>> conns_;
  std::vector<std::unique_ptr<HubTunnel>> dead_;
  Tunnels tunnels_;
  int64_t last_event_seq_ = 0;
  bool events_failing_ = false;
  int64_t pid_ = 0;

  Timer events_timer_;
  Timer reap_timer_;
  Timer drain_timer_;
  uint64_t drain_deadline_ms_ = 0;
  std::function<void()> shutdown_done_;
};

const char* hub_tunnel_state_name(HubTunnel::State s) noexcept;

}  // namespace tg::hub
