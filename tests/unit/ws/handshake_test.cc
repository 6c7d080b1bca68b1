// Opening-handshake checks and builders (pure, no I/O).
#include <gtest/gtest.h>

#include "shared/crypto/hash.h"
#include "shared/ws/handshake.h"

namespace tg::ws {
namespace {

constexpr const char* kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";

http::RequestHead good_request() {
  http::RequestHead r;
  r.method = "GET";
  r.target = "/tunnel";
  r.headers.add("Host", "hub.example");
  r.headers.add("Upgrade", "websocket");
  r.headers.add("Connection", "keep-alive, Upgrade");
  r.headers.add("Sec-WebSocket-Key", kRfcKey);
  r.headers.add("Sec-WebSocket-Version", "13");
  return r;
}

http::ResponseHead good_response(const std::string& key) {
  http::ResponseHead r;
  r.status = 101;
  r.headers.add("Upgrade", "websocket");
  r.headers.add("Connection", "Upgrade");
  r.headers.add("Sec-WebSocket-Accept", accept_key(key));
  return r;
}

TEST(WsHandshake, AcceptKeyMatchesRfcExample) {
  EXPECT_EQ(accept_key(kRfcKey), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsHandshake, ClientKeyIsSixteenRandomBytes) {
  const std::string a = make_client_key();
  const std::string b = make_client_key();
  auto raw = crypto::base64_decode(a);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->size(), 16u);
  EXPECT_NE(a, b);
}

TEST(WsHandshake, ValidRequestGets101) {
  UpgradeDecision h = check_upgrade_request(good_request(), {});
  ASSERT_TRUE(h.accepted) << h.error;
  EXPECT_EQ(h.response.status, 101);
  EXPECT_EQ(h.response.headers.get("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(h.response.headers.has_token("Upgrade", "websocket"));
  EXPECT_TRUE(h.response.headers.has_token("Connection", "upgrade"));
  EXPECT_FALSE(h.response.headers.has("Sec-WebSocket-Protocol"));
  EXPECT_EQ(h.subprotocol, "");
}

TEST(WsHandshake, PicksFirstClientOfferedSubprotocolWeSupport) {
  http::RequestHead r = good_request();
  r.headers.add("Sec-WebSocket-Protocol", "chat, tokengo.v2");
  r.headers.add("Sec-WebSocket-Protocol", "tokengo.v1");
  UpgradeDecision h = check_upgrade_request(r, {{"tokengo.v1", "tokengo.v2"}, true});
  ASSERT_TRUE(h.accepted) << h.error;
  EXPECT_EQ(h.subprotocol, "tokengo.v2");
  EXPECT_EQ(h.response.headers.get("Sec-WebSocket-Protocol"), "tokengo.v2");
}

TEST(WsHandshake, RequiredSubprotocolMissingIsRefused400) {
  http::RequestHead r = good_request();
  r.headers.add("Sec-WebSocket-Protocol", "chat");
  UpgradeDecision h = check_upgrade_request(r, {{"tokengo.v1"}, true});
  EXPECT_FALSE(h.accepted);
  EXPECT_EQ(h.response.status, 400);
  EXPECT_NE(h.error.find("tokengo.v1"), std::string::npos);
}

TEST(WsHandshake, OptionalSubprotocolMissingIsAccepted) {
  http::RequestHead r = good_request();
  r.headers.add("Sec-WebSocket-Protocol", "chat");
  UpgradeDecision h = check_upgrade_request(r, {{"tokengo.v1"}, false});
  ASSERT_TRUE(h.accepted);
  EXPECT_EQ(h.subprotocol, "");
}

TEST(WsHandshake, WrongVersionGets426WithVersionHeader) {
  http::RequestHead r = good_request();
  r.headers.remove("Sec-WebSocket-Version");
  r.headers.add("Sec-WebSocket-Version", "8");
  UpgradeDecision h = check_upgrade_request(r, {});
  EXPECT_FALSE(h.accepted);
  EXPECT_EQ(h.response.status, 426);
  EXPECT_EQ(h.response.headers.get("Sec-WebSocket-Version"), "13");
}

TEST(WsHandshake, MissingUpgradeGets426) {
  http::RequestHead r = good_request();
  r.headers.remove("Upgrade");
  UpgradeDecision h = check_upgrade_request(r, {});
  EXPECT_FALSE(h.accepted);
  EXPECT_EQ(h.response.status, 426);
}

TEST(WsHandshake, ConnectionWithoutUpgradeTokenGets400) {
  http::RequestHead r = good_request();
  r.headers.remove("Connection");
  r.headers.add("Connection", "keep-alive");
  EXPECT_EQ(check_upgrade_request(r, {}).response.status, 400);
}

TEST(WsHandshake, NonGetGets400) {
  http::RequestHead r = good_request();
  r.method = "POST";
  UpgradeDecision h = check_upgrade_request(r, {});
  EXPECT_FALSE(h.accepted);
  EXPECT_EQ(h.response.status, 400);
}

TEST(WsHandshake, Http10Gets400) {
  http::RequestHead r = good_request();
  r.version_minor = 0;
  EXPECT_EQ(check_upgrade_request(r, {}).response.status, 400);
}

TEST(WsHandshake, BadKeyGets400) {
  for (const char* key : {"", "not base64!", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}) {
    http::RequestHead r = good_request();
    r.headers.remove("Sec-WebSocket-Key");
    if (*key) r.headers.add("Sec-WebSocket-Key", key);
    UpgradeDecision h = check_upgrade_request(r, {});
    EXPECT_FALSE(h.accepted) << key;
    EXPECT_EQ(h.response.status, 400) << key;
  }
}

TEST(WsHandshake, TooManySubprotocolsGets400) {
  http::RequestHead r = good_request();
  std::string many;
  for (size_t i = 0; i <= kMaxSubprotocols; ++i) many += "p" + std::to_string(i) + ",";
  r.headers.add("Sec-WebSocket-Protocol", many);
  EXPECT_EQ(check_upgrade_request(r, {}).response.status, 400);
}

TEST(WsHandshake, ClientRequestHasUpgradeHeaders) {
  auto r = make_upgrade_request("hub.example:8443", "/tunnel?x=1", {"tokengo.v1", "b"}, kRfcKey);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->target, "/tunnel?x=1");
  EXPECT_EQ(r->headers.get("Host"), "hub.example:8443");
  EXPECT_EQ(r->headers.get("Sec-WebSocket-Key"), kRfcKey);
  EXPECT_EQ(r->headers.get("Sec-WebSocket-Version"), "13");
  EXPECT_EQ(r->headers.get("Sec-WebSocket-Protocol"), "tokengo.v1, b");
  // What we build, our own server accepts.
  UpgradeDecision h = check_upgrade_request(*r, {{"b"}, true});
  ASSERT_TRUE(h.accepted) << h.error;
  EXPECT_EQ(h.subprotocol, "b");
}

TEST(WsHandshake, ClientRequestRejectsBadArguments) {
  EXPECT_EQ(make_upgrade_request("h", "tunnel", {}, kRfcKey).status().code(),
            Errc::invalid_argument);
  EXPECT_EQ(make_upgrade_request("", "/", {}, kRfcKey).status().code(), Errc::invalid_argument);
  EXPECT_EQ(make_upgrade_request("h", "/", {"bad name"}, kRfcKey).status().code(),
            Errc::invalid_argument);
}

TEST(WsHandshake, ResponseCheckAcceptsGood101) {
  http::ResponseHead r = good_response(kRfcKey);
  r.headers.add("Sec-WebSocket-Protocol", "tokengo.v1");
  auto p = check_upgrade_response(r, kRfcKey, {"tokengo.v1"});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(*p, "tokengo.v1");
  auto none = check_upgrade_response(good_response(kRfcKey), kRfcKey, {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "");
}

TEST(WsHandshake, ResponseCheckRejectsBadAnswers) {
  http::ResponseHead not101 = good_response(kRfcKey);
  not101.status = 403;
  EXPECT_EQ(check_upgrade_response(not101, kRfcKey, {}).status().code(), Errc::protocol);

  http::ResponseHead wrong_accept = good_response("AAAAAAAAAAAAAAAAAAAAAA==");
  EXPECT_EQ(check_upgrade_response(wrong_accept, kRfcKey, {}).status().code(), Errc::protocol);

  http::ResponseHead unoffered = good_response(kRfcKey);
  unoffered.headers.add("Sec-WebSocket-Protocol", "other");
  EXPECT_FALSE(check_upgrade_response(unoffered, kRfcKey, {"tokengo.v1"}).ok());

  EXPECT_FALSE(check_upgrade_response(good_response(kRfcKey), kRfcKey, {"tokengo.v1"}).ok());

  http::ResponseHead ext = good_response(kRfcKey);
  ext.headers.add("Sec-WebSocket-Extensions", "permessage-deflate");
  EXPECT_FALSE(check_upgrade_response(ext, kRfcKey, {}).ok());

  http::ResponseHead no_upgrade = good_response(kRfcKey);
  no_upgrade.headers.remove("Upgrade");
  EXPECT_FALSE(check_upgrade_response(no_upgrade, kRfcKey, {}).ok());
}

}  // namespace
}  // namespace tg::ws
