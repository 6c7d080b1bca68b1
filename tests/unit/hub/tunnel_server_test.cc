// The hub's tunnel server end to end in one process: real TLS on 127.0.0.1
// with a certificate from our generator, a temporary SQLite registry, and
// scripted agents (tls::Connector with the pin -> ws::connect -> an agent-side
// tunnel::Session driven by hand, or a raw ws::Connection where the test must
// stop reading).
#include "hub/tunnel_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/agent_store.h"
#include "hub/config.h"
#include "tests/unit/hub/hub_test_util.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/crypto/ed25519.h"
#include "shared/net/tcp.h"
#include "shared/tls/certgen.h"
#include "shared/tls/connector.h"
#include "shared/tls/context.h"
#include "shared/tunnel/auth.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"
#include "shared/tunnel/session.h"
#include "shared/ws/client.h"
#include "shared/ws/connection.h"

namespace tg::hub {
namespace {

using testing::Agent;
using testing::kWaitMs;
using testing::LogCapture;
using testing::TempDir;

// Records what a plain stream delivers.
struct RawPeer final : net::StreamHandler {
  net::StreamPtr s;
  std::string got;
  bool ended = false;
  void on_stream_read(net::Stream&, std::string_view d) noexcept override { got.append(d); }
  void on_stream_end(net::Stream&, const Status&) noexcept override { ended = true; }
};

class HubTunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    tls_ctx = testing::hub_tls_context(dir);
    ASSERT_TRUE(tls_ctx);
    pin = tls_ctx->pin();
    auto st = AgentStore::open(dir.file("hub.db"));
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    store.emplace(std::move(st.value()));
    auto defaults = parse("", "test.conf");
    ASSERT_TRUE(defaults.config);
    settings = defaults.config->tunnel;
    settings.auth_timeout_ms = 5000;
    settings.events_poll_ms = 20;
    settings.drain_timeout_ms = 2000;
    settings.goaway_spread_ms = 500;
  }

  void start_server() {
    server = std::make_unique<TunnelServer>(loop, settings, tls_ctx, &*store);
    Status s = server->start(net::HostPort{"127.0.0.1", 0});
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_NE(server->port(), 0);
  }

  Agent& add_agent() {
    agents.push_back(std::make_unique<Agent>(loop, pin, server->port()));
    return *agents.back();
  }
  Agent& approved_agent(const std::string& owner = "alice") {
    Agent& a = add_agent();
    auto r = store->approve(a.pubkey(), owner, kTierPpmMax);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return a;
  }

  bool run(const std::function<bool()>& done, uint64_t ms = kWaitMs) {
    return loop.run_until(done, ms);
  }

  bool store_online(const std::string& pubkey) {
    auto rec = store->lookup(pubkey);
    EXPECT_TRUE(rec.ok());
    return rec.ok() && rec->has_value() && (*rec)->online;
  }

  void TearDown() override {
    agents.clear();
    server.reset();
    EXPECT_TRUE(loop.close().ok());
  }

  LogCapture logs;
  TempDir dir;
  Loop loop;
  std::shared_ptr<tls::ServerContext> tls_ctx;
  std::string pin;
  std::optional<AgentStore> store;
  TunnelSettings settings{};
  std::unique_ptr<TunnelServer> server;
  std::vector<std::unique_ptr<Agent>> agents;
};

