#include "shared/http/client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <unistd.h>

#include "tests/unit/http/test_util.h"

namespace tg::http {
namespace {

using test::count_of;
using test::Recorder;
using test::Sink;

// Incremental FNV-1a 64 over streamed pieces.
struct Fnv {
  uint64_t h = 1469598103934665603ULL;
  void add(std::string_view d) {
    for (char c : d) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
  }
};

// Deterministic pseudo-random bytes, produced piece by piece.
struct Producer {
  uint64_t state = 42;
  uint64_t left;
  explicit Producer(uint64_t total) : left(total) {}
  std::string next(size_t max) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, max));
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      s[i] = static_cast<char>(state >> 56);
    }
    left -= n;
    return s;
  }
};

struct Response : ClientHandler {
  ResponseHead head;
  std::string body;
  int heads = 0, ends = 0, errors = 0, upgrades = 0, drains = 0;
  Status why;
  Upgraded up;
  std::function<void(ClientConnection&, std::string_view)> on_body;
  std::function<void(ClientConnection&)> on_drain;
  void on_response_head(ClientConnection&, const ResponseHead& h) noexcept override {
    ++heads;
    head = h;
  }
  void on_response_body(ClientConnection& c, std::string_view piece) noexcept override {
    body.append(piece);
    if (on_body) on_body(c, piece);
  }
  void on_response_end(ClientConnection&) noexcept override { ++ends; }
  void on_error(ClientConnection&, const Status& w) noexcept override {
    ++errors;
    why = w;
  }
  void on_upgrade(ClientConnection&, const ResponseHead& h, Upgraded u) noexcept override {
    ++upgrades;
    head = h;
    up = std::move(u);
  }
  void on_request_drain(ClientConnection& c) noexcept override {
    ++drains;
    if (on_drain) on_drain(c);
  }
  bool done() const { return ends + errors + upgrades > 0; }
};

class ClientTest : public test::HttpFixture {
 public:
  std::unique_ptr<ClientConnection> client;
  // A raw peer for malformed-response tests.
  std::unique_ptr<net::TcpListener> raw_listener;
  net::StreamPtr raw_peer;
  Sink raw_sink;

  void TearDown() override {
    client.reset();
    raw_peer.reset();
    raw_listener.reset();
    HttpFixture::TearDown();
  }

  // Connects a ClientConnection to `p` (default: the test server).
  void make_client(uint16_t p = 0, const ClientOptions& opts = {}) {
    net::TcpConnector conn(loop);
    net::StreamPtr got;
    bool done = false;
    ASSERT_TRUE(conn.connect("127.0.0.1", p ? p : port(), 2000,
                             [&](Result<net::StreamPtr> r) {
                               done = true;
                               if (r.ok()) got = std::move(r.value());
                             })
                    .ok());
    ASSERT_TRUE(run_until([&] { return done; }));
    ASSERT_TRUE(got);
    client = std::make_unique<ClientConnection>(loop, std::move(got), opts);
  }

  // Starts a raw peer that answers every read with `answer` once.
  void start_raw(const std::string& answer, bool close_after = false,
                 const ClientOptions& opts = {}) {
    raw_listener = std::make_unique<net::TcpListener>(loop);
    ASSERT_TRUE(raw_listener
                    ->listen("127.0.0.1", 0,
                             [this](net::StreamPtr s) {
                               raw_peer = std::move(s);
                               raw_peer->set_handler(&raw_sink);
                             })
                    .ok());
    raw_sink.on_read = [this, answer, close_after](net::Stream& s, std::string_view) {
      if (answer.empty() || raw_sink.data.find("\r\n\r\n") == std::string::npos) return;
      if (count_of(raw_sink.data, "\r\n\r\n") > 1) return;
      (void)s.write(answer);
      if (close_after) s.shutdown();
    };
    make_client(raw_listener->port(), opts);
  }

  static RequestHead get(const std::string& target) {
    RequestHead h;
    h.method = "GET";
    h.target = target;
    h.headers.add("Host", "127.0.0.1");
    return h;
  }
};

