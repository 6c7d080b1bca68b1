// Client and server handshakes over loopback: our client against our server
// (accept_upgrade behind the real http::Server), and each against a raw peer
// writing hand-made HTTP.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "shared/http/server.h"
#include "shared/ws/client.h"
#include "shared/ws/handshake.h"
#include "shared/ws/server.h"
#include "tests/unit/ws/ws_test_util.h"

namespace tg::ws {
namespace {

using test::connect_pair;
using test::kTestTimeoutMs;
using test::RawPeer;
using test::Recorder;

constexpr const char* kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";

// The application behind the HTTP server: every request goes to `fn`.
struct RequestHook final : http::ServerHandler {
  std::function<void(http::Exchange&)> fn;
  void on_request(http::Exchange& ex) noexcept override { fn(ex); }
};

std::string upgrade_request(const std::string& extra_headers) {
  return std::string("GET /t HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: ") +
         kRfcKey + "\r\n" + extra_headers + "\r\n";
}

class WsUpgrade : public ::testing::Test {
 protected:
  Loop loop;
  Recorder client_rec;
  Recorder server_rec;
  RequestHook hook;  // outlives http_server
  ServerHandshakeConfig server_cfg;
  std::unique_ptr<http::Server> http_server;
  std::unique_ptr<ClientHandshake> client_hs;
  std::optional<Result<ConnectionPtr>> client_result;
  std::optional<Result<ConnectionPtr>> server_result;
  std::string server_path;
  std::unique_ptr<RawPeer> raw;

  bool run(const std::function<bool()>& done) { return loop.run_until(done, kTestTimeoutMs); }

  void start_client(net::StreamPtr s, ConnectRequest req) {
    auto hs = connect(loop, std::move(s), std::move(req), [this](Result<ConnectionPtr> r) {
      client_result.emplace(std::move(r));
      client_hs.reset();  // destroying the handshake inside its callback is allowed
    });
    ASSERT_TRUE(hs.ok()) << hs.status().to_string();
    client_hs = std::move(hs.value());
  }

  // Serves HTTP on `s`; each request goes through accept_upgrade.
  void start_server(net::StreamPtr s, ServerHandshakeConfig cfg = {}) {
    server_cfg = std::move(cfg);
    hook.fn = [this](http::Exchange& ex) {
      server_path = ex.request().target;
      server_result.emplace(accept_upgrade(loop, ex, server_cfg, Options{}));
    };
    http_server = std::make_unique<http::Server>(loop, &hook);
    http_server->accept(std::move(s));
  }

  ConnectionPtr& client_conn() { return client_result->value(); }
  ConnectionPtr& server_conn() { return server_result->value(); }

  void finish() {
    client_hs.reset();
    client_result.reset();
    server_result.reset();
    http_server.reset();
    raw.reset();
    EXPECT_TRUE(loop.close().ok());
  }
};

TEST_F(WsUpgrade, ClientAndServerAgreeOnSubprotocolAndExchangeMessages) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  start_server(std::move(ss), {{"tokengo.v1"}, true});
  ConnectRequest req;
  req.host = "127.0.0.1";
  req.path = "/tunnel";
  req.subprotocols = {"other", "tokengo.v1"};
  start_client(std::move(cs), req);
  ASSERT_TRUE(run([&] { return client_result && server_result; }));
  ASSERT_TRUE(client_result->ok()) << client_result->status().to_string();
  ASSERT_TRUE(server_result->ok()) << server_result->status().to_string();
  EXPECT_EQ(server_path, "/tunnel");
  EXPECT_EQ(client_conn()->subprotocol(), "tokengo.v1");
  EXPECT_EQ(server_conn()->subprotocol(), "tokengo.v1");
  client_conn()->start(&client_rec);
  server_conn()->start(&server_rec);
  server_rec.on_message = [](Connection& c, const test::Message& m) {
    EXPECT_TRUE(c.send_text("echo:" + m.payload).ok());
  };
  ASSERT_TRUE(client_conn()->send_text("hi").ok());
  ASSERT_TRUE(run([&] { return client_rec.messages.size() == 1; }));
  EXPECT_EQ(client_rec.messages[0].payload, "echo:hi");
  ASSERT_TRUE(client_conn()->close(1000).ok());
  ASSERT_TRUE(run([&] { return client_rec.closes == 1 && server_rec.closes == 1; }));
  EXPECT_TRUE(client_rec.clean);
  finish();
}

TEST_F(WsUpgrade, ClientGetsFrameSentTogetherWith101) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  raw = std::make_unique<RawPeer>(std::move(ss));
  ConnectRequest req;
  req.host = "h";
  start_client(std::move(cs), req);
  ASSERT_TRUE(run([&] { return raw->received.find("\r\n\r\n") != std::string::npos; }));
  const size_t k = raw->received.find("Sec-WebSocket-Key: ");
  ASSERT_NE(k, std::string::npos);
  const std::string key = raw->received.substr(k + 19, 24);
  std::string answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                       accept_key(key) + "\r\n\r\n";
  encode_frame(answer, true, Opcode::text, "early bird", nullptr);
  raw->send(answer);
  ASSERT_TRUE(run([&] { return client_result.has_value(); }));
  ASSERT_TRUE(client_result->ok()) << client_result->status().to_string();
  client_conn()->start(&client_rec);
  ASSERT_TRUE(run([&] { return client_rec.messages.size() == 1; }));
  EXPECT_EQ(client_rec.messages[0].payload, "early bird");
  finish();
}

