#include "shared/http/message.h"

#include <gtest/gtest.h>

namespace tg::http {
namespace {

TEST(Headers, GetIsCaseInsensitiveFirstMatch) {
  Headers h;
  h.add("Content-Type", "text/plain");
  h.add("content-type", "second");
  EXPECT_EQ(h.get("CONTENT-TYPE"), "text/plain");
  EXPECT_TRUE(h.has("content-TYPE"));
  EXPECT_FALSE(h.has("Content-Length"));
  EXPECT_EQ(h.get("Content-Length"), "");
  EXPECT_EQ(h.size(), 2u);
}

TEST(Headers, HasTokenSearchesAllOccurrences) {
  Headers h;
  h.add("Connection", "keep-alive");
  h.add("connection", " foo ,  Upgrade\t");
  EXPECT_TRUE(h.has_token("Connection", "upgrade"));
  EXPECT_TRUE(h.has_token("Connection", "KEEP-ALIVE"));
  EXPECT_TRUE(h.has_token("Connection", "foo"));
  EXPECT_FALSE(h.has_token("Connection", "close"));
  EXPECT_FALSE(h.has_token("Connection", "keep"));
  EXPECT_FALSE(h.has_token("Upgrade", "upgrade"));
}

TEST(Headers, RemoveDropsAllOccurrencesAndBytes) {
  Headers h;
  h.add("A", "1");
  h.add("B", "22");
  h.add("a", "333");
  h.remove("A");
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.begin()->name, "B");
  EXPECT_EQ(h.bytes(), 3u);
}

TEST(Headers, AddLimitedStopsAtCountAndBytes) {
  Headers h;
  EXPECT_TRUE(h.add_limited("A", "1", 2, 100).ok());
  EXPECT_TRUE(h.add_limited("B", "2", 2, 100).ok());
  Status s = h.add_limited("C", "3", 2, 100);
  EXPECT_EQ(s.code(), Errc::limit);
  EXPECT_NE(s.message().find("C"), std::string::npos);
  Headers g;
  EXPECT_TRUE(g.add_limited("AB", "cd", 10, 4).ok());   // exactly 4 bytes
  EXPECT_EQ(g.add_limited("E", "", 10, 4).code(), Errc::limit);
}

TEST(Serialize, RequestHead) {
  RequestHead r;
  r.method = "POST";
  r.target = "/v1/chat?x=1";
  r.headers.add("Host", "example.com");
  r.headers.add("Content-Length", "5");
  auto s = serialize(r);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(*s, "POST /v1/chat?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n");
  r.version_minor = 0;
  EXPECT_EQ(serialize(r)->substr(0, 28), "POST /v1/chat?x=1 HTTP/1.0\r\n");
}

TEST(Serialize, ResponseHeadDefaultReason) {
  ResponseHead h;
  h.status = 431;
  h.headers.add("Connection", "close");
  EXPECT_EQ(*serialize(h),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n");
  h.reason = "Custom";
  EXPECT_EQ(serialize(h)->substr(0, 20), "HTTP/1.1 431 Custom\r");
}

TEST(Serialize, RejectsHeaderInjection) {
  const std::string bad_values[] = {"a\r\nX-Evil: 1", "a\nb", "a\rb", std::string("a\0b", 3)};
  for (const std::string& v : bad_values) {
    ResponseHead h;
    h.headers.add("X", v);
    EXPECT_EQ(serialize(h).status().code(), Errc::invalid_argument) << v;
  }
  ResponseHead h;
  h.headers.add("X Y", "v");
  EXPECT_EQ(serialize(h).status().code(), Errc::invalid_argument);
  ResponseHead e;
  e.headers.add("", "v");
  EXPECT_EQ(serialize(e).status().code(), Errc::invalid_argument);
  ResponseHead r;
  r.reason = "OK\r\nX: y";
  EXPECT_EQ(serialize(r).status().code(), Errc::invalid_argument);
  ResponseHead st;
  st.status = 99;
  EXPECT_EQ(serialize(st).status().code(), Errc::invalid_argument);

  RequestHead q;
  q.method = "GET";
  q.target = "/a b";
  EXPECT_EQ(serialize(q).status().code(), Errc::invalid_argument);
  q.target = "/a\r\n";
  EXPECT_EQ(serialize(q).status().code(), Errc::invalid_argument);
  q.target = "";
  EXPECT_EQ(serialize(q).status().code(), Errc::invalid_argument);
  q.target = "/";
  q.method = "G T";
  EXPECT_EQ(serialize(q).status().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace tg::http