TEST_F(HubTunnelTest, ApprovedKeyIsWelcomedRegisteredAndOnline) {
  start_server();
  Agent& a = approved_agent("alice");
  a.connect();
  ASSERT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
  ASSERT_TRUE(a.welcome.has_value());
  EXPECT_EQ(a.welcome->owner, "alice");
  EXPECT_EQ(a.welcome->dead_after, settings.dead_after);
  EXPECT_EQ(a.welcome->max_streams, settings.max_streams);
  EXPECT_EQ(a.welcome->window, settings.window_bytes);
  EXPECT_EQ(a.registered->models, 2u);
  EXPECT_TRUE(server->tunnels().online(a.pubkey()));
  EXPECT_EQ(server->tunnels().count(), 1u);
  auto serving = server->tunnels().tunnels_for("m2");
  ASSERT_EQ(serving.size(), 1u);
  EXPECT_EQ(serving[0]->pubkey, a.pubkey());
  EXPECT_EQ(serving[0]->max_parallel, 4u);
  EXPECT_EQ(serving[0]->in_flight, 0u);
  EXPECT_TRUE(server->tunnels().tunnels_for("m3").empty());
  EXPECT_TRUE(store_online(a.pubkey()));
  auto rec = store->lookup(a.pubkey());
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->last_addr.rfind("127.0.0.1:", 0), 0u) << (*rec)->last_addr;

  a.close(tunnel::close_code::normal);
  ASSERT_TRUE(run([&] { return !server->tunnels().online(a.pubkey()) && a.closed; }));
  EXPECT_FALSE(store_online(a.pubkey()));
  EXPECT_TRUE(server->tunnels().tunnels_for("m2").empty());
}

TEST_F(HubTunnelTest, ReRegisterReplacesTheModelList) {
  start_server();
  Agent& a = approved_agent();
  a.connect();
  ASSERT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
  a.registered.reset();
  tunnel::Register r;
  r.models = {"m3"};
  r.max_parallel = 9;
  ASSERT_TRUE(a.session()->send(r).ok());
  ASSERT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
  EXPECT_EQ(a.registered->models, 1u);
  EXPECT_TRUE(server->tunnels().tunnels_for("m1").empty());
  auto serving = server->tunnels().tunnels_for("m3");
  ASSERT_EQ(serving.size(), 1u);
  EXPECT_EQ(serving[0]->max_parallel, 9u);
}

TEST_F(HubTunnelTest, UnknownKeyIsRefusedWith4001AndTheApproveCommand) {
  start_server();
  Agent& a = add_agent();
  a.connect();
  ASSERT_TRUE(run([&] { return a.ended(); }));
  ASSERT_TRUE(a.refused.has_value());
  EXPECT_EQ(a.refused->code, tunnel::refusal::unknown_key);
  EXPECT_NE(a.refused->message.find("tokengo-hub agent approve " + a.pubkey()), std::string::npos)
      << a.refused->message;
  EXPECT_EQ(a.code, tunnel::close_code::auth_failed);
  EXPECT_FALSE(a.welcome.has_value());
  EXPECT_EQ(server->tunnels().count(), 0u);
  auto rec = store->lookup(a.pubkey());
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());
}

TEST_F(HubTunnelTest, RevokedKeyIsRefusedWith4003) {
  start_server();
  Agent& a = approved_agent();
  ASSERT_TRUE(store->revoke(a.pubkey()).ok());
  a.connect();
  ASSERT_TRUE(run([&] { return a.ended(); }));
  ASSERT_TRUE(a.refused.has_value());
  EXPECT_EQ(a.refused->code, tunnel::refusal::revoked);
  EXPECT_EQ(a.code, tunnel::close_code::revoked);
  EXPECT_FALSE(store_online(a.pubkey()));
}

TEST_F(HubTunnelTest, SignatureByAnotherKeyIsRefusedWith4001) {
  start_server();
  Agent& a = approved_agent();
  a.signer = std::make_unique<crypto::KeyPair>(crypto::KeyPair::generate());
  a.connect();
  ASSERT_TRUE(run([&] { return a.ended(); }));
  ASSERT_TRUE(a.refused.has_value());
  EXPECT_EQ(a.refused->code, tunnel::refusal::bad_signature);
  EXPECT_EQ(a.code, tunnel::close_code::auth_failed);
  EXPECT_FALSE(server->tunnels().online(a.pubkey()));
}

TEST_F(HubTunnelTest, SignatureOverAnotherHubKeyIsRefusedWith4001) {
  start_server();
  Agent& a = approved_agent();
  a.wrong_spki = true;  // what a relayed signature from a man in the middle looks like
  a.connect();
  ASSERT_TRUE(run([&] { return a.ended(); }));
  ASSERT_TRUE(a.refused.has_value());
  EXPECT_EQ(a.refused->code, tunnel::refusal::bad_signature);
  EXPECT_EQ(a.code, tunnel::close_code::auth_failed);
}

