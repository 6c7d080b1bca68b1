// http::Server limits not covered by server_test.cc: connections per client
// address (and the address key they count by), a stalled request body, and a
// request head trickled in byte by byte. Real loopback sockets; clients bind
// 127.0.0.2 when they must come from another address.
#include "shared/http/server.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/unit/http/test_util.h"

namespace tg::http {
namespace {

using test::HttpFixture;
using test::Recorder;
using test::Sink;
using test::status_line;

class ServerLimitsTest : public HttpFixture {
 public:
  // Connects from `source` (a numeric loopback address) instead of 127.0.0.1.
  net::Stream* connect_from(Sink* sink, const std::string& source) {
    connectors.push_back(std::make_unique<net::TcpConnector>(loop));
    net::StreamPtr got;
    bool done = false;
    net::TcpOptions opts;
    opts.bind_address = source;
    EXPECT_TRUE(connectors.back()
                    ->connect("127.0.0.1", port(), 2000,
                              [&](Result<net::StreamPtr> r) {
                                done = true;
                                if (r.ok()) got = std::move(r.value());
                              },
                              opts)
                    .ok());
    EXPECT_TRUE(loop.run_until([&] { return done; }, 3000));
    if (!got) return nullptr;
    got->set_handler(sink);
    clients.push_back(std::move(got));
    return clients.back().get();
  }

  // Waits until the server has accepted `n` connections in all.
  bool accepted(size_t n) {
    return run_until([&] { return server->connection_count() == n; });
  }

  void serve_ok() {
    app.on_req = [](Exchange& ex) { (void)ex.reply(200, "ok"); };
  }
};

// --- address_key ---

TEST(AddressKey, Ipv4DropsThePort) {
  EXPECT_EQ(address_key("127.0.0.1:8080"), "127.0.0.1");
  EXPECT_EQ(address_key("10.1.2.3:1"), "10.1.2.3");
}

TEST(AddressKey, Ipv6CountsByItsSlash64) {
  EXPECT_EQ(address_key("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_key("[2001:db8:1:2::1]:5"), address_key("[2001:db8:1:2:ffff::9]:6"));
  EXPECT_NE(address_key("[2001:db8:1:2::1]:5"), address_key("[2001:db8:1:3::1]:5"));
  EXPECT_EQ(address_key("[::1]:80"), "::/64");
}

TEST(AddressKey, Ipv4MappedIpv6CountsAsIpv4) {
  EXPECT_EQ(address_key("[::ffff:192.0.2.7]:9000"), "192.0.2.7");
}

TEST(AddressKey, ZoneIsIgnored) {
  EXPECT_EQ(address_key("[fe80::1%eth0]:22"), "fe80::/64");
}

TEST(AddressKey, AnythingElseIsKeptWhole) {
  EXPECT_EQ(address_key(""), "");
  EXPECT_EQ(address_key("(detached)"), "(detached)");
  EXPECT_EQ(address_key("[not-an-address]:1"), "[not-an-address]:1");
  EXPECT_EQ(address_key("host.example:80"), "host.example:80");
}

// --- connections per address ---

TEST_F(ServerLimitsTest, OneConnectionOverThePerAddressLimitGets503) {
  ServerOptions o;
  o.max_connections_per_address = 2;
  start(o);
  serve_ok();
  Sink a, b, c;
  ASSERT_NE(connect(&a), nullptr);
  ASSERT_NE(connect(&b), nullptr);
  ASSERT_TRUE(accepted(2));
  EXPECT_EQ(server->connections_from("127.0.0.1:1"), 2u);
  ASSERT_NE(connect(&c), nullptr);
  ASSERT_TRUE(run_until([&] { return c.ends == 1; }));
  EXPECT_EQ(status_line(c.data), "HTTP/1.1 503 Service Unavailable");
  EXPECT_NE(c.data.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(app.requests, 0);
  // The two admitted connections are still served.
  ASSERT_TRUE(clients[0]->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(clients[1]->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return app.requests == 2 && !b.data.empty(); }));
  EXPECT_EQ(status_line(a.data), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line(b.data), "HTTP/1.1 200 OK");
  EXPECT_EQ(a.ends, 0);
}

TEST_F(ServerLimitsTest, AtThePerAddressLimitEveryConnectionIsServed) {
  ServerOptions o;
  o.max_connections_per_address = 3;
  start(o);
  serve_ok();
  Sink s[3];
  for (Sink& k : s) ASSERT_NE(connect(&k), nullptr);
  ASSERT_TRUE(accepted(3));
  for (auto& c : clients) ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return !s[0].data.empty() && !s[1].data.empty() && !s[2].data.empty(); }));
  for (Sink& k : s) {
    EXPECT_EQ(status_line(k.data), "HTTP/1.1 200 OK");
    EXPECT_EQ(k.ends, 0);
  }
}

TEST_F(ServerLimitsTest, AnotherAddressIsServedWhileOneIsAtItsLimit) {
  ServerOptions o;
  o.max_connections_per_address = 1;
  start(o);
  serve_ok();
  Sink first, other;
  ASSERT_NE(connect_from(&first, "127.0.0.1"), nullptr);
  ASSERT_TRUE(accepted(1));
  net::Stream* c = connect_from(&other, "127.0.0.2");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(accepted(2));
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return !other.data.empty(); }));
  EXPECT_EQ(status_line(other.data), "HTTP/1.1 200 OK");
  EXPECT_EQ(server->connections_from("127.0.0.1:9"), 1u);
  EXPECT_EQ(server->connections_from("127.0.0.2:9"), 1u);
}

