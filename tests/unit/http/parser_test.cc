#include "shared/http/parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace tg::http {
namespace {

struct Msg {
  RequestHead req;
  ResponseHead resp;
  std::string body;
  bool ended = false;
  bool keep_alive = false;
};

struct Outcome {
  std::vector<Msg> msgs;
  Status error;
  int http_status = 0;
  bool upgraded = false;
  std::string leftover;
};

// Feeds `input` in pieces of `split` bytes (0 = all at once), stepping until
// each piece is used up, as a connection would.
Outcome run(Parser& p, std::string_view input, size_t split = 0) {
  Outcome o;
  std::string pending;
  size_t pos = 0;
  while (pos < input.size()) {
    const size_t n = split ? std::min(split, input.size() - pos) : input.size() - pos;
    pending.assign(input.substr(pos, n));
    pos += n;
    size_t off = 0;
    for (;;) {
      auto r = p.step(std::string_view(pending).substr(off));
      if (!r.ok()) {
        o.error = r.status();
        o.http_status = p.error_http_status();
        return o;
      }
      off += r->consumed;
      if (r->event == ParseEvent::need_more) {
        EXPECT_EQ(off, pending.size());
        break;
      }
      if (r->event == ParseEvent::head) {
        Msg m;
        m.req = p.request_head();
        m.resp = p.response_head();
        m.keep_alive = p.keep_alive();
        o.msgs.push_back(m);
      } else if (r->event == ParseEvent::body) {
        EXPECT_FALSE(o.msgs.empty());
        EXPECT_GE(r->body.data(), pending.data());
        EXPECT_LE(r->body.data() + r->body.size(), pending.data() + pending.size());
        o.msgs.back().body.append(r->body);
      } else if (r->event == ParseEvent::message_end) {
        o.msgs.back().ended = true;
        if (p.upgrade()) {
          o.upgraded = true;
          o.leftover = pending.substr(off) + std::string(input.substr(pos));
          return o;
        }
      }
    }
  }
  return o;
}

Outcome run_request(std::string_view in, size_t split = 0, ParserLimits lim = {}) {
  Parser p(Parser::Mode::request, lim);
  return run(p, in, split);
}

const size_t kSplits[] = {0, 1, 2, 3, 7, 64};

TEST(Parser, SimpleGetAtEverySplit) {
  const std::string in = "GET /path?q=1 HTTP/1.1\r\nHost: a.example\r\nX-Two:  v  \r\n\r\n";
  for (size_t split : kSplits) {
    Outcome o = run_request(in, split);
    ASSERT_TRUE(o.error.ok()) << o.error.to_string();
    ASSERT_EQ(o.msgs.size(), 1u);
    const RequestHead& r = o.msgs[0].req;
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/path?q=1");
    EXPECT_EQ(r.version_minor, 1);
    EXPECT_EQ(r.headers.size(), 2u);
    EXPECT_EQ(r.headers.get("host"), "a.example");
    EXPECT_EQ(r.headers.get("x-two"), "v");
    EXPECT_TRUE(o.msgs[0].ended);
    EXPECT_TRUE(o.msgs[0].keep_alive);
  }
}

TEST(Parser, EmptyHeaderValueIsKept) {
  Outcome o = run_request("GET / HTTP/1.1\r\nX-Empty:\r\nY: 1\r\n\r\n");
  ASSERT_TRUE(o.error.ok()) << o.error.to_string();
  ASSERT_EQ(o.msgs.size(), 1u);
  EXPECT_TRUE(o.msgs[0].req.headers.has("X-Empty"));
  EXPECT_EQ(o.msgs[0].req.headers.get("Y"), "1");
}

TEST(Parser, ContentLengthBody) {
  const std::string in = "POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
  for (size_t split : kSplits) {
    Parser p(Parser::Mode::request);
    Outcome o = run(p, in, split);
    ASSERT_TRUE(o.error.ok()) << o.error.to_string();
    ASSERT_EQ(o.msgs.size(), 1u);
    EXPECT_EQ(o.msgs[0].body, "hello world");
    EXPECT_TRUE(o.msgs[0].ended);
    EXPECT_EQ(p.phase(), Parser::Phase::idle);
  }
}

TEST(Parser, ChunkedBodyWithTrailers) {
  const std::string in =
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (size_t split : kSplits) {
    Parser p(Parser::Mode::request);
    Outcome o = run(p, in, split);
    ASSERT_TRUE(o.error.ok()) << o.error.to_string();
    ASSERT_EQ(o.msgs.size(), 1u);
    EXPECT_EQ(o.msgs[0].body, "hello world0123456789");
    EXPECT_TRUE(o.msgs[0].ended);
  }
}

TEST(Parser, HeadHasBodyAndLength) {
  Parser p(Parser::Mode::request);
  auto r = p.step("PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->event, ParseEvent::head);
  EXPECT_EQ(r->consumed, 37u);
  EXPECT_TRUE(p.has_body());
  EXPECT_TRUE(p.has_content_length());
  EXPECT_FALSE(p.chunked());
  EXPECT_EQ(p.content_length(), 3u);
}

TEST(Parser, PipelinedRequestsStopAtEachMessageEnd) {
  const std::string a = "GET /a HTTP/1.1\r\n\r\n";
  const std::string b = "POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
  const std::string in = a + b;
  Parser p(Parser::Mode::request);
  auto r1 = p.step(in);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->event, ParseEvent::head);
  EXPECT_EQ(r1->consumed, a.size());
  auto r2 = p.step(std::string_view(in).substr(a.size()));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->event, ParseEvent::message_end);
  EXPECT_EQ(r2->consumed, 0u);
  Outcome o = run(p, b);
  ASSERT_TRUE(o.error.ok()) << o.error.to_string();
  ASSERT_EQ(o.msgs.size(), 1u);
  EXPECT_EQ(o.msgs[0].req.target, "/b");
  EXPECT_EQ(o.msgs[0].body, "hi");
}

