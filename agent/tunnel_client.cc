#include "agent/tunnel_client.h"

#include <sodium.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "shared/core/log.h"
#include "shared/core/version.h"
#include "shared/tunnel/auth.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/frame.h"

namespace tg::agent {
namespace {

constexpr const char* kLog = "agent";
// While draining, how often the client looks for the last open channel.
constexpr uint64_t kDrainPollMs = 50;
// Upper bound on the wait for the hub's close frame after ours.
constexpr uint64_t kMaxCloseWaitMs = 5000;

using tunnel::close_code::bad_message;
using State = TunnelClient::State;

// "<os> <arch>" of the running system, lower-cased OS name ("linux x86_64"),
// restricted to printable ASCII and the protocol's length limit.
std::string platform_string() {
  struct utsname u {};
  std::string out = "unknown";
  if (::uname(&u) == 0) {
    out.clear();
    for (const char* p = u.sysname; *p; ++p) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    }
    out += ' ';
    out += u.machine;
  }
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  if (out.size() > tunnel::kMaxPlatform) out.resize(tunnel::kMaxPlatform);
  return out;
}

bool legal(State from, State to) {
  if (to == State::stopped) return from != State::stopped;
  switch (from) {
    case State::idle: return to == State::connecting;
    case State::connecting: return to == State::authenticating || to == State::waiting;
    case State::authenticating: return to == State::registering || to == State::closing || to == State::waiting;
    case State::registering:
    case State::ready:
      return to == State::ready || to == State::draining || to == State::closing || to == State::waiting;
    case State::draining: return to == State::closing || to == State::waiting;
    case State::closing: return to == State::waiting;
    case State::waiting: return to == State::connecting;
    case State::stopped: return false;
  }
  return false;
}

const char* refusal_advice(std::string_view code) {
  if (code == tunnel::refusal::rate_limited) return "the hub is busy (handshake rate limit)";
  if (code == tunnel::refusal::bad_nonce) return "the challenge expired before the answer arrived (slow link?)";
  return nullptr;
}

}  // namespace

// ---- RefusingCallHandler ----

void RefusingCallHandler::on_call(tunnel::Channel& ch, const tunnel::Call& call) noexcept {
  const bool known = std::find(models_.begin(), models_.end(), call.model) != models_.end();
  tunnel::Error e;
  if (known) {
    e.code = std::string(tunnel::stream_error::internal);
    e.message = "vendor passthrough not available in this build";
  } else {
    e.code = std::string(tunnel::stream_error::unknown_model);
    e.message = "no provider for model " + call.model;
  }
  Status s = ch.send(std::move(e));
  if (!s.ok()) TG_DEBUG(kLog, "call %u: error not sent: %s", ch.id(), s.message().c_str());
  ch.close(tunnel::abort_reason::shutdown);
}

// ---- TunnelClient ----

const char* TunnelClient::state_name(State s) noexcept {
  switch (s) {
    case State::idle: return "idle";
    case State::connecting: return "connecting";
    case State::authenticating: return "authenticating";
    case State::registering: return "registering";
    case State::ready: return "ready";
    case State::draining: return "draining";
    case State::closing: return "closing";
    case State::waiting: return "waiting";
    case State::stopped: return "stopped";
  }
  return "?";
}

TunnelClient::TunnelClient(uv_loop_t* loop, const AgentConfig& config,
                           const crypto::KeyPair& identity, CallHandler* calls)
    : loop_(loop), config_(config), identity_(identity), calls_(calls),
      backoff_(BackoffSettings{config.tunnel.backoff_min_ms, config.tunnel.backoff_max_ms,
                               config.tunnel.backoff_reset_after_ms}),
      platform_(platform_string()), deadline_timer_(loop), retry_timer_(loop), drain_timer_(loop),
      drain_poll_timer_(loop), done_timer_(loop) {}

TunnelClient::~TunnelClient() { stop(); }

