#include "shared/net/url.h"

#include <gtest/gtest.h>

namespace tg::net {
namespace {

TEST(Url, FullWssUrl) {
  auto u = parse_url("wss://Hub.Example.org:8443/tunnel");
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  EXPECT_EQ(u->scheme, "wss");
  EXPECT_EQ(u->host, "hub.example.org");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->path, "/tunnel");
  EXPECT_TRUE(u->tls());
  EXPECT_EQ(u->authority(), "hub.example.org:8443");
}

TEST(Url, DefaultsPortAndPath) {
  auto u = parse_url("HTTPS://api.openai.com");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/");
  EXPECT_EQ(parse_url("ws://127.0.0.1/x")->port, 80);
}

TEST(Url, Ipv6LiteralAndQuery) {
  auto u = parse_url("http://[::1]:11434/api?x=1");
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 11434);
  EXPECT_EQ(u->path, "/api?x=1");
  EXPECT_EQ(u->authority(), "[::1]:11434");
  EXPECT_EQ(parse_url("http://h?q")->path, "/?q");
}

TEST(Url, ErrorsNameTheProblem) {
  auto msg = [](const char* t) { return parse_url(t).status().message(); };
  EXPECT_EQ(msg("hub.example.org:8443"),
            "url 'hub.example.org:8443': missing scheme (expected e.g. wss://host/path)");
  EXPECT_EQ(msg("ftp://h/"), "url 'ftp://h/': scheme must be ws, wss, http or https");
  EXPECT_EQ(msg("wss://h:99999/"), "url 'wss://h:99999/': port must be 1..65535");
  EXPECT_EQ(msg("wss://h:0/"), "url 'wss://h:0/': port must be 1..65535");
  EXPECT_EQ(msg("wss://h:/"), "url 'wss://h:/': empty port");
  EXPECT_EQ(msg("wss://h:8x/"), "url 'wss://h:8x/': port is not a number");
  EXPECT_EQ(msg("wss:///p"), "url 'wss:///p': empty host");
  EXPECT_EQ(msg("wss://u:p@h/"), "url 'wss://u:p@h/': user info is not allowed");
  EXPECT_EQ(msg("wss://h_x/"), "url 'wss://h_x/': bad character in host name");
  EXPECT_EQ(msg("wss://h/a b"), "url 'wss://h/a b': bad character in path");
  EXPECT_EQ(msg("wss://h/a#f"), "url 'wss://h/a#f': fragments are not allowed");
  EXPECT_EQ(msg("wss://[::1/"), "url 'wss://[::1/': unterminated IPv6 literal");
  EXPECT_EQ(msg("http://[.e1]:80/"), "url 'http://[.e1]:80/': bad IPv6 literal");
  EXPECT_EQ(msg("wss://..h/"), "url 'wss://..h/': malformed host name");
}

TEST(Url, LengthLimit) {
  std::string at_limit = "wss://h/" + std::string(kMaxUrlBytes - 8, 'a');
  EXPECT_TRUE(parse_url(at_limit).ok());
  EXPECT_FALSE(parse_url(at_limit + "a").ok());
}

TEST(Url, ControlBytesAreNotEchoed) {
  auto s = parse_url(std::string("wss://h/\x01\n", 10)).status().message();
  EXPECT_EQ(s.find('\n'), std::string::npos);
}

TEST(ListenAddress, Forms) {
  auto a = parse_listen_address("0.0.0.0:8443");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 8443);
  auto b = parse_listen_address("[::]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::");
  EXPECT_EQ(b->port, 0);
}

TEST(ListenAddress, Errors) {
  auto msg = [](const char* t, bool zero = true) {
    return parse_listen_address(t, zero).status().message();
  };
  EXPECT_EQ(msg("8443"), "address '8443': expected host:port, e.g. 0.0.0.0:8443");
  EXPECT_EQ(msg("hub.local:8443"), "address 'hub.local:8443': 'hub.local' is not a numeric IP address");
  EXPECT_EQ(msg("0.0.0.0:65536"), "address '0.0.0.0:65536': port must be 0..65535");
  EXPECT_EQ(msg("0.0.0.0:0", false), "address '0.0.0.0:0': port must be 1..65535");
  EXPECT_EQ(msg("0.0.0.0:x"), "address '0.0.0.0:x': port is not a number");
}

}  // namespace
}  // namespace tg::net