TEST(Parser, KeepAliveRules) {
  EXPECT_TRUE(run_request("GET / HTTP/1.1\r\n\r\n").msgs.at(0).keep_alive);
  EXPECT_FALSE(run_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").msgs.at(0).keep_alive);
  EXPECT_FALSE(run_request("GET / HTTP/1.0\r\n\r\n").msgs.at(0).keep_alive);
  Outcome o = run_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(o.msgs.at(0).keep_alive);
  EXPECT_EQ(o.msgs.at(0).req.version_minor, 0);
}

TEST(Parser, UpgradeRequestLeavesLeftover) {
  const std::string head =
      "GET /tunnel HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string extra("\x81\x05hello\0\x01", 9);
  for (size_t split : kSplits) {
    Outcome o = run_request(head + extra, split);
    ASSERT_TRUE(o.error.ok()) << o.error.to_string();
    ASSERT_EQ(o.msgs.size(), 1u);
    EXPECT_TRUE(o.upgraded);
    EXPECT_EQ(o.leftover, extra) << split;
  }
}

TEST(Parser, StepAfterUpgradeIsAnError) {
  Parser p(Parser::Mode::request);
  Outcome o = run(p, "GET / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
  ASSERT_TRUE(o.upgraded);
  EXPECT_EQ(p.step("more").status().code(), Errc::protocol);
}

// --- response mode ---

Outcome run_response(std::string_view in, size_t split = 0, bool head_request = false) {
  Parser p(Parser::Mode::response);
  if (head_request) p.expect_no_body();
  Outcome o = run(p, in, split);
  if (o.error.ok()) {
    auto f = p.finish();
    if (!f.ok()) {
      o.error = f.status();
    } else if (f->event == ParseEvent::message_end) {
      o.msgs.back().ended = true;
    }
  }
  return o;
}

TEST(Parser, ResponseContentLength) {
  for (size_t split : kSplits) {
    Outcome o = run_response("HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc", split);
    ASSERT_TRUE(o.error.ok()) << o.error.to_string();
    ASSERT_EQ(o.msgs.size(), 1u);
    EXPECT_EQ(o.msgs[0].resp.status, 201);
    EXPECT_EQ(o.msgs[0].resp.reason, "Created");
    EXPECT_EQ(o.msgs[0].body, "abc");
  }
}

TEST(Parser, ResponseChunked) {
  for (size_t split : kSplits) {
    Outcome o = run_response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", split);
    ASSERT_TRUE(o.error.ok()) << o.error.to_string();
    ASSERT_EQ(o.msgs.size(), 1u);
    EXPECT_EQ(o.msgs[0].body, "abcd");
    EXPECT_TRUE(o.msgs[0].ended);
  }
}

TEST(Parser, ResponseCloseDelimitedEndsAtFinish) {
  Parser p(Parser::Mode::response);
  Outcome o = run(p, "HTTP/1.1 200 OK\r\n\r\nsome bytes");
  ASSERT_TRUE(o.error.ok());
  ASSERT_EQ(o.msgs.size(), 1u);
  EXPECT_FALSE(o.msgs[0].ended);
  EXPECT_FALSE(o.msgs[0].keep_alive);
  EXPECT_EQ(o.msgs[0].body, "some bytes");
  auto f = p.finish();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->event, ParseEvent::message_end);
}

TEST(Parser, ResponseNoBodyRules) {
  Outcome o204 = run_response("HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_TRUE(o204.error.ok());
  EXPECT_TRUE(o204.msgs.at(0).ended);
  Outcome o304 = run_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
  ASSERT_TRUE(o304.error.ok()) << o304.error.to_string();
  EXPECT_TRUE(o304.msgs.at(0).ended);
  EXPECT_EQ(o304.msgs.at(0).body, "");
  Outcome head = run_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 0, true);
  ASSERT_TRUE(head.error.ok()) << head.error.to_string();
  EXPECT_TRUE(head.msgs.at(0).ended);
  EXPECT_TRUE(head.msgs.at(0).keep_alive);
}

TEST(Parser, InterimResponseThenFinal) {
  Outcome o = run_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
  ASSERT_TRUE(o.error.ok()) << o.error.to_string();
  ASSERT_EQ(o.msgs.size(), 2u);
  EXPECT_EQ(o.msgs[0].resp.status, 100);
  EXPECT_EQ(o.msgs[1].resp.status, 200);
  EXPECT_EQ(o.msgs[1].body, "x");
}

TEST(Parser, SwitchingProtocolsHeadConsumedExactly) {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string in = head + "\x81\x01x";
  Parser p(Parser::Mode::response);
  auto r = p.step(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->event, ParseEvent::head);
  EXPECT_EQ(r->consumed, head.size());
  EXPECT_EQ(p.response_head().status, 101);
}

TEST(Parser, FinishInsideMessageIsClosed) {
  Parser p1(Parser::Mode::response);
  EXPECT_TRUE(p1.step("HTTP/1.1 200 OK\r\nConte").ok());
  EXPECT_EQ(p1.finish().status().code(), Errc::closed);
  Parser p2(Parser::Mode::response);
  Outcome o = run(p2, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab");
  ASSERT_TRUE(o.error.ok());
  EXPECT_EQ(p2.finish().status().code(), Errc::closed);
  Parser p3(Parser::Mode::response);
  auto idle = p3.finish();
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->event, ParseEvent::need_more);
}

// --- limits, exact edges ---

std::string request_with_head_size(size_t total) {
  std::string start = "GET / HTTP/1.1\r\nX-Pad: ";
  const size_t fixed = start.size() + 4;  // "\r\n\r\n"
  return start + std::string(total - fixed, 'a') + "\r\n\r\n";
}

TEST(ParserLimits, HeadBytesAtLimitOk) {
  for (size_t split : kSplits) {
    ParserLimits lim;
    lim.head_bytes = 1000;
    Outcome o = run_request(request_with_head_size(1000), split, lim);
    ASSERT_TRUE(o.error.ok()) << o.error.to_string() << " split " << split;
    EXPECT_EQ(o.msgs.size(), 1u);
  }
}

TEST(ParserLimits, HeadBytesOneOverIs431) {
  for (size_t split : kSplits) {
    ParserLimits lim;
    lim.head_bytes = 1000;
    Outcome o = run_request(request_with_head_size(1001), split, lim);
    EXPECT_EQ(o.error.code(), Errc::limit) << split;
    EXPECT_EQ(o.http_status, 431);
  }
}

TEST(ParserLimits, DefaultHeadLimitIs16KiB) {
  EXPECT_TRUE(run_request(request_with_head_size(16 * 1024)).error.ok());
  EXPECT_EQ(run_request(request_with_head_size(16 * 1024 + 1)).http_status, 431);
}

TEST(ParserLimits, HeadLimitResetsPerMessage) {
  ParserLimits lim;
  lim.head_bytes = 100;
  const std::string one = request_with_head_size(100);
  Outcome o = run_request(one + one + one, 0, lim);
  ASSERT_TRUE(o.error.ok()) << o.error.to_string();
  EXPECT_EQ(o.msgs.size(), 3u);
}

std::string request_with_fields(size_t n) {
  std::string s = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < n; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
  return s + "\r\n";
}

TEST(ParserLimits, HeaderCountAtLimitOk) {
  Outcome o = run_request(request_with_fields(64));
  ASSERT_TRUE(o.error.ok()) << o.error.to_string();
  EXPECT_EQ(o.msgs.at(0).req.headers.size(), 64u);
}

TEST(ParserLimits, HeaderCountOneOverIs431) {
  Outcome o = run_request(request_with_fields(65), 5);
  EXPECT_EQ(o.error.code(), Errc::limit);
  EXPECT_EQ(o.http_status, 431);
}

TEST(ParserLimits, UrlAtLimitOkOneOverIs414) {
  const std::string at = "/" + std::string(8 * 1024 - 1, 'u');
  Outcome ok = run_request("GET " + at + " HTTP/1.1\r\n\r\n", 100);
  ASSERT_TRUE(ok.error.ok()) << ok.error.to_string();
  EXPECT_EQ(ok.msgs.at(0).req.target.size(), 8u * 1024);
  Outcome bad = run_request("GET " + at + "u HTTP/1.1\r\n\r\n", 100);
  EXPECT_EQ(bad.error.code(), Errc::limit);
  EXPECT_EQ(bad.http_status, 414);
}

TEST(ParserLimits, ContentLengthAtLimitOkOneOverIs413BeforeBody) {
  ParserLimits lim;
  lim.body_bytes = 10;
  Outcome ok = run_request("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 0, lim);
  ASSERT_TRUE(ok.error.ok());
  EXPECT_EQ(ok.msgs.at(0).body, "0123456789");
  Outcome bad = run_request("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 0, lim);
  EXPECT_EQ(bad.error.code(), Errc::limit);
  EXPECT_EQ(bad.http_status, 413);
  EXPECT_TRUE(bad.msgs.empty());
}

TEST(ParserLimits, ChunkedAtLimitOkOneOverIs413) {
  ParserLimits lim;
  lim.body_bytes = 10;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t split : kSplits) {
    Outcome ok = run_request(head + "4\r\nabcd\r\n6\r\nefghij\r\n0\r\n\r\n", split, lim);
    ASSERT_TRUE(ok.error.ok()) << ok.error.to_string();
    EXPECT_EQ(ok.msgs.at(0).body, "abcdefghij");
    Outcome bad = run_request(head + "4\r\nabcd\r\n7\r\nefghijk\r\n0\r\n\r\n", split, lim);
    EXPECT_EQ(bad.error.code(), Errc::limit);
    EXPECT_EQ(bad.http_status, 413);
  }
}

TEST(ParserLimits, BodyUnlimitedWhenZero) {
  const std::string body(100000, 'b');
  Outcome o = run_response("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + body, 4096);
  ASSERT_TRUE(o.error.ok());
  EXPECT_EQ(o.msgs.at(0).body, body);
}

TEST(ParserLimits, TooManyTrailersIs431) {
  std::string in = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n";
  for (int i = 0; i < 65; ++i) in += "T" + std::to_string(i) + ": v\r\n";
  in += "\r\n";
  Outcome o = run_request(in);
  EXPECT_EQ(o.http_status, 431);
}

// --- malformed input ---

void expect_400(const std::string& in) {
  for (size_t split : {size_t{0}, size_t{1}}) {
    Outcome o = run_request(in, split);
    EXPECT_EQ(o.error.code(), Errc::parse) << in;
    EXPECT_EQ(o.http_status, 400) << in;
    EXPECT_FALSE(o.error.message().empty());
  }
}

TEST(ParserErrors, GarbageIs400) { expect_400("HELLO WORLD\r\n\r\n"); }
TEST(ParserErrors, BinaryIs400) { expect_400(std::string("\x16\x03\x01\x00\xa5\x01", 6)); }
TEST(ParserErrors, BadContentLengthIs400) {
  expect_400("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n");
}
TEST(ParserErrors, DuplicateContentLengthIs400) {
  expect_400("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
}
TEST(ParserErrors, ContentLengthWithChunkedIs400) {
  expect_400("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
}
TEST(ParserErrors, NonChunkedTransferEncodingIs400) {
  expect_400("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
}
TEST(ParserErrors, SpaceBeforeColonIs400) { expect_400("GET / HTTP/1.1\r\nHost : x\r\n\r\n"); }
TEST(ParserErrors, BadChunkSizeIs400) {
  expect_400("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
}
TEST(ParserErrors, ChunkExtensionIs400) {
  expect_400("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n");
}
TEST(ParserErrors, HugeChunkSizeIs400) {
  expect_400("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n");
}
TEST(ParserErrors, ControlCharInValueIs400) {
  expect_400(std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26));
}

TEST(ParserErrors, UnsupportedVersionRejected) {
  Outcome o = run_request("GET / HTTP/2.0\r\n\r\n");
  EXPECT_FALSE(o.error.ok());
  EXPECT_TRUE(o.http_status == 505 || o.http_status == 400) << o.http_status;
}

TEST(ParserErrors, ParserDeadAfterError) {
  Parser p(Parser::Mode::request);
  EXPECT_FALSE(p.step("BAD\r\n\r\n").ok());
  EXPECT_EQ(p.phase(), Parser::Phase::failed);
  EXPECT_FALSE(p.step("GET / HTTP/1.1\r\n\r\n").ok());
}

TEST(ParserErrors, BadStatusLineIs400) {
  Outcome o = run_response("HTTP/1.1 2x0 OK\r\n\r\n");
  EXPECT_EQ(o.error.code(), Errc::parse);
}

}  // namespace
}  // namespace tg::http