void TunnelClient::set_backoff_random(Backoff::Random random) {
  backoff_ = Backoff(backoff_.settings(), std::move(random));
}

void TunnelClient::transition(State next) {
  const State from = state_;
  if (from == next) return;
  if (!legal(from, next)) {
    TG_ERROR(kLog, "internal: tunnel state %s -> %s is not a legal transition", state_name(from),
             state_name(next));
  }
  state_ = next;
  TG_DEBUG(kLog, "tunnel %s -> %s", state_name(from), state_name(next));
  if (quiet_ || !on_state_) return;
  StateFn fn = on_state_;  // the observer may replace on_state_ or stop() the client
  fn(from, next);
}

Status TunnelClient::start() {
  if (started_ || state_ != State::idle) {
    return error(Errc::invalid_argument, std::string("tunnel client already started (state ") +
                                             state_name(state_) + ")");
  }
  tls::ClientConfig tc;
  tc.pins = {config_.hub_pin};
  tc.server_name = config_.hub.host;
  auto ctx = tls::ClientContext::create(tc);
  if (!ctx.ok()) return ctx.status();
  tls_ctx_ = std::move(ctx.value());
  connector_ = std::make_unique<tls::Connector>(loop_, tls_ctx_);
  started_ = true;
  retry_timer_.start(0, 0, [this] { connect_now(); });
  return Status();
}

uint64_t TunnelClient::remaining_ms() const noexcept {
  const uint64_t now = uv_now(loop_);
  return deadline_ms_ > now ? deadline_ms_ - now : 1;
}

void TunnelClient::connect_now() {
  transition(State::connecting);
  if (state_ != State::connecting) return;  // the observer stopped us
  ++stats_.attempts;
  auth_sent_ = false;
  retry_ = Retry::normal;
  goaway_ = false;
  ready_at_ms_ = 0;
  seen_pin_.clear();
  const uint64_t timeout = config_.tunnel.connect_timeout_ms;
  deadline_ms_ = uv_now(loop_) + timeout;
  deadline_timer_.start(timeout, 0, [this] { on_deadline(); });

  net::TcpOptions opts;
  opts.keepalive_idle_s = static_cast<unsigned>(
      std::min<uint64_t>(config_.tunnel.tcp_keepalive_ms / 1000, UINT32_MAX));
  opts.user_timeout_ms =
      static_cast<unsigned>(std::min<uint64_t>(config_.tunnel.tcp_user_timeout_ms, UINT32_MAX));
  opts.bind_address = source_address_;
  TG_DEBUG(kLog, "connecting to hub %s (attempt %llu)", hub_name().c_str(),
           static_cast<unsigned long long>(stats_.attempts));
  Status s = connector_->connect(
      config_.hub.host, config_.hub.port, timeout,
      [this](Result<net::StreamPtr> r) { on_tls(std::move(r)); }, config_.hub.host, opts);
  if (!s.ok()) attempt_failed("cannot connect to hub " + hub_name() + ": " + s.message(), Retry::normal);
}

void TunnelClient::on_tls(Result<net::StreamPtr> result) {
  if (!result.ok()) {
    const Status& st = result.status();
    if (st.code() == Errc::permission) {
      attempt_failed("refusing hub: " + st.message(), Retry::normal, log::Level::error);
    } else {
      attempt_failed("cannot connect to hub " + hub_name() + ": " + st.message(), Retry::normal);
    }
    return;
  }
  net::StreamPtr stream = std::move(result.value());
  const net::TlsInfo* info = stream->tls();
  if (!info || info->peer_pin.empty()) {
    attempt_failed("hub " + hub_name() + ": the TLS layer reported no peer key", Retry::normal);
    return;
  }
  seen_pin_ = info->peer_pin;

  ws::ConnectRequest req;
  req.host = config_.hub.authority();
  req.path = config_.hub.path;
  req.subprotocols = {std::string(tunnel::kSubprotocol)};
  req.options.max_frame_payload = tunnel::kFrameHeaderSize + tunnel::kMaxFramePayload;
  req.options.max_message_size = tunnel::kFrameHeaderSize + tunnel::kMaxFramePayload;
  req.options.close_timeout_ms = std::min(config_.tunnel.connect_timeout_ms, kMaxCloseWaitMs);
  req.options.max_pings_per_minute = tunnel::kMaxPingsPerMinute;
  req.timeout_ms = remaining_ms();
  auto hs = ws::connect(loop_, std::move(stream), std::move(req),
                        [this](Result<ws::ConnectionPtr> r) { on_upgraded(std::move(r)); });
  if (!hs.ok()) {
    attempt_failed("hub " + hub_name() + ": " + hs.status().message(), Retry::normal);
    return;
  }
  handshake_ = std::move(hs.value());
}

