#include "hub/tunnel_server.h"

#include <algorithm>
#include <utility>

#include "hub/billing.h"
#include "shared/core/log.h"
#include "shared/tls/connector.h"
#include "shared/tunnel/auth.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/frame.h"
#include "shared/tunnel/messages.h"
#include "shared/ws/server.h"

namespace tg::hub {
namespace {

constexpr const char* kLog = "tunnel";
// The close code for our own internal failures (registry unreadable...).
constexpr uint16_t kInternalError = 1011;
// A WebSocket message on a tunnel: the larger of a session control message
// and a full data frame; the session checks the per-phase limits itself.
constexpr uint64_t kMaxWsMessage =
    std::max<uint64_t>(tunnel::kMaxSessionMessage, tunnel::kFrameHeaderSize + tunnel::kMaxFramePayload);
constexpr uint64_t kUpgradeLingerMs = 1000;
// Model names quoted in one log line at most.
constexpr size_t kMaxModelsLogged = 10;
// How long a closing tunnel waits for the agent's close frame: a dead or
// frozen agent never sends one, and the tunnel counts as online until then.
constexpr uint64_t kTunnelCloseTimeoutMs = 1000;

uint32_t clamp_u32(uint64_t v, uint32_t lo, uint32_t hi) {
  if (v < lo) return lo;
  if (v > hi) return hi;
  return static_cast<uint32_t>(v);
}

// Uniform in [0, max].
uint32_t random_upto(uint32_t max) {
  uint64_t r = 0;
  crypto::random_bytes(&r, sizeof r);
  return static_cast<uint32_t>(r % (static_cast<uint64_t>(max) + 1));
}

const char* or_unauthenticated(const std::string& pubkey) {
  return pubkey.empty() ? "(unauthenticated)" : pubkey.c_str();
}

// What the agent is told when its enroll token is not accepted. Built from
// the error code only: the store's text could quote the token.
std::string enroll_refusal_text(const Status& s) {
  switch (s.code()) {
    case Errc::not_found: return "unknown enrollment token";
    case Errc::timeout: return "enrollment token expired";
    case Errc::limit: return "enrollment token already used (tokens work once)";
    case Errc::invalid_argument: return "malformed enrollment token";
    case Errc::permission: return "this key is revoked or bound to another owner";
    default: return "enrollment token not accepted";
  }
}

}  // namespace

const char* hub_tunnel_state_name(HubTunnel::State s) noexcept {
  switch (s) {
    case HubTunnel::State::upgrading: return "upgrading";
    case HubTunnel::State::await_auth: return "await_auth";
    case HubTunnel::State::await_register: return "await_register";
    case HubTunnel::State::ready: return "ready";
    case HubTunnel::State::closing: return "closing";
    case HubTunnel::State::closed: return "closed";
  }
  return "?";
}

// ---- HandshakeBudget ----

HandshakeBudget::HandshakeBudget(uint32_t rate_per_s, uint32_t burst, uint64_t now_ms)
    : rate_per_ms_(static_cast<double>(rate_per_s) / 1000.0),
      burst_(static_cast<double>(std::max<uint32_t>(burst, 1))),
      tokens_(burst_),
      last_ms_(now_ms) {}

bool HandshakeBudget::take(uint64_t now_ms) noexcept {
  if (now_ms > last_ms_) {
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ms - last_ms_) * rate_per_ms_);
    last_ms_ = now_ms;
  }
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

// ---- HubTunnel ----

HubTunnel::HubTunnel(TunnelServer* server, ws::ConnectionPtr ws, uint64_t auth_deadline_ms)
    : server_(server),
      session_(std::make_unique<tunnel::Session>(server->loop_, std::move(ws), tunnel::Side::hub,
                                                 static_cast<tunnel::SessionHandler*>(this),
                                                 server->session_options())),
      peer_(session_->peer_address()),
      auth_deadline_ms_(auth_deadline_ms),
      auth_timer_(server->loop_) {}

HubTunnel::~HubTunnel() = default;

