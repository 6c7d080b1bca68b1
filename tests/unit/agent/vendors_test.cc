// The vendor table and the request/response rewriting (agent/vendors.h):
// pure functions, so every provider type and rule is checked directly.
#include "agent/vendors.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>

namespace tg::agent {
namespace {

constexpr const char* kKey = "sk-vendor-key-0123456789";

ProviderConfig provider(const std::string& type, const std::string& key = kKey) {
  ProviderConfig p;
  p.name = "p-" + type;
  p.type = type;
  p.api_key = Secret(key);
  p.models = {"m"};
  if (type == "azure") {
    p.resource = "my-res";
    p.deployment = "gpt4o-dep";
    p.api_version = kDefaultAzureApiVersion;
  }
  if (type == "local") p.url = net::parse_url("http://127.0.0.1:11434").value();
  return p;
}

tunnel::Call call(const std::string& path, tunnel::Headers headers = {}) {
  tunnel::Call c;
  c.id = 1;
  c.request_id = "attempt-1";
  c.model = "m";
  c.method = "POST";
  c.path = path;
  c.headers = std::move(headers);
  c.deadline_ms = 1000;
  return c;
}

// Every header of the request, "name: value\n", in order.
std::string dump(const http::Headers& h) {
  std::string out;
  for (const auto& f : h) out += f.name + ": " + f.value + "\n";
  return out;
}

TEST(Vendors, ApiForPathAcceptsOnlyTheThreeForwardedPaths) {
  EXPECT_EQ(api_for_path("/v1/chat/completions"), Api::chat);
  EXPECT_EQ(api_for_path("/v1/embeddings"), Api::embeddings);
  EXPECT_EQ(api_for_path("/v1/messages"), Api::messages);
  EXPECT_FALSE(api_for_path("/v1/models"));
  EXPECT_FALSE(api_for_path("/v1/chat/completions?x=1"));
  EXPECT_FALSE(api_for_path("/v1/chat/completions/"));
  EXPECT_FALSE(api_for_path("/V1/messages"));
}

TEST(Vendors, OpenAiChat) {
  auto r = vendor_request(provider("openai"), call("/v1/chat/completions",
                                                   {{"content-type", "application/json"}}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->host, "api.openai.com");
  EXPECT_EQ(r->port, 443);
  EXPECT_TRUE(r->tls);
  EXPECT_EQ(r->server_name, "api.openai.com");
  EXPECT_FALSE(r->local_only);
  EXPECT_EQ(r->head.method, "POST");
  EXPECT_EQ(r->head.target, "/v1/chat/completions");
  EXPECT_EQ(dump(r->head.headers),
            "host: api.openai.com\ncontent-type: application/json\naccept-encoding: identity\n"
            "transfer-encoding: chunked\nauthorization: Bearer sk-vendor-key-0123456789\n");
}

TEST(Vendors, OpenAiEmbeddingsAndNoMessages) {
  auto r = vendor_request(provider("openai"), call("/v1/embeddings"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->head.target, "/v1/embeddings");
  auto m = vendor_request(provider("openai"), call("/v1/messages"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Errc::invalid_argument);
  EXPECT_EQ(m.status().message(),
            "/v1/messages is not served by provider p-openai (type openai serves "
            "/v1/chat/completions and /v1/embeddings)");
}

TEST(Vendors, AnthropicMessagesWithDefaultVersion) {
  auto r = vendor_request(provider("anthropic"), call("/v1/messages"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->host, "api.anthropic.com");
  EXPECT_EQ(r->server_name, "api.anthropic.com");
  EXPECT_EQ(r->head.target, "/v1/messages");
  EXPECT_EQ(dump(r->head.headers),
            "host: api.anthropic.com\nanthropic-version: 2023-06-01\naccept-encoding: identity\n"
            "transfer-encoding: chunked\nx-api-key: sk-vendor-key-0123456789\n");
}

TEST(Vendors, AnthropicKeepsTheUsersVersionAndBeta) {
  auto r = vendor_request(provider("anthropic"),
                          call("/v1/messages", {{"anthropic-version", "2023-01-01"},
                                                {"anthropic-beta", "tools-2024"},
                                                {"openai-beta", "assistants=v2"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->head.headers.get("anthropic-version"), "2023-01-01");
  EXPECT_EQ(r->head.headers.get("anthropic-beta"), "tools-2024");
  EXPECT_FALSE(r->head.headers.has("openai-beta"));
  int versions = 0;
  for (const auto& f : r->head.headers) versions += f.name == "anthropic-version";
  EXPECT_EQ(versions, 1);
}

TEST(Vendors, AnthropicServesOnlyMessages) {
  EXPECT_FALSE(vendor_request(provider("anthropic"), call("/v1/chat/completions")).ok());
  EXPECT_FALSE(vendor_request(provider("anthropic"), call("/v1/embeddings")).ok());
}

TEST(Vendors, DeepSeekChatWithoutV1AndNoEmbeddings) {
  auto r = vendor_request(provider("deepseek"), call("/v1/chat/completions"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->host, "api.deepseek.com");
  EXPECT_EQ(r->head.target, "/chat/completions");
  EXPECT_EQ(r->head.headers.get("authorization"), "Bearer sk-vendor-key-0123456789");
  EXPECT_FALSE(vendor_request(provider("deepseek"), call("/v1/embeddings")).ok());
  EXPECT_FALSE(vendor_request(provider("deepseek"), call("/v1/messages")).ok());
}

TEST(Vendors, AzureDeploymentPathAndApiKey) {
  auto r = vendor_request(provider("azure"), call("/v1/chat/completions", {{"openai-beta", "x"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->host, "my-res.openai.azure.com");
  EXPECT_EQ(r->server_name, "my-res.openai.azure.com");
  EXPECT_EQ(r->head.target, "/openai/deployments/gpt4o-dep/chat/completions?api-version=2024-10-21");
  EXPECT_EQ(r->head.headers.get("api-key"), kKey);
  EXPECT_FALSE(r->head.headers.has("authorization"));
  EXPECT_EQ(r->head.headers.get("openai-beta"), "x");
  auto e = vendor_request(provider("azure"), call("/v1/embeddings"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->head.target, "/openai/deployments/gpt4o-dep/embeddings?api-version=2024-10-21");
  EXPECT_FALSE(vendor_request(provider("azure"), call("/v1/messages")).ok());
}

TEST(Vendors, LocalUsesItsUrlAndAuthOnlyWithAKey) {
  auto r = vendor_request(provider("local", ""), call("/v1/chat/completions"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->host, "127.0.0.1");
  EXPECT_EQ(r->port, 11434);
  EXPECT_FALSE(r->tls);
  EXPECT_TRUE(r->local_only);
  EXPECT_EQ(r->head.target, "/v1/chat/completions");
  EXPECT_EQ(r->head.headers.get("host"), "127.0.0.1:11434");
  EXPECT_FALSE(r->head.headers.has("authorization"));
  auto k = vendor_request(provider("local", "local-key"), call("/v1/embeddings"));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->head.target, "/v1/embeddings");
  EXPECT_EQ(k->head.headers.get("authorization"), "Bearer local-key");
  EXPECT_FALSE(vendor_request(provider("local"), call("/v1/messages")).ok());
}

TEST(Vendors, LocalUrlPathIsAPrefix) {
  ProviderConfig p = provider("local", "");
  p.url = net::parse_url("https://llm.lan:8443/api/").value();
  auto r = vendor_request(p, call("/v1/chat/completions"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->head.target, "/api/v1/chat/completions");
  EXPECT_TRUE(r->tls);
  EXPECT_EQ(r->server_name, "llm.lan");
  EXPECT_EQ(r->head.headers.get("host"), "llm.lan:8443");
}

TEST(Vendors, OnlyPostOnForwardedPaths) {
  tunnel::Call c = call("/v1/chat/completions");
  c.method = "GET";
  auto r = vendor_request(provider("openai"), c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "method GET is not forwarded (only POST)");
  auto q = vendor_request(provider("openai"), call("/v1/chat/completions?api-version=1"));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(), "path /v1/chat/completions?api-version=1 is not forwarded");
  EXPECT_FALSE(vendor_request(provider("openai"), call("/v1/models")).ok());
}

TEST(Vendors, NoUserCredentialOrHopByHopHeaderSurvives) {
  const tunnel::Headers user = {
      {"authorization", "Bearer sk-user-token"}, {"x-api-key", "sk-user-token"},
      {"api-key", "sk-user-token"},              {"cookie", "session=sk-user-token"},
      {"proxy-authorization", "Basic abc"},      {"connection", "close"},
      {"keep-alive", "timeout=5"},               {"transfer-encoding", "gzip"},
      {"content-length", "12"},                  {"host", "evil.example"},
      {"te", "trailers"},                        {"upgrade", "websocket"},
      {"x-forwarded-for", "1.2.3.4"},            {"accept-encoding", "gzip"},
      {"content-type", "application/json"},      {"accept", "text/event-stream"},
      {"user-agent", "OpenAI/JS 4.0"},           {"x-request-id", "req-1"},
  };
  for (const char* type : {"openai", "anthropic", "deepseek", "azure", "local"}) {
    const std::string path = std::string(type) == "anthropic" ? "/v1/messages" : "/v1/chat/completions";
    auto r = vendor_request(provider(type), call(path, user));
    ASSERT_TRUE(r.ok()) << type;
    const std::string all = dump(r->head.headers);
    EXPECT_EQ(all.find("sk-user-token"), std::string::npos) << type << "\n" << all;
    for (const char* gone : {"cookie", "proxy-authorization", "connection", "keep-alive", "te",
                             "upgrade", "x-forwarded-for", "content-length"}) {
      EXPECT_FALSE(r->head.headers.has(gone)) << type << ": " << gone;
    }
    EXPECT_EQ(r->head.headers.get("host"), std::string(type) == "local" ? "127.0.0.1:11434" : r->host);
    EXPECT_EQ(r->head.headers.get("accept-encoding"), "identity");
    EXPECT_EQ(r->head.headers.get("transfer-encoding"), "chunked");
    EXPECT_EQ(r->head.headers.get("content-type"), "application/json");
    EXPECT_EQ(r->head.headers.get("accept"), "text/event-stream");
    EXPECT_EQ(r->head.headers.get("user-agent"), "OpenAI/JS 4.0");
    EXPECT_EQ(r->head.headers.get("x-request-id"), "req-1");
    // The vendor key appears exactly once, in the vendor's auth header.
    int with_key = 0;
    std::string where;
    for (const auto& f : r->head.headers) {
      if (f.value.find(kKey) != std::string::npos) {
        ++with_key;
        where = f.name;
      }
    }
    EXPECT_EQ(with_key, 1) << type;
    const std::string auth = std::string(type) == "anthropic" ? "x-api-key"
                             : std::string(type) == "azure"   ? "api-key"
                                                              : "authorization";
    EXPECT_EQ(where, auth) << type;
    int hosts = 0;
    for (const auto& f : r->head.headers) hosts += f.name == "host";
    EXPECT_EQ(hosts, 1) << type;
  }
}

TEST(Vendors, WipeAuthZeroesEveryValue) {
  auto r = vendor_request(provider("openai"), call("/v1/chat/completions"));
  ASSERT_TRUE(r.ok());
  wipe_auth(r->head);
  for (const auto& f : r->head.headers) {
    EXPECT_EQ(f.value.find_first_not_of('\0'), std::string::npos) << f.name;
  }
}

TEST(Vendors, ResponseHeadersAreAllowListedLowercasedAndRenamed) {
  http::Headers h;
  h.add("Content-Type", "text/event-stream");
  h.add("Content-Length", "10");
  h.add("Transfer-Encoding", "chunked");
  h.add("Set-Cookie", "__cf_bm=abc");
  h.add("Retry-After", "2");
  h.add("X-RateLimit-Remaining-Requests", "99");
  h.add("x-ratelimit-limit-tokens", "1000");
  h.add("anthropic-ratelimit-requests-remaining", "5");
  h.add("openai-processing-ms", "12");
  h.add("openai-organization", "org-secret");
  h.add("X-Request-Id", "req_abc");
  h.add("request-id", "req_second");
  h.add("Connection", "keep-alive");
  h.add("Server", "cloudflare");
  const tunnel::Headers expect = {
      {"content-type", "text/event-stream"},
      {"retry-after", "2"},
      {"x-ratelimit-remaining-requests", "99"},
      {"x-ratelimit-limit-tokens", "1000"},
      {"anthropic-ratelimit-requests-remaining", "5"},
      {"openai-processing-ms", "12"},
      {"x-upstream-request-id", "req_abc"},
  };
  EXPECT_EQ(response_headers(h), expect);
}

TEST(Vendors, ResponseHeadersAreBounded) {
  http::Headers h;
  for (int i = 0; i < 200; ++i) h.add("x-ratelimit-" + std::to_string(i), "1");
  h.add("x-ratelimit-huge", std::string(tunnel::kMaxHeaderValue + 1, 'a'));
  EXPECT_EQ(response_headers(h).size(), kMaxResponseHeaders);
  http::Headers big;
  big.add("x-ratelimit-huge", std::string(tunnel::kMaxHeaderValue + 1, 'a'));
  EXPECT_TRUE(response_headers(big).empty());
}

TEST(Vendors, LocalAddresses) {
  for (const char* ok : {"127.0.0.1", "127.255.0.9", "10.0.0.1", "10.255.255.255", "172.16.0.1",
                         "172.31.255.254", "192.168.1.10", "::1", "fd00::1", "fdab:1::2",
                         "::ffff:192.168.0.1"}) {
    EXPECT_TRUE(is_local_address(ok)) << ok;
    EXPECT_TRUE(is_ip_literal(ok)) << ok;
  }
  for (const char* bad : {"8.8.8.8", "172.15.255.255", "172.32.0.1", "192.169.0.1", "11.0.0.1",
                          "0.0.0.0", "169.254.1.1", "::", "fe80::1", "fc00::1", "2001:db8::1",
                          "::ffff:8.8.8.8", "localhost", "", "127.0.0.1.nip.io"}) {
    EXPECT_FALSE(is_local_address(bad)) << bad;
  }
  EXPECT_FALSE(is_ip_literal("localhost"));
  EXPECT_FALSE(is_ip_literal("[::1]"));
}

TEST(Vendors, LocalSockaddr) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "192.168.2.3", &a.sin_addr);
  EXPECT_TRUE(is_local_sockaddr(reinterpret_cast<sockaddr*>(&a)));
  inet_pton(AF_INET, "1.1.1.1", &a.sin_addr);
  EXPECT_FALSE(is_local_sockaddr(reinterpret_cast<sockaddr*>(&a)));
  sockaddr_in6 b{};
  b.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::1", &b.sin6_addr);
  EXPECT_TRUE(is_local_sockaddr(reinterpret_cast<sockaddr*>(&b)));
  inet_pton(AF_INET6, "2606:4700::1", &b.sin6_addr);
  EXPECT_FALSE(is_local_sockaddr(reinterpret_cast<sockaddr*>(&b)));
  EXPECT_FALSE(is_local_sockaddr(nullptr));
}

}  // namespace
}  // namespace tg::agent
