// The hub leaves no copy of a user's token in freed memory: the whole user
// API (HTTP server, authentication, routing, billing, the tunnel to a
// scripted agent) serves two requests on one connection, the token sent as
// `Authorization: Bearer` and as `x-api-key`, while the scanning operator
// new/delete of tests/support/freed_scan.h searches every freed block for
// it. The client is a raw TCP stream writing one request buffer the test
// owns, so the test itself frees no copy. Its own executable: the allocator
// replacement must not leak into other tests.
#include <gtest/gtest.h>

#include <string>

#include "shared/net/tcp.h"
#include "tests/support/freed_scan.h"
#include "tests/unit/hub/api_server_fixture.h"

namespace tg::hub {
namespace {

namespace freed_scan = tg::test::freed_scan;
using test::AgentCall;
using test::ApiServerTest;
using test::kChatBody;
using testing::kWaitMs;

// Collects a raw connection's bytes in a buffer reserved up front.
struct Collect final : net::StreamHandler {
  std::string got;
  bool ended = false;
  void on_stream_read(net::Stream&, std::string_view d) noexcept override { got.append(d); }
  void on_stream_end(net::Stream&, const Status&) noexcept override { ended = true; }
};

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST_F(ApiServerTest, NoFreedBlockHoldsTheUsersToken) {
  start();
  connect_agent();
  next_on_body = [](AgentCall& c) { c.answer(200, R"({"id":"x","choices":[]})"); };
  // Built before the scan is armed, freed after it is disarmed.
  const std::string length = std::to_string(kChatBody.size());
  const std::string first = "POST /v1/chat/completions HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " +
                            token + "\r\nContent-Type: application/json\r\nContent-Length: " + length +
                            "\r\n\r\n" + kChatBody;
  const std::string second = "POST /v1/chat/completions HTTP/1.1\r\nHost: hub\r\nx-api-key: " + token +
                             "\r\nContent-Type: application/json\r\nContent-Length: " + length +
                             "\r\n\r\n" + kChatBody;
  Collect user;
  user.got.reserve(64 * 1024);
  net::TcpConnector tcp(loop);
  net::StreamPtr s;
  ASSERT_TRUE(tcp.connect("127.0.0.1", api->port(), kWaitMs, [&](Result<net::StreamPtr> r) {
                   ASSERT_TRUE(r.ok()) << r.status().to_string();
                   s = std::move(r.value());
                   s->set_handler(&user);
                 }).ok());
  ASSERT_TRUE(run([&] { return s != nullptr; }));

  freed_scan::arm(token);
  ASSERT_TRUE(s->write(first).ok());
  ASSERT_TRUE(run([&] { return count(user.got, R"("choices":[])") == 1 || user.ended; }));
  ASSERT_TRUE(s->write(second).ok());
  ASSERT_TRUE(run([&] { return count(user.got, R"("choices":[])") == 2 || user.ended; }));
  EXPECT_EQ(count(user.got, "HTTP/1.1 200"), 2u) << user.got;
  EXPECT_EQ(calls.size(), 2u);
  EXPECT_EQ(freed_scan::hits(), 0u) << "freed blocks held the token while the hub served it";

  // Everything the token passed through ends: the user's connection, the
  // API server, the agent and its tunnel.
  s.reset();
  (void)run([] { return false; }, 50);
  api.reset();
  agents.clear();
  tunnels.reset();
  calls.clear();
  (void)run([] { return false; }, 50);
  EXPECT_EQ(freed_scan::disarm(), 0u) << "freed blocks held the token once the hub let go of it";
}

}  // namespace
}  // namespace tg::hub