TEST_F(WsUpgrade, ClientRejectsWrongAccept) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  raw = std::make_unique<RawPeer>(std::move(ss));
  ConnectRequest req;
  req.host = "h";
  start_client(std::move(cs), req);
  ASSERT_TRUE(run([&] { return !raw->received.empty(); }));
  raw->send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " + accept_key(kRfcKey) + "\r\n\r\n");
  ASSERT_TRUE(run([&] { return client_result.has_value(); }));
  ASSERT_FALSE(client_result->ok());
  EXPECT_EQ(client_result->status().code(), Errc::protocol);
  EXPECT_NE(client_result->status().message().find("Accept"), std::string::npos);
  finish();
}

TEST_F(WsUpgrade, ClientReportsNon101Status) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  raw = std::make_unique<RawPeer>(std::move(ss));
  ConnectRequest req;
  req.host = "h";
  start_client(std::move(cs), req);
  ASSERT_TRUE(run([&] { return !raw->received.empty(); }));
  raw->send("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(run([&] { return client_result.has_value(); }));
  ASSERT_FALSE(client_result->ok());
  EXPECT_NE(client_result->status().message().find("403"), std::string::npos);
  finish();
}

TEST_F(WsUpgrade, ClientTimesOutWithoutAnswer) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  raw = std::make_unique<RawPeer>(std::move(ss));
  ConnectRequest req;
  req.host = "h";
  req.timeout_ms = 30;
  start_client(std::move(cs), req);
  ASSERT_TRUE(run([&] { return client_result.has_value(); }));
  ASSERT_FALSE(client_result->ok());
  EXPECT_EQ(client_result->status().code(), Errc::timeout);
  finish();
}

TEST_F(WsUpgrade, ClientArgumentErrorReturnsAtOnce) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  ConnectRequest req;
  req.host = "h";
  req.path = "no-slash";
  auto hs = connect(loop, std::move(cs), req, [](Result<ConnectionPtr>) { ADD_FAILURE(); });
  EXPECT_EQ(hs.status().code(), Errc::invalid_argument);
  ss.reset();
  finish();
}

TEST_F(WsUpgrade, ServerRefusesWrongVersionWith426AndCloses) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  start_server(std::move(ss));
  raw = std::make_unique<RawPeer>(std::move(cs));
  raw->send(upgrade_request("Sec-WebSocket-Version: 8\r\n"));
  ASSERT_TRUE(run([&] { return server_result.has_value() && raw->ended; }));
  EXPECT_EQ(raw->received.rfind("HTTP/1.1 426", 0), 0u) << raw->received;
  EXPECT_NE(raw->received.find("Sec-WebSocket-Version: 13"), std::string::npos);
  EXPECT_NE(raw->received.find("Connection: close"), std::string::npos);
  EXPECT_NE(raw->received.find("\r\n\r\nSec-WebSocket-Version must be 13"), std::string::npos)
      << raw->received;
  ASSERT_FALSE(server_result->ok());
  EXPECT_EQ(server_result->status().code(), Errc::protocol);
  EXPECT_NE(server_result->status().message().find("426"), std::string::npos);
  finish();
}

