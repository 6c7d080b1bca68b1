// ws::Connection over real loopback TCP: a client Connection against a server
// Connection, and each role against a raw peer sending hand-made frames.
#include <gtest/gtest.h>

#include <cstring>

#include <set>

#include <string>

#include "shared/ws/connection.h"
#include "tests/unit/ws/ws_test_util.h"

namespace tg::ws {
namespace {

using test::connect_pair;
using test::kTestTimeoutMs;
using test::RawPeer;
using test::Recorder;

std::string be16(uint16_t v) {
  std::string s;
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v & 0xFF));
  return s;
}

class WsConnection : public ::testing::Test {
 protected:
  Loop loop;
  Recorder client_rec;
  Recorder server_rec;
  ConnectionPtr client;
  ConnectionPtr server;
  std::unique_ptr<RawPeer> raw;

  void open_both(Options copts = {}, Options sopts = {}) {
    net::StreamPtr cs, ss;
    ASSERT_TRUE(connect_pair(loop, &cs, &ss));
    client = std::make_unique<Connection>(loop, std::move(cs), "", Role::client, copts);
    server = std::make_unique<Connection>(loop, std::move(ss), "", Role::server, sopts);
    client->start(&client_rec);
    server->start(&server_rec);
  }

  // A Connection in `role` facing a raw peer. The Connection is stored in
  // `server` for Role::server and in `client` for Role::client.
  void open_raw(Role role, Options opts = {}, std::string leftover = {}) {
    net::StreamPtr cs, ss;
    ASSERT_TRUE(connect_pair(loop, &cs, &ss));
    if (role == Role::server) {
      server = std::make_unique<Connection>(loop, std::move(ss), std::move(leftover),
                                            Role::server, opts);
      server->start(&server_rec);
      raw = std::make_unique<RawPeer>(std::move(cs));
    } else {
      client = std::make_unique<Connection>(loop, std::move(cs), std::move(leftover),
                                            Role::client, opts);
      client->start(&client_rec);
      raw = std::make_unique<RawPeer>(std::move(ss));
    }
  }

  bool run(const std::function<bool()>& done) { return loop.run_until(done, kTestTimeoutMs); }

  // Lets the loop turn for `ms` (for "nothing more happens" checks).
  void settle(uint64_t ms) {
    Timer t(loop);
    bool fired = false;
    t.start(ms, 0, [&] { fired = true; });
    run([&] { return fired; });
  }

  void finish() {
    client.reset();
    server.reset();
    raw.reset();
    EXPECT_TRUE(loop.close().ok());
  }
};

TEST_F(WsConnection, TextAndBinaryEcho) {
  open_both();
  server_rec.on_message = [](Connection& c, const test::Message& m) {
    if (m.type == Opcode::text) EXPECT_TRUE(c.send_text(m.payload).ok());
    else EXPECT_TRUE(c.send_binary(m.payload).ok());
  };
  ASSERT_TRUE(client->send_text("h\xc3\xa9llo").ok());
  std::string bin("\x00\x01\xff", 3);
  ASSERT_TRUE(client->send_binary(bin).ok());
  ASSERT_TRUE(client->send_binary(std::string(200000, 'b')).ok());
  ASSERT_TRUE(run([&] { return client_rec.messages.size() == 3; }));
  EXPECT_EQ(client_rec.messages[0].type, Opcode::text);
  EXPECT_EQ(client_rec.messages[0].payload, "h\xc3\xa9llo");
  EXPECT_EQ(client_rec.messages[1].type, Opcode::binary);
  EXPECT_EQ(client_rec.messages[1].payload, bin);
  EXPECT_EQ(client_rec.messages[2].payload, std::string(200000, 'b'));
  finish();
}

TEST_F(WsConnection, FragmentedSendIsReassembled) {
  open_both();
  ASSERT_TRUE(client->send_fragment(Opcode::text, "one ", false).ok());
  ASSERT_TRUE(client->ping("mid").ok());
  ASSERT_TRUE(client->send_fragment(Opcode::text, "two \xe2\x82", false).ok());
  EXPECT_EQ(client->send_text("x").code(), Errc::invalid_argument);
  EXPECT_EQ(client->send_fragment(Opcode::binary, "x", true).code(), Errc::invalid_argument);
  ASSERT_TRUE(client->send_fragment(Opcode::text, "\xac three", true).ok());
  ASSERT_TRUE(run([&] { return server_rec.messages.size() == 1 && client_rec.pongs.size() == 1; }));
  EXPECT_EQ(server_rec.messages[0].type, Opcode::text);
  EXPECT_EQ(server_rec.messages[0].payload, "one two \xe2\x82\xac three");
  EXPECT_EQ(client_rec.pongs[0], "mid");
  finish();
}