TEST_F(ServerLimitsTest, ASlotIsFreedWhenItsConnectionEnds) {
  ServerOptions o;
  o.max_connections_per_address = 1;
  start(o);
  serve_ok();
  Sink first, second;
  ASSERT_NE(connect(&first), nullptr);
  ASSERT_TRUE(accepted(1));
  clients[0]->close();
  ASSERT_TRUE(run_until([&] { return server->connection_count() == 0; }));
  EXPECT_EQ(server->connections_from("127.0.0.1:1"), 0u);
  net::Stream* c = connect(&second);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return !second.data.empty(); }));
  EXPECT_EQ(status_line(second.data), "HTTP/1.1 200 OK");
}

TEST_F(ServerLimitsTest, RefusedConnectionsTakeNoSlot) {
  ServerOptions o;
  o.max_connections_per_address = 1;
  o.linger_ms = 5000;  // the refused ones stay around, discarding input
  start(o);
  serve_ok();
  Sink admitted, refused1, refused2, later;
  ASSERT_NE(connect(&admitted), nullptr);
  ASSERT_TRUE(accepted(1));
  ASSERT_NE(connect(&refused1), nullptr);
  ASSERT_NE(connect(&refused2), nullptr);
  ASSERT_TRUE(run_until([&] {
    return status_line(refused1.data) == "HTTP/1.1 503 Service Unavailable" &&
           status_line(refused2.data) == "HTTP/1.1 503 Service Unavailable";
  }));
  EXPECT_EQ(server->connections_from("127.0.0.1:1"), 1u);
  // The admitted one leaves while the refused ones still linger.
  clients[0]->close();
  ASSERT_TRUE(run_until([&] { return server->connections_from("127.0.0.1:1") == 0; }));
  EXPECT_GE(server->connection_count(), 2u);
  net::Stream* c = connect(&later);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return !later.data.empty(); }));
  EXPECT_EQ(status_line(later.data), "HTTP/1.1 200 OK");
}

TEST_F(ServerLimitsTest, AnUpgradedConnectionLeavesTheCount) {
  ServerOptions o;
  o.max_connections_per_address = 1;
  start(o);
  std::vector<net::StreamPtr> upgraded;
  app.on_req = [&](Exchange& ex) {
    if (ex.request().target == "/up") {
      ResponseHead h;
      h.status = 101;
      h.headers.add("Upgrade", "test");
      h.headers.add("Connection", "Upgrade");
      auto up = ex.upgrade(h);
      ASSERT_TRUE(up.ok()) << up.status().to_string();
      upgraded.push_back(std::move(up->stream));
    } else {
      (void)ex.reply(200, "ok");
    }
  };
  Sink first, second;
  net::Stream* c1 = connect(&first);
  ASSERT_NE(c1, nullptr);
  ASSERT_TRUE(c1->write("GET /up HTTP/1.1\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return upgraded.size() == 1 && server->connection_count() == 0; }));
  EXPECT_EQ(server->connections_from("127.0.0.1:1"), 0u);
  net::Stream* c2 = connect(&second);
  ASSERT_NE(c2, nullptr);
  ASSERT_TRUE(c2->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return !second.data.empty(); }));
  EXPECT_EQ(status_line(second.data), "HTTP/1.1 200 OK");
  upgraded.clear();
}

