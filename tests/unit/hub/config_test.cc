#include "hub/config.h"

#include <gtest/gtest.h>

#include <string>

namespace tg::hub {
namespace {

std::string errors_of(const LoadResult& r) {
  std::string all;
  for (const auto& d : r.errors) all += d.to_string() + "\n";
  return all;
}

TEST(HubConfig, ExampleFileIsValidAndMatchesDefaults) {
  auto file = load(std::string(TG_SOURCE_DIR) + "/configs/hub.conf");
  ASSERT_TRUE(file.config) << errors_of(file);
  auto empty = parse("", "hub.conf");
  ASSERT_TRUE(empty.config) << errors_of(empty);
  const TunnelSettings& a = file.config->tunnel;
  const TunnelSettings& b = empty.config->tunnel;
  // The example documents the defaults: keep the two in step.
  EXPECT_EQ(a.heartbeat_ms, b.heartbeat_ms);
  EXPECT_EQ(a.dead_after, b.dead_after);
  EXPECT_EQ(a.window_bytes, b.window_bytes);
  EXPECT_EQ(a.handshake_rate, b.handshake_rate);
  EXPECT_EQ(a.max_tunnels, b.max_tunnels);
  EXPECT_EQ(a.max_handshakes_per_address, b.max_handshakes_per_address);
  EXPECT_EQ(b.max_handshakes_per_address, 512u);
  EXPECT_EQ(file.config->agent_listen.port, empty.config->agent_listen.port);
  EXPECT_EQ(b.heartbeat_ms, 15000u);
  EXPECT_EQ(b.dead_after, 3u);
  EXPECT_EQ(b.window_bytes, 256u * 1024);
  EXPECT_EQ(empty.config->agent_listen.host, "0.0.0.0");
  EXPECT_EQ(empty.config->agent_listen.port, 8443);
}

TEST(HubConfig, UserApiDefaultsMatchTheExample) {
  auto file = load(std::string(TG_SOURCE_DIR) + "/configs/hub.conf");
  ASSERT_TRUE(file.config) << errors_of(file);
  auto empty = parse("", "hub.conf");
  ASSERT_TRUE(empty.config) << errors_of(empty);
  const HubConfig& a = *file.config;
  const HubConfig& b = *empty.config;
  EXPECT_EQ(b.user_listen.host, "0.0.0.0");
  EXPECT_EQ(b.user_listen.port, 8080);
  EXPECT_FALSE(b.user_tls);
  EXPECT_EQ(b.api.max_request_body, 8u * 1024 * 1024);
  EXPECT_EQ(b.api.request_deadline_ms, 600000u);
  EXPECT_EQ(b.api.sse_keepalive_ms, 15000u);
  EXPECT_EQ(a.user_listen.port, b.user_listen.port);
  EXPECT_EQ(a.user_tls, b.user_tls);
  EXPECT_EQ(a.api.max_request_body, b.api.max_request_body);
  EXPECT_EQ(a.api.request_deadline_ms, b.api.request_deadline_ms);
  EXPECT_EQ(a.api.sse_keepalive_ms, b.api.sse_keepalive_ms);
  EXPECT_EQ(a.api.max_connections, b.api.max_connections);
  EXPECT_EQ(a.api.header_timeout_ms, b.api.header_timeout_ms);
  EXPECT_EQ(a.api.idle_timeout_ms, b.api.idle_timeout_ms);
  EXPECT_EQ(a.api.body_timeout_ms, b.api.body_timeout_ms);
}

TEST(HubConfig, UserApiKeysAreChecked) {
  auto r = parse("user_listen = 127.0.0.1:9000\nuser_tls = yes\nmax_request_body = 1MiB\n"
                 "request_deadline = 30s\nsse_keepalive = 0\n", "hub.conf");
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->user_listen.port, 9000);
  EXPECT_TRUE(r.config->user_tls);
  EXPECT_EQ(r.config->api.max_request_body, 1024u * 1024);
  EXPECT_EQ(r.config->api.request_deadline_ms, 30000u);
  EXPECT_EQ(r.config->api.sse_keepalive_ms, 0u);
  auto bad = parse("sse_keepalive = 1s\nmax_request_body = 10\nrequest_deadline = 2d\n", "hub.conf");
  const std::string e = errors_of(bad);
  EXPECT_NE(e.find("hub.conf:2: max_request_body"), std::string::npos) << e;
  EXPECT_NE(e.find("hub.conf:3: request_deadline"), std::string::npos) << e;
  auto address = parse("user_listen = nowhere\n", "hub.conf");
  EXPECT_NE(errors_of(address).find("hub.conf:1: user_listen:"), std::string::npos) << errors_of(address);
  auto same = parse("user_listen = 127.0.0.1:9000\nagent_listen = 127.0.0.1:9000\n", "hub.conf");
  EXPECT_NE(errors_of(same).find("the same address"), std::string::npos) << errors_of(same);
}

TEST(HubConfig, PathsResolveNextToTheFile) {
  auto r = parse("database = state/hub.db\ntls_cert = /abs/hub.crt\n", "/etc/tokengo/hub.conf");
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->database, "/etc/tokengo/state/hub.db");
  EXPECT_EQ(r.config->tls_cert, "/abs/hub.crt");
  EXPECT_EQ(r.config->tls_key, "/etc/tokengo/hub-tls.key");
}

TEST(HubConfig, CrossFieldErrorsNameTheLine) {
  auto r = parse("agent_listen = hub:8443\n[tunnel]\npath = tunnel\nhandshake_rate = 10\n"
                 "handshake_burst = 5\n",
                 "hub.conf");
  EXPECT_EQ(errors_of(r),
            "hub.conf:1: agent_listen: address 'hub:8443': 'hub' is not a numeric IP address\n"
            "hub.conf:3: path must start with '/' (at most 256 bytes), got 'tunnel'\n"
            "hub.conf:5: handshake_burst must be at least handshake_rate\n");
}

TEST(HubConfig, RangeErrorsComeFromTheSchema) {
  auto r = parse("[tunnel]\ndead_after = 0\nwindow = 1KiB\nheartbeat = 10\n", "hub.conf");
  std::string e = errors_of(r);
  EXPECT_NE(e.find("hub.conf:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("hub.conf:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("hub.conf:4:"), std::string::npos) << e;
}

TEST(HubConfig, UnknownKeyIsAnError) {
  auto r = parse("[tunnel]\nheartbeet = 5s\n", "hub.conf");
  EXPECT_NE(errors_of(r).find("did you mean 'heartbeat'"), std::string::npos) << errors_of(r);
}

}  // namespace
}  // namespace tg::hub