void TunnelClient::on_upgraded(Result<ws::ConnectionPtr> result) {
  handshake_.reset();  // allowed inside its own callback
  if (!result.ok()) {
    attempt_failed("websocket upgrade at hub " + hub_name() + config_.hub.path +
                       " failed: " + result.status().message(),
                   Retry::normal);
    return;
  }
  tunnel::SessionHandler* handler = this;
  session_ = std::make_unique<tunnel::Session>(loop_, std::move(result.value()),
                                               tunnel::Side::agent, handler);
  session_->start();
  transition(State::authenticating);
}

void TunnelClient::on_deadline() {
  const std::string limit = std::to_string(config_.tunnel.connect_timeout_ms) + " ms";
  switch (state_) {
    case State::connecting:
      connector_->cancel();
      handshake_.reset();
      attempt_failed("hub " + hub_name() + " did not complete TCP, TLS and WebSocket within " + limit,
                     Retry::normal);
      return;
    case State::authenticating:
    case State::registering: {
      const std::string what = std::string("no ") +
                               (state_ == State::authenticating ? "welcome" : "registered") +
                               " from hub " + hub_name() + " within " + limit;
      stats_.last_error = what;
      TG_WARN(kLog, "%s", what.c_str());
      close_session(tunnel::close_code::auth_timeout, what);
      return;
    }
    default:
      return;
  }
}

void TunnelClient::attempt_failed(const std::string& what, Retry retry, log::Level level) {
  handshake_.reset();
  stats_.last_error = what;
  schedule_retry(what, retry, level);
}

void TunnelClient::schedule_retry(const std::string& what, Retry retry, log::Level level) {
  deadline_timer_.stop();
  drain_timer_.stop();
  drain_poll_timer_.stop();
  if (stopping_) {
    TG_INFO(kLog, "%s", what.c_str());
    finish_stopped();
    return;
  }
  if (retry == Retry::never) {
    TG_ERROR(kLog, "%s; not reconnecting", what.c_str());
    transition(State::stopped);
    return;
  }
  const uint64_t delay = retry == Retry::rejected ? backoff_.next_rejected() : backoff_.next();
  stats_.last_delay_ms = delay;
  TG_LOG(level, kLog, "%s; reconnecting in %llu ms", what.c_str(),
         static_cast<unsigned long long>(delay));
  transition(State::waiting);
  if (state_ != State::waiting) return;
  retry_timer_.start(delay, 0, [this] { connect_now(); });
}

void TunnelClient::close_session(uint16_t code, const std::string& why) {
  if (!session_) return;
  deadline_timer_.stop();
  drain_timer_.stop();
  drain_poll_timer_.stop();
  session_->close(code, why);  // on_closed follows from the loop
  if (state_ != State::closing) transition(State::closing);
}

// ---- session events ----

