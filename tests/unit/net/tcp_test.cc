#include "shared/net/tcp.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "shared/core/loop.h"

namespace tg::net {
namespace {

// Collects what a stream delivers.
struct Sink : StreamHandler {
  std::string data;
  int ends = 0;
  int drains = 0;
  Status why;
  std::function<void(Stream&, std::string_view)> on_read;
  void on_stream_read(Stream& s, std::string_view d) noexcept override {
    data.append(d);
    if (on_read) on_read(s, d);
  }
  void on_stream_end(Stream&, const Status& w) noexcept override {
    ++ends;
    why = w;
  }
  void on_stream_drain(Stream&) noexcept override { ++drains; }
};

// A listener plus one connected client/server pair on 127.0.0.1.
struct Pair {
  Loop& loop;
  TcpListener listener;
  TcpConnector connector;
  StreamPtr server, client;

  explicit Pair(Loop& l) : loop(l), listener(l), connector(l) {
    EXPECT_TRUE(listener.listen("127.0.0.1", 0, [this](StreamPtr s) { server = std::move(s); }).ok());
    EXPECT_TRUE(connector
                    .connect("127.0.0.1", listener.port(), 2000,
                             [this](Result<StreamPtr> r) {
                               ASSERT_TRUE(r.ok()) << r.status().to_string();
                               client = std::move(r.value());
                             })
                    .ok());
    EXPECT_TRUE(loop.run_until([this] { return server && client; }, 3000));
  }
};

TEST(Tcp, EchoBothWays) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs, ss;
    p.client->set_handler(&cs);
    p.server->set_handler(&ss);
    ASSERT_TRUE(p.client->write("ping").ok());
    ASSERT_TRUE(loop.run_until([&] { return ss.data == "ping"; }, 2000));
    std::string_view parts[] = {"po", "", "ng"};
    ASSERT_TRUE(p.server->writev(parts, 3).ok());
    ASSERT_TRUE(loop.run_until([&] { return cs.data == "pong"; }, 2000));
    EXPECT_EQ(p.client->peer_address(), "127.0.0.1:" + std::to_string(p.listener.port()));
    EXPECT_EQ(p.client->tls(), nullptr);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, ShutdownGivesPeerAnOrderlyEnd) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs, ss;
    p.client->set_handler(&cs);
    p.server->set_handler(&ss);
    ASSERT_TRUE(p.client->write("last words").ok());
    p.client->shutdown();
    EXPECT_FALSE(p.client->write("more").ok());  // refused at once
    ASSERT_TRUE(loop.run_until([&] { return ss.ends == 1; }, 2000));
    EXPECT_TRUE(ss.why.ok());
    EXPECT_EQ(ss.data, "last words");
    EXPECT_EQ(cs.ends, 0);
    EXPECT_FALSE(p.server->write("x").ok());
  }
  EXPECT_TRUE(loop.close().ok());
}

// A response head, its body and its end written in one turn are held, then
// leave together at the start of the next turn: one system write, not three.
TEST(Tcp, WritesOfOneTurnLeaveTogether) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs, ss;
    p.client->set_handler(&cs);
    p.server->set_handler(&ss);
    const std::string head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    std::string_view chunk[] = {"5\r\n", "hello", "\r\n"};
    ASSERT_TRUE(p.server->write(head).ok());
    ASSERT_TRUE(p.server->writev(chunk, 3).ok());
    ASSERT_TRUE(p.server->write("0\r\n\r\n").ok());
    const std::string all = head + "5\r\nhello\r\n0\r\n\r\n";
    EXPECT_EQ(p.server->queued_bytes(), all.size());  // still ours: nothing sent yet
    EXPECT_FALSE(p.server->write_blocked());
    ASSERT_TRUE(loop.run_until([&] { return cs.data == all; }, 2000));
    EXPECT_EQ(p.server->queued_bytes(), 0u);

    // Turned off (TLS gathers its own records), a write goes to the kernel at once.
    p.server->set_write_batching(false);
    ASSERT_TRUE(p.server->write("now").ok());
    EXPECT_EQ(p.server->queued_bytes(), 0u);
    ASSERT_TRUE(loop.run_until([&] { return cs.data == all + "now"; }, 2000));
  }
  EXPECT_TRUE(loop.close().ok());
}