TEST_F(WsConnection, PingIsAnsweredWithPongBothWays) {
  open_both();
  ASSERT_TRUE(client->ping("from client").ok());
  ASSERT_TRUE(server->ping("from server").ok());
  ASSERT_TRUE(run([&] { return client_rec.pongs.size() == 1 && server_rec.pongs.size() == 1; }));
  EXPECT_EQ(client_rec.pongs[0], "from client");
  EXPECT_EQ(server_rec.pongs[0], "from server");
  EXPECT_TRUE(client_rec.messages.empty());
  EXPECT_TRUE(server_rec.messages.empty());
  finish();
}

TEST_F(WsConnection, ClientInitiatedCloseReportsCodeAndReason) {
  open_both();
  ASSERT_TRUE(client->close(4001, "bye").ok());
  EXPECT_EQ(client->state(), Connection::State::closing);
  EXPECT_EQ(client->send_text("late").code(), Errc::closed);
  ASSERT_TRUE(run([&] { return client_rec.closes == 1 && server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, 4001);
  EXPECT_EQ(server_rec.close_reason, "bye");
  EXPECT_TRUE(server_rec.clean);
  EXPECT_EQ(client_rec.close_code, 4001);  // the echo
  EXPECT_TRUE(client_rec.clean);
  EXPECT_EQ(client->state(), Connection::State::finished);
  settle(20);
  EXPECT_EQ(client_rec.closes, 1);
  EXPECT_EQ(server_rec.closes, 1);
  finish();
}

TEST_F(WsConnection, ServerInitiatedCloseReportsCode) {
  open_both();
  ASSERT_TRUE(server->close(close_code::going_away, "restart").ok());
  ASSERT_TRUE(run([&] { return client_rec.closes == 1 && server_rec.closes == 1; }));
  EXPECT_EQ(client_rec.close_code, 1001);
  EXPECT_EQ(client_rec.close_reason, "restart");
  EXPECT_TRUE(client_rec.clean);
  EXPECT_EQ(server_rec.close_code, 1001);
  EXPECT_TRUE(server_rec.clean);
  finish();
}

TEST_F(WsConnection, CloseWithoutCodeReports1005) {
  open_both();
  ASSERT_TRUE(client->close(close_code::no_status).ok());
  ASSERT_TRUE(run([&] { return client_rec.closes == 1 && server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::no_status);
  EXPECT_TRUE(server_rec.clean);
  finish();
}

TEST_F(WsConnection, ArgumentErrorsReturnAtOnce) {
  open_both();
  EXPECT_EQ(client->send_text("\xff").code(), Errc::invalid_argument);
  EXPECT_EQ(client->ping(std::string(126, 'p')).code(), Errc::invalid_argument);
  EXPECT_EQ(client->close(1006).code(), Errc::invalid_argument);
  EXPECT_EQ(client->close(1000, std::string(124, 'r')).code(), Errc::invalid_argument);
  EXPECT_EQ(client->send_fragment(Opcode::ping, "x", true).code(), Errc::invalid_argument);
  EXPECT_EQ(client->state(), Connection::State::open);
  finish();
}

TEST_F(WsConnection, ServerClosesOnUnmaskedClientFrame) {
  open_raw(Role::server);
  raw->send_frame(true, Opcode::text, "hi", /*masked=*/false);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1 && raw->ended; }));
  EXPECT_EQ(server_rec.close_code, close_code::protocol_error);
  EXPECT_FALSE(server_rec.clean);
  EXPECT_EQ(raw->close_code(), close_code::protocol_error);
  EXPECT_TRUE(server_rec.messages.empty());
  finish();
}

TEST_F(WsConnection, ClientClosesOnMaskedServerFrame) {
  open_raw(Role::client);
  raw->send_frame(true, Opcode::binary, "hi", /*masked=*/true);
  ASSERT_TRUE(run([&] { return client_rec.closes == 1 && raw->ended; }));
  EXPECT_EQ(client_rec.close_code, close_code::protocol_error);
  auto frames = raw->frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].first.masked);  // client frames are always masked
  EXPECT_EQ(raw->close_code(), close_code::protocol_error);
  finish();
}