TEST_F(HubTunnelTest, EnrollTokenWorksOnlyOnce) {
  start_server();
  auto token = store->create_enroll_token("bob", kTierPpmMax, kMinTokenTtlMs);
  ASSERT_TRUE(token.ok()) << token.status().to_string();
  Agent& first = add_agent();
  first.enroll_token = *token;
  first.connect();
  ASSERT_TRUE(run([&] { return first.registered.has_value() || first.ended(); }));
  ASSERT_TRUE(first.welcome.has_value());
  EXPECT_EQ(first.welcome->owner, "bob");
  auto rec = store->lookup(first.pubkey());
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->owner, "bob");

  Agent& second = add_agent();
  second.enroll_token = *token;
  second.connect();
  ASSERT_TRUE(run([&] { return second.ended(); }));
  ASSERT_TRUE(second.refused.has_value());
  EXPECT_EQ(second.refused->code, tunnel::refusal::bad_enroll_token);
  EXPECT_EQ(second.code, tunnel::close_code::auth_failed);
  auto rec2 = store->lookup(second.pubkey());
  ASSERT_TRUE(rec2.ok());
  EXPECT_FALSE(rec2->has_value());
  // The token never reaches the log.
  EXPECT_FALSE(logs.has(*token));
}

TEST_F(HubTunnelTest, EnrolledKeyReconnectsWithItsSpentToken) {
  start_server();
  auto token = store->create_enroll_token("bob", kTierPpmMax, kMinTokenTtlMs);
  ASSERT_TRUE(token.ok());
  Agent& first = add_agent();
  first.enroll_token = *token;
  first.connect();
  ASSERT_TRUE(run([&] { return first.registered.has_value() || first.ended(); }));
  first.close(tunnel::close_code::normal);
  ASSERT_TRUE(run([&] { return first.closed > 0 && server->tunnels().count() == 0; }));

  Agent& again = add_agent();
  again.key = std::move(first.key);
  again.enroll_token = *token;  // still in its config, already spent
  again.connect();
  ASSERT_TRUE(run([&] { return again.registered.has_value() || again.ended(); }));
  ASSERT_TRUE(again.welcome.has_value());
  EXPECT_EQ(again.welcome->owner, "bob");
}

TEST_F(HubTunnelTest, ApprovedKeyDoesNotConsumeATokenItPresents) {
  start_server();
  auto token = store->create_enroll_token("dave", kTierPpmMax, kMinTokenTtlMs);
  ASSERT_TRUE(token.ok());
  Agent& approved = approved_agent("carol");
  approved.enroll_token = *token;
  approved.connect();
  ASSERT_TRUE(run([&] { return approved.registered.has_value() || approved.ended(); }));
  ASSERT_TRUE(approved.welcome.has_value());
  EXPECT_EQ(approved.welcome->owner, "carol");

  Agent& fresh = add_agent();
  fresh.enroll_token = *token;
  fresh.connect();
  ASSERT_TRUE(run([&] { return fresh.registered.has_value() || fresh.ended(); }));
  ASSERT_TRUE(fresh.welcome.has_value());
  EXPECT_EQ(fresh.welcome->owner, "dave");
}

TEST_F(HubTunnelTest, SecondAuthOnOneConnectionIsAProtocolError) {
  start_server();
  Agent& a = approved_agent();
  a.auth_twice = true;
  a.connect();
  ASSERT_TRUE(run([&] { return a.ended(); }));
  EXPECT_EQ(a.code, tunnel::close_code::bad_message);
  ASSERT_TRUE(run([&] { return server->tunnels().count() == 0 && server->connection_count() == 0; }));
  EXPECT_FALSE(store_online(a.pubkey()));
}