void TunnelClient::on_message(tunnel::Session&, const tunnel::Message& m) noexcept {
  switch (tunnel::type_of(m)) {
    case tunnel::Type::challenge:
      if (state_ != State::authenticating || auth_sent_) {
        close_session(bad_message, "unexpected challenge");
        return;
      }
      on_challenge(std::get<tunnel::Challenge>(m));
      return;
    case tunnel::Type::welcome:
      if (state_ != State::authenticating || !auth_sent_) {
        close_session(bad_message, "welcome before auth");
        return;
      }
      on_welcome(std::get<tunnel::Welcome>(m));
      return;
    case tunnel::Type::registered:
      if (state_ == State::registering) {
        on_registered(std::get<tunnel::Registered>(m));
      } else if (state_ != State::ready && state_ != State::draining) {
        close_session(bad_message, "registered before register");
      }
      return;
    case tunnel::Type::refused:
      on_refused(std::get<tunnel::Refused>(m));
      return;
    case tunnel::Type::goaway:
      on_goaway(std::get<tunnel::Goaway>(m));
      return;
    case tunnel::Type::prices:
    case tunnel::Type::settle:
    case tunnel::Type::checkpoint:
    case tunnel::Type::claim_rejected:
      // Billing follows registration: the hub sends none of these before.
      if (state_ != State::ready && state_ != State::draining) {
        close_session(bad_message, std::string(tunnel::type_name(tunnel::type_of(m))) +
                                       " before registered");
        return;
      }
      if (ledger_) ledger_->on_ledger_message(m);
      return;
    default:
      close_session(bad_message, std::string("unexpected ") + tunnel::type_name(tunnel::type_of(m)));
      return;
  }
}

void TunnelClient::on_challenge(const tunnel::Challenge& c) {
  auto spki = tunnel::pin_to_sha256(seen_pin_);
  if (!spki.ok()) {
    stats_.last_error = "hub key: " + spki.status().message();
    close_session(bad_message, stats_.last_error);
    return;
  }
  tunnel::Auth a;
  a.pubkey = identity_.public_key();
  a.sig = tunnel::sign_auth(identity_, c.nonce, *spki);
  a.agent_version = tg::version();
  a.platform = platform_;
  if (!config_.enroll_token.empty()) a.enroll_token = std::string(config_.enroll_token.reveal());
  Status s = session_->send(a);
  if (!a.enroll_token.empty()) sodium_memzero(&a.enroll_token[0], a.enroll_token.size());
  if (!s.ok()) {
    stats_.last_error = "cannot send auth: " + s.message();
    TG_ERROR(kLog, "%s", stats_.last_error.c_str());
    close_session(bad_message, stats_.last_error);
    return;
  }
  auth_sent_ = true;
}

void TunnelClient::on_welcome(const tunnel::Welcome& w) {
  tunnel::SessionOptions opts;
  opts.heartbeat_ms = w.heartbeat_ms;
  opts.dead_after = w.dead_after;
  opts.max_streams = w.max_streams;
  opts.window = w.window;
  session_->authenticated(opts);
  stats_.owner = w.owner;
  if (ledger_) ledger_->on_welcome(w);

  tunnel::Register r;
  r.models = config_.models();
  r.max_parallel = static_cast<uint32_t>(
      std::clamp<int>(config_.max_parallel(), 1, static_cast<int>(tunnel::kMaxMaxParallel)));
  Status s = session_->send(r);
  if (!s.ok()) {
    stats_.last_error = "cannot send register: " + s.message();
    TG_ERROR(kLog, "%s", stats_.last_error.c_str());
    close_session(bad_message, stats_.last_error);
    return;
  }
  TG_DEBUG(kLog, "authenticated at hub %s as owner %s; registering %zu models", hub_name().c_str(),
           w.owner.c_str(), r.models.size());
  transition(State::registering);
}

void TunnelClient::on_registered(const tunnel::Registered& r) {
  deadline_timer_.stop();
  ready_at_ms_ = std::max<uint64_t>(uv_now(loop_), 1);
  ++stats_.ready_count;
  TG_INFO(kLog, "tunnel ready: hub %s, owner %s, %u models", hub_name().c_str(),
          stats_.owner.c_str(), r.models);
  transition(State::ready);
  if (ledger_ && state_ == State::ready) ledger_->on_ready();
}

