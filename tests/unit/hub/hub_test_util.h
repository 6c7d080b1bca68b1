// Test helpers shared by the hub's in-process tests: a temporary directory, a
// log capture, and a scripted agent (tls::Connector with the hub's pin ->
// ws::connect -> an agent-side tunnel::Session driven by hand, or a raw
// ws::Connection) that authenticates, registers models and may answer calls.
// A raw agent may also record everything the hub sends it and write bytes a
// Session would refuse (the hostile-agent tests). Header-only; test code, not
// product code.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/agent_store.h"
#include "hub/user_store.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/crypto/ed25519.h"
#include "shared/tls/certgen.h"
#include "shared/tls/connector.h"
#include "shared/tls/context.h"
#include "shared/tunnel/auth.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"
#include "shared/tunnel/session.h"
#include "shared/ws/client.h"
#include "shared/ws/connection.h"
#include "tests/unit/temp_dir.h"

namespace tg::hub::testing {

inline constexpr uint64_t kWaitMs = 10000;

using tg::test::TempDir;

// The hub's TLS context for the tests: a self-signed certificate for
// localhost, its files in `dir` (a test failure and null if that fails).
inline std::shared_ptr<tls::ServerContext> hub_tls_context(const TempDir& dir) {
  Status s = tls::ensure_self_signed(dir.file("hub.crt"), dir.file("hub.key"), "localhost",
                                     {"localhost"});
  EXPECT_TRUE(s.ok()) << s.to_string();
  tls::ServerConfig sc;
  sc.cert_chain_file = dir.file("hub.crt");
  sc.private_key_file = dir.file("hub.key");
  auto ctx = tls::ServerContext::create(sc);
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  return ctx.ok() ? *ctx : nullptr;
}

// The agent and user stores of `dir`'s hub.db, with user "alice" and one
// API token for her (in *token). Fails the test if any step fails: call it
// under ASSERT_NO_FATAL_FAILURE.
inline void open_stores_with_alice(const TempDir& dir, std::optional<AgentStore>* agents,
                                   std::optional<UserStore>* users, std::string* token) {
  auto st = AgentStore::open(dir.file("hub.db"));
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  agents->emplace(std::move(st.value()));
  auto us = UserStore::open(dir.file("hub.db"));
  ASSERT_TRUE(us.ok()) << us.status().to_string();
  users->emplace(std::move(us.value()));
  ASSERT_TRUE((*users)->add_user("alice", 1).ok());
  auto tok = (*users)->create_token("alice", 1);
  ASSERT_TRUE(tok.ok());
  *token = tok->token;
}

// Collects log lines so tests can check what the hub logged.
struct LogCapture {
  std::vector<std::string> lines;
  LogCapture() {
    log::set_level(log::Level::debug);
    log::set_sink([](log::Level, const char* line, void* user) {
      static_cast<LogCapture*>(user)->lines.emplace_back(line);
    }, this);
  }
  ~LogCapture() {
    log::set_sink(nullptr, nullptr);
    log::set_level(log::Level::info);
  }
  bool has(const std::string& needle) const {
    for (const auto& l : lines) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

// A scripted agent. By default: answers the challenge with a correct auth,
// then registers `models` after welcome. Every knob below changes one step.
class Agent final : public tunnel::SessionHandler, public ws::Handler {
 public:
  Agent(Loop& loop, const std::string& pin, uint16_t port)
      : key(crypto::KeyPair::generate()), loop_(loop), pin_(pin), port_(port) {}

  // Knobs (set before connect()).
  std::string enroll_token;
  bool send_auth = true;       // false: never answer the challenge
  bool auth_twice = false;     // send the same auth twice in a row
  bool wrong_spki = false;     // sign over another SPKI hash
  std::unique_ptr<crypto::KeyPair> signer;  // sign with this key instead of `key`
  bool raw = false;            // drive a raw ws::Connection instead of a Session
  bool record_all = false;     // raw mode: keep every frame in `frames`, binary ones too
  std::vector<std::string> models = {"m1", "m2"};
  uint32_t max_parallel = 4;
  // Answers the hub's calls (agent side of a stream); unset: the call is
  // closed with abort{shutdown}.
  std::function<void(tunnel::Session&, tunnel::Channel&, const tunnel::Call&)> on_call_fn;
  crypto::KeyPair key;

  // Results.
  bool connect_done = false;
  Status connect_status;
  std::optional<tunnel::Welcome> welcome;
  std::optional<tunnel::Refused> refused;
  std::optional<tunnel::Registered> registered;
  std::optional<tunnel::Goaway> goaway;
  int registered_count = 0;                        // `registered` answers so far
  std::vector<tunnel::Call> raw_calls;             // raw mode: calls the hub opened
  std::vector<tunnel::Prices> prices;
  std::vector<tunnel::ClaimRejected> claim_rejected;
  std::vector<tunnel::Settle> settles;
  std::vector<tunnel::Checkpoint> checkpoints;
  std::vector<tunnel::Message> stream_messages;   // raw mode: credit, abort, error
  // Raw mode with record_all: every message received, in order.
  std::vector<std::pair<ws::Opcode, std::string>> frames;
  // Raw mode: the send queue drained (after having been over its high water).
  std::function<void()> on_drain_fn;
  int closed = 0;
  uint16_t code = 0;
  std::string why;

  void connect() {
    tls::ClientConfig cc;
    cc.pins = {pin_};
    auto ctx = tls::ClientContext::create(cc);
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    connector_ = std::make_unique<tls::Connector>(loop_, *ctx);
    Status s = connector_->connect("127.0.0.1", port_, kWaitMs,
                                   [this](Result<net::StreamPtr> r) { on_tls(std::move(r)); });
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  bool ended() const { return closed > 0 || (connect_done && !connect_status.ok()); }
  std::string pubkey() const { return key.public_base64(); }
  tunnel::Session* session() { return session_.get(); }
  // Raw mode: stop reading (no pong answers any more) / read again.
  void pause() { if (ws_) ws_->pause_reading(); }
  void resume() { if (ws_) ws_->resume_reading(); }
  // Raw mode: writes bytes the Session would refuse to send (foreign stream
  // ids, oversized or malformed messages, data beyond the window).
  Status send_text(std::string_view text) {
    return ws_ ? ws_->send_text(text) : error(Errc::closed, "no raw connection");
  }
  Status send_binary(std::string_view bytes) {
    return ws_ ? ws_->send_binary(bytes) : error(Errc::closed, "no raw connection");
  }
  // Either mode: one control message.
  Status send(const tunnel::Message& m) {
    if (session_) return session_->send(m);
    return send_text(tunnel::encode(m));
  }
  // Raw mode: bytes queued towards the hub and not yet taken by the kernel.
  size_t queued_bytes() const { return ws_ ? ws_->queued_bytes() : 0; }
  bool write_blocked() const { return ws_ && ws_->write_blocked(); }
  // Raw mode: sends `n` pings at once.
  void ping_flood(int n) {
    for (int i = 0; i < n && ws_; ++i) (void)ws_->ping("flood");
  }
  void close(uint16_t c) {
    if (session_) session_->close(c, "test closes");
    if (ws_) (void)ws_->close(c);
  }

 private:
  void on_tls(Result<net::StreamPtr> r) {
    if (!r.ok()) {
      connect_done = true;
      connect_status = r.status();
      return;
    }
    net::StreamPtr stream = std::move(r.value());
    auto spki = tunnel::pin_to_sha256(stream->tls()->peer_pin);
    EXPECT_TRUE(spki.ok());
    if (spki.ok()) spki_ = *spki;
    if (wrong_spki) spki_[0] ^= 0x01;
    ws::ConnectRequest req;
    req.host = "127.0.0.1:" + std::to_string(port_);
    req.path = "/tunnel";
    req.subprotocols = {std::string(tunnel::kSubprotocol)};
    auto hs = ws::connect(loop_, std::move(stream), req,
                          [this](Result<ws::ConnectionPtr> c) { on_ws(std::move(c)); });
    ASSERT_TRUE(hs.ok()) << hs.status().to_string();
    handshake_ = std::move(hs.value());
  }

  void on_ws(Result<ws::ConnectionPtr> c) {
    connect_done = true;
    if (!c.ok()) {
      connect_status = c.status();
      return;
    }
    if (raw) {
      ws_ = std::move(c.value());
      ws_->start(this);
      return;
    }
    session_ = std::make_unique<tunnel::Session>(loop_, std::move(c.value()), tunnel::Side::agent,
                                                 this);
    session_->start();
  }

  tunnel::Auth make_auth(const tunnel::Nonce& nonce) const {
    tunnel::Auth a;
    a.pubkey = key.public_key();
    a.sig = tunnel::sign_auth(signer ? *signer : key, nonce, spki_);
    a.agent_version = "0.0.0-test";
    a.platform = "linux test";
    a.enroll_token = enroll_token;
    return a;
  }

  // Shared by both modes; `send` writes one control message.
  void handle(const tunnel::Message& m, const std::function<void(const tunnel::Message&)>& send) {
    switch (tunnel::type_of(m)) {
      case tunnel::Type::challenge: {
        if (!send_auth) return;
        tunnel::Auth a = make_auth(std::get<tunnel::Challenge>(m).nonce);
        send(a);
        if (auth_twice) send(a);
        return;
      }
      case tunnel::Type::welcome: {
        welcome = std::get<tunnel::Welcome>(m);
        phase_ = tunnel::Phase::session;
        if (session_) {
          tunnel::SessionOptions o;
          o.heartbeat_ms = welcome->heartbeat_ms;
          o.dead_after = welcome->dead_after;
          o.max_streams = welcome->max_streams;
          o.window = welcome->window;
          session_->authenticated(o);
        }
        tunnel::Register r;
        r.models = models;
        r.max_parallel = max_parallel;
        send(r);
        return;
      }
      case tunnel::Type::refused: refused = std::get<tunnel::Refused>(m); return;
      case tunnel::Type::registered:
        registered = std::get<tunnel::Registered>(m);
        ++registered_count;
        return;
      case tunnel::Type::goaway: goaway = std::get<tunnel::Goaway>(m); return;
      case tunnel::Type::call: raw_calls.push_back(std::get<tunnel::Call>(m)); return;
      case tunnel::Type::prices: prices.push_back(std::get<tunnel::Prices>(m)); return;
      case tunnel::Type::claim_rejected:
        claim_rejected.push_back(std::get<tunnel::ClaimRejected>(m));
        return;
      case tunnel::Type::settle: settles.push_back(std::get<tunnel::Settle>(m)); return;
      case tunnel::Type::credit:
      case tunnel::Type::abort:
      case tunnel::Type::error:
        stream_messages.push_back(m);  // raw mode: the hub's side of a stream
        return;
      case tunnel::Type::checkpoint: checkpoints.push_back(std::get<tunnel::Checkpoint>(m)); return;
      default: ADD_FAILURE() << "unexpected " << tunnel::type_name(tunnel::type_of(m)); return;
    }
  }

  // tunnel::SessionHandler
  void on_message(tunnel::Session& s, const tunnel::Message& m) noexcept override {
    handle(m, [&s](const tunnel::Message& out) {
      Status st = s.send(out);
      EXPECT_TRUE(st.ok()) << st.to_string();
    });
  }
  void on_call(tunnel::Session& s, tunnel::Channel& ch, const tunnel::Call& call) noexcept override {
    if (on_call_fn) {
      on_call_fn(s, ch, call);
    } else {
      ch.close(tunnel::abort_reason::shutdown);
    }
  }
  void on_closed(tunnel::Session&, uint16_t c, const std::string& w) noexcept override {
    ++closed;
    code = c;
    why = w;
  }

  // ws::Handler (raw mode)
  void on_ws_message(ws::Connection& c, ws::Opcode type, std::string_view payload) noexcept override {
    if (record_all) {
      frames.emplace_back(type, std::string(payload));
      if (type == ws::Opcode::binary) return;  // request body frames: kept, not interpreted
    }
    ASSERT_EQ(type, ws::Opcode::text);
    auto m = tunnel::decode(payload, phase_);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    handle(*m, [&c](const tunnel::Message& out) {
      Status st = c.send_text(tunnel::encode(out));
      EXPECT_TRUE(st.ok()) << st.to_string();
    });
  }
  void on_ws_drain(ws::Connection&) noexcept override {
    if (on_drain_fn) on_drain_fn();
  }
  void on_ws_close(ws::Connection&, uint16_t c, std::string_view w, bool) noexcept override {
    ++closed;
    code = c;
    why = std::string(w);
  }

  Loop& loop_;
  std::string pin_;
  uint16_t port_;
  crypto::Sha256 spki_{};
  tunnel::Phase phase_ = tunnel::Phase::pre_auth;
  std::unique_ptr<tls::Connector> connector_;
  std::unique_ptr<ws::ClientHandshake> handshake_;
  std::unique_ptr<tunnel::Session> session_;
  ws::ConnectionPtr ws_;
};

}  // namespace tg::hub::testing
