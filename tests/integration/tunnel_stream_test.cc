// Streams through the real tunnel: the hub's TunnelServer and the agent's
// TunnelClient in one process, over real TLS on 127.0.0.1, with the agent
// echoing each request body back as the response body. Checks that several
// MiB cross both ways intact, and that a stalled reader at the hub stops
// the whole pipe (hub -> agent -> hub) at the credit windows instead of
// letting any buffer grow.
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "agent/config.h"
#include "agent/tunnel_client.h"
#include "hub/agent_store.h"
#include "hub/config.h"
#include "hub/tunnel_server.h"
#include "shared/core/loop.h"
#include "shared/crypto/ed25519.h"
#include "shared/crypto/hash.h"
#include "shared/tls/certgen.h"
#include "shared/tls/context.h"
#include "tests/unit/temp_dir.h"

namespace tg {
namespace {

constexpr uint64_t kWaitMs = 20000;
constexpr uint32_t kWindow = 64 * 1024;  // small, so the bound is easy to see

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// Agent side: echoes the request body back. It returns credit for request
// bytes only once it has sent them back, so it never holds more than one
// window however slowly the hub reads.
struct Echo final : tunnel::ChannelHandler {
  std::string pending;
  bool in_fin = false;
  bool responded = false;
  bool finished = false;
  size_t max_pending = 0;

  void flush(tunnel::Channel& ch) {
    if (!responded) {
      ASSERT_TRUE(ch.send(tunnel::Response{0, 200, {{"content-type", "application/octet-stream"}}}).ok());
      responded = true;
    }
    while (!pending.empty()) {
      size_t cap = ch.send_capacity();
      if (cap == 0) return;
      size_t n = std::min(cap, pending.size());
      ASSERT_TRUE(ch.send_data(std::string_view(pending).substr(0, n), in_fin && n == pending.size()).ok());
      ch.consumed(n);
      pending.erase(0, n);
    }
    if (in_fin && !ch.local_fin()) {
      ASSERT_TRUE(ch.send_data("", true).ok());
    }
    if (ch.local_fin() && !finished) {
      finished = true;
      tunnel::Finish f;
      f.upstream_status = 200;
      ASSERT_TRUE(ch.send(f).ok());
      ch.close(tunnel::abort_reason::shutdown);  // finish sent: no abort goes out
    }
  }
  void on_channel_message(tunnel::Channel&, const tunnel::Message&) noexcept override {}
  void on_channel_data(tunnel::Channel& ch, std::string_view d, bool fin) noexcept override {
    pending.append(d);
    in_fin = in_fin || fin;
    max_pending = std::max(max_pending, pending.size());
    flush(ch);
  }
  void on_channel_writable(tunnel::Channel& ch) noexcept override {
    if (!finished) flush(ch);
  }
  void on_channel_closed(tunnel::Channel&, const Status&) noexcept override {}
};

struct EchoCalls final : agent::CallHandler {
  Echo echo;
  int calls = 0;
  void on_call(tunnel::Channel& ch, const tunnel::Call&) noexcept override {
    ++calls;
    ch.set_handler(&echo);
  }
};

// Hub side: sends the request body as the window allows and collects the
// response body; while `stall` is set it reads nothing (returns no credit).
struct Client final : tunnel::ChannelHandler {
  tunnel::Channel* ch = nullptr;
  std::string out;
  size_t sent = 0;
  std::string in;
  size_t unconsumed = 0;
  bool fin = false;
  bool stall = false;
  bool finished = false;
  int status = 0;

  void pump() {
    while (sent < out.size()) {
      size_t cap = ch->send_capacity();
      if (cap == 0) return;
      size_t n = std::min(cap, out.size() - sent);
      ASSERT_TRUE(ch->send_data(std::string_view(out).substr(sent, n), sent + n == out.size()).ok());
      sent += n;
    }
  }
  void resume() {
    stall = false;
    if (ch && unconsumed && !finished) ch->consumed(unconsumed);
    unconsumed = 0;
  }
  void on_channel_message(tunnel::Channel&, const tunnel::Message& m) noexcept override {
    if (auto* r = std::get_if<tunnel::Response>(&m)) status = static_cast<int>(r->status);
    if (std::holds_alternative<tunnel::Finish>(m)) finished = true;
  }
  void on_channel_data(tunnel::Channel& c, std::string_view d, bool f) noexcept override {
    in.append(d);
    fin = fin || f;
    if (stall) unconsumed += d.size();
    else c.consumed(d.size());
  }
  void on_channel_writable(tunnel::Channel&) noexcept override { pump(); }
  void on_channel_closed(tunnel::Channel&, const Status& why) noexcept override {
    ADD_FAILURE() << "channel closed: " << why.to_string();
  }
};

class TunnelStream : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(tls::ensure_self_signed(dir_ + "/hub.crt", dir_ + "/hub.key", "localhost",
                                        {"localhost"}).ok());
    tls::ServerConfig sc;
    sc.cert_chain_file = dir_ + "/hub.crt";
    sc.private_key_file = dir_ + "/hub.key";
    auto ctx = tls::ServerContext::create(sc);
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    auto st = hub::AgentStore::open(dir_ + "/hub.db");
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    store_.emplace(std::move(st.value()));
    ASSERT_TRUE(store_->approve(key_.public_base64(), "alice", 1000000).ok());

