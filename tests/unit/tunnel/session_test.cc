// Tunnel sessions end to end in one process: a hub-side and an agent-side
// Session over real loopback TCP + WebSocket, or one Session against a raw
// ws::Connection that sends hand-made (and broken) messages.
#include "shared/tunnel/session.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "shared/core/loop.h"
#include "shared/crypto/hash.h"
#include "shared/net/tcp.h"
#include "shared/tunnel/frame.h"

namespace tg::tunnel {
namespace {

constexpr uint64_t kTimeoutMs = 10000;

bool tcp_pair(Loop& loop, net::StreamPtr* client, net::StreamPtr* server) {
  net::TcpListener listener(loop);
  if (!listener.listen("127.0.0.1", 0, [&](net::StreamPtr s) { *server = std::move(s); }).ok()) {
    return false;
  }
  net::TcpConnector connector(loop);
  Status s = connector.connect("127.0.0.1", listener.port(), kTimeoutMs, [&](Result<net::StreamPtr> r) {
    if (r.ok()) *client = std::move(r.value());
  });
  return s.ok() && loop.run_until([&] { return *client && *server; }, kTimeoutMs);
}

struct Events : SessionHandler {
  std::vector<Message> messages;
  std::vector<Channel*> calls;
  int closed = 0;
  uint16_t code = 0;
  std::string why;
  ChannelHandler* call_handler = nullptr;
  void on_message(Session&, const Message& m) noexcept override { messages.push_back(m); }
  void on_call(Session&, Channel& ch, const Call&) noexcept override {
    calls.push_back(&ch);
    ch.set_handler(call_handler);
  }
  void on_closed(Session&, uint16_t c, const std::string& w) noexcept override {
    ++closed;
    code = c;
    why = w;
  }
};

// Collects a channel's body; consumes it at once unless `stall` is set.
struct Body : ChannelHandler {
  std::string data;
  bool fin = false;
  bool stall = false;
  int writable = 0;
  int closed = 0;
  Status closed_why;
  std::vector<Message> messages;
  void on_channel_message(Channel&, const Message& m) noexcept override { messages.push_back(m); }
  void on_channel_data(Channel& ch, std::string_view d, bool f) noexcept override {
    data.append(d);
    fin = fin || f;
    if (!stall) ch.consumed(d.size());
  }
  void on_channel_writable(Channel&) noexcept override { ++writable; }
  void on_channel_closed(Channel&, const Status& why) noexcept override {
    ++closed;
    closed_why = why;
  }
};

// A hub Session and an agent Session on one loopback connection.
struct Pair {
  Loop& loop;
  Events hub_events, agent_events;
  std::unique_ptr<Session> hub, agent;

