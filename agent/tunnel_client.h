// The agent's side of the tunnel: dials the hub (TCP, TLS pinned to hub_pin,
// WebSocket), answers the challenge with a signature bound to the hub key it
// saw in TLS, registers its models, hands each call to a CallHandler, and
// reconnects with back-off whenever the tunnel ends. Owns the connector, the
// handshake and the tunnel::Session; never listens on a socket and never
// talks to a vendor itself (that is the CallHandler's job).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/backoff.h"
#include "agent/config.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/tls/connector.h"
#include "shared/tls/context.h"
#include "shared/tunnel/session.h"
#include "shared/ws/client.h"

namespace tg::agent {

// Takes over the channels the hub opens. One implementation answers with an
// error (RefusingCallHandler, below); the vendor passthrough replaces it.
class CallHandler {
 public:
  // The hub opened `ch` with `call` on a registered tunnel. Before returning,
  // the handler either sets the channel's handler (and owns the stream from
  // then on: it must end it with finish/error and Channel::close(), or by
  // Channel::close() alone) or answers and closes it at once. The channel
  // stays valid until closed or until its on_channel_closed.
  virtual void on_call(tunnel::Channel& ch, const tunnel::Call& call) noexcept = 0;

 protected:
  virtual ~CallHandler() = default;
};

// Answers every call with an error and closes the channel: `unknown_model`
// for a model not in `models`, otherwise `internal` ("vendor passthrough not
// available in this build"). Used until the passthrough exists.
class RefusingCallHandler final : public CallHandler {
 public:
  explicit RefusingCallHandler(std::vector<std::string> models) : models_(std::move(models)) {}
  void on_call(tunnel::Channel& ch, const tunnel::Call& call) noexcept override;

 private:
  std::vector<std::string> models_;
};

// The agent's ledger side of the tunnel (settlement.h): told of the hub's
// welcome and of each (re)registered tunnel, and given the billing messages
// (prices, settle, checkpoint, claim_rejected).
class LedgerLink {
 public:
  virtual void on_welcome(const tunnel::Welcome& w) noexcept = 0;
  virtual void on_ready() noexcept = 0;
  virtual void on_ledger_message(const tunnel::Message& m) noexcept = 0;

 protected:
  virtual ~LedgerLink() = default;
};

// Counters and last events, for logs and tests.
struct TunnelStats {
  uint64_t attempts = 0;          // connect attempts started
  uint64_t ready_count = 0;       // times the tunnel reached `registered`
  uint64_t calls = 0;             // calls handed to the CallHandler
  uint64_t calls_refused = 0;     // calls answered by the client itself (busy, shutting_down)
  uint16_t last_close_code = 0;   // of the last tunnel that ended
  std::string last_close_reason;
  std::string last_error;         // the last failure logged (connect, TLS, upgrade, refusal)
  std::string last_refusal;       // the code of the last `refused`
  uint64_t last_delay_ms = 0;     // the last reconnect delay chosen
  std::string owner;              // from the last `welcome`
};

class TunnelClient final : private tunnel::SessionHandler {
 public:
  // idle -> connecting (TCP, TLS, WebSocket) -> authenticating (challenge,
  // auth, welcome) -> registering -> ready -> draining (goaway or shutdown:
  // no new calls, in-flight ones finish) -> closing (close sent, waiting for
  // the end) -> waiting (back-off) -> connecting ...; any state -> stopped.
  enum class State {
    idle, connecting, authenticating, registering, ready, draining, closing, waiting, stopped,
  };
  static const char* state_name(State s) noexcept;

  // Observes every transition made from the loop. It may call stop() or
  // shutdown() but must not destroy the client. Transitions made inside
  // start(), stop() and shutdown() are not reported (no callback fires
  // inside the call that caused it).
  using StateFn = std::function<void(State from, State to)>;

  // `config`, `identity` and `calls` must outlive the client. The hub name
  // is resolved again on every attempt.
  TunnelClient(uv_loop_t* loop, const AgentConfig& config, const crypto::KeyPair& identity,
               CallHandler* calls);
  // Same as stop().
  ~TunnelClient() override;
  TunnelClient(const TunnelClient&) = delete;
  TunnelClient& operator=(const TunnelClient&) = delete;

  void set_on_state(StateFn fn) { on_state_ = std::move(fn); }
  // Receives the ledger messages (may be null: they are ignored).
  void set_ledger(LedgerLink* l) noexcept { ledger_ = l; }
  // Sends a control message on the registered tunnel (ready or draining);
  // Errc::closed otherwise.
  Status send(const tunnel::Message& m);
  // Replaces the back-off's random source (tests).
  void set_backoff_random(Backoff::Random random);
  // Numeric source address for the TCP connection ("" = any): lets a
  // benchmark spread many simulated agents over 127.0.0.x. Not a config key.
  void set_source_address(std::string address) { source_address_ = std::move(address); }