TEST_F(HubTunnelTest, NoAuthWithinTheAuthTimeoutCloses4030) {
  // The timeout also covers TLS and the upgrade: leave them room on a slow
  // machine (or under qemu), the agent never authenticates anyway.
  settings.auth_timeout_ms = 1500;
  start_server();
  Agent& a = approved_agent();
  a.send_auth = false;
  a.connect();
  ASSERT_TRUE(run([&] { return a.ended(); }));
  EXPECT_TRUE(a.connect_status.ok()) << a.connect_status.to_string();
  EXPECT_EQ(a.code, tunnel::close_code::auth_timeout);
  EXPECT_FALSE(a.welcome.has_value());
}

TEST_F(HubTunnelTest, SameKeyTwiceReplacesTheFirstSession) {
  start_server();
  Agent& first = approved_agent();
  first.connect();
  ASSERT_TRUE(run([&] { return first.registered.has_value() || first.ended(); }));
  Agent& second = add_agent();
  second.key = std::move(first.key);
  second.connect();
  ASSERT_TRUE(run([&] { return (second.registered.has_value() && first.closed) || second.ended(); }));
  ASSERT_TRUE(second.registered.has_value());
  ASSERT_TRUE(first.refused.has_value());
  EXPECT_EQ(first.refused->code, tunnel::refusal::replaced);
  EXPECT_EQ(first.code, tunnel::close_code::replaced);
  // Let the hub finish closing the first tunnel: the second stays online.
  ASSERT_TRUE(run([&] { return server->connection_count() == 1; }));
  EXPECT_EQ(server->tunnels().count(), 1u);
  EXPECT_TRUE(server->tunnels().online(second.pubkey()));
  EXPECT_EQ(server->tunnels().tunnels_for("m1").size(), 1u);
  EXPECT_TRUE(store_online(second.pubkey()));
  EXPECT_EQ(second.closed, 0);
}

TEST_F(HubTunnelTest, RevocationByAnotherProcessClosesTheLiveTunnel) {
  start_server();
  Agent& a = approved_agent();
  a.connect();
  ASSERT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
  {
    // Like the operator CLI: its own connection to the same file.
    auto cli = AgentStore::open(dir.file("hub.db"), false);
    ASSERT_TRUE(cli.ok()) << cli.status().to_string();
    auto r = cli->revoke(a.pubkey());
    ASSERT_TRUE(r.ok() && *r);
  }
  ASSERT_TRUE(run([&] { return a.ended(); }));
  ASSERT_TRUE(a.refused.has_value());
  EXPECT_EQ(a.refused->code, tunnel::refusal::revoked);
  EXPECT_EQ(a.code, tunnel::close_code::revoked);
  EXPECT_FALSE(server->tunnels().online(a.pubkey()));
  EXPECT_FALSE(store_online(a.pubkey()));
}

TEST_F(HubTunnelTest, HandshakeBudgetRefusesABurst) {
  settings.handshake_rate = 1;
  settings.handshake_burst = 1;
  start_server();
  std::vector<Agent*> burst;
  for (int i = 0; i < 4; ++i) burst.push_back(&approved_agent());
  for (Agent* a : burst) a->connect();
  ASSERT_TRUE(run([&] {
    for (Agent* a : burst) {
      if (!a->registered && !a->ended()) return false;
    }
    return true;
  }));
  int welcomed = 0;
  for (Agent* a : burst) welcomed += a->registered.has_value() ? 1 : 0;
  EXPECT_EQ(welcomed, 1);
  EXPECT_EQ(server->refused_count(), 3u);
  EXPECT_TRUE(logs.has("refusing connections: handshake budget exhausted"));
}

TEST_F(HubTunnelTest, MaxTunnelsRefusesOneMore) {
  settings.max_tunnels = 1;
  start_server();
  Agent& a = approved_agent();
  a.connect();
  ASSERT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
  Agent& b = approved_agent();
  b.connect();
  ASSERT_TRUE(run([&] { return b.ended(); }));
  EXPECT_FALSE(b.connect_status.ok());
  EXPECT_EQ(server->refused_count(), 1u);
  EXPECT_EQ(a.closed, 0);
}