TEST_F(WsConnection, ServerFramesAreUnmasked) {
  open_raw(Role::server);
  ASSERT_TRUE(run([&] { return server->state() == Connection::State::open; }));
  ASSERT_TRUE(server->send_text("plain").ok());
  ASSERT_TRUE(run([&] { return raw->frames().size() == 1; }));
  EXPECT_FALSE(raw->frames()[0].first.masked);
  EXPECT_EQ(raw->frames()[0].second, "plain");
  finish();
}

TEST_F(WsConnection, OversizeMessageCloses1009) {
  Options opts;
  opts.max_message_size = 1000;
  open_raw(Role::server, opts);
  raw->send_frame(false, Opcode::binary, std::string(600, 'a'), true);
  raw->send_frame(true, Opcode::continuation, std::string(600, 'b'), true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::message_too_big);
  EXPECT_EQ(raw->close_code(), close_code::message_too_big);
  EXPECT_TRUE(server_rec.messages.empty());
  finish();
}

TEST_F(WsConnection, OversizeFrameCloses1009BeforeItsPayload) {
  Options opts;
  opts.max_frame_payload = 100;
  open_raw(Role::client, opts);
  raw->send(std::string("\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00", 10));  // 4 GiB, no payload
  ASSERT_TRUE(run([&] { return client_rec.closes == 1; }));
  EXPECT_EQ(client_rec.close_code, close_code::message_too_big);
  finish();
}

TEST_F(WsConnection, InvalidUtf8TextCloses1007) {
  open_raw(Role::server);
  raw->send_frame(true, Opcode::text, "ok\xc0\xaf", true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::invalid_payload);
  EXPECT_EQ(raw->close_code(), close_code::invalid_payload);
  finish();
}

TEST_F(WsConnection, TruncatedUtf8AtMessageEndCloses1007) {
  open_raw(Role::server);
  raw->send_frame(false, Opcode::text, "abc\xe2", true);
  raw->send_frame(true, Opcode::continuation, "\x82", true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::invalid_payload);
  finish();
}

TEST_F(WsConnection, Utf8SplitAcrossFragmentsIsAccepted) {
  open_raw(Role::server);
  raw->send_frame(false, Opcode::text, "\xf0\x9f", true);
  raw->send_frame(false, Opcode::continuation, "\x98", true);
  raw->send_frame(true, Opcode::continuation, "\x80!", true);
  ASSERT_TRUE(run([&] { return server_rec.messages.size() == 1; }));
  EXPECT_EQ(server_rec.messages[0].payload, "\xf0\x9f\x98\x80!");
  finish();
}

TEST_F(WsConnection, NewDataFrameDuringFragmentedMessageCloses1002) {
  open_raw(Role::server);
  raw->send_frame(false, Opcode::text, "part", true);
  raw->send_frame(true, Opcode::binary, "other", true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::protocol_error);
  EXPECT_TRUE(server_rec.messages.empty());
  finish();
}

TEST_F(WsConnection, ContinuationWithoutMessageCloses1002) {
  open_raw(Role::client);
  raw->send_frame(true, Opcode::continuation, "orphan", false);
  ASSERT_TRUE(run([&] { return client_rec.closes == 1; }));
  EXPECT_EQ(client_rec.close_code, close_code::protocol_error);
  finish();
}

TEST_F(WsConnection, RsvBitCloses1002) {
  open_raw(Role::client);
  raw->send(std::string("\xc1\x02hi", 4));
  ASSERT_TRUE(run([&] { return client_rec.closes == 1; }));
  EXPECT_EQ(client_rec.close_code, close_code::protocol_error);
  finish();
}

TEST_F(WsConnection, PingInterleavedInFragmentedMessage) {
  open_raw(Role::client);
  raw->send_frame(false, Opcode::binary, "ab", false);
  raw->send_frame(true, Opcode::ping, "tick", false);
  raw->send_frame(true, Opcode::continuation, "cd", false);
  ASSERT_TRUE(run([&] { return client_rec.messages.size() == 1 && raw->frames().size() == 1; }));
  EXPECT_EQ(client_rec.messages[0].payload, "abcd");
  EXPECT_EQ(raw->frames()[0].first.opcode, Opcode::pong);
  EXPECT_EQ(raw->frames()[0].second, "tick");
  finish();
}

