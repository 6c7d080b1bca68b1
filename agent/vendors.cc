#include "agent/vendors.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

#include <cstring>

namespace tg::agent {
namespace {

struct Endpoint {
  std::string_view type;
  std::string_view host;  // empty: built from the provider (azure, local)
};

// The only vendor hosts the agent ever dials for a vendor provider.
constexpr Endpoint kEndpoints[] = {
    {"openai", "api.openai.com"},
    {"anthropic", "api.anthropic.com"},
    {"deepseek", "api.deepseek.com"},
    {"azure", ""},   // <resource>.openai.azure.com
    {"local", ""},   // the provider's url, local addresses only
};
constexpr std::string_view kAzureSuffix = ".openai.azure.com";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

const char* api_name(Api api) {
  switch (api) {
    case Api::chat: return "/v1/chat/completions";
    case Api::embeddings: return "/v1/embeddings";
    case Api::messages: return "/v1/messages";
  }
  return "?";
}

// Whether the call header `name` (lowercase) may reach a vendor of `type`.
bool forwarded(std::string_view type, std::string_view name) {
  if (name == "content-type" || name == "accept" || name == "user-agent" ||
      name == "x-request-id") {
    return true;
  }
  if (type == "anthropic") return name == "anthropic-version" || name == "anthropic-beta";
  if (type == "openai" || type == "azure") return name == "openai-beta";
  return false;
}

// The vendor path for `api`, or an error naming what the dialect serves.
Result<std::string> vendor_path(const ProviderConfig& p, Api api) {
  auto refuse = [&](const char* serves) -> Result<std::string> {
    return Status(Errc::invalid_argument, std::string(api_name(api)) + " is not served by provider " +
                                              p.name + " (type " + p.type + " serves " + serves + ")");
  };
  const std::string_view t = p.type;
  if (t == "anthropic") {
    if (api != Api::messages) return refuse("/v1/messages");
    return std::string("/v1/messages");
  }
  if (api == Api::messages) return refuse(t == "deepseek" ? "/v1/chat/completions" :
                                          "/v1/chat/completions and /v1/embeddings");
  if (t == "deepseek") {
    if (api != Api::chat) return refuse("/v1/chat/completions");
    return std::string("/chat/completions");
  }
  const char* tail = api == Api::chat ? "chat/completions" : "embeddings";
  if (t == "openai") return std::string("/v1/") + tail;
  if (t == "azure") {
    return "/openai/deployments/" + p.deployment + "/" + tail + "?api-version=" + p.api_version;
  }
  if (t == "local" && p.url) {
    std::string prefix = p.url->path;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return prefix + "/v1/" + tail;
  }
  return Status(Errc::invalid_argument, "provider " + p.name + " has an unusable type " + p.type);
}

bool known_type(std::string_view t) {
  for (const auto& e : kEndpoints) {
    if (e.type == t) return true;
  }
  return false;
}

std::string host_of(const ProviderConfig& p) {
  for (const auto& e : kEndpoints) {
    if (e.type == p.type && !e.host.empty()) return std::string(e.host);
  }
  if (p.type == "azure") return p.resource + std::string(kAzureSuffix);
  if (p.type == "local" && p.url) return p.url->host;
  return std::string();
}

bool v4_local(uint32_t a) {  // host byte order
  return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == 0xAC1 || (a >> 16) == 0xC0A8;
}

bool v6_local(const uint8_t* b) {
  static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, loopback, 16) == 0) return true;
  if (b[0] == 0xfd) return true;
  if (std::memcmp(b, mapped, 12) == 0) {
    const uint32_t a = (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15];
    return v4_local(a);
  }
  return false;
}

}  // namespace

std::optional<Api> api_for_path(std::string_view path) noexcept {
  if (path == "/v1/chat/completions") return Api::chat;
  if (path == "/v1/embeddings") return Api::embeddings;
  if (path == "/v1/messages") return Api::messages;
  return std::nullopt;
}