// A write too large to copy sends the held bytes first, then itself: order kept.
TEST(Tcp, LargeWriteAfterHeldOnesKeepsOrder) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs, ss;
    p.client->set_handler(&cs);
    p.server->set_handler(&ss);
    const std::string a(100, 'a'), b(64 * 1024, 'b'), c(10, 'c');
    ASSERT_TRUE(p.client->write(a).ok());
    ASSERT_TRUE(p.client->write(b).ok());
    ASSERT_TRUE(p.client->write(c).ok());
    ASSERT_TRUE(loop.run_until([&] { return ss.data.size() == a.size() + b.size() + c.size(); },
                               3000));
    EXPECT_EQ(ss.data, a + b + c);
  }
  EXPECT_TRUE(loop.close().ok());
}

// Held bytes count against the high-water mark, and their departure drains.
TEST(Tcp, HeldBytesBlockUntilTheyLeave) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs, ss;
    p.client->set_handler(&cs);
    p.server->set_handler(&ss);
    p.client->set_write_watermarks(1024, 512);
    ASSERT_TRUE(p.client->write(std::string(2000, 'x')).ok());
    EXPECT_TRUE(p.client->write_blocked());
    EXPECT_EQ(cs.drains, 0);  // never from inside write()
    ASSERT_TRUE(loop.run_until([&] { return cs.drains == 1; }, 2000));
    EXPECT_FALSE(p.client->write_blocked());
    ASSERT_TRUE(loop.run_until([&] { return ss.data.size() == 2000; }, 2000));
  }
  EXPECT_TRUE(loop.close().ok());
}

// An error answer written and the connection closed in the same turn (what a
// server does with a bad request) still reaches the peer.
TEST(Tcp, CloseRightAfterAWriteStillSendsIt) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs, ss;
    p.client->set_handler(&cs);
    p.server->set_handler(&ss);
    ASSERT_TRUE(p.server->write("HTTP/1.1 400 Bad Request\r\n\r\n").ok());
    p.server.reset();
    ASSERT_TRUE(loop.run_until([&] { return cs.ends == 1; }, 2000));
    EXPECT_EQ(cs.data, "HTTP/1.1 400 Bad Request\r\n\r\n");
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, ConnectRefusedIsReportedFromTheLoop) {
  Loop loop;
  uint16_t port;
  {
    TcpListener l(loop);  // find a free port, then close it
    ASSERT_TRUE(l.listen("127.0.0.1", 0, [](StreamPtr) {}).ok());
    port = l.port();
  }
  int calls = 0;
  Status why;
  {
    TcpConnector c(loop);
    ASSERT_TRUE(c.connect("127.0.0.1", port, 2000, [&](Result<StreamPtr> r) {
                   ++calls;
                   why = r.status();
                 }).ok());
    EXPECT_EQ(calls, 0);
    ASSERT_TRUE(loop.run_until([&] { return calls == 1; }, 3000));
  }
  EXPECT_TRUE(loop.close().ok());
  EXPECT_NE(why.message().find("connection refused"), std::string::npos) << why.to_string();
}