  explicit Pair(Loop& l, SessionOptions opts = {}) : loop(l) {
    net::StreamPtr c, s;
    EXPECT_TRUE(tcp_pair(loop, &c, &s));
    auto wc = std::make_unique<ws::Connection>(loop, std::move(c), "", ws::Role::client);
    auto wsrv = std::make_unique<ws::Connection>(loop, std::move(s), "", ws::Role::server);
    hub = std::make_unique<Session>(loop, std::move(wsrv), Side::hub, &hub_events, opts);
    agent = std::make_unique<Session>(loop, std::move(wc), Side::agent, &agent_events, opts);
    hub->start();
    agent->start();
    hub->authenticated(opts);
    agent->authenticated(opts);
  }
};

Call make_call() {
  Call c;
  c.request_id = "attempt";
  c.model = "m";
  c.method = "POST";
  c.path = "/v1/chat/completions";
  c.deadline_ms = 60000;
  return c;
}

// Sends `total` bytes on `ch` as the window allows, from the loop.
struct Pump : ChannelHandler {
  Channel* ch = nullptr;
  std::string payload;
  size_t sent = 0;
  size_t max_queued = 0;
  void pump() {
    while (sent < payload.size()) {
      size_t cap = ch->send_capacity();
      if (cap == 0) return;
      size_t n = std::min(cap, payload.size() - sent);
      ASSERT_TRUE(ch->send_data(std::string_view(payload).substr(sent, n), sent + n == payload.size()).ok());
      sent += n;
    }
  }
  void on_channel_message(Channel&, const Message&) noexcept override {}
  void on_channel_data(Channel& c, std::string_view d, bool) noexcept override { c.consumed(d.size()); }
  void on_channel_writable(Channel&) noexcept override { pump(); }
  void on_channel_closed(Channel&, const Status&) noexcept override {}
};

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

TEST(Session, ControlMessagesFlowBothWays) {
  Loop loop;
  {
    Pair p(loop);
    ASSERT_TRUE(p.hub->send(Goaway{"restart", 1000}).ok());
    Register r;
    r.models = {"a", "b"};
    r.max_parallel = 2;
    ASSERT_TRUE(p.agent->send(r).ok());
    ASSERT_TRUE(loop.run_until([&] {
      return p.agent_events.messages.size() == 1 && p.hub_events.messages.size() == 1;
    }, kTimeoutMs));
    EXPECT_EQ(type_of(p.agent_events.messages[0]), Type::goaway);
    EXPECT_EQ(std::get<Register>(p.hub_events.messages[0]).models.size(), 2u);
  }
  EXPECT_TRUE(loop.close().ok());
}

// Pumps one body out and collects the other on the same channel.
struct Duplex : ChannelHandler {
  Pump out;
  Body in;
  void on_channel_message(Channel& c, const Message& m) noexcept override { in.on_channel_message(c, m); }
  void on_channel_data(Channel& c, std::string_view d, bool f) noexcept override { in.on_channel_data(c, d, f); }
  void on_channel_writable(Channel&) noexcept override { out.pump(); }
  void on_channel_closed(Channel& c, const Status& w) noexcept override { in.on_channel_closed(c, w); }
};

TEST(Session, SeveralMebibytesBothWaysArriveIntact) {
  Loop loop;
  {
    Pair p(loop);
    Duplex hub_side, agent_side;
    hub_side.out.payload = pattern(6 << 20, 1);    // request body
    agent_side.out.payload = pattern(5 << 20, 2);  // response body
    p.agent_events.call_handler = &agent_side;
    auto ch = p.hub->open_channel(make_call(), &hub_side);
    ASSERT_TRUE(ch.ok()) << ch.status().to_string();
    hub_side.out.ch = *ch;
    hub_side.out.pump();
    ASSERT_TRUE(loop.run_until([&] { return p.agent_events.calls.size() == 1; }, kTimeoutMs));
    // The agent answers while the request is still arriving.
    Channel* agent_ch = p.agent_events.calls[0];
    ASSERT_TRUE(agent_ch->send(Response{0, 200, {{"content-type", "application/octet-stream"}}}).ok());
    agent_side.out.ch = agent_ch;
    agent_side.out.pump();
    ASSERT_TRUE(loop.run_until([&] { return agent_side.in.fin && hub_side.in.fin; }, 30000))
        << "agent got " << agent_side.in.data.size() << ", hub got " << hub_side.in.data.size();
    EXPECT_EQ(crypto::sha256(agent_side.in.data), crypto::sha256(hub_side.out.payload));
    EXPECT_EQ(crypto::sha256(hub_side.in.data), crypto::sha256(agent_side.out.payload));
    ASSERT_EQ(hub_side.in.messages.size(), 1u);
    EXPECT_EQ(std::get<Response>(hub_side.in.messages[0]).status, 200u);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Session, StalledReaderStopsTheSenderAtTheWindow) {
  Loop loop;
  {
    SessionOptions opts;
    opts.window = 64 * 1024;
    Pair p(loop, opts);
    Body at_agent;
    at_agent.stall = true;
    p.agent_events.call_handler = &at_agent;
    Pump up;
    up.payload = pattern(1 << 20, 3);
    auto ch = p.hub->open_channel(make_call(), &up);
    ASSERT_TRUE(ch.ok());
    up.ch = *ch;
    up.pump();
    // Exactly one window goes out, then the sender has no capacity.
    EXPECT_EQ(up.sent, opts.window);
    EXPECT_EQ((*ch)->send_capacity(), 0u);
    ASSERT_TRUE(loop.run_until([&] { return at_agent.data.size() == opts.window; }, kTimeoutMs));
    loop.run_until([] { return false; }, 100);
    EXPECT_EQ(at_agent.data.size(), opts.window);  // nothing beyond the window
    EXPECT_EQ(up.sent, opts.window);
    // The reader catches up: credit flows and the rest arrives.
    p.agent_events.calls[0]->consumed(at_agent.data.size());
    at_agent.stall = false;
    ASSERT_TRUE(loop.run_until([&] { return at_agent.fin; }, kTimeoutMs));
    EXPECT_EQ(crypto::sha256(at_agent.data), crypto::sha256(up.payload));
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Session, AbortReachesThePeerChannel) {
  Loop loop;
  {
    Pair p(loop);
    Body at_agent, at_hub;
    p.agent_events.call_handler = &at_agent;
    auto ch = p.hub->open_channel(make_call(), &at_hub);
    ASSERT_TRUE(ch.ok());
    ASSERT_TRUE(loop.run_until([&] { return p.agent_events.calls.size() == 1; }, kTimeoutMs));
    (*ch)->close(abort_reason::client_gone);
    ASSERT_TRUE(loop.run_until([&] { return at_agent.closed == 1; }, kTimeoutMs));
    EXPECT_EQ(at_agent.closed_why.message(), "aborted by peer: client_gone");
    EXPECT_EQ(at_hub.closed, 0);  // close() does not call back
    EXPECT_EQ(p.hub->channel_count(), 0u);
    EXPECT_EQ(p.agent->channel_count(), 0u);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Session, FinishEndsTheChannel) {
  Loop loop;
  {
    Pair p(loop);
    Body at_agent, at_hub;
    p.agent_events.call_handler = &at_agent;
    auto ch = p.hub->open_channel(make_call(), &at_hub);
    ASSERT_TRUE(ch.ok());
    ASSERT_TRUE((*ch)->send_data("", true).ok());
    ASSERT_TRUE(loop.run_until([&] { return at_agent.fin; }, kTimeoutMs));
    Channel* a = p.agent_events.calls[0];
    ASSERT_TRUE(a->send(Response{0, 200, {}}).ok());
    ASSERT_TRUE(a->send_data("hello", true).ok());
    Finish f;
    f.upstream_status = 200;
    ASSERT_TRUE(a->send(f).ok());
    a->close(abort_reason::shutdown);  // both directions done + finish sent: no abort goes out
    ASSERT_TRUE(loop.run_until([&] { return at_hub.messages.size() == 2; }, kTimeoutMs));
    EXPECT_EQ(at_hub.data, "hello");
    EXPECT_EQ(type_of(at_hub.messages[1]), Type::finish);
    EXPECT_EQ(p.hub->channel_count(), 0u);
    EXPECT_EQ(at_hub.closed, 0);
    EXPECT_EQ(p.hub_events.closed, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Session, MaxStreamsIsEnforcedOnOpen) {
  Loop loop;
  {
    SessionOptions opts;
    opts.max_streams = 2;
    Pair p(loop, opts);
    Body b;
    ASSERT_TRUE(p.hub->open_channel(make_call(), &b).ok());
    ASSERT_TRUE(p.hub->open_channel(make_call(), &b).ok());
    auto third = p.hub->open_channel(make_call(), &b);
    EXPECT_EQ(third.status().code(), Errc::limit);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Session, HeartbeatTimeoutClosesASilentPeer) {
  Loop loop;
  {
    SessionOptions opts;
    opts.heartbeat_ms = 50;
    opts.dead_after = 3;
    net::StreamPtr c, s;
    ASSERT_TRUE(tcp_pair(loop, &c, &s));
    // The agent end is a bare connection that never reads: no pongs come back.
    auto silent = std::make_unique<ws::Connection>(loop, std::move(c), "", ws::Role::client);
    Events ev;
    ws::Options wopts;
    wopts.close_timeout_ms = 200;  // the silent peer never answers our close
    Session hub(loop, std::make_unique<ws::Connection>(loop, std::move(s), "", ws::Role::server, wopts),
                Side::hub, &ev, opts);
    hub.start();
    ASSERT_TRUE(loop.run_until([&] { return ev.closed == 1; }, kTimeoutMs));
    EXPECT_EQ(ev.code, close_code::heartbeat_timeout);
    EXPECT_NE(ev.why.find("no frame from the peer"), std::string::npos) << ev.why;
  }
  EXPECT_TRUE(loop.close().ok());
}

// A Session facing a raw WebSocket peer that can break the protocol.
struct RawPeer : ws::Handler {
  std::unique_ptr<ws::Connection> conn;
  uint16_t close_code = 0;
  int closes = 0;
  std::vector<std::string> texts;
  void on_ws_message(ws::Connection&, ws::Opcode, std::string_view text) noexcept override {
    texts.emplace_back(text);
  }
  void on_ws_close(ws::Connection&, uint16_t code, std::string_view, bool) noexcept override {
    close_code = code;
    ++closes;
  }
};

struct RawFixture {
  Loop& loop;
  Events ev;
  RawPeer peer;
  std::unique_ptr<Session> hub;
  explicit RawFixture(Loop& l) : loop(l) {
    net::StreamPtr c, s;
    EXPECT_TRUE(tcp_pair(loop, &c, &s));
    peer.conn = std::make_unique<ws::Connection>(loop, std::move(c), "", ws::Role::client);
    peer.conn->start(&peer);
    hub = std::make_unique<Session>(loop, std::make_unique<ws::Connection>(loop, std::move(s), "", ws::Role::server),
                                    Side::hub, &ev, SessionOptions{});
    hub->start();
  }
  uint16_t closed_with() {
    EXPECT_TRUE(loop.run_until([&] { return ev.closed == 1; }, kTimeoutMs));
    return ev.code;
  }
};

TEST(SessionViolations, DataBeforeAuthentication) {
  Loop loop;
  {
    RawFixture f(loop);
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame(1, false, "x")).ok());
    EXPECT_EQ(f.closed_with(), close_code::bad_message);
    EXPECT_EQ(f.ev.why, "data frame before authentication");
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionViolations, DataForAStreamNeverOpened) {
  Loop loop;
  {
    RawFixture f(loop);
    f.hub->authenticated(SessionOptions{});
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame(7, false, "x")).ok());
    EXPECT_EQ(f.closed_with(), close_code::bad_message);
    EXPECT_EQ(f.ev.why, "data for stream 7 that was never opened");
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionViolations, UnknownMessageType) {
  Loop loop;
  {
    RawFixture f(loop);
    ASSERT_TRUE(f.peer.conn->send_text(R"({"type":"teleport"})").ok());
    EXPECT_EQ(f.closed_with(), close_code::bad_message);
    // Before authentication the hub explains itself in a `refused`.
    ASSERT_TRUE(loop.run_until([&] { return f.peer.closes == 1; }, kTimeoutMs));
    ASSERT_EQ(f.peer.texts.size(), 1u);
    auto m = decode(f.peer.texts[0], Phase::pre_auth);
    ASSERT_TRUE(m.ok()) << f.peer.texts[0];
    EXPECT_EQ(std::get<Refused>(*m).code, "protocol");
    EXPECT_EQ(f.peer.close_code, close_code::bad_message);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionViolations, HubOnlyMessageFromTheAgent) {
  Loop loop;
  {
    RawFixture f(loop);
    f.hub->authenticated(SessionOptions{});
    ASSERT_TRUE(f.peer.conn->send_text(R"({"type":"goaway","reason":"restart","reconnect_after_ms":1})").ok());
    EXPECT_EQ(f.closed_with(), close_code::bad_message);
    EXPECT_EQ(f.ev.why, "'goaway' may not be sent by the agent");
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionViolations, OversizeMessageBeforeAuth) {
  Loop loop;
  {
    RawFixture f(loop);
    std::string big = R"({"type":"auth","x":")" + std::string(8000, 'a') + "\"}";
    ASSERT_TRUE(f.peer.conn->send_text(big).ok());
    EXPECT_EQ(f.closed_with(), close_code::message_too_big);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionViolations, WindowOverflow) {
  Loop loop;
  {
    RawFixture f(loop);
    SessionOptions opts;
    opts.window = 16 * 1024;
    f.hub->authenticated(opts);
    Body b;
    b.stall = true;
    auto ch = f.hub->open_channel(make_call(), &b);
    ASSERT_TRUE(ch.ok());
    // The raw agent answers with more body than the window allows.
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame((*ch)->id(), false, std::string(16 * 1024, 'a'))).ok());
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame((*ch)->id(), false, "b")).ok());
    EXPECT_EQ(f.closed_with(), close_code::bad_message);
    EXPECT_EQ(b.closed, 1);  // the open channel learns the tunnel is gone
    EXPECT_NE(f.ev.why.find("flow control"), std::string::npos) << f.ev.why;
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionViolations, LateDataForAClosedStreamIsIgnored) {
  Loop loop;
  {
    RawFixture f(loop);
    f.hub->authenticated(SessionOptions{});
    Body b;
    auto ch = f.hub->open_channel(make_call(), &b);
    ASSERT_TRUE(ch.ok());
    uint32_t id = (*ch)->id();
    (*ch)->close(abort_reason::client_gone);
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame(id, false, "late")).ok());
    ASSERT_TRUE(f.peer.conn->send_text(R"({"type":"register","models":["m"],"max_parallel":1})").ok());
    ASSERT_TRUE(loop.run_until([&] { return f.ev.messages.size() == 1; }, kTimeoutMs));
    EXPECT_EQ(f.ev.closed, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

// ---- lingering channels (abort_linger) ----

Call make_billed_call() {
  Call c = make_call();
  c.request_id = "attempt-1";
  return c;
}

// Counts what a raw peer received, by type.
size_t count_type(const std::vector<std::string>& texts, Type t) {
  size_t n = 0;
  for (const auto& text : texts) {
    auto m = decode(text, Phase::session);
    if (m.ok() && type_of(*m) == t) ++n;
  }
  return n;
}

TEST(SessionLinger, DataThatCrossedTheAbortReachesTheLingeringHandler) {
  Loop loop;
  {
    Pair p(loop);
    Body at_agent, at_hub;
    p.agent_events.call_handler = &at_agent;
    auto ch = p.hub->open_channel(make_billed_call(), &at_hub);
    ASSERT_TRUE(ch.ok()) << ch.status().to_string();
    ASSERT_TRUE(loop.run_until([&] { return p.agent_events.calls.size() == 1; }, kTimeoutMs));
    // The agent answers; the hub aborts before it read any of it.
    Channel* a = p.agent_events.calls[0];
    ASSERT_TRUE(a->send(Response{0, 200, {}}).ok());
    ASSERT_TRUE(a->send_data("forwarded before the abort", false).ok());
    (*ch)->abort_linger(abort_reason::client_gone);
    EXPECT_TRUE((*ch)->lingering());
    ASSERT_TRUE(loop.run_until([&] {
      return at_hub.data == "forwarded before the abort" && at_agent.closed == 1;
    }, kTimeoutMs));
    ASSERT_EQ(at_hub.messages.size(), 1u);
    EXPECT_EQ(type_of(at_hub.messages[0]), Type::response);
    EXPECT_EQ(at_agent.closed_why.message(), "aborted by peer: client_gone");
    EXPECT_EQ(at_hub.closed, 0);
    EXPECT_EQ(p.hub->channel_count(), 1u);  // still lingering
    EXPECT_EQ(p.agent->channel_count(), 0u);  // the agent forgot the stream
    (*ch)->close(abort_reason::client_gone);
    EXPECT_EQ(p.hub->channel_count(), 0u);
    EXPECT_EQ(p.hub_events.closed, 0);
    EXPECT_EQ(p.agent_events.closed, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, FinishThatCrossedTheAbortEndsTheChannel) {
  Loop loop;
  {
    Pair p(loop);
    Body at_agent, at_hub;
    p.agent_events.call_handler = &at_agent;
    auto ch = p.hub->open_channel(make_billed_call(), &at_hub);
    ASSERT_TRUE(ch.ok());
    ASSERT_TRUE((*ch)->send_data("", true).ok());
    ASSERT_TRUE(loop.run_until([&] { return at_agent.fin; }, kTimeoutMs));
    Channel* a = p.agent_events.calls[0];
    ASSERT_TRUE(a->send(Response{0, 200, {}}).ok());
    ASSERT_TRUE(a->send_data("whole answer", true).ok());
    Finish f;
    f.upstream_status = 200;
    ASSERT_TRUE(a->send(f).ok());
    a->close(abort_reason::shutdown);  // finished: the agent forgets the stream
    (*ch)->abort_linger(abort_reason::client_gone);
    ASSERT_TRUE(loop.run_until([&] { return at_hub.messages.size() == 2; }, kTimeoutMs));
    EXPECT_EQ(at_hub.data, "whole answer");
    EXPECT_TRUE(at_hub.fin);
    EXPECT_EQ(type_of(at_hub.messages[1]), Type::finish);
    EXPECT_EQ(p.hub->channel_count(), 0u);  // the finish ended it
    loop.run_until([] { return false; }, 50);
    EXPECT_EQ(at_hub.closed, 0);  // no on_channel_closed after a finish
    EXPECT_EQ(p.hub_events.closed, 0);
    EXPECT_EQ(p.agent_events.closed, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, SessionEndFiresOnChannelClosed) {
  Loop loop;
  {
    Pair p(loop);
    Body at_agent, at_hub;
    p.agent_events.call_handler = &at_agent;
    auto ch = p.hub->open_channel(make_billed_call(), &at_hub);
    ASSERT_TRUE(ch.ok());
    ASSERT_TRUE(loop.run_until([&] { return p.agent_events.calls.size() == 1; }, kTimeoutMs));
    (*ch)->abort_linger(abort_reason::client_gone);
    ASSERT_TRUE(loop.run_until([&] { return at_agent.closed == 1; }, kTimeoutMs));
    p.agent->close(close_code::normal, "done");
    ASSERT_TRUE(loop.run_until([&] { return p.hub_events.closed == 1; }, kTimeoutMs));
    EXPECT_EQ(at_hub.closed, 1);
    EXPECT_EQ(at_hub.closed_why.code(), Errc::closed);
    EXPECT_EQ(p.hub->channel_count(), 0u);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, SendingOnALingeringChannelFails) {
  Loop loop;
  {
    Pair p(loop);
    Body at_hub;
    auto ch = p.hub->open_channel(make_billed_call(), &at_hub);
    ASSERT_TRUE(ch.ok());
    (*ch)->abort_linger(abort_reason::client_gone);
    EXPECT_EQ((*ch)->send_capacity(), 0u);
    EXPECT_EQ((*ch)->send_data("x", false).code(), Errc::closed);
    EXPECT_EQ((*ch)->send_data("", true).code(), Errc::closed);
    EXPECT_EQ((*ch)->send(Error{0, "internal", ""}).code(), Errc::closed);
    (*ch)->close(abort_reason::client_gone);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, StreamSlotIsFreedOnlyByClose) {
  Loop loop;
  {
    SessionOptions opts;
    opts.max_streams = 1;
    Pair p(loop, opts);
    Body b;
    auto first = p.hub->open_channel(make_billed_call(), &b);
    ASSERT_TRUE(first.ok());
    (*first)->abort_linger(abort_reason::client_gone);
    EXPECT_EQ(p.hub->open_channel(make_billed_call(), &b).status().code(), Errc::limit);
    EXPECT_EQ(p.hub->channel_count(), 1u);
    (*first)->close(abort_reason::client_gone);
    EXPECT_EQ(p.hub->channel_count(), 0u);
    EXPECT_TRUE(p.hub->open_channel(make_billed_call(), &b).ok());
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, CloseAfterLingerSendsNoSecondAbort) {
  Loop loop;
  {
    RawFixture f(loop);
    f.hub->authenticated(SessionOptions{});
    Body b;
    auto ch = f.hub->open_channel(make_billed_call(), &b);
    ASSERT_TRUE(ch.ok());
    (*ch)->abort_linger(abort_reason::client_gone);
    (*ch)->abort_linger(abort_reason::client_gone);  // a second call does nothing
    (*ch)->close(abort_reason::client_gone);
    // A marker after the channel's messages: once it arrived, all did.
    ASSERT_TRUE(f.hub->send(Goaway{"restart", 0}).ok());
    ASSERT_TRUE(loop.run_until([&] { return count_type(f.peer.texts, Type::goaway) == 1; }, kTimeoutMs));
    EXPECT_EQ(count_type(f.peer.texts, Type::call), 1u);
    EXPECT_EQ(count_type(f.peer.texts, Type::abort), 1u);
    EXPECT_EQ(f.peer.texts.size(), 3u);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, NoCreditIsReturnedAndTheWindowStillHolds) {
  Loop loop;
  {
    RawFixture f(loop);
    SessionOptions opts;
    opts.window = 64 * 1024;
    f.hub->authenticated(opts);
    Body b;  // consumes at once: consumed() must be ignored while lingering
    auto ch = f.hub->open_channel(make_billed_call(), &b);
    ASSERT_TRUE(ch.ok());
    const uint32_t id = (*ch)->id();
    (*ch)->abort_linger(abort_reason::client_gone);
    // The raw agent had a full window on the wire when the abort crossed it.
    ASSERT_TRUE(f.peer.conn->send_text(encode(Response{id, 200, {}})).ok());
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame(id, false, std::string(32 * 1024, 'a'))).ok());
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame(id, false, std::string(32 * 1024, 'b'))).ok());
    ASSERT_TRUE(loop.run_until([&] { return b.data.size() == 64 * 1024; }, kTimeoutMs));
    ASSERT_TRUE(f.hub->send(Goaway{"restart", 0}).ok());
    ASSERT_TRUE(loop.run_until([&] { return count_type(f.peer.texts, Type::goaway) == 1; }, kTimeoutMs));
    EXPECT_EQ(count_type(f.peer.texts, Type::credit), 0u);
    EXPECT_EQ(f.ev.closed, 0);
    // One byte beyond the window is still a flow-control violation.
    ASSERT_TRUE(f.peer.conn->send_binary(*encode_frame(id, false, "c")).ok());
    EXPECT_EQ(f.closed_with(), close_code::bad_message);
    EXPECT_NE(f.ev.why.find("flow control"), std::string::npos) << f.ev.why;
    EXPECT_EQ(b.closed, 1);  // the session end reached the lingering channel
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, ErrorThatCrossedTheAbortEndsTheChannel) {
  Loop loop;
  {
    RawFixture f(loop);
    f.hub->authenticated(SessionOptions{});
    Body b;
    auto ch = f.hub->open_channel(make_billed_call(), &b);
    ASSERT_TRUE(ch.ok());
    const uint32_t id = (*ch)->id();
    (*ch)->abort_linger(abort_reason::client_gone);
    ASSERT_TRUE(f.peer.conn->send_text(encode(Error{id, "upstream_error", "vendor broke"})).ok());
    ASSERT_TRUE(loop.run_until([&] { return b.messages.size() == 1; }, kTimeoutMs));
    EXPECT_EQ(std::get<Error>(b.messages[0]).code, "upstream_error");
    EXPECT_EQ(f.hub->channel_count(), 0u);
    EXPECT_EQ(b.closed, 0);
    EXPECT_EQ(f.ev.closed, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionLinger, AbortFromThePeerEndsTheLinger) {
  Loop loop;
  {
    RawFixture f(loop);
    f.hub->authenticated(SessionOptions{});
    Body b;
    auto ch = f.hub->open_channel(make_billed_call(), &b);
    ASSERT_TRUE(ch.ok());
    const uint32_t id = (*ch)->id();
    (*ch)->abort_linger(abort_reason::client_gone);
    ASSERT_TRUE(f.peer.conn->send_text(encode(Abort{id, "shutdown"})).ok());
    ASSERT_TRUE(loop.run_until([&] { return b.closed == 1; }, kTimeoutMs));
    EXPECT_EQ(b.closed_why.message(), "aborted by peer: shutdown");
    EXPECT_EQ(f.hub->channel_count(), 0u);
    EXPECT_EQ(f.ev.closed, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

// ---- billing messages through a session ----

TEST(Session, BillingMessagesReachTheSessionHandler) {
  Loop loop;
  {
    Pair p(loop);
    Settle st;
    st.seq = 1;
    st.request_id = "attempt-1";
    st.model = "m";
    st.price_version = 1;
    ASSERT_TRUE(p.hub->send(st).ok());
    Claim c;
    c.request_id = "attempt-1";
    c.model = "m";
    c.output = 7;
    ASSERT_TRUE(p.agent->send(c).ok());
    ASSERT_TRUE(p.agent->send(Sync{}).ok());
    ASSERT_TRUE(loop.run_until([&] {
      return p.agent_events.messages.size() == 1 && p.hub_events.messages.size() == 2;
    }, kTimeoutMs));
    EXPECT_TRUE(p.agent_events.messages[0] == Message(st));
    EXPECT_TRUE(p.hub_events.messages[0] == Message(c));
    EXPECT_EQ(type_of(p.hub_events.messages[1]), Type::sync);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(SessionViolations, SettleFromTheAgent) {
  Loop loop;
  {
    RawFixture f(loop);
    f.hub->authenticated(SessionOptions{});
    const std::string settle =
        R"({"type":"settle","seq":1,"request_id":"r","model":"m","input":0,"cached":0,"output":0,)"
        R"("estimated":false,"price_version":1,"cost":0,"tier_ppm":0,"credit":0,"time_ms":0,)"
        R"("prev":"0000000000000000000000000000000000000000000000000000000000000000",)"
        R"("hash":"0000000000000000000000000000000000000000000000000000000000000000"})";
    ASSERT_TRUE(f.peer.conn->send_text(settle).ok());
    EXPECT_EQ(f.closed_with(), close_code::bad_message);
    EXPECT_EQ(f.ev.why, "'settle' may not be sent by the agent");
  }
  EXPECT_TRUE(loop.close().ok());
}

}  // namespace
}  // namespace tg::tunnel