TEST_F(WsConnection, InvalidCloseCodeCloses1002) {
  open_raw(Role::server);
  raw->send_frame(true, Opcode::close, be16(1005), true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::protocol_error);
  EXPECT_EQ(raw->close_code(), close_code::protocol_error);
  finish();
}

TEST_F(WsConnection, CloseReasonNotUtf8Closes1002) {
  open_raw(Role::server);
  raw->send_frame(true, Opcode::close, be16(1000) + "\xff", true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::protocol_error);
  finish();
}

TEST_F(WsConnection, OneByteClosePayloadCloses1002) {
  open_raw(Role::client);
  raw->send_frame(true, Opcode::close, "\x03", false);
  ASSERT_TRUE(run([&] { return client_rec.closes == 1; }));
  EXPECT_EQ(client_rec.close_code, close_code::protocol_error);
  finish();
}

TEST_F(WsConnection, PeerCloseIsEchoedThenTransportEnds) {
  open_raw(Role::server);
  raw->send_frame(true, Opcode::close, be16(4001) + "bye", true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1 && raw->ended; }));
  EXPECT_EQ(server_rec.close_code, 4001);
  EXPECT_EQ(server_rec.close_reason, "bye");
  EXPECT_TRUE(server_rec.clean);
  EXPECT_EQ(raw->close_code(), 4001);
  EXPECT_TRUE(raw->end_status.ok());
  finish();
}

TEST_F(WsConnection, CloseTimesOutWhenPeerNeverAnswers) {
  Options opts;
  opts.close_timeout_ms = 50;
  open_raw(Role::client, opts);
  ASSERT_TRUE(run([&] { return client->state() == Connection::State::open; }));
  ASSERT_TRUE(client->close(1000, "done").ok());
  ASSERT_TRUE(run([&] { return client_rec.closes == 1; }));
  EXPECT_EQ(client_rec.close_code, close_code::abnormal);
  EXPECT_FALSE(client_rec.clean);
  EXPECT_EQ(raw->close_code(), 1000);
  finish();
}

TEST_F(WsConnection, TransportEndWithoutCloseReports1006) {
  open_raw(Role::server);
  ASSERT_TRUE(run([&] { return server->state() == Connection::State::open; }));
  raw->stream->shutdown();
  ASSERT_TRUE(run([&] { return server_rec.closes == 1; }));
  EXPECT_EQ(server_rec.close_code, close_code::abnormal);
  EXPECT_FALSE(server_rec.clean);
  finish();
}

TEST_F(WsConnection, LeftoverBytesAreProcessedFirst) {
  std::string leftover;
  const MaskKey key{9, 8, 7, 6};
  encode_frame(leftover, true, Opcode::text, "early", &key);
  encode_frame(leftover, false, Opcode::text, "spl", &key);
  open_raw(Role::server, Options{}, leftover);
  raw->send_frame(true, Opcode::continuation, "it", true);
  ASSERT_TRUE(run([&] { return server_rec.messages.size() == 2; }));
  EXPECT_EQ(server_rec.messages[0].payload, "early");
  EXPECT_EQ(server_rec.messages[1].payload, "split");
  finish();
}

TEST_F(WsConnection, PauseStopsDeliveryAndResumeDeliversTheRest) {
  open_raw(Role::client);
  std::string burst;
  for (const char* m : {"one", "two", "three"}) encode_frame(burst, true, Opcode::text, m, nullptr);
  client_rec.on_message = [](Connection& c, const test::Message&) { c.pause_reading(); };
  raw->send(burst);
  ASSERT_TRUE(run([&] { return client_rec.messages.size() == 1; }));
  settle(30);
  EXPECT_EQ(client_rec.messages.size(), 1u);
  client_rec.on_message = nullptr;
  client->resume_reading();
  ASSERT_TRUE(run([&] { return client_rec.messages.size() == 3; }));
  EXPECT_EQ(client_rec.messages[2].payload, "three");
  finish();
}