TEST_F(WsUpgrade, ServerRefusesMissingRequiredSubprotocolWith400) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  start_server(std::move(ss), {{"tokengo.v1"}, true});
  raw = std::make_unique<RawPeer>(std::move(cs));
  raw->send(upgrade_request("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"));
  ASSERT_TRUE(run([&] { return server_result.has_value() && raw->ended; }));
  EXPECT_EQ(raw->received.rfind("HTTP/1.1 400", 0), 0u) << raw->received;
  EXPECT_NE(raw->received.find("tokengo.v1"), std::string::npos) << raw->received;
  ASSERT_FALSE(server_result->ok());
  EXPECT_EQ(server_result->status().code(), Errc::protocol);
  finish();
}

TEST_F(WsUpgrade, ServerAnswersPlainGetWith426AndKeepsConnection) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  start_server(std::move(ss));
  raw = std::make_unique<RawPeer>(std::move(cs));
  raw->send("GET /t HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string body = "this resource needs a websocket upgrade (Upgrade: websocket)\n";
  ASSERT_TRUE(run([&] { return raw->received.find(body) != std::string::npos; }))
      << raw->received;
  EXPECT_EQ(raw->received.rfind("HTTP/1.1 426", 0), 0u) << raw->received;
  EXPECT_NE(raw->received.find("Upgrade: websocket"), std::string::npos);
  EXPECT_NE(raw->received.find("Content-Length: " + std::to_string(body.size())),
            std::string::npos);
  EXPECT_FALSE(raw->ended);
  ASSERT_TRUE(server_result.has_value());
  EXPECT_EQ(server_result->status().code(), Errc::protocol);
  finish();
}

TEST_F(WsUpgrade, ServerRefusesUpgradeRequestWithBody) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  start_server(std::move(ss));
  raw = std::make_unique<RawPeer>(std::move(cs));
  raw->send(upgrade_request("Sec-WebSocket-Version: 13\r\nContent-Length: 4\r\n") + "abcd");
  ASSERT_TRUE(run([&] { return server_result.has_value() && raw->ended; }));
  EXPECT_EQ(raw->received.rfind("HTTP/1.1 400", 0), 0u) << raw->received;
  EXPECT_NE(raw->received.find("must not have a body"), std::string::npos);
  ASSERT_FALSE(server_result->ok());
  EXPECT_EQ(server_result->status().code(), Errc::protocol);
  finish();
}

TEST_F(WsUpgrade, ServerProcessesFrameSentWithRequest) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  start_server(std::move(ss));
  raw = std::make_unique<RawPeer>(std::move(cs));
  std::string req = upgrade_request("Sec-WebSocket-Version: 13\r\n");
  const MaskKey key{1, 2, 3, 4};
  encode_frame(req, true, Opcode::binary, "eager", &key);
  raw->send(req);
  ASSERT_TRUE(run([&] { return server_result.has_value(); }));
  ASSERT_TRUE(server_result->ok()) << server_result->status().to_string();
  EXPECT_EQ(server_path, "/t");
  server_conn()->start(&server_rec);
  ASSERT_TRUE(run([&] { return server_rec.messages.size() == 1; }));
  EXPECT_EQ(server_rec.messages[0].payload, "eager");
  EXPECT_EQ(raw->received.rfind("HTTP/1.1 101", 0), 0u) << raw->received;
  EXPECT_NE(raw->received.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            std::string::npos);
  finish();
}

TEST_F(WsUpgrade, ServerConnectionOutlivesHttpServer) {
  net::StreamPtr cs, ss;
  ASSERT_TRUE(connect_pair(loop, &cs, &ss));
  start_server(std::move(ss));
  raw = std::make_unique<RawPeer>(std::move(cs));
  raw->send(upgrade_request("Sec-WebSocket-Version: 13\r\n"));
  ASSERT_TRUE(run([&] { return server_result.has_value(); }));
  ASSERT_TRUE(server_result->ok()) << server_result->status().to_string();
  http_server.reset();
  server_conn()->start(&server_rec);
  raw->send_frame(true, Opcode::text, "after", true);
  ASSERT_TRUE(run([&] { return server_rec.messages.size() == 1; }));
  EXPECT_EQ(server_rec.messages[0].payload, "after");
  finish();
}

}  // namespace
}  // namespace tg::ws