TEST_F(ClientTest, GetAgainstServer) {
  start();
  app.on_req = [](Exchange& ex) { (void)ex.reply(200, "hello " + ex.request().target); };
  make_client();
  Response r;
  ASSERT_TRUE(client->request(get("/x"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.ends, 1);
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.headers.get("content-length"), "8");
  EXPECT_EQ(r.body, "hello /x");
  EXPECT_TRUE(client->reusable());
}

TEST_F(ClientTest, PostChunkedBodyEchoed) {
  start();
  Recorder rec;
  rec.on_end = [&](Exchange& ex) { (void)ex.reply(200, rec.body); };
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  make_client();
  RequestHead h = get("/post");
  h.method = "POST";
  h.headers.add("Transfer-Encoding", "chunked");
  Response r;
  ASSERT_TRUE(client->request(h, &r).ok());
  ASSERT_TRUE(client->write("one ").ok());
  ASSERT_TRUE(client->write("").ok());
  ASSERT_TRUE(client->write("two ").ok());
  ASSERT_TRUE(client->write("three").ok());
  ASSERT_TRUE(client->finish().ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.body, "one two three");
  EXPECT_TRUE(client->reusable());
}

TEST_F(ClientTest, ContentLengthBodyMustBeComplete) {
  start();
  Recorder rec;
  rec.on_end = [&](Exchange& ex) { (void)ex.reply(200, rec.body); };
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  make_client();
  RequestHead h = get("/post");
  h.method = "POST";
  h.headers.add("Content-Length", "6");
  Response r;
  ASSERT_TRUE(client->request(h, &r).ok());
  ASSERT_TRUE(client->write("abc").ok());
  EXPECT_EQ(client->finish().code(), Errc::invalid_argument);
  EXPECT_EQ(client->write("defg").code(), Errc::invalid_argument);
  ASSERT_TRUE(client->write("def").ok());
  ASSERT_TRUE(client->finish().ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.body, "abcdef");
}

TEST_F(ClientTest, KeepAliveReusesConnection) {
  start();
  app.on_req = [](Exchange& ex) { (void)ex.reply(200, ex.request().target); };
  make_client();
  Response r1, r2;
  ASSERT_TRUE(client->request(get("/1"), &r1).ok());
  EXPECT_EQ(client->request(get("/busy"), &r2).code(), Errc::invalid_argument);
  ASSERT_TRUE(run_until([&] { return r1.done(); }));
  ASSERT_TRUE(client->reusable());
  ASSERT_TRUE(client->request(get("/2"), &r2).ok());
  ASSERT_TRUE(run_until([&] { return r2.done(); }));
  EXPECT_EQ(r1.body, "/1");
  EXPECT_EQ(r2.body, "/2");
  EXPECT_EQ(app.requests, 2);
  EXPECT_EQ(server->connection_count(), 1u);
}

TEST_F(ClientTest, ConnectionCloseIsNotReusable) {
  start();
  app.on_req = [](Exchange& ex) { (void)ex.reply(200, "x"); };
  make_client();
  RequestHead h = get("/");
  h.headers.add("Connection", "close");
  Response r;
  ASSERT_TRUE(client->request(h, &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.ends, 1);
  EXPECT_EQ(r.head.headers.get("Connection"), "close");
  EXPECT_FALSE(client->reusable());
  EXPECT_EQ(client->request(get("/"), &r).code(), Errc::closed);
}

TEST_F(ClientTest, HeadAnd204And304HaveNoBody) {
  start();
  app.on_req = [](Exchange& ex) {
    const std::string& t = ex.request().target;
    if (t == "/204") {
      (void)ex.reply(204);
    } else if (t == "/304") {
      ResponseHead h;
      h.status = 304;
      h.headers.add("Content-Length", "10");
      (void)ex.respond(h);
      (void)ex.finish();
    } else {
      (void)ex.reply(200, "hello");
    }
  };
  make_client();
  RequestHead head = get("/");
  head.method = "HEAD";
  for (const RequestHead& h : {head, get("/204"), get("/304")}) {
    Response r;
    ASSERT_TRUE(client->request(h, &r).ok());
    ASSERT_TRUE(run_until([&] { return r.done(); }));
    EXPECT_EQ(r.ends, 1) << h.target;
    EXPECT_EQ(r.body, "") << h.target;
    EXPECT_TRUE(client->reusable()) << h.target;
  }
}

TEST_F(ClientTest, LargeBodiesStreamBothWaysWithBoundedPieces) {
  constexpr uint64_t kTotal = 32ull * 1024 * 1024;
  ServerOptions o;
  o.limits.body_bytes = kTotal;
  start(o);
  Fnv server_in, server_out, client_in, client_out;
  size_t max_server_piece = 0, max_client_piece = 0;
  uint64_t server_got = 0;
  Producer up(kTotal), down(kTotal);

  // The server hashes the upload piece by piece, then streams its own 32 MiB
  // back, writing only while the response queue is below the high-water mark.
  Recorder rec;
  rec.on_body = [&](Exchange&, std::string_view p) {
    server_in.add(p);
    server_got += p.size();
    max_server_piece = std::max(max_server_piece, p.size());
    rec.body.clear();  // the recorder must not accumulate 32 MiB either
  };
  std::function<void(Exchange&)> pump = [&](Exchange& ex) {
    while (!ex.write_blocked()) {
      if (down.left == 0) {
        ASSERT_TRUE(ex.finish().ok());
        return;
      }
      std::string piece = down.next(64 * 1024);
      server_out.add(piece);
      ASSERT_TRUE(ex.write(piece).ok());
    }
  };
  rec.on_end = [&](Exchange& ex) {
    ResponseHead h;
    h.headers.add("Content-Type", "application/octet-stream");
    ASSERT_TRUE(ex.respond(h).ok());
    pump(ex);
  };
  rec.on_drain = pump;
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };

  make_client();
  RequestHead h = get("/big");
  h.method = "POST";
  h.headers.add("Transfer-Encoding", "chunked");
  Response r;
  uint64_t client_got = 0;
  r.on_body = [&](ClientConnection&, std::string_view p) {
    client_in.add(p);
    client_got += p.size();
    max_client_piece = std::max(max_client_piece, p.size());
    r.body.clear();
  };
  auto upload = [&](ClientConnection& c) {
    while (!c.write_blocked() && up.left > 0) {
      std::string piece = up.next(60000);
      client_out.add(piece);
      ASSERT_TRUE(c.write(piece).ok());
    }
    if (up.left == 0) {
      ASSERT_TRUE(c.finish().ok());
    }
  };
  r.on_drain = upload;
  ASSERT_TRUE(client->request(h, &r).ok());
  upload(*client);
  ASSERT_TRUE(run_until([&] { return r.done(); }, 60000));
  EXPECT_EQ(r.ends, 1) << r.why.to_string();
  EXPECT_EQ(server_got, kTotal);
  EXPECT_EQ(client_got, kTotal);
  EXPECT_EQ(server_in.h, client_out.h);
  EXPECT_EQ(client_in.h, server_out.h);
  // Pieces are views of single socket reads, never an accumulated body.
  EXPECT_LE(max_server_piece, 256u * 1024);
  EXPECT_LE(max_client_piece, 256u * 1024);
  EXPECT_GT(r.drains + rec.drains, 0);
}

TEST_F(ClientTest, PauseResponseStopsDeliveryUntilResume) {
  start();
  app.on_req = [](Exchange& ex) {
    ResponseHead h;
    ASSERT_TRUE(ex.respond(h).ok());
    ASSERT_TRUE(ex.write("first").ok());
    ASSERT_TRUE(ex.write("second").ok());
    ASSERT_TRUE(ex.finish().ok());
  };
  make_client();
  Response r;
  r.on_body = [](ClientConnection& c, std::string_view) { c.pause_response(); };
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return !r.body.empty(); }));
  const std::string first = r.body;
  run_until([] { return false; }, 100);
  EXPECT_EQ(r.body, first);
  EXPECT_EQ(r.ends, 0);
  r.on_body = nullptr;
  client->resume_response();
  EXPECT_EQ(r.body, first);  // nothing inside the call
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.body, "firstsecond");
  EXPECT_EQ(r.ends, 1);
}

