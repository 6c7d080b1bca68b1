#include "shared/http/server.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/http/test_util.h"

namespace tg::http {
namespace {

using test::count_of;
using test::HttpFixture;
using test::Recorder;
using test::Sink;
using test::status_line;

using ServerTest = HttpFixture;

// Sends `bytes` on a fresh connection and waits for the server to end it.
std::string exchange_and_wait_close(HttpFixture& f, Sink& sink, net::Stream* c,
                                    const std::string& bytes) {
  EXPECT_TRUE(c->write(bytes).ok());
  EXPECT_TRUE(f.loop.run_until([&] { return sink.ends == 1; }, 5000));
  return sink.data;
}

void ok_handler(test::App& app) {
  app.on_req = [](Exchange& ex) { (void)ex.reply(200, "ok"); };
}

TEST_F(ServerTest, GarbageGets400AndClose) {
  start();
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got = exchange_and_wait_close(*this, sink, c, "HELLO WORLD\r\n\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 400 Bad Request");
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(app.requests, 0);
}

TEST_F(ServerTest, OversizeHeadGets431) {
  start();
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got = exchange_and_wait_close(
      *this, sink, c, "GET / HTTP/1.1\r\nX-Big: " + std::string(17 * 1024, 'a') + "\r\n\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_EQ(app.requests, 0);
}

TEST_F(ServerTest, TooManyHeadersGets431) {
  start();
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string req = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 65; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  std::string got = exchange_and_wait_close(*this, sink, c, req + "\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST_F(ServerTest, LongUrlGets414) {
  start();
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got = exchange_and_wait_close(
      *this, sink, c, "GET /" + std::string(9000, 'u') + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 414 URI Too Long");
}

TEST_F(ServerTest, OversizeContentLengthGets413BeforeHandler) {
  ServerOptions o;
  o.limits.body_bytes = 100;
  start(o);
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got =
      exchange_and_wait_close(*this, sink, c, "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 413 Content Too Large");
  EXPECT_EQ(app.requests, 0);
}

TEST_F(ServerTest, OversizeChunkedBodyGets413AndAborts) {
  ServerOptions o;
  o.limits.body_bytes = 100;
  start(o);
  Recorder rec;
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got = exchange_and_wait_close(
      *this, sink, c,
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + std::string(100, 'x') +
          "\r\n1\r\ny\r\n0\r\n\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 413 Content Too Large");
  EXPECT_EQ(rec.aborts, 1);
  EXPECT_EQ(rec.why.code(), Errc::limit);
  EXPECT_EQ(rec.body.size(), 100u);
  EXPECT_EQ(rec.ends, 0);
}

TEST_F(ServerTest, SlowHeadGets408) {
  ServerOptions o;
  o.header_timeout_ms = 100;
  start(o);
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got = exchange_and_wait_close(*this, sink, c, "GET / HTTP/1.1\r\nHost: x\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 408 Request Timeout");
  EXPECT_EQ(app.requests, 0);
}

TEST_F(ServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  app.on_req = [](Exchange& ex) { (void)ex.reply(200, ex.request().target); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET /one HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("/one") != std::string::npos; }));
  ASSERT_TRUE(c->write("GET /two HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("/two") != std::string::npos; }));
  EXPECT_EQ(count_of(sink.data, "HTTP/1.1 200 OK\r\n"), 2);
  EXPECT_EQ(count_of(sink.data, "Connection: close"), 0);
  EXPECT_EQ(app.requests, 2);
  EXPECT_EQ(sink.ends, 0);
  EXPECT_EQ(server->connection_count(), 1u);
}

TEST_F(ServerTest, PipelinedRequestsAnsweredInOrder) {
  start();
  // The first answer is delayed; the second request must wait for it.
  Timer delay(loop);
  app.on_req = [&](Exchange& ex) {
    if (ex.request().target == "/slow") {
      Exchange* p = &ex;
      delay.start(50, 0, [p] { (void)p->reply(200, "slow"); });
    } else {
      (void)ex.reply(200, "fast");
    }
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET /slow HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("fast") != std::string::npos; }));
  EXPECT_LT(sink.data.find("slow"), sink.data.find("fast"));
  EXPECT_EQ(app.requests, 2);
}

TEST_F(ServerTest, ChunkedRequestBodyIsStreamedToHandler) {
  start();
  Recorder rec;
  rec.on_end = [](Exchange& ex) { (void)ex.reply(200, "got it"); };
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").ok());
  ASSERT_TRUE(run_until([&] { return rec.body == "hello"; }));
  EXPECT_EQ(rec.ends, 0);
  ASSERT_TRUE(c->write("6\r\n world\r\n0\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("got it") != std::string::npos; }));
  EXPECT_EQ(rec.body, "hello world");
  EXPECT_GE(rec.pieces.size(), 2u);
  EXPECT_EQ(rec.ends, 1);
  EXPECT_EQ(rec.aborts, 0);
}

TEST_F(ServerTest, ExpectContinueSends100ThenFinal) {
  start();
  Recorder rec;
  rec.on_end = [](Exchange& ex) { (void)ex.reply(200, "done"); };
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(
      c->write("PUT /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data == "HTTP/1.1 100 Continue\r\n\r\n"; }));
  ASSERT_TRUE(c->write("abcde").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("done") != std::string::npos; }));
  EXPECT_EQ(rec.body, "abcde");
  EXPECT_EQ(count_of(sink.data, "100 Continue"), 1);
}

TEST_F(ServerTest, ExpectContinueRejectedSkips100AndCloses) {
  start();
  app.on_req = [](Exchange& ex) { (void)ex.reply(401, "no"); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got = exchange_and_wait_close(
      *this, sink, c, "PUT /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(status_line(got), "HTTP/1.1 401 Unauthorized");
  EXPECT_EQ(count_of(got, "100 Continue"), 0);
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
}

TEST_F(ServerTest, ClientDisconnectMidResponseFiresAbort) {
  start();
  Recorder rec;
  app.on_req = [&](Exchange& ex) {
    ex.set_handler(&rec);
    ResponseHead h;
    h.headers.add("Content-Type", "text/event-stream");
    ASSERT_TRUE(ex.respond(h).ok());
    ASSERT_TRUE(ex.write("data: 1\n\n").ok());
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET /events HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("data: 1") != std::string::npos; }));
  EXPECT_NE(sink.data.find("Transfer-Encoding: chunked"), std::string::npos);
  clients.clear();  // the client goes away without a word
  ASSERT_TRUE(run_until([&] { return rec.aborts == 1; }));
  EXPECT_EQ(rec.why.code(), Errc::closed);
  ASSERT_TRUE(run_until([&] { return server->connection_count() == 0; }));
}

TEST_F(ServerTest, AbortDropsTheConnectionMidResponse) {
  start();
  Recorder rec;
  Exchange* held = nullptr;
  app.on_req = [&](Exchange& ex) {
    ex.set_handler(&rec);
    ResponseHead h;
    h.headers.add("Content-Type", "application/json");
    ASSERT_TRUE(ex.respond(h).ok());
    ASSERT_TRUE(ex.write("{\"partial\":").ok());
    held = &ex;
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET /x HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("partial") != std::string::npos; }));
  held->abort();
  ASSERT_TRUE(run_until([&] { return sink.ends == 1; }));
  // No terminating chunk: the client can tell the body was cut.
  EXPECT_EQ(sink.data.find("0\r\n\r\n"), std::string::npos);
  EXPECT_EQ(rec.aborts, 0);
  ASSERT_TRUE(run_until([&] { return server->connection_count() == 0; }));
}

TEST_F(ServerTest, ClientDisconnectMidRequestBodyFiresAbort) {
  start();
  Recorder rec;
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789").ok());
  ASSERT_TRUE(run_until([&] { return rec.body.size() == 10; }));
  c->shutdown();
  ASSERT_TRUE(run_until([&] { return rec.aborts == 1; }));
  EXPECT_EQ(rec.ends, 0);
}

TEST_F(ServerTest, IdleKeepAliveClosesSilently) {
  ServerOptions o;
  o.idle_timeout_ms = 100;
  start(o);
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.ends == 1; }));
  EXPECT_EQ(count_of(sink.data, "HTTP/1.1"), 1);
  EXPECT_EQ(status_line(sink.data), "HTTP/1.1 200 OK");
}