void HubTunnel::transition(State next) {
  bool legal = false;
  switch (state_) {
    case State::upgrading: legal = next == State::await_auth || next == State::closing; break;
    case State::await_auth: legal = next == State::await_register || next == State::closing; break;
    case State::await_register: legal = next == State::ready || next == State::closing; break;
    case State::ready: legal = next == State::closing; break;
    case State::closing: legal = false; break;
    case State::closed: legal = false; break;
  }
  // The peer may end the tunnel in any state.
  if (next == State::closed && state_ != State::closed) legal = true;
  if (!legal) {
    TG_ERROR(kLog, "tunnel %s: illegal transition %s -> %s", peer_.c_str(),
             hub_tunnel_state_name(state_), hub_tunnel_state_name(next));
    return;
  }
  state_ = next;
}

void HubTunnel::start() {
  session_->start();
  crypto::random_bytes(nonce_.data(), nonce_.size());
  tunnel::Challenge ch;
  ch.v = tunnel::kProtocolVersion;
  ch.nonce = nonce_;
  Status s = session_->send(ch);
  transition(State::await_auth);
  if (!s.ok()) {
    close(kInternalError, "challenge not sent: " + s.message());
    return;
  }
  const uint64_t now = uv_now(server_->loop_);
  const uint64_t left = auth_deadline_ms_ > now ? auth_deadline_ms_ - now : 0;
  auth_timer_.start(left, 0, [this] { on_auth_timeout(); });
}

void HubTunnel::close(uint16_t code, const std::string& why, std::string_view refusal,
                      const std::string& message) {
  if (state_ == State::closing || state_ == State::closed) return;
  transition(State::closing);
  auth_timer_.stop();
  if (refusal.empty()) {
    session_->close(code, why);
    return;
  }
  tunnel::Refused r;
  r.code = std::string(refusal);
  r.message = message.substr(0, tunnel::kMaxText);
  session_->close(code, why, &r);
}

Status HubTunnel::send_goaway(std::string_view reason, uint32_t reconnect_after_ms) {
  if (!authenticated()) return error(Errc::invalid_argument, "goaway before authentication");
  tunnel::Goaway g;
  g.reason = std::string(reason);
  g.reconnect_after_ms = std::min(reconnect_after_ms, tunnel::kMaxReconnectAfterMs);
  return session_->send(g);
}

void HubTunnel::on_auth_timeout() {
  if (state_ != State::await_auth) return;
  TG_INFO(kLog, "tunnel %s: no auth within %llu ms of the connection", peer_.c_str(),
          static_cast<unsigned long long>(server_->settings_.auth_timeout_ms));
  close(tunnel::close_code::auth_timeout, "no auth within the auth timeout");
}

void HubTunnel::on_message(tunnel::Session&, const tunnel::Message& m) noexcept {
  if (state_ == State::closing || state_ == State::closed) return;
  const tunnel::Type t = tunnel::type_of(m);
  if (t == tunnel::Type::auth) {
    if (state_ != State::await_auth) {
      close(tunnel::close_code::bad_message, "auth sent twice");
      return;
    }
    on_auth(std::get<tunnel::Auth>(m));
    return;
  }
  if (t == tunnel::Type::register_) {
    if (state_ != State::await_register && state_ != State::ready) {
      close(tunnel::close_code::bad_message, "register before welcome");
      return;
    }
    on_register(std::get<tunnel::Register>(m));
    return;
  }
  if (t == tunnel::Type::capacity) {
    if (state_ != State::ready) {
      close(tunnel::close_code::bad_message, "'capacity' before register");
      return;
    }
    const auto& c = std::get<tunnel::Capacity>(m);
    const uint64_t until = c.ready_in_ms == 0 ? 0 : uv_now(server_->loop_) + c.ready_in_ms;
    server_->tunnels_.set_busy(pubkey_, c.models, until, c.rpm);
    TG_DEBUG(kLog, "agent %s: %zu models %s for %u ms (vendor rpm %u)", pubkey_.c_str(),
             c.models.size(), c.ready_in_ms ? "out of capacity" : "available again",
             c.ready_in_ms, c.rpm);
    return;
  }
  if (t == tunnel::Type::claim || t == tunnel::Type::sync || t == tunnel::Type::ack) {
    // Billing messages need a registered tunnel (the agent learnt the
    // prices and its chain head is answered from the store).
    if (state_ != State::ready) {
      close(tunnel::close_code::bad_message,
            std::string("'") + tunnel::type_name(t) + "' before register");
      return;
    }
    Billing* b = server_->billing_;
    if (!b) return;
    if (t == tunnel::Type::claim) b->on_claim(pubkey_, std::get<tunnel::Claim>(m));
    if (t == tunnel::Type::sync) b->on_sync(pubkey_, std::get<tunnel::Sync>(m));
    if (t == tunnel::Type::ack) b->on_ack(pubkey_, std::get<tunnel::Ack>(m));
    return;
  }
  close(tunnel::close_code::bad_message,
        std::string("unexpected '") + tunnel::type_name(t) + "' from the agent");
}