TEST_F(ClientTest, UpgradeHandsOverWithLeftoverOnBothSides) {
  start();
  Upgraded server_side;
  app.on_req = [&](Exchange& ex) {
    ResponseHead h;
    h.status = 101;
    h.headers.add("Upgrade", "tg-test");
    h.headers.add("Connection", "Upgrade");
    auto u = ex.upgrade(h);
    ASSERT_TRUE(u.ok()) << u.status().to_string();
    server_side = std::move(u.value());
    ASSERT_TRUE(server_side.stream->write("server-early").ok());
  };
  make_client();
  RequestHead h = get("/tunnel");
  h.headers.add("Upgrade", "tg-test");
  h.headers.add("Connection", "Upgrade");
  Response r;
  ASSERT_TRUE(client->request(h, &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  ASSERT_EQ(r.upgrades, 1);
  EXPECT_EQ(r.head.status, 101);
  EXPECT_EQ(r.head.headers.get("Upgrade"), "tg-test");
  ASSERT_TRUE(r.up.stream);
  ASSERT_TRUE(server_side.stream);
  // Whatever the client connection read past the head is leftover; the rest
  // arrives on the stream once the new owner attaches.
  Sink client_sink, server_sink;
  r.up.stream->set_handler(&client_sink);
  server_side.stream->set_handler(&server_sink);
  ASSERT_TRUE(run_until([&] { return r.up.leftover + client_sink.data == "server-early"; }));
  ASSERT_TRUE(r.up.stream->write("client-after").ok());
  ASSERT_TRUE(run_until([&] { return server_side.leftover + server_sink.data == "client-after"; }));
  EXPECT_FALSE(client->reusable());
  EXPECT_EQ(client->request(get("/"), &r).code(), Errc::invalid_argument);
  r.up.stream.reset();
  server_side.stream.reset();
}

TEST_F(ClientTest, RawUpgradeLeftoverInSameSegment) {
  start_raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nnext");
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  ASSERT_EQ(r.upgrades, 1);
  Sink s;
  r.up.stream->set_handler(&s);
  ASSERT_TRUE(run_until([&] { return r.up.leftover + s.data == "next"; }));
  r.up.stream.reset();
}

TEST_F(ClientTest, InterimResponsesAreSkipped) {
  start_raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.heads, 1);
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.body, "hi");
}