  // Builds the TLS context (pinned to config.hub_pin) and schedules the
  // first attempt from the loop. Errc::invalid_argument if not idle, or the
  // TLS context error.
  Status start();
  // Graceful stop: no more reconnects; a registered tunnel stops taking calls,
  // lets in-flight ones finish for up to `drain_ms`, then closes with 1001
  // (channels still open are dropped). `done` fires once, from the loop,
  // when nothing is left open; the state is then `stopped`. A second call
  // only replaces `done`.
  void shutdown(uint64_t drain_ms, std::function<void()> done);
  // Immediate stop: cancels any attempt, aborts the transport (no close
  // frame), stops every timer. No callback of any kind fires afterwards.
  void stop() noexcept;

  State state() const noexcept { return state_; }
  const TunnelStats& stats() const noexcept { return stats_; }
  // Open channels of the current tunnel (in-flight calls).
  size_t in_flight() const noexcept { return session_ ? session_->channel_count() : 0; }

 private:
  // Why the last tunnel or attempt ended, to pick the next delay.
  enum class Retry { normal, rejected, never };

  void on_message(tunnel::Session& s, const tunnel::Message& m) noexcept override;
  void on_call(tunnel::Session& s, tunnel::Channel& ch, const tunnel::Call& call) noexcept override;
  void on_closed(tunnel::Session& s, uint16_t code, const std::string& why) noexcept override;

  void transition(State next);
  void connect_now();
  void on_tls(Result<net::StreamPtr> result);
  void on_upgraded(Result<ws::ConnectionPtr> result);
  void on_deadline();
  void on_challenge(const tunnel::Challenge& c);
  void on_welcome(const tunnel::Welcome& w);
  void on_registered(const tunnel::Registered& r);
  void on_refused(const tunnel::Refused& r);
  void on_goaway(const tunnel::Goaway& g);
  // Closes the session with `code` (on_closed follows from the loop).
  void close_session(uint16_t code, const std::string& why);
  // An attempt failed before a session existed: log, then wait and retry.
  void attempt_failed(const std::string& what, Retry retry, log::Level level = log::Level::warn);
  // Picks the delay, logs `what` with it, arms the retry timer (or stops).
  void schedule_retry(const std::string& what, Retry retry,
                      log::Level level = log::Level::warn);
  // Draining: closes the tunnel once no channel is left.
  void check_drained();
  void begin_draining();
  void finish_stopped();
  uint64_t remaining_ms() const noexcept;
  std::string hub_name() const { return config_.hub.authority(); }

  uv_loop_t* loop_;
  const AgentConfig& config_;
  const crypto::KeyPair& identity_;
  CallHandler* calls_;
  Backoff backoff_;
  std::string platform_;
  std::string source_address_;

  State state_ = State::idle;
  bool started_ = false;       // start() succeeded (the first attempt is deferred)
  std::shared_ptr<tls::ClientContext> tls_ctx_;
  std::unique_ptr<tls::Connector> connector_;
  std::unique_ptr<ws::ClientHandshake> handshake_;
  std::unique_ptr<tunnel::Session> session_;
  std::string seen_pin_;       // the hub pin this tunnel's TLS presented
  uint64_t deadline_ms_ = 0;   // loop time when the current attempt must be ready
  uint64_t ready_at_ms_ = 0;   // loop time the current tunnel registered; 0 if not
  bool auth_sent_ = false;
  Retry retry_ = Retry::normal;
  bool goaway_ = false;        // the hub announced a planned stop on this tunnel
  uint64_t goaway_reconnect_at_ms_ = 0;
  bool stopping_ = false;      // shutdown() or stop() called: no reconnect
  bool quiet_ = false;         // inside shutdown(): transitions are not reported
  std::function<void()> shutdown_done_;

  Timer deadline_timer_;       // connect_timeout over the whole attempt
  Timer retry_timer_;          // back-off wait, and the deferred first attempt
  Timer drain_timer_;          // shutdown drain limit
  Timer drain_poll_timer_;     // checks for the last channel while draining
  Timer done_timer_;           // defers shutdown's `done` out of the call
  StateFn on_state_;
  LedgerLink* ledger_ = nullptr;
  TunnelStats stats_;
};

}  // namespace tg::agent