TEST_F(ServerTest, Http10WithoutLengthIsCloseDelimited) {
  start();
  app.on_req = [](Exchange& ex) {
    ASSERT_TRUE(ex.respond(ResponseHead()).ok());
    ASSERT_TRUE(ex.write("part1 ").ok());
    ASSERT_TRUE(ex.write("part2").ok());
    ASSERT_TRUE(ex.finish().ok());
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  std::string got = exchange_and_wait_close(*this, sink, c, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(got.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(got.substr(got.size() - 11), "part1 part2");
}

TEST_F(ServerTest, Http10KeepAliveWithLength) {
  start();
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return count_of(sink.data, "ok") == 1; }));
  EXPECT_NE(sink.data.find("Connection: keep-alive\r\n"), std::string::npos);
  ASSERT_TRUE(c->write("GET /b HTTP/1.0\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.ends == 1; }));
  EXPECT_EQ(app.requests, 2);
}

TEST_F(ServerTest, HeadResponseHasNoBody) {
  start();
  app.on_req = [](Exchange& ex) { (void)ex.reply(200, "hello"); };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return count_of(sink.data, "HTTP/1.1 200") == 2; }));
  ASSERT_TRUE(run_until([&] { return sink.data.find("hello") != std::string::npos; }));
  EXPECT_EQ(count_of(sink.data, "hello"), 1);
  EXPECT_EQ(count_of(sink.data, "Content-Length: 5"), 2);
}