// The nonce is used for exactly one auth: a failed auth closes the
// connection, and a successful one ends the pre-auth phase in which `auth` is
// accepted at all (a second one is a protocol error, 4000). A fresh nonce is
// drawn for every connection, so no signature ever verifies twice.
void HubTunnel::on_auth(const tunnel::Auth& auth) {
  auth_timer_.stop();
  const std::string key = crypto::base64_encode(std::string_view(
      reinterpret_cast<const char*>(auth.pubkey.data()), auth.pubkey.size()));
  agent_version_ = auth.agent_version;
  platform_ = auth.platform;

  if (!tunnel::verify_auth(auth.pubkey, auth.sig, nonce_, server_->spki_sha256_)) {
    TG_WARN(kLog, "tunnel %s: bad signature for key %s (a man in the middle, or another pin)",
            peer_.c_str(), key.c_str());
    close(tunnel::close_code::auth_failed, "bad signature", tunnel::refusal::bad_signature,
          "the signature does not verify with this hub's certificate key: check hub_pin, or "
          "something between you and the hub presents another certificate");
    return;
  }

  auto rec = server_->store_->lookup(key);
  if (!rec.ok()) {
    TG_ERROR(kLog, "tunnel %s: registry lookup of %s failed: %s", peer_.c_str(), key.c_str(),
             rec.status().to_string().c_str());
    close(kInternalError, "registry unavailable");
    return;
  }
  if (rec->has_value()) {
    const AgentRecord& a = **rec;
    if (a.status == AgentStatus::revoked) {
      TG_INFO(kLog, "tunnel %s: key %s is revoked", peer_.c_str(), key.c_str());
      close(tunnel::close_code::revoked, "key revoked", tunnel::refusal::revoked,
            "this key was revoked by the hub operator");
      return;
    }
    // An approved key may still carry a (spent) enroll token in its config:
    // it is ignored, not consumed.
    admit(key, a.owner, a.tier_ppm);
    return;
  }

  if (auth.enroll_token.empty()) {
    TG_INFO(kLog, "tunnel %s: unknown key %s (approve it with: tokengo-hub agent approve %s "
            "--owner NAME)", peer_.c_str(), key.c_str(), key.c_str());
    close(tunnel::close_code::auth_failed, "unknown key", tunnel::refusal::unknown_key,
          "key " + key + " is not approved on this hub; the operator approves it with: "
          "tokengo-hub agent approve " + key + " --owner NAME (or gives you an enroll_token)");
    return;
  }
  auto enrolled = server_->store_->consume_enroll_token(auth.enroll_token, key);
  if (!enrolled.ok()) {
    const std::string text = enroll_refusal_text(enrolled.status());
    TG_INFO(kLog, "tunnel %s: enrollment of key %s refused: %s", peer_.c_str(), key.c_str(),
            text.c_str());
    close(tunnel::close_code::auth_failed, "bad enroll token", tunnel::refusal::bad_enroll_token,
          text);
    return;
  }
  TG_INFO(kLog, "tunnel %s: key %s enrolled for owner %s", peer_.c_str(), key.c_str(),
          enrolled->owner.c_str());
  admit(key, enrolled->owner, enrolled->tier_ppm);
}

