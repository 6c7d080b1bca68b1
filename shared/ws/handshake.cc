#include "shared/ws/handshake.h"

#include <algorithm>

#include "shared/crypto/hash.h"

namespace tg::ws {
namespace {

constexpr size_t kKeyBytes = 16;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

UpgradeDecision refuse(int status, std::string why) {
  UpgradeDecision h;
  h.accepted = false;
  h.response.status = status;
  h.response.headers.add("Content-Type", "text/plain; charset=utf-8");
  if (status == 426) {
    h.response.headers.add("Upgrade", "websocket");
    h.response.headers.add("Connection", "Upgrade");
    h.response.headers.add("Sec-WebSocket-Version", "13");
  }
  h.error = std::move(why);
  return h;
}

}  // namespace

std::string accept_key(std::string_view client_key) {
  std::string input(client_key);
  input.append(kAcceptGuid.data(), kAcceptGuid.size());
  const auto digest = crypto::sha1(input);
  return crypto::base64_encode(
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::string make_client_key() {
  char raw[kKeyBytes];
  crypto::random_bytes(raw, sizeof raw);
  return crypto::base64_encode(std::string_view(raw, sizeof raw));
}

Result<std::vector<std::string>> header_tokens(const http::Headers& headers,
                                               std::string_view name, size_t max_items) {
  std::vector<std::string> out;
  for (const http::Header& h : headers) {
    if (!http::iequals(h.name, name)) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (item.empty()) continue;
      if (out.size() == max_items) {
        return error(Errc::limit, std::string(name) + ": more than " +
                                      std::to_string(max_items) + " values");
      }
      out.emplace_back(item);
    }
  }
  return out;
}

UpgradeDecision check_upgrade_request(const http::RequestHead& req,
                                      const ServerHandshakeConfig& config) {
  if (req.method != "GET") {
    return refuse(400, "websocket upgrade needs GET, got " + req.method);
  }
  if (req.version_minor < 1) return refuse(400, "websocket upgrade needs HTTP/1.1");
  if (!req.headers.has_token("Upgrade", "websocket")) {
    return refuse(426, "this resource needs a websocket upgrade (Upgrade: websocket)");
  }
  if (!req.headers.has_token("Connection", "upgrade")) {
    return refuse(400, "Connection header lacks the 'upgrade' token");
  }
  const std::string_view version = trim(req.headers.get("Sec-WebSocket-Version"));
  if (version != "13") {
    return refuse(426, "Sec-WebSocket-Version must be 13, got '" +
                           std::string(version.substr(0, 16)) + "'");
  }
  const std::string_view key = trim(req.headers.get("Sec-WebSocket-Key"));
  auto raw_key = crypto::base64_decode(key);
  if (!raw_key.ok() || raw_key->size() != kKeyBytes) {
    return refuse(400, "Sec-WebSocket-Key must be 16 bytes in base64");
  }
  auto offered = header_tokens(req.headers, "Sec-WebSocket-Protocol", kMaxSubprotocols);
  if (!offered.ok()) return refuse(400, offered.status().message());
  std::string chosen;
  for (const std::string& p : *offered) {
    if (std::find(config.subprotocols.begin(), config.subprotocols.end(), p) !=
        config.subprotocols.end()) {
      chosen = p;
      break;
    }
  }
  if (chosen.empty() && config.require_subprotocol) {
    std::string ours;
    for (const std::string& p : config.subprotocols) ours += (ours.empty() ? "" : ", ") + p;
    return refuse(400, "no supported subprotocol offered (Sec-WebSocket-Protocol); we speak: " +
                           ours);
  }
  UpgradeDecision h;
  h.accepted = true;
  h.response.status = 101;
  h.response.headers.add("Upgrade", "websocket");
  h.response.headers.add("Connection", "Upgrade");
  h.response.headers.add("Sec-WebSocket-Accept", accept_key(key));
  if (!chosen.empty()) h.response.headers.add("Sec-WebSocket-Protocol", chosen);
  h.subprotocol = std::move(chosen);
  return h;
}

Result<http::RequestHead> make_upgrade_request(std::string_view host, std::string_view path,
                                               const std::vector<std::string>& subprotocols,
                                               std::string_view key) {
  if (host.empty()) return error(Errc::invalid_argument, "ws connect: empty host");
  if (path.empty() || path.front() != '/') {
    return error(Errc::invalid_argument,
                 "ws connect: path must start with '/', got '" + std::string(path) + "'");
  }
  if (subprotocols.size() > kMaxSubprotocols) {
    return error(Errc::invalid_argument, "ws connect: more than " +
                                             std::to_string(kMaxSubprotocols) + " subprotocols");
  }
  std::string protocols;
  for (const std::string& p : subprotocols) {
    if (!http::is_token(p) || p.size() > kMaxSubprotocolName) {
      return error(Errc::invalid_argument,
                   "ws connect: subprotocol '" + p + "' is not a token of at most " +
                       std::to_string(kMaxSubprotocolName) + " characters");
    }
    if (!protocols.empty()) protocols += ", ";
    protocols += p;
  }
  http::RequestHead req;
  req.method = "GET";
  req.target = std::string(path);
  req.version_minor = 1;
  req.headers.add("Host", std::string(host));
  req.headers.add("Upgrade", "websocket");
  req.headers.add("Connection", "Upgrade");
  req.headers.add("Sec-WebSocket-Key", std::string(key));
  req.headers.add("Sec-WebSocket-Version", "13");
  if (!protocols.empty()) req.headers.add("Sec-WebSocket-Protocol", std::move(protocols));
  return req;
}

Result<std::string> check_upgrade_response(const http::ResponseHead& resp, std::string_view key,
                                           const std::vector<std::string>& offered) {
  if (resp.status != 101) {
    return error(Errc::protocol, "ws handshake: server answered " + std::to_string(resp.status) +
                                     " instead of 101");
  }
  if (!resp.headers.has_token("Upgrade", "websocket")) {
    return error(Errc::protocol, "ws handshake: 101 without 'Upgrade: websocket'");
  }
  if (!resp.headers.has_token("Connection", "upgrade")) {
    return error(Errc::protocol, "ws handshake: 101 without 'Connection: Upgrade'");
  }
  if (trim(resp.headers.get("Sec-WebSocket-Accept")) != accept_key(key)) {
    return error(Errc::protocol, "ws handshake: wrong or missing Sec-WebSocket-Accept");
  }
  if (resp.headers.has("Sec-WebSocket-Extensions")) {
    return error(Errc::protocol, "ws handshake: server chose an extension we did not offer");
  }
  auto chosen = header_tokens(resp.headers, "Sec-WebSocket-Protocol", 2);
  if (!chosen.ok() || chosen->size() > 1) {
    return error(Errc::protocol, "ws handshake: more than one Sec-WebSocket-Protocol value");
  }
  if (chosen->empty()) {
    if (!offered.empty()) {
      return error(Errc::protocol, "ws handshake: server chose none of our subprotocols");
    }
    return std::string();
  }
  const std::string& p = chosen->front();
  if (std::find(offered.begin(), offered.end(), p) == offered.end()) {
    return error(Errc::protocol,
                 "ws handshake: server chose subprotocol '" + p.substr(0, 64) +
                     "' that we did not offer");
  }
  return p;
}

}  // namespace tg::ws