TEST_F(HubTunnelTest, GarbageInsteadOfTlsClosesOnlyThatConnection) {
  start_server();
  Agent& good = approved_agent();
  good.connect();
  ASSERT_TRUE(run([&] { return good.registered.has_value() || good.ended(); }));

  RawPeer raw;
  net::TcpConnector tcp(loop);
  ASSERT_TRUE(tcp.connect("127.0.0.1", server->port(), kWaitMs, [&](Result<net::StreamPtr> r) {
                   ASSERT_TRUE(r.ok());
                   raw.s = std::move(r.value());
                   raw.s->set_handler(&raw);
                   const std::string junk = std::string("\x16\x03\x01\xff\xff") + " garbage, not TLS\r\n\r\n";
                   ASSERT_TRUE(raw.s->write(junk).ok());
                 }).ok());
  ASSERT_TRUE(run([&] { return raw.ended; }));
  raw.s.reset();

  EXPECT_EQ(good.closed, 0);
  Agent& later = approved_agent("bob");
  later.connect();
  ASSERT_TRUE(run([&] { return later.registered.has_value() || later.ended(); }));
  EXPECT_TRUE(later.registered.has_value());
  EXPECT_EQ(server->tunnels().count(), 2u);
}

TEST_F(HubTunnelTest, PlainHttpOverTlsGets404AndOthersKeepWorking) {
  start_server();
  Agent& good = approved_agent();
  good.connect();
  ASSERT_TRUE(run([&] { return good.registered.has_value() || good.ended(); }));

  tls::ClientConfig cc;
  cc.pins = {pin};
  auto ctx = tls::ClientContext::create(cc);
  ASSERT_TRUE(ctx.ok());
  tls::Connector connector(loop, *ctx);
  RawPeer raw;
  ASSERT_TRUE(connector.connect("127.0.0.1", server->port(), kWaitMs, [&](Result<net::StreamPtr> r) {
                         ASSERT_TRUE(r.ok()) << r.status().to_string();
                         raw.s = std::move(r.value());
                         raw.s->set_handler(&raw);
                         ASSERT_TRUE(raw.s->write("GET / HTTP/1.1\r\nHost: hub\r\n\r\n").ok());
                       }).ok());
  ASSERT_TRUE(run([&] { return raw.got.find("\r\n\r\n") != std::string::npos || raw.ended; }));
  EXPECT_EQ(raw.got.rfind("HTTP/1.1 404", 0), 0u) << raw.got;

  // The tunnel path without an upgrade is refused by the WebSocket check.
  raw.got.clear();
  ASSERT_TRUE(raw.s->write("GET /tunnel HTTP/1.1\r\nHost: hub\r\n\r\n").ok());
  ASSERT_TRUE(run([&] { return raw.got.find("\r\n\r\n") != std::string::npos || raw.ended; }));
  EXPECT_TRUE(raw.got.rfind("HTTP/1.1 400", 0) == 0 || raw.got.rfind("HTTP/1.1 426", 0) == 0)
      << raw.got;
  raw.s.reset();

  EXPECT_EQ(good.closed, 0);
  Agent& later = approved_agent("bob");
  later.connect();
  ASSERT_TRUE(run([&] { return later.registered.has_value() || later.ended(); }));
  EXPECT_TRUE(later.registered.has_value());
}

TEST_F(HubTunnelTest, SilentAgentIsClosedByTheHeartbeat) {
  settings.heartbeat_ms = 100;
  settings.dead_after = 3;
  start_server();
  Agent& a = approved_agent();
  a.raw = true;
  a.connect();
  ASSERT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
  ASSERT_TRUE(server->tunnels().online(a.pubkey()));
  a.pause();  // no more pongs
  ASSERT_TRUE(run([&] { return !server->tunnels().online(a.pubkey()); }));
  EXPECT_TRUE(logs.has("code 4008")) << "no 4008 close logged";
  EXPECT_FALSE(store_online(a.pubkey()));
}