TEST_F(ClientTest, CloseDelimitedBodyEndsAtEof) {
  start_raw("HTTP/1.1 200 OK\r\n\r\nuntil the end", true);
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.ends, 1) << r.why.to_string();
  EXPECT_EQ(r.body, "until the end");
  EXPECT_FALSE(client->reusable());
}

TEST_F(ClientTest, TruncatedBodyIsClosedError) {
  start_raw("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true);
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.why.code(), Errc::closed);
  EXPECT_EQ(r.body, "abc");
}

TEST_F(ClientTest, GarbageResponseIsParseError) {
  start_raw("SSH-2.0-OpenSSH\r\n\r\n");
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.why.code(), Errc::parse);
}

TEST_F(ClientTest, TooManyResponseHeadersIsLimitError) {
  std::string answer = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 65; ++i) answer += "X-" + std::to_string(i) + ": v\r\n";
  start_raw(answer + "Content-Length: 0\r\n\r\n");
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.why.code(), Errc::limit);
}

TEST_F(ClientTest, ResponseBodyLimit) {
  ClientOptions o;
  o.limits.body_bytes = 4;
  start_raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde", false, o);
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.why.code(), Errc::limit);
}

TEST_F(ClientTest, ResponseHeadTimeout) {
  ClientOptions o;
  o.response_timeout_ms = 100;
  start_raw("", false, o);
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.why.code(), Errc::timeout);
  EXPECT_FALSE(client->reusable());
}

TEST_F(ClientTest, BodySilenceAfterTheHeadTimesOut) {
  ClientOptions o;
  o.body_idle_timeout_ms = 100;
  start_raw("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, o);  // then silence
  Response r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.heads, 1);
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.why.code(), Errc::timeout);
  EXPECT_NE(r.why.message().find("no response body byte"), std::string::npos) << r.why.message();
}