void HubTunnel::admit(const std::string& key, const std::string& owner, uint32_t tier_ppm) {
  pubkey_ = key;
  owner_ = owner;
  live_ = true;
  HubTunnel* old = server_->tunnels_.add(pubkey_, owner_, peer_, this);
  if (old) {
    old->live_ = false;
    TG_INFO(kLog, "agent %s: new session from %s replaces the one from %s (4004)", pubkey_.c_str(),
            peer_.c_str(), old->peer_.c_str());
    old->close(tunnel::close_code::replaced, "replaced by a newer session",
               tunnel::refusal::replaced, "a newer session of this key took over");
  }
  const int64_t now = unix_now_ms();
  Status s = server_->store_->session_open(pubkey_, peer_, server_->pid_, now);
  if (!s.ok()) TG_WARN(kLog, "agent %s: session not recorded: %s", pubkey_.c_str(), s.message().c_str());
  s = server_->store_->record_seen(pubkey_, peer_, now);
  if (!s.ok()) TG_WARN(kLog, "agent %s: last seen not recorded: %s", pubkey_.c_str(), s.message().c_str());

  s = session_->send(server_->welcome_for(owner_, tier_ppm));
  if (!s.ok()) TG_DEBUG(kLog, "tunnel %s: welcome not sent: %s", peer_.c_str(), s.message().c_str());
  session_->authenticated(server_->session_options());
  transition(State::await_register);
  TG_INFO(kLog, "agent %s (owner %s, version %s, %s) authenticated from %s", pubkey_.c_str(),
          owner_.c_str(), agent_version_.c_str(), platform_.c_str(), peer_.c_str());
}

void HubTunnel::on_register(const tunnel::Register& reg) {
  // Only priced models are routed: an unpriced one could not be billed.
  std::vector<std::string> models;
  std::string unpriced;
  size_t unpriced_count = 0;
  for (const std::string& m : reg.models) {
    if (!server_->billing_ || server_->billing_->priced(m)) {
      models.push_back(m);
    } else if (++unpriced_count <= kMaxModelsLogged) {
      unpriced += (unpriced.empty() ? "" : ", ") + m;
    }
  }
  if (unpriced_count > 0) {
    if (unpriced_count > kMaxModelsLogged) {
      unpriced += " and " + std::to_string(unpriced_count - kMaxModelsLogged) + " more";
    }
    TG_WARN(kLog, "agent %s: models without a price in prices.conf are not served: %s",
            pubkey_.c_str(), unpriced.c_str());
  }
  const bool first = state_ == State::await_register;
  const size_t n = server_->tunnels_.set_models(pubkey_, models, reg.max_parallel);
  tunnel::Registered r;
  r.models = static_cast<uint32_t>(n);
  Status s = session_->send(r);
  if (!s.ok()) TG_DEBUG(kLog, "tunnel %s: registered not sent: %s", peer_.c_str(), s.message().c_str());
  if (state_ == State::await_register) transition(State::ready);
  TG_INFO(kLog, "agent %s registered %zu models (max_parallel %u)", pubkey_.c_str(), n,
          reg.max_parallel);
  if (first && server_->billing_) server_->billing_->agent_online(pubkey_);
}

void HubTunnel::on_closed(tunnel::Session&, uint16_t code, const std::string& why) noexcept {
  auth_timer_.stop();
  transition(State::closed);
  server_->on_tunnel_closed(this, code, why);
}

// ---- TunnelServer ----

TunnelServer::TunnelServer(uv_loop_t* loop, const TunnelSettings& settings,
                           std::shared_ptr<tls::ServerContext> tls, AgentStore* store)
    : loop_(loop),
      settings_(settings),
      tls_(std::move(tls)),
      store_(store),
      listener_(loop),
      budget_(settings.handshake_rate, settings.handshake_burst, uv_now(loop)),
      events_timer_(loop),
      reap_timer_(loop),
      drain_timer_(loop) {
  announced_heartbeat_ms_ =
      clamp_u32(settings_.heartbeat_ms, tunnel::kMinHeartbeatMs, tunnel::kMaxHeartbeatMs);
  window_ = clamp_u32(settings_.window_bytes, tunnel::kMinWindow, tunnel::kMaxWindow);
}

TunnelServer::~TunnelServer() {
  phase_ = Phase::stopped;
  listener_.close();
  http_.reset();
  for (Tunnels::Entry* e : tunnels_.all()) {
    Status s = store_->session_close(e->pubkey);
    if (!s.ok()) TG_DEBUG(kLog, "session_close %s: %s", e->pubkey.c_str(), s.message().c_str());
  }
  conns_.clear();
  dead_.clear();
}

size_t TunnelServer::connection_count() const noexcept {
  return conns_.size() + (http_ ? http_->connection_count() : 0);
}