TEST_F(ServerTest, RequestBodyPauseStopsDeliveryUntilResume) {
  start();
  Recorder rec;
  Exchange* exp = nullptr;
  rec.on_body = [&](Exchange& ex, std::string_view) {
    if (rec.pieces.size() == 1) ex.pause_request_body();
  };
  rec.on_end = [](Exchange& ex) { (void)ex.reply(200, "fin"); };
  app.on_req = [&](Exchange& ex) {
    exp = &ex;
    ex.set_handler(&rec);
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n0\r\n\r\n")
                  .ok());
  ASSERT_TRUE(run_until([&] { return rec.pieces.size() == 1; }));
  // Nothing more arrives while paused.
  run_until([] { return false; }, 100);
  EXPECT_EQ(rec.body, "abc");
  EXPECT_EQ(rec.ends, 0);
  exp->resume_request_body();
  EXPECT_EQ(rec.body, "abc");  // delivery resumes from the loop, not inside the call
  ASSERT_TRUE(run_until([&] { return sink.data.find("fin") != std::string::npos; }));
  EXPECT_EQ(rec.body, "abcdefghi");
  EXPECT_EQ(rec.ends, 1);
}

TEST_F(ServerTest, RespondRejectsBadHeadsAndLengthOverrun) {
  start();
  Status injection, transfer, overrun, second;
  app.on_req = [&](Exchange& ex) {
    ResponseHead bad;
    bad.headers.add("X-Evil", "a\r\nSet-Cookie: x");
    injection = ex.respond(bad);
    ResponseHead te;
    te.headers.add("Transfer-Encoding", "chunked");
    transfer = ex.respond(te);
    ResponseHead h;
    h.headers.add("Content-Length", "2");
    ASSERT_TRUE(ex.respond(h).ok());
    second = ex.respond(h);
    overrun = ex.write("abc");
    ASSERT_TRUE(ex.write("ab").ok());
    ASSERT_TRUE(ex.finish().ok());
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("\r\n\r\nab") != std::string::npos; }));
  EXPECT_EQ(injection.code(), Errc::invalid_argument);
  EXPECT_EQ(transfer.code(), Errc::invalid_argument);
  EXPECT_EQ(second.code(), Errc::invalid_argument);
  EXPECT_EQ(overrun.code(), Errc::invalid_argument);
  EXPECT_EQ(sink.data.find("Set-Cookie"), std::string::npos);
}

TEST_F(ServerTest, UpgradeHandsOverStreamWithLeftover) {
  start();
  Upgraded up;
  app.on_req = [&](Exchange& ex) {
    ResponseHead h;
    h.status = 101;
    h.headers.add("Upgrade", "test-proto");
    h.headers.add("Connection", "Upgrade");
    auto r = ex.upgrade(h);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    up = std::move(r.value());
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET /tunnel HTTP/1.1\r\nUpgrade: test-proto\r\nConnection: Upgrade\r\n\r\n"
                       "early-bytes")
                  .ok());
  ASSERT_TRUE(run_until([&] { return up.stream != nullptr; }));
  Sink upstream;
  up.stream->set_handler(&upstream);
  ASSERT_TRUE(run_until([&] { return up.leftover + upstream.data == "early-bytes"; }));
  ASSERT_TRUE(c->write("later").ok());
  ASSERT_TRUE(up.stream->write("from-server").ok());
  ASSERT_TRUE(run_until([&] { return up.leftover + upstream.data == "early-byteslater"; }));
  ASSERT_TRUE(run_until([&] { return sink.data.find("from-server") != std::string::npos; }));
  EXPECT_EQ(sink.data,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: test-proto\r\nConnection: Upgrade\r\n\r\n"
            "from-server");
  ASSERT_TRUE(run_until([&] { return server->connection_count() == 0; }));
  up.stream.reset();
}

TEST_F(ServerTest, UpgradeRefusedForRequestWithBody) {
  start();
  Status st;
  app.on_req = [&](Exchange& ex) {
    ResponseHead h;
    h.status = 101;
    st = ex.upgrade(h).status();
    (void)ex.reply(400);
  };
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  exchange_and_wait_close(*this, sink, c,
                          "POST / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n"
                          "Content-Length: 3\r\n\r\nabc");
  EXPECT_EQ(st.code(), Errc::invalid_argument);
  EXPECT_EQ(status_line(sink.data), "HTTP/1.1 400 Bad Request");
}

TEST_F(ServerTest, OverConnectionLimitGets503) {
  ServerOptions o;
  o.max_connections = 1;
  start(o);
  ok_handler(app);
  Sink first, second;
  ASSERT_NE(connect(&first), nullptr);
  ASSERT_TRUE(run_until([&] { return server->connection_count() == 1; }));
  net::Stream* c2 = connect(&second);
  ASSERT_NE(c2, nullptr);
  ASSERT_TRUE(run_until([&] { return second.ends == 1; }));
  EXPECT_EQ(status_line(second.data), "HTTP/1.1 503 Service Unavailable");
}

TEST_F(ServerTest, DrainClosesIdleConnections) {
  start();
  ok_handler(app);
  Sink sink;
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(run_until([&] { return sink.data.find("ok") != std::string::npos; }));
  server->drain();
  ASSERT_TRUE(run_until([&] { return sink.ends == 1; }));
}

}  // namespace
}  // namespace tg::http
