// Limits of the WebSocket and tunnel layers at their exact edges, in one
// process over loopback TCP: a message or frame of exactly the limit passes,
// one byte more closes with 1009; a client handshake takes a 101 head of
// exactly 8 KiB and fails at one byte more; the agent's Session takes exactly
// max_streams calls from the hub and closes the tunnel (4000) at one more.
// The process-level limits (HTTP heads, bodies, connections, timeouts) are in
// limits_test.py; docs/LIMITS.md maps every limit to its test.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "shared/core/loop.h"
#include "shared/net/tcp.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"
#include "shared/tunnel/session.h"
#include "shared/ws/client.h"
#include "shared/ws/connection.h"
#include "shared/ws/handshake.h"

namespace tg {
namespace {

constexpr uint64_t kWaitMs = 10000;

bool tcp_pair(Loop& loop, net::StreamPtr* client, net::StreamPtr* server) {
  net::TcpListener listener(loop);
  if (!listener.listen("127.0.0.1", 0, [&](net::StreamPtr s) { *server = std::move(s); }).ok()) {
    return false;
  }
  net::TcpConnector connector(loop);
  Status s = connector.connect("127.0.0.1", listener.port(), kWaitMs, [&](Result<net::StreamPtr> r) {
    if (r.ok()) *client = std::move(r.value());
  });
  return s.ok() && loop.run_until([&] { return *client && *server; }, kWaitMs);
}

struct WsEvents final : ws::Handler {
  std::vector<std::string> messages;
  int closes = 0;
  uint16_t code = 0;
  void on_ws_message(ws::Connection&, ws::Opcode, std::string_view p) noexcept override {
    messages.emplace_back(p);
  }
  void on_ws_close(ws::Connection&, uint16_t c, std::string_view, bool) noexcept override {
    ++closes;
    code = c;
  }
};

// A server-role connection with `opts` and a plain client-role peer.
struct WsPair {
  WsEvents server_ev, client_ev;
  std::unique_ptr<ws::Connection> server, client;
  WsPair(Loop& loop, const ws::Options& opts) {
    net::StreamPtr c, s;
    EXPECT_TRUE(tcp_pair(loop, &c, &s));
    server = std::make_unique<ws::Connection>(loop, std::move(s), "", ws::Role::server, opts);
    client = std::make_unique<ws::Connection>(loop, std::move(c), "", ws::Role::client);
    server->start(&server_ev);
    client->start(&client_ev);
  }
};

TEST(WsEdge, MessageOfExactlyTheLimitIsDeliveredInFragments) {
  Loop loop;
  {
    ws::Options o;
    o.max_message_size = 1000;
    WsPair p(loop, o);
    ASSERT_TRUE(p.client->send_fragment(ws::Opcode::binary, std::string(600, 'a'), false).ok());
    ASSERT_TRUE(p.client->send_fragment(ws::Opcode::binary, std::string(400, 'b'), true).ok());
    ASSERT_TRUE(loop.run_until([&] { return p.server_ev.messages.size() == 1; }, kWaitMs));
    EXPECT_EQ(p.server_ev.messages[0].size(), 1000u);
    EXPECT_EQ(p.server_ev.closes, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(WsEdge, MessageOneByteOverTheLimitCloses1009) {
  Loop loop;
  {
    ws::Options o;
    o.max_message_size = 1000;
    WsPair p(loop, o);
    ASSERT_TRUE(p.client->send_fragment(ws::Opcode::binary, std::string(600, 'a'), false).ok());
    ASSERT_TRUE(p.client->send_fragment(ws::Opcode::binary, std::string(401, 'b'), true).ok());
    ASSERT_TRUE(loop.run_until([&] { return p.server_ev.closes == 1; }, kWaitMs));
    EXPECT_EQ(p.server_ev.code, ws::close_code::message_too_big);
    EXPECT_TRUE(p.server_ev.messages.empty());
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(WsEdge, FrameOfExactlyTheLimitIsDelivered) {
  Loop loop;
  {
    ws::Options o;
    o.max_frame_payload = 100;
    WsPair p(loop, o);
    ASSERT_TRUE(p.client->send_binary(std::string(100, 'x')).ok());
    ASSERT_TRUE(loop.run_until([&] { return p.server_ev.messages.size() == 1; }, kWaitMs));
    EXPECT_EQ(p.server_ev.closes, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(WsEdge, FrameOneByteOverTheLimitCloses1009) {
  Loop loop;
  {
    ws::Options o;
    o.max_frame_payload = 100;
    WsPair p(loop, o);
    ASSERT_TRUE(p.client->send_binary(std::string(101, 'x')).ok());
    ASSERT_TRUE(loop.run_until([&] { return p.server_ev.closes == 1; }, kWaitMs));
    EXPECT_EQ(p.server_ev.code, ws::close_code::message_too_big);
    EXPECT_TRUE(p.server_ev.messages.empty());
  }
  EXPECT_TRUE(loop.close().ok());
}

// --- the server's 101 answer, client side (the agent's tunnel handshake) ---

// The server end of a handshake: answers the upgrade request with a 101 whose
// head is exactly `head_bytes` long (padded with one extra field).
struct Raw101 final : net::StreamHandler {
  net::Stream* stream = nullptr;
  size_t head_bytes = 0;
  std::string got;
  void on_stream_read(net::Stream& s, std::string_view d) noexcept override {
    got.append(d);
    if (got.find("\r\n\r\n") == std::string::npos) return;
    const std::string name = "Sec-WebSocket-Key: ";
    const size_t at = got.find(name);
    ASSERT_NE(at, std::string::npos) << got;
    const size_t end = got.find("\r\n", at);
    const std::string key = got.substr(at + name.size(), end - at - name.size());
    std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                       ws::accept_key(key) + "\r\nX-Pad: ";
    ASSERT_LT(head.size() + 4, head_bytes);
    head += std::string(head_bytes - head.size() - 4, 'p') + "\r\n\r\n";
    ASSERT_EQ(head.size(), head_bytes);
    (void)s.write(head);
    got.clear();
  }
  void on_stream_end(net::Stream&, const Status&) noexcept override {}
};

// Runs one client handshake against a Raw101; returns its outcome.
Status handshake_against(Loop& loop, size_t head_bytes) {
  net::StreamPtr c, s;
  if (!tcp_pair(loop, &c, &s)) return error(Errc::io, "no loopback pair");
  Raw101 server;
  server.head_bytes = head_bytes;
  s->set_handler(&server);
  ws::ConnectRequest req;
  req.host = "hub.test";
  req.path = "/tunnel";
  bool done = false;
  Status outcome;
  ws::ConnectionPtr conn;
  auto hs = ws::connect(loop, std::move(c), req, [&](Result<ws::ConnectionPtr> r) {
    done = true;
    outcome = r.status();
    if (r.ok()) conn = std::move(r.value());
  });
  if (!hs.ok()) return hs.status();
  if (!loop.run_until([&] { return done; }, kWaitMs)) return error(Errc::timeout, "no outcome");
  conn.reset();
  hs->reset();
  s.reset();
  return outcome;
}

TEST(WsClientEdge, A101HeadOfExactly8KiBIsAccepted) {
  Loop loop;
  Status s = handshake_against(loop, 8 * 1024);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(loop.close().ok());
}

TEST(WsClientEdge, A101HeadOneByteOver8KiBFailsTheHandshake) {
  Loop loop;
  Status s = handshake_against(loop, 8 * 1024 + 1);
  EXPECT_EQ(s.code(), Errc::protocol) << s.to_string();
  EXPECT_NE(s.message().find("HTTP head exceeds 8192 bytes"), std::string::npos) << s.to_string();
  EXPECT_TRUE(loop.close().ok());
}

// --- streams per tunnel, agent side ---

struct AgentEvents final : tunnel::SessionHandler, tunnel::ChannelHandler {
  std::vector<uint32_t> calls;
  int closed = 0;
  uint16_t code = 0;
  std::string why;
  void on_message(tunnel::Session&, const tunnel::Message&) noexcept override {}
  void on_call(tunnel::Session&, tunnel::Channel& ch, const tunnel::Call&) noexcept override {
    calls.push_back(ch.id());
    ch.set_handler(this);  // keep the stream open
  }
  void on_closed(tunnel::Session&, uint16_t c, const std::string& w) noexcept override {
    ++closed;
    code = c;
    why = w;
  }
  void on_channel_message(tunnel::Channel&, const tunnel::Message&) noexcept override {}
  void on_channel_data(tunnel::Channel&, std::string_view, bool) noexcept override {}
  void on_channel_closed(tunnel::Channel&, const Status&) noexcept override {}
};

// The agent's Session on one end; on the other a raw hub that sends
// hand-made calls without keeping count.
struct AgentSide {
  WsEvents hub_ev;
  AgentEvents agent_ev;
  std::unique_ptr<ws::Connection> hub;
  std::unique_ptr<tunnel::Session> agent;
  AgentSide(Loop& loop, uint32_t max_streams) {
    net::StreamPtr c, s;
    EXPECT_TRUE(tcp_pair(loop, &c, &s));
    hub = std::make_unique<ws::Connection>(loop, std::move(s), "", ws::Role::server);
    hub->start(&hub_ev);
    tunnel::SessionOptions o;
    o.max_streams = max_streams;
    agent = std::make_unique<tunnel::Session>(
        loop, std::make_unique<ws::Connection>(loop, std::move(c), "", ws::Role::client),
        tunnel::Side::agent, &agent_ev, o);
    agent->start();
    agent->authenticated(o);
  }
  Status send_call(uint32_t id) {
    tunnel::Call call;
    call.id = id;
    call.request_id = "req-" + std::to_string(id);
    call.model = "m";
    call.method = "POST";
    call.path = "/v1/chat/completions";
    call.deadline_ms = 60000;
    return hub->send_text(tunnel::encode(call));
  }
};

TEST(TunnelEdge, AgentTakesExactlyMaxStreamsCalls) {
  Loop loop;
  {
    AgentSide f(loop, 3);
    for (uint32_t id = 1; id <= 3; ++id) ASSERT_TRUE(f.send_call(id).ok());
    ASSERT_TRUE(loop.run_until([&] { return f.agent_ev.calls.size() == 3; }, kWaitMs));
    EXPECT_EQ(f.agent->channel_count(), 3u);
    EXPECT_EQ(f.agent_ev.closed, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TunnelEdge, OneCallOverMaxStreamsClosesTheTunnel4000) {
  Loop loop;
  {
    AgentSide f(loop, 3);
    for (uint32_t id = 1; id <= 4; ++id) ASSERT_TRUE(f.send_call(id).ok());
    ASSERT_TRUE(loop.run_until([&] { return f.agent_ev.closed == 1; }, kWaitMs));
    EXPECT_EQ(f.agent_ev.calls.size(), 3u);
    EXPECT_EQ(f.agent_ev.code, tunnel::close_code::bad_message);
    EXPECT_EQ(f.agent_ev.why, "more than 3 streams open");
    ASSERT_TRUE(loop.run_until([&] { return f.hub_ev.closes == 1; }, kWaitMs));
    EXPECT_EQ(f.hub_ev.code, tunnel::close_code::bad_message);
  }
  EXPECT_TRUE(loop.close().ok());
}

}  // namespace
}  // namespace tg