tunnel::SessionOptions TunnelServer::session_options() const {
  tunnel::SessionOptions o;
  o.heartbeat_ms = settings_.heartbeat_ms;
  o.dead_after = settings_.dead_after;
  o.max_streams = settings_.max_streams;
  o.window = window_;
  o.write_high_water = static_cast<size_t>(settings_.write_high_water);
  return o;
}

tunnel::Welcome TunnelServer::welcome_for(const std::string& owner, uint32_t tier_ppm) const {
  tunnel::Welcome w;
  w.owner = owner;
  w.tier_ppm = tier_ppm;
  if (billing_) w.ledger_key = billing_->ledger_public_key();
  w.heartbeat_ms = announced_heartbeat_ms_;
  w.dead_after = settings_.dead_after;
  w.max_streams = settings_.max_streams;
  w.window = window_;
  return w;
}

bool TunnelServer::send_to(const std::string& agent, const tunnel::Message& m) {
  Tunnels::Entry* e = tunnels_.find(agent);
  if (!e || !e->tunnel || e->tunnel->state() != HubTunnel::State::ready) return false;
  return e->tunnel->session().send(m).ok();
}

Status TunnelServer::start(const net::HostPort& listen) {
  if (phase_ != Phase::idle) return error(Errc::invalid_argument, "tunnel server already started");
  if (!tls_ || !store_) return error(Errc::invalid_argument, "tunnel server needs TLS and a store");
  auto spki = tunnel::pin_to_sha256(tls_->pin());
  if (!spki.ok()) return error(Errc::internal, "own certificate pin: " + spki.status().message());
  spki_sha256_ = *spki;
  auto seq = store_->latest_event_seq();
  if (!seq.ok()) return error(seq.status().code(), "registry events: " + seq.status().message());
  last_event_seq_ = *seq;
  pid_ = static_cast<int64_t>(uv_os_getpid());
  if (announced_heartbeat_ms_ != settings_.heartbeat_ms) {
    TG_WARN(kLog, "tunnel heartbeat %llu ms is outside the protocol range; agents are told %u ms",
            static_cast<unsigned long long>(settings_.heartbeat_ms), announced_heartbeat_ms_);
  }
  if (window_ != settings_.window_bytes) {
    TG_WARN(kLog, "tunnel window %llu bytes is outside the protocol range; using %u",
            static_cast<unsigned long long>(settings_.window_bytes), window_);
  }

  http::ServerOptions ho;
  ho.limits.head_bytes = kTunnelHeadBytes;
  ho.limits.header_count = kTunnelHeaderCount;
  ho.limits.url_bytes = kTunnelUrlBytes;
  ho.limits.body_bytes = 1;  // 0 would mean unlimited; an upgrade has no body
  ho.header_timeout_ms = settings_.auth_timeout_ms;
  ho.idle_timeout_ms = settings_.auth_timeout_ms;
  ho.body_timeout_ms = settings_.auth_timeout_ms;
  ho.linger_ms = kUpgradeLingerMs;
  ho.max_connections = settings_.max_tunnels;
  ho.max_connections_per_address = settings_.max_handshakes_per_address;
  http_ = std::make_unique<http::Server>(loop_, static_cast<http::ServerHandler*>(this), ho);

  net::TcpOptions to;
  to.keepalive_idle_s = static_cast<unsigned>(std::max<uint64_t>(settings_.tcp_keepalive_ms / 1000, 1));
  to.user_timeout_ms = static_cast<unsigned>(std::min<uint64_t>(settings_.tcp_user_timeout_ms, UINT32_MAX));
  Status s = listener_.listen(listen.host, listen.port,
                              [this](net::StreamPtr tcp) { on_accept(std::move(tcp)); }, to);
  if (!s.ok()) {
    http_.reset();
    return error(s.code(), "agent_listen " + listen.host + ":" + std::to_string(listen.port) +
                               ": " + s.message());
  }
  phase_ = Phase::running;
  events_timer_.start(settings_.events_poll_ms, settings_.events_poll_ms, [this] { on_events_poll(); });
  return Status();
}

void TunnelServer::refuse_connection(const char* why) {
  ++refused_total_;
  ++refused_since_warn_;
  TG_DEBUG(kLog, "connection refused: %s (%llu refused so far)", why,
           static_cast<unsigned long long>(refused_total_));
  const uint64_t now = uv_now(loop_);
  if (!warned_once_ || now - last_warn_ms_ >= kRefusalWarnIntervalMs) {
    TG_WARN(kLog, "refusing connections: %s (%llu refused in the last second)", why,
            static_cast<unsigned long long>(refused_since_warn_));
    warned_once_ = true;
    last_warn_ms_ = now;
    refused_since_warn_ = 0;
  }
}