TEST_F(ClientTest, TimeWePauseTheBodyIsNotSilence) {
  ClientOptions o;
  o.body_idle_timeout_ms = 100;
  start_raw("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcdefghij", false, o);
  struct Pauser : Response {
    void on_response_head(ClientConnection& c, const ResponseHead& h) noexcept override {
      Response::on_response_head(c, h);
      c.pause_response();  // a slow user holds the vendor back
    }
  } r;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.heads == 1; }));
  run_until([] { return false; }, 300);  // three times the timeout, paused
  EXPECT_EQ(r.errors, 0);
  client->resume_response();
  ASSERT_TRUE(run_until([&] { return r.done(); }));
  EXPECT_EQ(r.errors, 0) << r.why.message();
  EXPECT_EQ(r.ends, 1);
}

TEST_F(ClientTest, HandlerMayDestroyConnectionInCallback) {
  start();
  app.on_req = [](Exchange& ex) { (void)ex.reply(200, "bye"); };
  make_client();
  struct Destroyer : Response {
    std::unique_ptr<ClientConnection>* owner = nullptr;
    void on_response_head(ClientConnection&, const ResponseHead& h) noexcept override {
      ++heads;
      head = h;
      owner->reset();
    }
  } r;
  r.owner = &client;
  ASSERT_TRUE(client->request(get("/"), &r).ok());
  ASSERT_TRUE(run_until([&] { return r.heads == 1; }));
  run_until([] { return false; }, 50);
  EXPECT_EQ(client, nullptr);
  EXPECT_EQ(r.ends, 0);
}

TEST_F(ClientTest, RequestRejectsBadHeads) {
  start();
  make_client();
  Response r;
  RequestHead bad = get("/");
  bad.headers.add("X", "a\r\nInjected: 1");
  EXPECT_EQ(client->request(bad, &r).code(), Errc::invalid_argument);
  RequestHead te = get("/");
  te.headers.add("Transfer-Encoding", "gzip");
  EXPECT_EQ(client->request(te, &r).code(), Errc::invalid_argument);
  RequestHead cl = get("/");
  cl.headers.add("Content-Length", "-1");
  EXPECT_EQ(client->request(cl, &r).code(), Errc::invalid_argument);
  EXPECT_TRUE(client->reusable());
}

TEST_F(ClientTest, CurlAgainstServer) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed at /usr/bin/curl";
  start();
  Recorder rec;
  rec.on_end = [&](Exchange& ex) {
    (void)ex.reply(200, ex.request().method + " " + ex.request().target + " " + rec.body);
  };
  app.on_req = [&](Exchange& ex) { ex.set_handler(&rec); };
  // curl runs in a child process; the loop keeps serving while we wait for it.
  const std::string out = ::testing::TempDir() + "tg_http_curl_out.txt";
  const std::string cmd = "/usr/bin/curl -s --max-time 10 -H 'Transfer-Encoding: chunked' "
                          "--data-binary hello http://127.0.0.1:" +
                          std::to_string(port()) + "/curl -o " + out;
  uv_process_options_t po{};
  std::string sh = "/bin/sh", dash_c = "-c";
  char* args[] = {sh.data(), dash_c.data(), const_cast<char*>(cmd.c_str()), nullptr};
  po.file = "/bin/sh";
  po.args = args;
  int64_t exit_status = -1;
  po.exit_cb = [](uv_process_t* p, int64_t status, int) {
    *static_cast<int64_t*>(p->data) = status;
    uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
  };
  uv_process_t proc;
  proc.data = &exit_status;
  ASSERT_EQ(uv_spawn(loop, &proc, &po), 0);
  ASSERT_TRUE(run_until([&] { return exit_status >= 0; }, 15000));
  EXPECT_EQ(exit_status, 0);
  FILE* f = std::fopen(out.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  char buf[256] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::remove(out.c_str());
  EXPECT_EQ(std::string(buf, n), "POST /curl hello");
}

}  // namespace
}  // namespace tg::http