Result<VendorRequest> vendor_request(const ProviderConfig& p, const tunnel::Call& call) {
  if (!known_type(p.type)) {
    return Status(Errc::invalid_argument, "provider " + p.name + " has an unknown type " + p.type);
  }
  if (call.method != "POST") {
    return Status(Errc::invalid_argument, "method " + call.method.substr(0, 16) +
                                              " is not forwarded (only POST)");
  }
  auto api = api_for_path(call.path);
  if (!api) {
    return Status(Errc::invalid_argument, "path " + call.path.substr(0, 128) + " is not forwarded");
  }
  auto path = vendor_path(p, *api);
  if (!path.ok()) return path.status();

  VendorRequest r;
  r.host = host_of(p);
  if (p.type == "local") {
    r.port = p.url->port;
    r.tls = p.url->tls();
    r.local_only = true;
  }
  if (r.tls) r.server_name = r.host;
  r.head.method = "POST";
  r.head.target = std::move(*path);
  http::Headers& h = r.head.headers;
  h.add("host", p.type == "local" ? p.url->authority() : r.host);
  bool has_version = false;
  for (const auto& [name, value] : call.headers) {
    const std::string n = lower(name);
    if (!forwarded(p.type, n)) continue;
    if (n == "anthropic-version") has_version = true;
    h.add(n, value);
  }
  if (p.type == "anthropic" && !has_version) {
    h.add("anthropic-version", std::string(kDefaultAnthropicVersion));
  }
  h.add("accept-encoding", "identity");
  h.add("transfer-encoding", "chunked");
  const std::string_view key = p.api_key.reveal();
  if (p.type == "anthropic") {
    h.add("x-api-key", std::string(key));
  } else if (p.type == "azure") {
    h.add("api-key", std::string(key));
  } else if (!key.empty()) {
    std::string v;
    v.reserve(7 + key.size());  // one buffer, so wipe_auth() reaches every copy
    v.append("Bearer ").append(key);
    h.add("authorization", std::move(v));
  }
  return r;
}

void wipe_auth(http::RequestHead& head) noexcept {
  for (const http::Header& f : head.headers) {
    // The Headers object is ours and not const: only its accessors are.
    auto& value = const_cast<std::string&>(f.value);
    if (!value.empty()) sodium_memzero(value.data(), value.size());
  }
}

tunnel::Headers response_headers(const http::Headers& vendor) {
  tunnel::Headers out;
  bool have_id = false;
  for (const http::Header& f : vendor) {
    if (out.size() >= kMaxResponseHeaders) break;
    if (f.value.size() > tunnel::kMaxHeaderValue) continue;
    std::string n = lower(f.name);
    if (n == "x-request-id" || n == "request-id") {
      if (have_id) continue;
      have_id = true;
      out.emplace_back("x-upstream-request-id", f.value);
      continue;
    }
    if (n == "content-type" || n == "retry-after" || n == "openai-processing-ms" ||
        starts_with(n, "x-ratelimit-") || starts_with(n, "anthropic-ratelimit-")) {
      if (n.size() > tunnel::kMaxHeaderName) continue;
      out.emplace_back(std::move(n), f.value);
    }
  }
  return out;
}

bool is_ip_literal(std::string_view host) noexcept {
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, buf, &a4) == 1 || inet_pton(AF_INET6, buf, &a6) == 1;
}

bool is_local_address(std::string_view ip) noexcept {
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  in_addr a4;
  if (inet_pton(AF_INET, buf, &a4) == 1) return v4_local(ntohl(a4.s_addr));
  in6_addr a6;
  if (inet_pton(AF_INET6, buf, &a6) == 1) return v6_local(a6.s6_addr);
  return false;
}

bool is_local_sockaddr(const sockaddr* sa) noexcept {
  if (!sa) return false;
  if (sa->sa_family == AF_INET) {
    sockaddr_in a;
    std::memcpy(&a, sa, sizeof a);
    return v4_local(ntohl(a.sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    sockaddr_in6 a;
    std::memcpy(&a, sa, sizeof a);
    return v6_local(a.sin6_addr.s6_addr);
  }
  return false;
}

}  // namespace tg::agent
