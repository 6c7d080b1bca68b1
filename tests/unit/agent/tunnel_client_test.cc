// The agent's tunnel client against a scripted hub in the same process: real
// TLS on 127.0.0.1 (a generated certificate), the real HTTP server and
// WebSocket upgrade, and a hub side driven by hand with the protocol codec on
// a raw ws::Connection (so a test can make the hub refuse, go away, fall
// silent or stop reading). Timings are short and set in the agent config.
#include "agent/tunnel_client.h"

#include <dirent.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>

#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/config.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/core/version.h"
#include "shared/crypto/hash.h"
#include "shared/http/server.h"
#include "shared/net/tcp.h"
#include "shared/tls/certgen.h"
#include "shared/tls/connector.h"
#include "shared/tls/context.h"
#include "shared/tunnel/auth.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/frame.h"
#include "shared/tunnel/messages.h"
#include "shared/ws/server.h"

namespace tg::agent {
namespace {

using State = TunnelClient::State;
namespace tn = tunnel;

constexpr uint64_t kWaitMs = 10000;
constexpr const char* kOtherPin = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

// Collects log lines for the duration of a test.
class LogCapture {
 public:
  LogCapture() {
    lines().clear();
    log::set_level(log::Level::info);
    log::set_sink(&LogCapture::sink, nullptr);
  }
  ~LogCapture() { log::set_sink(nullptr, nullptr); }
  bool contains(const std::string& text) const {
    for (const auto& l : lines()) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::string all() const {
    std::string out;
    for (const auto& l : lines()) out += l + "\n";
    return out;
  }

 private:
  static std::vector<std::string>& lines() {
    static std::vector<std::string> v;
    return v;
  }
  static void sink(log::Level, const char* line, void*) { lines().emplace_back(line); }
};

class ScriptedHub;

// One tunnel as the hub sees it.
struct HubConn final : ws::Handler {
  ScriptedHub* hub = nullptr;
  ws::ConnectionPtr ws;
  tn::Nonce nonce{};
  tn::Phase phase = tn::Phase::pre_auth;
  std::vector<tn::Message> got;      // decoded control messages from the agent
  std::vector<std::string> bad;      // agent texts that did not decode
  bool auth_verified = false;
  bool closed = false;
  uint16_t close_code = 0;
  std::string close_reason;

  void send(const tn::Message& m) {
    Status s = ws->send_text(tn::encode(m));
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  void send_call(uint32_t id, const std::string& model) {
    tn::Call c;
    c.id = id;
    c.request_id = "attempt-" + std::to_string(id);
    c.model = model;
    c.method = "POST";
    c.path = "/v1/chat/completions";
    c.headers = {{"content-type", "application/json"}};
    c.deadline_ms = 60000;
    send(c);
  }
  void send_data(uint32_t id, const std::string& bytes, bool fin) {
    auto f = tn::encode_frame(id, fin, bytes);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(ws->send_binary(*f).ok());
  }
  template <typename T>
  std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& m : got) {
      if (const T* v = std::get_if<T>(&m)) out.push_back(*v);
    }
    return out;
  }
  const tn::Error* error_for(uint32_t id) const {
    for (const auto& m : got) {
      if (const auto* e = std::get_if<tn::Error>(&m); e && e->id == id) return e;
    }
    return nullptr;
  }
  void welcome();