void TunnelServer::on_accept(net::StreamPtr tcp) {
  if (phase_ != Phase::running || !tcp) return;  // dropping the stream closes it
  if (connection_count() >= settings_.max_tunnels) {
    refuse_connection("max_tunnels reached");
    return;
  }
  const uint64_t now = uv_now(loop_);
  if (!budget_.take(now)) {
    refuse_connection("handshake budget exhausted");
    return;
  }
  // Remember when this peer was accepted; forget entries past the auth timeout.
  while (!accept_order_.empty() &&
         (now - accept_order_.front().first > settings_.auth_timeout_ms ||
          accept_order_.size() >= kMaxPendingAccepts)) {
    auto it = accepted_at_.find(accept_order_.front().second);
    if (it != accepted_at_.end() && it->second == accept_order_.front().first) accepted_at_.erase(it);
    accept_order_.pop_front();
  }
  const std::string peer = tcp->peer_address();
  accepted_at_[peer] = now;
  accept_order_.emplace_back(now, peer);
  TG_DEBUG(kLog, "connection from %s", peer.c_str());
  http_->accept(tls::accept(loop_, std::move(tcp), tls_, settings_.auth_timeout_ms));
}

uint64_t TunnelServer::auth_deadline_for(const std::string& peer) {
  const uint64_t now = uv_now(loop_);
  auto it = accepted_at_.find(peer);
  if (it == accepted_at_.end()) return now;  // forgotten: older than the auth timeout
  const uint64_t deadline = it->second + settings_.auth_timeout_ms;
  accepted_at_.erase(it);
  return deadline;
}

void TunnelServer::on_request(http::Exchange& ex) noexcept {
  const std::string& target = ex.request().target;
  const std::string_view path = std::string_view(target).substr(0, target.find('?'));
  if (phase_ != Phase::running) {
    (void)ex.reply(503, "shutting down\n");
    return;
  }
  if (path != settings_.path) {
    TG_DEBUG(kLog, "%s: %s %s: not the tunnel path", ex.peer_address().c_str(),
             ex.request().method.c_str(), target.c_str());
    (void)ex.reply(404, "not found\n");
    return;
  }
  const std::string peer = ex.peer_address();
  ws::ServerHandshakeConfig hs;
  hs.subprotocols = {std::string(tunnel::kSubprotocol)};
  hs.require_subprotocol = true;
  ws::Options wo;
  wo.max_frame_payload = kMaxWsMessage;
  wo.max_message_size = kMaxWsMessage;
  wo.close_timeout_ms = kTunnelCloseTimeoutMs;
  wo.max_pings_per_minute = tunnel::kMaxPingsPerMinute;
  auto up = ws::accept_upgrade(loop_, ex, hs, wo);
  if (!up.ok()) {
    TG_DEBUG(kLog, "%s: upgrade refused: %s", peer.c_str(), up.status().message().c_str());
    return;
  }
  auto t = std::make_unique<HubTunnel>(this, std::move(up.value()), auth_deadline_for(peer));
  HubTunnel* raw = t.get();
  conns_.emplace(raw, std::move(t));
  raw->start();
}

void TunnelServer::on_tunnel_closed(HubTunnel* t, uint16_t code, const std::string& why) {
  if (t->live_) {
    tunnels_.remove(t->pubkey_, t);
    t->live_ = false;
    Status s = store_->session_close(t->pubkey_);
    if (!s.ok()) TG_WARN(kLog, "agent %s: session end not recorded: %s", t->pubkey_.c_str(), s.message().c_str());
  }
  TG_INFO(kLog, "tunnel closed: agent %s from %s, code %u: %s", or_unauthenticated(t->pubkey_),
          t->peer_.c_str(), code, why.empty() ? "-" : why.c_str());
  auto it = conns_.find(t);
  if (it != conns_.end()) {
    // Destroyed from the loop: we are inside its session's callback.
    dead_.push_back(std::move(it->second));
    conns_.erase(it);
  }
  if (!reap_timer_.active()) reap_timer_.start(0, 0, [this] { on_reap(); });
}