TEST_F(HubTunnelTest, PingFloodClosesOnlyThatTunnelWith1008) {
  start_server();
  Agent& flood = approved_agent();
  flood.raw = true;
  flood.connect();
  Agent& calm = approved_agent();
  calm.connect();
  ASSERT_TRUE(run([&] {
    return (flood.registered.has_value() || flood.ended()) &&
           (calm.registered.has_value() || calm.ended());
  }));
  ASSERT_TRUE(server->tunnels().online(flood.pubkey()));
  flood.ping_flood(static_cast<int>(tunnel::kMaxPingsPerMinute) + 10);
  ASSERT_TRUE(run([&] { return flood.closed > 0; }));
  EXPECT_EQ(flood.code, 1008);
  ASSERT_TRUE(run([&] { return !server->tunnels().online(flood.pubkey()); }));
  EXPECT_TRUE(server->tunnels().online(calm.pubkey()));
  EXPECT_EQ(calm.closed, 0);
}

TEST_F(HubTunnelTest, ShutdownSendsGoawayAndClosesWith1001) {
  start_server();
  Agent& a = approved_agent();
  a.connect();
  ASSERT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
  bool done = false;
  server->shutdown([&] { done = true; });
  ASSERT_TRUE(run([&] { return done && a.closed; }));
  ASSERT_TRUE(a.goaway.has_value());
  EXPECT_EQ(a.goaway->reason, tunnel::goaway_reason::shutdown);
  EXPECT_LE(a.goaway->reconnect_after_ms, settings.goaway_spread_ms);
  EXPECT_EQ(a.code, tunnel::close_code::going_away);
  EXPECT_EQ(server->tunnels().count(), 0u);
  EXPECT_FALSE(store_online(a.pubkey()));
}

TEST_F(HubTunnelTest, ShutdownWithoutTunnelsCompletes) {
  start_server();
  bool done = false;
  server->shutdown([&] { done = true; });
  ASSERT_TRUE(run([&] { return done; }));
  // The listener is closed: a new agent cannot connect.
  Agent& a = approved_agent();
  a.connect();
  ASSERT_TRUE(run([&] { return a.ended(); }));
  EXPECT_FALSE(a.connect_status.ok());
}

TEST(HandshakeBudget, RefillsAtTheRateUpToTheBurst) {
  HandshakeBudget b(10, 2, 1000);
  EXPECT_TRUE(b.take(1000));
  EXPECT_TRUE(b.take(1000));
  EXPECT_FALSE(b.take(1000));
  EXPECT_FALSE(b.take(1050));  // half a token
  EXPECT_TRUE(b.take(1100));
  EXPECT_FALSE(b.take(1100));
  EXPECT_TRUE(b.take(5000));   // capped at the burst
  EXPECT_TRUE(b.take(5000));
  EXPECT_FALSE(b.take(5000));
}

TEST(Tunnels, ReplacingAKeyForgetsTheOldEntryAndItsModels) {
  Tunnels t;
  auto* one = reinterpret_cast<HubTunnel*>(0x1000);
  auto* two = reinterpret_cast<HubTunnel*>(0x2000);
  EXPECT_EQ(t.add("k", "o", "a:1", one), nullptr);
  EXPECT_EQ(t.set_models("k", {"m1", "m2"}, 3), 2u);
  EXPECT_EQ(t.tunnels_for("m1").size(), 1u);
  EXPECT_EQ(t.add("k", "o", "a:2", two), one);
  EXPECT_TRUE(t.tunnels_for("m1").empty());
  EXPECT_FALSE(t.remove("k", one));  // the old one is gone already
  EXPECT_TRUE(t.online("k"));
  EXPECT_EQ(t.find("k")->addr, "a:2");
  EXPECT_TRUE(t.remove("k", two));
  EXPECT_FALSE(t.online("k"));
  EXPECT_EQ(t.count(), 0u);
  EXPECT_EQ(t.set_models("k", {"m1"}, 1), 0u);
}

}  // namespace
}  // namespace tg::hub