  void on_ws_message(ws::Connection&, ws::Opcode type, std::string_view payload) noexcept override;
  void on_ws_close(ws::Connection&, uint16_t code, std::string_view reason, bool) noexcept override {
    closed = true;
    close_code = code;
    close_reason = std::string(reason);
  }
};

// A hub that speaks TLS + HTTP + WebSocket for real and the tunnel protocol
// by script: by default challenge -> (verify auth) welcome -> registered.
class ScriptedHub final : public http::ServerHandler {
 public:
  explicit ScriptedHub(Loop& loop) : loop_(loop), listener_(loop) {
    auto key = tls::generate_key();
    EXPECT_TRUE(key.ok());
    tls::CertRequest req;
    req.common_name = "test hub";
    req.ip_addresses = {"127.0.0.1"};
    req.days = 2;
    req.key_pem = *key;
    auto cert = tls::issue_cert(req);
    EXPECT_TRUE(cert.ok()) << cert.status().to_string();
    tls::ServerConfig sc;
    sc.cert_chain_pem = *cert;
    sc.private_key_pem = *key;
    auto ctx = tls::ServerContext::create(sc);
    EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
    ctx_ = *ctx;
    auto spki = tn::pin_to_sha256(ctx_->pin());
    EXPECT_TRUE(spki.ok());
    spki_ = *spki;
    server_ = std::make_unique<http::Server>(loop, this);
    Status s = listener_.listen("127.0.0.1", 0, [this](net::StreamPtr tcp) {
      ++tcp_accepts;
      accept_times.push_back(loop_.now_ms());
      if (tls_) server_->accept(tls::accept(loop_, std::move(tcp), ctx_));
      else raw_.push_back(std::move(tcp));  // a "hub" that never answers the TLS hello
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  ~ScriptedHub() override {
    conns.clear();
    raw_.clear();
    server_.reset();
    listener_.close();
  }

  uint16_t port() const { return listener_.port(); }
  const std::string& pin() const { return ctx_->pin(); }
  const crypto::Sha256& spki() const { return spki_; }
  HubConn& last() { return *conns.back(); }
  void stop_tls() { tls_ = false; }

  void on_request(http::Exchange& ex) noexcept override {
    paths.push_back(ex.request().target);
    auto conn = ws::accept_upgrade(loop_, ex,
                                   ws::ServerHandshakeConfig{{std::string(tn::kSubprotocol)}, true});
    if (!conn.ok()) {
      ADD_FAILURE() << conn.status().to_string();
      return;
    }
    auto hc = std::make_unique<HubConn>();
    hc->hub = this;
    hc->ws = std::move(conn.value());
    EXPECT_EQ(hc->ws->subprotocol(), tn::kSubprotocol);
    crypto::random_bytes(hc->nonce.data(), hc->nonce.size());
    hc->ws->start(hc.get());
    if (send_challenge) hc->send(tn::Challenge{1, hc->nonce});
    conns.push_back(std::move(hc));
  }

  // Script knobs.
  bool send_challenge = true;
  std::function<void(HubConn&, const tn::Auth&)> on_auth;  // default: welcome if verified
  tn::Welcome welcome_msg{"alice", 1000, 3, 8, 64 * 1024};

  // Observations.
  int tcp_accepts = 0;
  std::vector<uint64_t> accept_times;
  std::vector<std::string> paths;
  std::vector<std::unique_ptr<HubConn>> conns;

 private:
  Loop& loop_;
  net::TcpListener listener_;
  std::shared_ptr<tls::ServerContext> ctx_;
  crypto::Sha256 spki_{};
  std::unique_ptr<http::Server> server_;
  std::vector<net::StreamPtr> raw_;
  bool tls_ = true;
};

void HubConn::welcome() {
  send(hub->welcome_msg);
  phase = tn::Phase::session;
}

void HubConn::on_ws_message(ws::Connection&, ws::Opcode type, std::string_view payload) noexcept {
  if (type != ws::Opcode::text) return;
  auto m = tn::decode(payload, phase);
  if (!m.ok()) {
    bad.push_back(m.status().to_string());
    return;
  }
  got.push_back(*m);
  if (const auto* a = std::get_if<tn::Auth>(&m.value())) {
    auth_verified = tn::verify_auth(a->pubkey, a->sig, nonce, hub->spki());
    if (hub->on_auth) {
      hub->on_auth(*this, *a);
    } else if (auth_verified) {
      welcome();
    } else {
      send(tn::Refused{"bad_signature", "signature does not verify"});
      (void)ws->close(tn::close_code::auth_failed);
    }
  } else if (const auto* r = std::get_if<tn::Register>(&m.value())) {
    send(tn::Registered{static_cast<uint32_t>(r->models.size())});
  }
}

// A CallHandler that keeps every channel open until told to end it.
struct HoldingCalls final : CallHandler, tn::ChannelHandler {
  std::vector<tn::Channel*> open;
  std::vector<tn::Call> calls;
  int closed_by_tunnel = 0;

  void on_call(tn::Channel& ch, const tn::Call& call) noexcept override {
    ch.set_handler(this);
    open.push_back(&ch);
    calls.push_back(call);
  }
  void on_channel_message(tn::Channel&, const tn::Message&) noexcept override {}
  void on_channel_data(tn::Channel& ch, std::string_view d, bool) noexcept override { ch.consumed(d.size()); }
  void on_channel_closed(tn::Channel& ch, const Status&) noexcept override {
    ++closed_by_tunnel;
    open.erase(std::remove(open.begin(), open.end(), &ch), open.end());
  }
  // Ends every held call with an error.
  void end_all() {
    for (tn::Channel* ch : open) {
      EXPECT_TRUE(ch->send(tn::Error{0, "upstream_error", "test"}).ok());
      ch->close(tn::abort_reason::shutdown);
    }
    open.clear();
  }
};

struct Tunables {
  std::string pin;           // empty: the hub's
  std::string enroll_token;
  std::string connect_timeout = "2s";
  std::string backoff_min = "20ms";
  std::string backoff_max = "100ms";
  int max_parallel = 3;
};

AgentConfig make_config(const ScriptedHub& hub, const Tunables& t, LoadResult* holder) {
  std::ostringstream c;
  c << "hub = wss://127.0.0.1:" << hub.port() << "/tunnel\n"
    << "hub_pin = " << (t.pin.empty() ? hub.pin() : t.pin) << "\n"
    << "identity_key = unused.key\n"
    << "enroll_token = " << t.enroll_token << "\n"
    << "[tunnel]\n"
    << "connect_timeout = " << t.connect_timeout << "\n"
    << "backoff_min = " << t.backoff_min << "\n"
    << "backoff_max = " << t.backoff_max << "\n"
    << "backoff_reset_after = 60s\n"
    << "drain_timeout = 2s\n"
    << "[provider p]\ntype = local\nurl = http://127.0.0.1:11434\nmodels = m1, m2\nmax_parallel = " << t.max_parallel << "\n";
  *holder = parse(c.str(), "/tmp/agent-test.conf");
  EXPECT_TRUE(holder->config) << (holder->errors.empty() ? "" : holder->errors[0].to_string());
  return std::move(*holder->config);
}

// One test's world: loop, hub, config, key, client.
class TunnelClientTest : public ::testing::Test {
 protected:
  // The programs ignore SIGPIPE; so must a test that writes to closed sockets.
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }
  Loop loop;
  LogCapture logs;
  std::unique_ptr<ScriptedHub> hub = std::make_unique<ScriptedHub>(loop);
  LoadResult holder;
  std::unique_ptr<AgentConfig> config;
  crypto::KeyPair key = crypto::KeyPair::generate();
  std::unique_ptr<RefusingCallHandler> refusing;
  std::unique_ptr<TunnelClient> client;
  std::vector<std::pair<State, State>> transitions;

  void start(const Tunables& t = {}, CallHandler* calls = nullptr, bool longest_delay = false) {
    config = std::make_unique<AgentConfig>(make_config(*hub, t, &holder));
    refusing = std::make_unique<RefusingCallHandler>(config->models());
    client = std::make_unique<TunnelClient>(loop, *config, key, calls ? calls : refusing.get());
    client->set_on_state([this](State from, State to) { transitions.emplace_back(from, to); });
    // Full jitter may pick 0 ms, and libuv runs due timers again after polling
    // in the same turn: tests that must see `waiting` take the longest delay.
    if (longest_delay) client->set_backoff_random([](uint64_t bound) { return bound; });
    Status s = client->start();
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
  bool wait(const std::function<bool()>& done, uint64_t ms = kWaitMs) { return loop.run_until(done, ms); }
  bool wait_ready(uint64_t count = 1) {
    return wait([&] { return client->state() == State::ready && client->stats().ready_count >= count; });
  }
  // Runs the loop a little while nothing is expected to happen.
  void idle(uint64_t ms) { (void)loop.run_until([] { return false; }, ms); }
  void finish() {
    client.reset();
    hub.reset();
    EXPECT_TRUE(loop.close().ok());
  }
};

// Local ports of LISTEN TCP sockets held by this process (/proc/self).
std::set<uint16_t> own_listening_ports() {
  std::set<std::string> inodes;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      char target[256];
      std::string link = std::string("/proc/self/fd/") + e->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<size_t>(n));
      if (t.rfind("socket:[", 0) == 0) inodes.insert(t.substr(8, t.size() - 9));
    }
    ::closedir(d);
  }
  std::set<uint16_t> ports;
  for (const char* file : {"/proc/self/net/tcp", "/proc/self/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (st != "0A" || !inodes.count(inode)) continue;  // 0A = LISTEN
      ports.insert(static_cast<uint16_t>(std::stoul(local.substr(local.find(':') + 1), nullptr, 16)));
    }
  }
  return ports;
}

TEST_F(TunnelClientTest, ReachesReadyWithAuthBoundToHubKey) {
  start();
  ASSERT_TRUE(wait_ready()) << logs.all();
  HubConn& c = hub->last();
  EXPECT_TRUE(c.auth_verified) << "the signature must verify with the hub's own SPKI hash";
  auto auths = c.all<tn::Auth>();
  ASSERT_EQ(auths.size(), 1u);
  EXPECT_EQ(auths[0].pubkey, key.public_key());
  EXPECT_EQ(auths[0].agent_version, tg::version());
  EXPECT_NE(auths[0].platform.find(' '), std::string::npos) << auths[0].platform;
  EXPECT_TRUE(auths[0].enroll_token.empty());
  auto regs = c.all<tn::Register>();
  ASSERT_EQ(regs.size(), 1u);
  EXPECT_EQ(regs[0].models, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(regs[0].max_parallel, 3u);
  EXPECT_EQ(hub->paths, std::vector<std::string>{"/tunnel"});
  EXPECT_EQ(client->stats().owner, "alice");
  EXPECT_TRUE(logs.contains("tunnel ready: hub 127.0.0.1:" + std::to_string(hub->port()) +
                            ", owner alice, 2 models")) << logs.all();
  const std::vector<std::pair<State, State>> expected = {
      {State::idle, State::connecting}, {State::connecting, State::authenticating},
      {State::authenticating, State::registering}, {State::registering, State::ready}};
  EXPECT_EQ(transitions, expected);
  finish();
}

TEST_F(TunnelClientTest, OpensNoListeningSocket) {
  start();
  ASSERT_TRUE(wait_ready());
  // The only listener in this process is the scripted hub's.
  EXPECT_EQ(own_listening_ports(), std::set<uint16_t>{hub->port()});
  finish();
}

TEST_F(TunnelClientTest, WrongPinRefusesHubSendsNoAuthAndRetries) {
  Tunables t;
  t.pin = kOtherPin;
  start(t);
  ASSERT_TRUE(wait([&] { return client->stats().attempts >= 2 && hub->tcp_accepts >= 2; }));
  EXPECT_TRUE(hub->conns.empty()) << "no WebSocket (hence no auth) after a pin mismatch";
  const std::string& err = client->stats().last_error;
  EXPECT_EQ(err.rfind("refusing hub: ", 0), 0u) << err;
  EXPECT_NE(err.find("pin mismatch"), std::string::npos) << err;
  EXPECT_NE(err.find(hub->pin()), std::string::npos) << "names the key the hub presented: " << err;
  EXPECT_TRUE(logs.contains("refusing hub: ")) << logs.all();
  EXPECT_EQ(client->stats().ready_count, 0u);
  finish();
}

TEST_F(TunnelClientTest, UnknownKeyIsLoggedWithApproveCommandAndRetriedAtMaxBackoff) {
  hub->on_auth = [](HubConn& c, const tn::Auth&) {
    c.send(tn::Refused{"unknown_key", "this key is not approved on this hub"});
    (void)c.ws->close(tn::close_code::auth_failed, "unknown key");
  };
  Tunables t;
  t.backoff_min = "10ms";
  t.backoff_max = "400ms";
  start(t);
  ASSERT_TRUE(wait([&] { return hub->conns.size() >= 2; })) << logs.all();
  EXPECT_EQ(client->stats().last_refusal, "unknown_key");
  EXPECT_GE(client->stats().last_delay_ms, 200u) << "a rejected agent waits at max back-off";
  EXPECT_LE(client->stats().last_delay_ms, 400u);
  EXPECT_GE(hub->accept_times[1] - hub->accept_times[0], 200u);
  EXPECT_TRUE(logs.contains("hub refused this agent: unknown key " + key.public_base64() +
                            "; ask the hub operator to run: tokengo-hub agent approve " +
                            key.public_base64() + " --owner NAME"))
      << logs.all();
  EXPECT_EQ(client->stats().ready_count, 0u);
  finish();
}

TEST_F(TunnelClientTest, BadSignatureRefusalUsesOrdinaryBackoff) {
  hub->on_auth = [](HubConn& c, const tn::Auth&) {
    c.send(tn::Refused{"bad_signature", ""});
    (void)c.ws->close(tn::close_code::auth_failed);
  };
  Tunables t;
  t.backoff_min = "10ms";
  t.backoff_max = "400ms";
  start(t);
  ASSERT_TRUE(wait([&] { return hub->conns.size() >= 2; }));
  EXPECT_EQ(client->stats().last_refusal, "bad_signature");
  EXPECT_LE(client->stats().last_delay_ms, 10u);
  EXPECT_TRUE(logs.contains("hub refused this agent: bad signature")) << logs.all();
  finish();
}

TEST_F(TunnelClientTest, ReplacedTunnelStopsReconnecting) {
  start();
  ASSERT_TRUE(wait_ready());
  hub->last().send(tn::Refused{"replaced", "a newer session took over"});
  (void)hub->last().ws->close(tn::close_code::replaced);
  ASSERT_TRUE(wait([&] { return client->state() == State::stopped; }));
  idle(200);
  EXPECT_EQ(hub->tcp_accepts, 1);
  EXPECT_EQ(transitions.back().second, State::stopped);
  EXPECT_TRUE(logs.contains("another agent with key " + key.public_base64())) << logs.all();
  finish();
}

TEST_F(TunnelClientTest, EnrollTokenIsSentWhenConfigured) {
  Tunables t;
  t.enroll_token = "tge_3kq9Zx7V";
  start(t);
  ASSERT_TRUE(wait_ready());
  auto auths = hub->last().all<tn::Auth>();
  ASSERT_EQ(auths.size(), 1u);
  EXPECT_EQ(auths[0].enroll_token, "tge_3kq9Zx7V");
  EXPECT_FALSE(logs.contains("tge_3kq9Zx7V")) << "the token is never logged";
  finish();
}

TEST_F(TunnelClientTest, ReconnectsByItselfAfterHubCloses) {
  start();
  ASSERT_TRUE(wait_ready());
  (void)hub->last().ws->close(tn::close_code::going_away, "hub restart");
  ASSERT_TRUE(wait_ready(2)) << logs.all();
  EXPECT_EQ(hub->conns.size(), 2u);
  EXPECT_EQ(client->stats().last_close_code, tn::close_code::going_away);
  EXPECT_TRUE(logs.contains("closed (1001: hub restart)")) << logs.all();
  finish();
}

TEST_F(TunnelClientTest, SilentHubIsDetectedByHeartbeatAndReconnected) {
  hub->welcome_msg.heartbeat_ms = 1000;
  hub->welcome_msg.dead_after = 1;
  Tunables t;
  t.connect_timeout = "1s";  // also bounds the wait for the silent hub's close frame
  start(t);
  ASSERT_TRUE(wait_ready());
  hub->last().ws->pause_reading();  // no pong, no frame: silent
  ASSERT_TRUE(wait([&] { return client->stats().last_close_code != 0; }, 15000));
  EXPECT_EQ(client->stats().last_close_code, tn::close_code::heartbeat_timeout);
  ASSERT_TRUE(wait_ready(2)) << logs.all();
  finish();
}

TEST_F(TunnelClientTest, MissingChallengeTimesOutAndRetries) {
  hub->send_challenge = false;
  Tunables t;
  // Long enough for the TLS handshake under qemu-user on a loaded machine
  // (the timeout must fire waiting for the challenge, not in the handshake);
  // two attempts still fit kWaitMs.
  t.connect_timeout = "2s";
  start(t);
  ASSERT_TRUE(wait([&] { return hub->conns.size() >= 2; })) << logs.all();
  EXPECT_EQ(client->stats().last_close_code, tn::close_code::auth_timeout);
  EXPECT_NE(client->stats().last_error.find("no welcome"), std::string::npos);
  finish();
}

TEST_F(TunnelClientTest, DefaultHandlerAnswersCallsWithHonestErrors) {
  start();
  ASSERT_TRUE(wait_ready());
  HubConn& c = hub->last();
  c.send_call(1, "m1");
  c.send_data(1, "{\"model\":\"m1\"}", true);  // body racing the answer is ignored
  c.send_call(2, "not-served");
  ASSERT_TRUE(wait([&] { return c.error_for(1) && c.error_for(2); }));
  EXPECT_EQ(c.error_for(1)->code, "internal");
  EXPECT_EQ(c.error_for(1)->message, "vendor passthrough not available in this build");
  EXPECT_EQ(c.error_for(2)->code, "unknown_model");
  EXPECT_EQ(c.error_for(2)->message, "no provider for model not-served");
  idle(100);
  EXPECT_FALSE(c.closed) << c.close_code << " " << c.close_reason;
  EXPECT_EQ(client->in_flight(), 0u);
  finish();
}

TEST_F(TunnelClientTest, CallsOverMaxParallelAreAnsweredBusy) {
  HoldingCalls held;
  Tunables t;
  t.max_parallel = 1;
  start(t, &held);
  ASSERT_TRUE(wait_ready());
  HubConn& c = hub->last();
  c.send_call(1, "m1");
  c.send_call(2, "m1");
  ASSERT_TRUE(wait([&] { return c.error_for(2) != nullptr; }));
  EXPECT_EQ(c.error_for(2)->code, "busy");
  EXPECT_EQ(held.calls.size(), 1u);
  EXPECT_EQ(client->in_flight(), 1u);
  held.end_all();
  ASSERT_TRUE(wait([&] { return c.error_for(1) != nullptr; }));
  finish();
}

TEST_F(TunnelClientTest, GoawayDrainsRefusesNewCallsAndReconnectsAfterDelay) {
  HoldingCalls held;
  start({}, &held);
  ASSERT_TRUE(wait_ready());
  HubConn& old = hub->last();
  old.send_call(1, "m1");
  ASSERT_TRUE(wait([&] { return held.open.size() == 1; }));
  const uint64_t goaway_at = loop.now_ms();
  old.send(tn::Goaway{"restart", 300});
  ASSERT_TRUE(wait([&] { return client->state() == State::draining; }));
  old.send_call(2, "m1");  // the hub should not, but the agent must not take it
  ASSERT_TRUE(wait([&] { return old.error_for(2) != nullptr; }));
  EXPECT_EQ(old.error_for(2)->code, "shutting_down");
  EXPECT_EQ(held.calls.size(), 1u);
  idle(50);
  EXPECT_FALSE(old.closed) << "in-flight call keeps the old tunnel open";
  held.end_all();
  ASSERT_TRUE(wait([&] { return old.closed; }));
  EXPECT_EQ(old.close_code, tn::close_code::normal);
  ASSERT_TRUE(wait_ready(2)) << logs.all();
  EXPECT_LE(client->stats().last_delay_ms, 300u);
  EXPECT_GE(hub->accept_times[1] - goaway_at, 300u) << "reconnects only after reconnect_after_ms";
  finish();
}

TEST_F(TunnelClientTest, GoawayWithoutCallsClosesAtOnce) {
  start();
  ASSERT_TRUE(wait_ready());
  hub->last().send(tn::Goaway{"shutdown", 0});
  ASSERT_TRUE(wait([&] { return hub->conns[0]->closed; }));
  EXPECT_EQ(hub->conns[0]->close_code, tn::close_code::normal);
  ASSERT_TRUE(wait_ready(2));
  finish();
}

TEST_F(TunnelClientTest, ShutdownWhenReadyClosesWith1001) {
  start();
  ASSERT_TRUE(wait_ready());
  int done = 0;
  client->shutdown(1000, [&] { ++done; });
  EXPECT_EQ(done, 0) << "done fires from the loop";
  ASSERT_TRUE(wait([&] { return done == 1; }));
  EXPECT_EQ(client->state(), State::stopped);
  ASSERT_TRUE(wait([&] { return hub->last().closed; }));
  EXPECT_EQ(hub->last().close_code, tn::close_code::going_away);
  idle(100);
  EXPECT_EQ(hub->tcp_accepts, 1);
  EXPECT_EQ(done, 1);
  finish();
}

TEST_F(TunnelClientTest, ShutdownLetsInFlightCallFinishAndRefusesNewOnes) {
  HoldingCalls held;
  start({}, &held);
  ASSERT_TRUE(wait_ready());
  HubConn& c = hub->last();
  c.send_call(1, "m1");
  ASSERT_TRUE(wait([&] { return held.open.size() == 1; }));
  int done = 0;
  client->shutdown(5000, [&] { ++done; });
  c.send_call(2, "m2");
  ASSERT_TRUE(wait([&] { return c.error_for(2) != nullptr; }));
  EXPECT_EQ(c.error_for(2)->code, "shutting_down");
  EXPECT_FALSE(c.closed);
  EXPECT_EQ(done, 0);
  held.end_all();
  ASSERT_TRUE(wait([&] { return done == 1 && c.closed; }));
  EXPECT_EQ(c.close_code, tn::close_code::going_away);
  ASSERT_NE(c.error_for(1), nullptr);
  EXPECT_EQ(c.error_for(1)->code, "upstream_error") << "the held call finished normally";
  finish();
}

TEST_F(TunnelClientTest, ShutdownDrainTimeoutDropsRemainingCalls) {
  HoldingCalls held;
  start({}, &held);
  ASSERT_TRUE(wait_ready());
  HubConn& c = hub->last();
  c.send_call(1, "m1");
  ASSERT_TRUE(wait([&] { return held.open.size() == 1; }));
  int done = 0;
  client->shutdown(100, [&] { ++done; });
  ASSERT_TRUE(wait([&] { return done == 1; }));
  EXPECT_EQ(held.closed_by_tunnel, 1);
  EXPECT_TRUE(held.open.empty());
  EXPECT_TRUE(logs.contains("drain timeout")) << logs.all();
  finish();
}

TEST_F(TunnelClientTest, ShutdownWhileWaitingStopsWithoutAnotherAttempt) {
  Tunables t;
  t.pin = kOtherPin;
  t.backoff_min = "5s";
  t.backoff_max = "5s";
  start(t);
  ASSERT_TRUE(wait([&] { return client->state() == State::waiting; }));
  int done = 0;
  client->shutdown(1000, [&] { ++done; });
  ASSERT_TRUE(wait([&] { return done == 1; }));
  EXPECT_EQ(client->state(), State::stopped);
  EXPECT_EQ(client->stats().attempts, 1u);
  finish();
}

TEST_F(TunnelClientTest, StopWhileConnectingIsClean) {
  hub->stop_tls();  // TCP accepted, TLS never answered: stays in connecting
  start();
  ASSERT_TRUE(wait([&] { return hub->tcp_accepts == 1 && client->state() == State::connecting; }));
  const size_t seen = transitions.size();
  client->stop();
  EXPECT_EQ(client->state(), State::stopped);
  idle(100);
  EXPECT_EQ(transitions.size(), seen) << "no callback after stop()";
  finish();
}

TEST_F(TunnelClientTest, StopWhileWaitingIsClean) {
  Tunables t;
  t.pin = kOtherPin;
  t.backoff_min = "50ms";
  t.backoff_max = "50ms";
  start(t, nullptr, /*longest_delay=*/true);
  ASSERT_TRUE(wait([&] { return client->state() == State::waiting; }));
  const size_t seen = transitions.size();
  client->stop();
  idle(200);
  EXPECT_EQ(transitions.size(), seen);
  EXPECT_EQ(client->stats().attempts, 1u);
  finish();
}

TEST_F(TunnelClientTest, StopWhenReadyIsClean) {
  start();
  ASSERT_TRUE(wait_ready());
  const size_t seen = transitions.size();
  client->stop();
  ASSERT_TRUE(wait([&] { return hub->last().closed; }));
  idle(100);
  EXPECT_EQ(transitions.size(), seen);
  EXPECT_EQ(hub->tcp_accepts, 1);
  finish();
}

TEST_F(TunnelClientTest, SourceAddressIsUsedForTheConnection) {
  config = std::make_unique<AgentConfig>(make_config(*hub, {}, &holder));
  refusing = std::make_unique<RefusingCallHandler>(config->models());
  client = std::make_unique<TunnelClient>(loop, *config, key, refusing.get());
  client->set_source_address("127.0.0.2");
  ASSERT_TRUE(client->start().ok());
  ASSERT_TRUE(wait_ready());
  EXPECT_EQ(hub->last().ws->peer_address().rfind("127.0.0.2:", 0), 0u) << hub->last().ws->peer_address();
  finish();
}

TEST_F(TunnelClientTest, StartTwiceIsAnError) {
  start();
  Status s = client->start();
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  finish();
}

}  // namespace
}  // namespace tg::agent