TEST_F(ServerLimitsTest, ZeroMeansNoPerAddressLimit) {
  ServerOptions o;
  o.max_connections_per_address = 0;
  start(o);
  serve_ok();
  Sink s[5];
  for (Sink& k : s) ASSERT_NE(connect(&k), nullptr);
  ASSERT_TRUE(accepted(5));
  EXPECT_EQ(server->connections_from("127.0.0.1:1"), 5u);
  for (auto& c : clients) ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return app.requests == 5; }));
  for (Sink& k : s) EXPECT_EQ(k.ends, 0);
}

TEST_F(ServerLimitsTest, TheDefaultPerAddressLimitIs512) {
  EXPECT_EQ(ServerOptions{}.max_connections_per_address, 512u);
}

// --- timeouts ---

TEST_F(ServerLimitsTest, StalledRequestBodyGets408AndAborts) {
  ServerOptions o;
  o.body_timeout_ms = 100;
  start(o);
  Recorder rec;
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").ok());
  ASSERT_TRUE(run_until([&] { return sink.ends == 1; }));
  EXPECT_EQ(status_line(sink.data), "HTTP/1.1 408 Request Timeout");
  EXPECT_EQ(rec.aborts, 1);
  EXPECT_EQ(rec.why.code(), Errc::timeout);
  EXPECT_EQ(rec.body, "abc");
  EXPECT_EQ(rec.ends, 0);
}

TEST_F(ServerLimitsTest, BodyBytesKeepTheBodyTimerFromFiring) {
  ServerOptions o;
  o.body_timeout_ms = 300;
  start(o);
  Recorder rec;
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  rec.on_end = [](Exchange& ex) { (void)ex.reply(200, "ok"); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("POST / HTTP/1.1\r\nContent-Length: 8\r\n\r\n").ok());
  // One byte every 100 ms: 800 ms in all, each gap well under the timeout.
  for (int i = 0; i < 8; ++i) {
    const uint64_t until = loop.now_ms() + 100;
    (void)run_until([&] { return loop.now_ms() >= until || sink.ends > 0; }, 1000);
    ASSERT_EQ(sink.ends, 0) << "closed after " << i << " bytes";
    ASSERT_TRUE(c->write("x").ok());
  }
  ASSERT_TRUE(run_until([&] { return !sink.data.empty(); }));
  EXPECT_EQ(status_line(sink.data), "HTTP/1.1 200 OK");
  EXPECT_EQ(rec.body, "xxxxxxxx");
}

TEST_F(ServerLimitsTest, PeerThatNeverEndsIsDroppedAfterTheLinger) {
  ServerOptions o;
  o.linger_ms = 200;
  start(o);
  serve_ok();
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  // A final answer (400) is followed by the server's FIN; this client never
  // ends its side and keeps sending, so only the linger timer ends it.
  ASSERT_TRUE(c->write("HELLO\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.ends == 1; }));
  EXPECT_EQ(status_line(sink.data), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(server->connection_count(), 1u);  // closing: reading and discarding
  const uint64_t t0 = loop.now_ms();
  (void)c->write("more bytes nobody reads");
  ASSERT_TRUE(run_until([&] { return server->connection_count() == 0; }, 3000));
  const uint64_t took = loop.now_ms() - t0;
  EXPECT_LT(took, 1500u);
}

TEST_F(ServerLimitsTest, TrickledHeadStillGets408AtItsDeadline) {
  ServerOptions o;
  o.header_timeout_ms = 300;
  start(o);
  serve_ok();
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  const uint64_t t0 = loop.now_ms();
  const std::string head = "GET / HTTP/1.1\r\nX-Slow: " + std::string(200, 'a');
  // One byte every 20 ms (4 s for the whole head): the deadline is for the
  // whole head, so bytes arriving do not push it back.
  for (size_t i = 0; i < head.size() && sink.ends == 0; ++i) {
    ASSERT_TRUE(c->write(head.substr(i, 1)).ok() || sink.ends > 0);
    const uint64_t until = loop.now_ms() + 20;
    (void)run_until([&] { return loop.now_ms() >= until || sink.ends > 0; }, 1000);
  }
  ASSERT_EQ(sink.ends, 1);
  const uint64_t took = loop.now_ms() - t0;
  EXPECT_EQ(status_line(sink.data), "HTTP/1.1 408 Request Timeout");
  EXPECT_GE(took, 250u);  // loop time is cached: allow for its granularity
  EXPECT_LT(took, 2000u);
  EXPECT_EQ(app.requests, 0);
}

}  // namespace
}  // namespace tg::http