    auto defaults = hub::parse("[tunnel]\nwindow = 64KiB\n", "hub.conf");
    ASSERT_TRUE(defaults.config);
    server_ = std::make_unique<hub::TunnelServer>(loop_, defaults.config->tunnel, *ctx, &*store_);
    ASSERT_TRUE(server_->start(net::HostPort{"127.0.0.1", 0}).ok());

    auto conf = agent::parse("hub = wss://localhost:" + std::to_string(server_->port()) +
                                 "/tunnel\nhub_pin = " + (*ctx)->pin() +
                                 "\n[provider p]\ntype = openai\napi_key = sk-x\nmodels = echo\n",
                             "agent.conf");
    ASSERT_TRUE(conf.config);
    agent_config_.emplace(std::move(*conf.config));
    client_ = std::make_unique<agent::TunnelClient>(loop_, *agent_config_, key_, &calls_);
    ASSERT_TRUE(client_->start().ok());
    ASSERT_TRUE(loop_.run_until([&] {
      return client_->state() == agent::TunnelClient::State::ready;
    }, kWaitMs));
  }

  void TearDown() override {
    client_.reset();
    server_.reset();
    store_.reset();
    EXPECT_TRUE(loop_.close().ok());
  }

  // Opens a stream from the hub to the agent, as the passthrough will.
  tunnel::Channel* open(Client& c) {
    auto* e = server_->tunnels().find(key_.public_base64());
    EXPECT_NE(e, nullptr);
    if (!e) return nullptr;
    tunnel::Call call;
    call.request_id = "attempt-" + std::to_string(++attempts_);
    call.model = "echo";
    call.method = "POST";
    call.path = "/v1/echo";
    call.deadline_ms = 60000;
    auto ch = e->tunnel->session().open_channel(call, &c);
    EXPECT_TRUE(ch.ok()) << ch.status().to_string();
    c.ch = ch.ok() ? *ch : nullptr;
    return c.ch;
  }

  Loop loop_;
  int attempts_ = 0;  // request ids of the calls opened
  test::TempDir tmp_{"tg-stream"};
  std::string dir_ = tmp_.path();
  crypto::KeyPair key_ = crypto::KeyPair::generate();
  std::optional<hub::AgentStore> store_;
  std::unique_ptr<hub::TunnelServer> server_;
  std::optional<agent::AgentConfig> agent_config_;
  EchoCalls calls_;
  std::unique_ptr<agent::TunnelClient> client_;
};

TEST_F(TunnelStream, SeveralMebibytesBothWaysArriveIntact) {
  Client c;
  c.out = pattern(8u << 20, 7);
  ASSERT_NE(open(c), nullptr);
  c.pump();
  ASSERT_TRUE(loop_.run_until([&] { return c.finished; }, kWaitMs))
      << "sent " << c.sent << ", echoed back " << c.in.size();
  EXPECT_EQ(c.status, 200);
  EXPECT_TRUE(c.fin);
  EXPECT_EQ(crypto::sha256(c.in), crypto::sha256(c.out));
  EXPECT_EQ(calls_.calls, 1);
  // The echo never held more than one window of the request.
  EXPECT_LE(calls_.echo.max_pending, kWindow);
}

TEST_F(TunnelStream, StalledReaderPausesTheSenderInsteadOfGrowingMemory) {
  Client c;
  c.out = pattern(8u << 20, 9);
  c.stall = true;
  ASSERT_NE(open(c), nullptr);
  c.pump();
  // Let the pipe fill up and settle.
  size_t last = SIZE_MAX;
  for (int i = 0; i < 50 && c.sent != last; ++i) {
    last = c.sent;
    loop_.run_until([] { return false; }, 100);
  }
  // At most one window is unread at the hub, one held by the echo, one in
  // flight towards the agent: the sender stopped far short of 8 MiB.
  EXPECT_LE(c.in.size(), kWindow);
  EXPECT_LE(calls_.echo.pending.size(), kWindow);
  EXPECT_LE(c.sent, 3u * kWindow);
  EXPECT_EQ(c.ch->send_capacity(), 0u);
  // The reader comes back: everything flows and arrives intact.
  c.resume();
  ASSERT_TRUE(loop_.run_until([&] { return c.finished; }, kWaitMs))
      << "sent " << c.sent << ", echoed back " << c.in.size();
  EXPECT_EQ(crypto::sha256(c.in), crypto::sha256(c.out));
}

}  // namespace
}  // namespace tg
