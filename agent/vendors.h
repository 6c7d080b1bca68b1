// The vendor endpoint table compiled into the agent, and the rewriting of one
// tunnel call into the vendor's HTTP request (host, path, allow-listed
// headers, the provider's auth) and of the vendor's response head into the
// headers the hub may see. Pure functions: no I/O, no state; no setting can
// make a vendor provider's request go to a host not in this table.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/config.h"
#include "shared/core/status.h"
#include "shared/http/message.h"
#include "shared/tunnel/messages.h"

namespace tg::agent {

constexpr std::string_view kDefaultAnthropicVersion = "2023-06-01";
// Response headers passed to the hub at most (the tunnel allows 64).
constexpr size_t kMaxResponseHeaders = 48;

// The user-facing APIs the hub forwards.
enum class Api { chat, embeddings, messages };

// "/v1/chat/completions", "/v1/embeddings", "/v1/messages"; nullopt for any
// other path (a query string included).
std::optional<Api> api_for_path(std::string_view path) noexcept;

// Where and what to send for one call.
struct VendorRequest {
  std::string host;         // name or address to dial
  uint16_t port = 443;
  bool tls = true;
  std::string server_name;  // TLS: SNI and the name the certificate must carry
  bool local_only = false;  // every address `host` resolves to must be local
  http::RequestHead head;   // method, target, headers (auth, host, chunked body)
};

// Builds the vendor request for `call` served by provider `p`. Errors
// (Errc::invalid_argument; the passthrough answers bad_request with the
// message, which never contains the key): a method other than POST, a path
// that is not a forwarded API, an API the provider's dialect does not serve
// (anthropic: only /v1/messages; openai, azure, local: chat and embeddings;
// deepseek: chat only). Headers: only content-type, accept, user-agent,
// x-request-id, plus anthropic-version/anthropic-beta (anthropic) or
// openai-beta (openai, azure) from the call; then host, accept-encoding:
// identity, transfer-encoding: chunked and the vendor auth made from
// p.api_key (local: only when a key is set). The result holds the key in its
// auth header: pass it to wipe_auth() once sent.
Result<VendorRequest> vendor_request(const ProviderConfig& p, const tunnel::Call& call);

// Overwrites every header value of `head` with zero bytes (the vendor key
// must not linger in freed memory).
void wipe_auth(http::RequestHead& head) noexcept;

// The vendor's response headers the hub may see, lowercased: content-type,
// retry-after, x-ratelimit-*, anthropic-ratelimit-*, openai-processing-ms,
// and x-request-id / request-id renamed x-upstream-request-id (the first
// one). At most kMaxResponseHeaders; values over the tunnel's limit dropped.
tunnel::Headers response_headers(const http::Headers& vendor);

// True if `host` is an IPv4 or IPv6 address literal (no brackets).
bool is_ip_literal(std::string_view host) noexcept;
// True for a loopback (127.0.0.0/8, ::1), RFC 1918 private (10/8, 172.16/12,
// 192.168/16) or fd00::/8 address literal; false for names and anything else.
bool is_local_address(std::string_view ip) noexcept;
// The same for a resolved address (AF_INET / AF_INET6; IPv4-mapped IPv6
// addresses are judged as IPv4).
bool is_local_sockaddr(const sockaddr* sa) noexcept;

}  // namespace tg::agent