TEST(Tcp, ResolvesLocalhostByName) {
  Loop loop;
  {
    TcpListener l(loop);
    StreamPtr server;
    ASSERT_TRUE(l.listen("127.0.0.1", 0, [&](StreamPtr s) { server = std::move(s); }).ok());
    TcpConnector c(loop);
    StreamPtr client;
    Status why(Errc::internal, "pending");
    // localhost may resolve to ::1 first; the connector falls through to 127.0.0.1.
    ASSERT_TRUE(c.connect("localhost", l.port(), 3000, [&](Result<StreamPtr> r) {
                   why = r.status();
                   if (r.ok()) client = std::move(r.value());
                 }).ok());
    ASSERT_TRUE(loop.run_until([&] { return client && server; }, 4000)) << why.to_string();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, ConnectsFromAChosenSourceAddress) {
  Loop loop;
  {
    TcpListener l(loop);
    StreamPtr server;
    ASSERT_TRUE(l.listen("127.0.0.1", 0, [&](StreamPtr s) { server = std::move(s); }).ok());
    TcpConnector c(loop);
    StreamPtr client;
    TcpOptions opts;
    opts.bind_address = "127.0.0.7";
    ASSERT_TRUE(c.connect("127.0.0.1", l.port(), 2000, [&](Result<StreamPtr> r) {
                   ASSERT_TRUE(r.ok()) << r.status().to_string();
                   client = std::move(r.value());
                 }, opts).ok());
    ASSERT_TRUE(loop.run_until([&] { return client && server; }, 3000));
    EXPECT_EQ(server->peer_address().rfind("127.0.0.7:", 0), 0u) << server->peer_address();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, CancelledConnectNeverCallsBack) {
  Loop loop;
  int calls = 0;
  {
    TcpListener l(loop);
    ASSERT_TRUE(l.listen("127.0.0.1", 0, [](StreamPtr) {}).ok());
    auto c = std::make_unique<TcpConnector>(loop);
    ASSERT_TRUE(c->connect("127.0.0.1", l.port(), 2000, [&](Result<StreamPtr>) { ++calls; }).ok());
    c.reset();
    loop.run_until([] { return false; }, 50);
  }
  loop.run();
  EXPECT_TRUE(loop.close().ok());
  EXPECT_EQ(calls, 0);
}

TEST(Tcp, BadArgumentsFailAtOnce) {
  Loop loop;
  {
    TcpConnector c(loop);
    EXPECT_EQ(c.connect("", 80, 100, [](Result<StreamPtr>) {}).code(), Errc::invalid_argument);
    EXPECT_EQ(c.connect("127.0.0.1", 0, 100, [](Result<StreamPtr>) {}).code(),
              Errc::invalid_argument);
    TcpListener l(loop);
    EXPECT_EQ(l.listen("not-an-ip", 0, [](StreamPtr) {}).code(), Errc::invalid_argument);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, StalledReaderBlocksWriterUntilDrain) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs, ss;
    p.client->set_handler(&cs);
    p.server->set_handler(&ss);
    p.server->pause_reading();
    p.client->set_write_watermarks(64 * 1024, 16 * 1024);
    std::string chunk(64 * 1024, 'x');
    size_t sent = 0;
    // Fill until the queue passes the high-water mark (kernel buffers absorb the rest).
    while (!p.client->write_blocked() && sent < (64u << 20)) {
      ASSERT_TRUE(p.client->write(chunk).ok());
      sent += chunk.size();
      loop.run_until([] { return false; }, 1);
    }
    ASSERT_TRUE(p.client->write_blocked());
    EXPECT_EQ(cs.drains, 0);
    p.server->resume_reading();
    ASSERT_TRUE(loop.run_until([&] { return cs.drains == 1; }, 5000));
    ASSERT_TRUE(loop.run_until([&] { return ss.data.size() == sent; }, 5000));
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, DetachedHandlerStopsDeliveryUntilReattached) {
  Loop loop;
  {
    Pair p(loop);
    Sink first, second;
    p.server->set_handler(&first);
    first.on_read = [&](Stream& s, std::string_view) { s.set_handler(nullptr); };
    ASSERT_TRUE(p.client->write("a").ok());
    ASSERT_TRUE(loop.run_until([&] { return first.data == "a"; }, 2000));
    ASSERT_TRUE(p.client->write("b").ok());
    loop.run_until([] { return false; }, 30);
    EXPECT_EQ(first.data, "a");
    p.server->set_handler(&second);
    ASSERT_TRUE(loop.run_until([&] { return second.data == "b"; }, 2000));
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, DestroyedInsideReadCallback) {
  Loop loop;
  {
    Pair p(loop);
    Sink ss;
    ss.on_read = [&](Stream&, std::string_view) { p.server.reset(); };
    p.server->set_handler(&ss);
    Sink cs;
    p.client->set_handler(&cs);
    ASSERT_TRUE(p.client->write("bye").ok());
    ASSERT_TRUE(loop.run_until([&] { return !p.server; }, 2000));
    ASSERT_TRUE(loop.run_until([&] { return cs.ends == 1; }, 2000));  // peer sees the close
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(Tcp, PeerResetEndsWithError) {
  Loop loop;
  {
    Pair p(loop);
    Sink cs;
    p.client->set_handler(&cs);
    p.server->close();
    ASSERT_TRUE(loop.run_until([&] { return cs.ends == 1; }, 2000));
    EXPECT_EQ(cs.data, "");
  }
  EXPECT_TRUE(loop.close().ok());
}

}  // namespace
}  // namespace tg::net