TEST_F(WsConnection, DestroyInsideMessageCallbackIsSafe) {
  open_raw(Role::server);
  std::string burst;
  const MaskKey key{1, 1, 1, 1};
  encode_frame(burst, true, Opcode::text, "first", &key);
  encode_frame(burst, true, Opcode::text, "second", &key);
  server_rec.on_message = [&](Connection&, const test::Message&) { server.reset(); };
  raw->send(burst);
  ASSERT_TRUE(run([&] { return raw->ended; }));
  EXPECT_EQ(server_rec.messages.size(), 1u);
  EXPECT_EQ(server_rec.closes, 0);
  finish();
}

TEST_F(WsConnection, DestroyInsideCloseCallbackIsSafe) {
  open_both();
  server_rec.on_close = [&](Connection&) { server.reset(); };
  client_rec.on_close = [&](Connection&) { client.reset(); };
  ASSERT_TRUE(client->close(1000).ok());
  ASSERT_TRUE(run([&] { return client_rec.closes == 1 && server_rec.closes == 1; }));
  EXPECT_EQ(client, nullptr);
  EXPECT_EQ(server, nullptr);
  finish();
}

TEST_F(WsConnection, PingFloodKeepsWriteQueueBounded) {
  // The raw client never reads, so pongs pile up in the server's write path;
  // only one coalesced pong may wait beyond the high-water mark.
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  constexpr size_t kHigh = 4096;
  ss->set_write_watermarks(kHigh, 1024);
  server = std::make_unique<Connection>(loop, std::move(ss), "", Role::server);
  server->start(&server_rec);
  raw = std::make_unique<RawPeer>(std::move(cs));
  raw->stream->pause_reading();
  std::string ping;
  const MaskKey key{5, 6, 7, 8};
  encode_frame(ping, true, Opcode::ping, std::string(125, 'p'), &key);
  std::string burst;
  for (int i = 0; i < 500; ++i) burst += ping;
  size_t max_queued = 0;
  for (int round = 0; round < 100; ++round) {
    raw->send(burst);
    settle(1);
    max_queued = std::max(max_queued, server->queued_bytes());
  }
  EXPECT_LE(max_queued, kHigh + 127 + kMaxHeaderSize);
  raw->stream->resume_reading();
  ASSERT_TRUE(run([&] { return !raw->frames().empty(); }));
  EXPECT_EQ(raw->frames()[0].first.opcode, Opcode::pong);
  EXPECT_EQ(server_rec.closes, 0);
  finish();
}

}  // namespace
}  // namespace tg::ws

namespace tg::ws {
namespace {

TEST_F(WsConnection, ClientMaskKeysAreFreshAcrossPoolRefills) {
  open_raw(Role::client);
  constexpr int kFrames = 200;  // more than three refills of the key pool
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(client->send_binary("x").ok());
  ASSERT_TRUE(run([&] { return raw->frames().size() == kFrames; }));
  std::set<uint32_t> keys;
  for (const auto& [header, payload] : raw->frames()) {
    ASSERT_TRUE(header.masked);
    EXPECT_EQ(payload, "x");  // the receiver unmasked it with the key sent
    uint32_t k;
    std::memcpy(&k, header.mask.data(), sizeof k);
    keys.insert(k);
  }
  // 200 random 32-bit keys: a repeat has odds of about 5 in a million.
  EXPECT_GE(keys.size(), static_cast<size_t>(kFrames - 1));
  finish();
}

TEST_F(WsConnection, PingsOverTheBudgetClose1008) {
  Options opts;
  opts.max_pings_per_minute = 5;
  open_raw(Role::server, opts);
  for (int i = 0; i < 6; ++i) raw->send_frame(true, Opcode::ping, "p", /*masked=*/true);
  ASSERT_TRUE(run([&] { return server_rec.closes == 1 && raw->ended; }));
  EXPECT_EQ(server_rec.close_code, close_code::policy_violation);
  EXPECT_EQ(raw->close_code(), close_code::policy_violation);
  finish();
}

TEST_F(WsConnection, PingsWithinTheBudgetAreAnswered) {
  Options opts;
  opts.max_pings_per_minute = 5;
  open_raw(Role::server, opts);
  for (int i = 0; i < 5; ++i) raw->send_frame(true, Opcode::ping, "p", /*masked=*/true);
  ASSERT_TRUE(run([&] { return raw->frames().size() == 5; }));
  EXPECT_EQ(server_rec.closes, 0);
  finish();
}

}  // namespace
}  // namespace tg::ws