Status TunnelClient::send(const tunnel::Message& m) {
  if (!session_ || (state_ != State::ready && state_ != State::draining)) {
    return error(Errc::closed, "no registered tunnel");
  }
  return session_->send(m);
}

void TunnelClient::on_refused(const tunnel::Refused& r) {
  namespace rc = tunnel::refusal;
  const std::string key = identity_.public_base64();
  const std::string& code = r.code;
  std::string line;
  Retry retry = Retry::normal;
  if (code == rc::unknown_key) {
    line = "hub refused this agent: unknown key " + key +
           "; ask the hub operator to run: tokengo-hub agent approve " + key + " --owner NAME";
    retry = Retry::rejected;
  } else if (code == rc::revoked) {
    line = "hub refused this agent: key " + key + " was revoked by the hub operator";
    retry = Retry::rejected;
  } else if (code == rc::bad_enroll_token) {
    line = "hub refused this agent: the enroll_token in " + config_.file +
           " is unknown, spent or expired; ask the hub operator for a new one, or to run: "
           "tokengo-hub agent approve " + key + " --owner NAME";
    retry = Retry::rejected;
  } else if (code == rc::bad_signature) {
    line = "hub refused this agent: bad signature; the hub's key differs from the one this "
           "agent saw in TLS (a TLS-intercepting proxy between agent and hub?)";
  } else if (code == rc::replaced) {
    line = "hub dropped this tunnel: another agent with key " + key +
           " connected to the hub; two agents must not share a key";
    retry = Retry::never;
  } else if (const char* advice = refusal_advice(code)) {
    line = std::string("hub refused this agent: ") + advice;
  } else {
    line = "hub refused this agent (" + code + ")";
  }
  if (!r.message.empty()) line += " [hub: " + r.message + "]";
  stats_.last_refusal = code;
  stats_.last_error = line;
  retry_ = retry;
  TG_ERROR(kLog, "%s", line.c_str());
  close_session(tunnel::close_code_for_refusal(code), "refused: " + code);
}

void TunnelClient::on_goaway(const tunnel::Goaway& g) {
  if (state_ != State::ready && state_ != State::draining && state_ != State::registering) return;
  goaway_ = true;
  goaway_reconnect_at_ms_ = uv_now(loop_) + g.reconnect_after_ms;
  TG_INFO(kLog, "hub %s sent goaway (%s): no new calls; reconnecting in %u ms once %zu in-flight "
          "calls finish", hub_name().c_str(), g.reason.c_str(), g.reconnect_after_ms, in_flight());
  begin_draining();
}

void TunnelClient::begin_draining() {
  if (state_ != State::draining) {
    transition(State::draining);
    if (state_ != State::draining) return;
  }
  if (!drain_poll_timer_.active()) {
    drain_poll_timer_.start(kDrainPollMs, kDrainPollMs, [this] { check_drained(); });
  }
  check_drained();
}

void TunnelClient::check_drained() {
  if (state_ != State::draining || !session_ || session_->channel_count() > 0) return;
  if (stopping_) {
    close_session(tunnel::close_code::going_away, "agent shutting down");
  } else {
    close_session(tunnel::close_code::normal, "drained after goaway");
  }
}

void TunnelClient::on_call(tunnel::Session&, tunnel::Channel& ch, const tunnel::Call& call) noexcept {
  std::string_view code;
  std::string message;
  if (state_ == State::draining || state_ == State::closing) {
    code = tunnel::stream_error::shutting_down;
    message = "agent is shutting down this tunnel";
  } else if (state_ != State::ready) {
    code = tunnel::stream_error::busy;
    message = "agent not registered yet";
  } else if (session_->channel_count() > static_cast<size_t>(std::max(config_.max_parallel(), 1))) {
    code = tunnel::stream_error::busy;
    message = "agent at max_parallel " + std::to_string(config_.max_parallel());
  } else if (!calls_) {
    code = tunnel::stream_error::internal;
    message = "agent has no call handler";
  }
  if (!code.empty()) {
    ++stats_.calls_refused;
    TG_DEBUG(kLog, "call %u (%s): answered %.*s", ch.id(), call.model.c_str(),
             static_cast<int>(code.size()), code.data());
    Status s = ch.send(tunnel::Error{0, std::string(code), message});
    if (!s.ok()) TG_DEBUG(kLog, "call %u: error not sent: %s", ch.id(), s.message().c_str());
    ch.close(tunnel::abort_reason::shutdown);
    return;
  }
  ++stats_.calls;
  calls_->on_call(ch, call);
}