void TunnelServer::on_reap() {
  dead_.clear();
  if (phase_ == Phase::closing && conns_.empty()) {
    phase_ = Phase::stopped;
    TG_INFO(kLog, "shutdown: all tunnels closed");
    auto done = std::move(shutdown_done_);
    shutdown_done_ = nullptr;
    if (done) done();
  }
}

void TunnelServer::on_events_poll() {
  auto events = store_->events_since(last_event_seq_);
  if (!events.ok()) {
    if (!events_failing_) {
      TG_WARN(kLog, "cannot read the registry change log: %s", events.status().to_string().c_str());
    }
    events_failing_ = true;
    return;
  }
  if (events_failing_) TG_INFO(kLog, "registry change log readable again");
  events_failing_ = false;
  for (const AgentEvent& e : *events) {
    last_event_seq_ = std::max(last_event_seq_, e.seq);
    if (e.kind != AgentEventKind::revoked) continue;
    Tunnels::Entry* entry = tunnels_.find(e.pubkey);
    if (!entry) continue;
    HubTunnel* t = entry->tunnel;
    tunnels_.remove(e.pubkey, t);
    t->live_ = false;
    Status s = store_->session_close(e.pubkey);
    if (!s.ok()) TG_WARN(kLog, "agent %s: session end not recorded: %s", e.pubkey.c_str(), s.message().c_str());
    TG_INFO(kLog, "agent %s revoked by the operator: closing its tunnel from %s (4003)",
            e.pubkey.c_str(), t->peer_.c_str());
    t->close(tunnel::close_code::revoked, "key revoked by the operator", tunnel::refusal::revoked,
             "this key was revoked by the hub operator");
  }
}

void TunnelServer::shutdown(std::function<void()> done) {
  if (phase_ != Phase::running && phase_ != Phase::idle) return;
  shutdown_done_ = std::move(done);
  phase_ = Phase::draining;
  listener_.close();
  events_timer_.stop();
  const size_t handshaking = http_ ? http_->connection_count() : 0;
  http_.reset();
  accepted_at_.clear();
  accept_order_.clear();
  TG_INFO(kLog, "shutdown: listener closed, %zu connections in handshake dropped", handshaking);

  std::vector<HubTunnel*> all;
  all.reserve(conns_.size());
  for (auto& kv : conns_) all.push_back(kv.first);
  size_t told = 0;
  const uint32_t spread = clamp_u32(settings_.goaway_spread_ms, 0, tunnel::kMaxReconnectAfterMs);
  for (HubTunnel* t : all) {
    if (t->authenticated()) {
      Status s = t->send_goaway(tunnel::goaway_reason::shutdown, random_upto(spread));
      if (s.ok()) ++told;
    } else {
      t->close(tunnel::close_code::going_away, "hub shutting down");
    }
  }
  TG_INFO(kLog, "shutdown: goaway sent to %zu tunnels, draining up to %llu ms", told,
          static_cast<unsigned long long>(settings_.drain_timeout_ms));
  drain_deadline_ms_ = uv_now(loop_) + settings_.drain_timeout_ms;
  drain_timer_.start(0, kDrainCheckMs, [this] { on_drain_check(); });
}

void TunnelServer::on_drain_check() {
  size_t open = 0;
  for (auto& kv : conns_) {
    if (kv.first->state() != HubTunnel::State::closed) open += kv.first->open_channels();
  }
  const bool expired = uv_now(loop_) >= drain_deadline_ms_;
  if (open > 0 && !expired) return;
  drain_timer_.stop();
  phase_ = Phase::closing;
  std::vector<HubTunnel*> all;
  for (auto& kv : conns_) all.push_back(kv.first);
  if (expired && open > 0) {
    TG_INFO(kLog, "shutdown: drain timeout with %zu open streams; closing %zu tunnels (1001)", open,
            all.size());
  } else {
    TG_INFO(kLog, "shutdown: no open streams; closing %zu tunnels (1001)", all.size());
  }
  for (HubTunnel* t : all) t->close(tunnel::close_code::going_away, "hub shutting down");
  if (!reap_timer_.active()) reap_timer_.start(0, 0, [this] { on_reap(); });
}

}  // namespace tg::hub
