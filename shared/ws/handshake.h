// WebSocket opening handshake (RFC 6455 section 4): pure checks and builders
// for the upgrade request and the 101 answer (Sec-WebSocket-Key/Accept,
// version 13, subprotocol choice). No I/O here: server.h and client.h glue them
// to the HTTP layer. No extension is ever negotiated.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "shared/core/status.h"
#include "shared/http/message.h"

namespace tg::ws {

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// Subprotocol names a peer may offer in one request, and their length.
constexpr size_t kMaxSubprotocols = 16;
constexpr size_t kMaxSubprotocolName = 64;

// base64(sha1(client_key + GUID)), the Sec-WebSocket-Accept value.
std::string accept_key(std::string_view client_key);
// 16 random bytes, base64: a fresh Sec-WebSocket-Key.
std::string make_client_key();

// Tokens of every `name` field (comma-separated, whitespace trimmed, empty
// items dropped), in order. Errc::limit above `max_items` tokens.
Result<std::vector<std::string>> header_tokens(const http::Headers& headers,
                                               std::string_view name, size_t max_items);

struct ServerHandshakeConfig {
  // Subprotocols we support. We pick the first one the client offered that
  // is in this list.
  std::vector<std::string> subprotocols;
  // Refuse (400) a client that offers none of ours.
  bool require_subprotocol = false;
};

// The verdict on an upgrade request.
struct UpgradeDecision {
  bool accepted = false;
  // accepted: the 101 head to pass to the exchange's upgrade(). Otherwise the
  // refusal (400, or 426 with Sec-WebSocket-Version: 13) to send as a normal
  // response, with `error` as a text body.
  http::ResponseHead response;
  std::string subprotocol;  // accepted: the chosen one, "" for none
  std::string error;        // refused: why, naming the bad header
};

UpgradeDecision check_upgrade_request(const http::RequestHead& req,
                                      const ServerHandshakeConfig& config);

// GET `path` with the upgrade headers, Host: `host`, the given key and the
// offered subprotocols. Errc::invalid_argument for a path not starting with
// '/', an empty host, or a subprotocol that is not an HTTP token.
Result<http::RequestHead> make_upgrade_request(std::string_view host, std::string_view path,
                                               const std::vector<std::string>& subprotocols,
                                               std::string_view key);

// Checks a server's answer to make_upgrade_request(): status 101, Upgrade and
// Connection tokens, the accept value for `key`, no extensions, and a
// subprotocol that we offered (required when we offered any). Returns the
// agreed subprotocol ("" for none). Errc::protocol names what is wrong.
Result<std::string> check_upgrade_response(const http::ResponseHead& resp, std::string_view key,
                                           const std::vector<std::string>& offered);

}  // namespace tg::ws