void TunnelClient::on_closed(tunnel::Session&, uint16_t code, const std::string& why) noexcept {
  stats_.last_close_code = code;
  stats_.last_close_reason = why;
  const uint64_t now = uv_now(loop_);
  const bool was_ready = ready_at_ms_ != 0;
  const uint64_t up_ms = was_ready && now > ready_at_ms_ ? now - ready_at_ms_ : 0;
  ready_at_ms_ = 0;
  session_.reset();  // allowed inside its own callback
  if (was_ready) backoff_.tunnel_ended(up_ms);
  if (goaway_) {
    backoff_.override_next(goaway_reconnect_at_ms_ > now ? goaway_reconnect_at_ms_ - now : 0);
    goaway_ = false;
  }
  std::string what = "tunnel to hub " + hub_name() + " closed (" + std::to_string(code);
  if (!why.empty()) what += ": " + why;
  what += ")";
  if (was_ready) what += " after " + std::to_string(up_ms / 1000) + " s";
  const bool orderly = code == tunnel::close_code::normal || code == tunnel::close_code::going_away;
  schedule_retry(what, retry_, orderly ? log::Level::info : log::Level::warn);
}

// ---- stopping ----

void TunnelClient::finish_stopped() {
  deadline_timer_.stop();
  retry_timer_.stop();
  drain_timer_.stop();
  drain_poll_timer_.stop();
  if (state_ != State::stopped) transition(State::stopped);
  std::function<void()> done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (done) done();
}

void TunnelClient::shutdown(uint64_t drain_ms, std::function<void()> done) {
  shutdown_done_ = std::move(done);
  if (stopping_) {
    if (state_ == State::stopped && !done_timer_.active()) {
      done_timer_.start(0, 0, [this] { finish_stopped(); });
    }
    return;
  }
  stopping_ = true;
  quiet_ = true;  // transitions inside this call are not reported
  switch (state_) {
    case State::idle:
    case State::connecting:
    case State::waiting:
    case State::stopped:
      if (connector_) connector_->cancel();
      handshake_.reset();
      deadline_timer_.stop();
      retry_timer_.stop();
      done_timer_.start(0, 0, [this] { finish_stopped(); });
      break;
    case State::authenticating:
    case State::registering:
      close_session(tunnel::close_code::going_away, "agent shutting down");
      break;
    case State::ready:
    case State::draining:
      TG_INFO(kLog, "draining: %zu calls in flight, waiting up to %llu ms", in_flight(),
              static_cast<unsigned long long>(drain_ms));
      drain_timer_.start(drain_ms, 0, [this] {
        TG_WARN(kLog, "drain timeout: %zu calls still in flight; closing the tunnel", in_flight());
        close_session(tunnel::close_code::going_away, "agent shutting down (drain timeout)");
      });
      begin_draining();
      break;
    case State::closing:
      break;  // on_closed finishes
  }
  quiet_ = false;
}

void TunnelClient::stop() noexcept {
  stopping_ = true;
  on_state_ = nullptr;
  shutdown_done_ = nullptr;
  if (connector_) connector_->cancel();
  handshake_.reset();
  session_.reset();  // aborts the transport; no callback fires
  deadline_timer_.stop();
  retry_timer_.stop();
  drain_timer_.stop();
  drain_poll_timer_.stop();
  done_timer_.stop();
  state_ = State::stopped;
}

}  // namespace tg::agent
