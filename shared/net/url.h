// Strict parser for the absolute URLs we accept in config files:
// ws, wss, http and https, with a host name, IPv4 or [IPv6] literal, an
// optional port and a path. No user info, no fragments; a query is kept as
// part of the path. Pure function; no I/O, no allocation beyond the result.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::net {

constexpr size_t kMaxUrlBytes = 2048;
constexpr size_t kMaxHostBytes = 253;

struct Url {
  std::string scheme;  // lower case: "ws", "wss", "http", "https"
  std::string host;    // lower-cased name or address, without IPv6 brackets
  uint16_t port = 0;   // explicit, or the scheme's default
  std::string path;    // starts with '/'; "/" when absent
  bool tls() const noexcept { return scheme == "wss" || scheme == "https"; }
  // "host:port", with brackets for IPv6, for logs and Host headers.
  std::string authority() const;
};

// Errors name what is wrong: "url 'wss://h:99999/': port must be 1..65535".
Result<Url> parse_url(std::string_view text);

// A numeric listen address: "0.0.0.0:8443", "127.0.0.1:0", "[::]:8443".
struct HostPort {
  std::string host;  // numeric address, without brackets
  uint16_t port = 0;
};
// `allow_port_zero` admits port 0 (an ephemeral port, for tests).
Result<HostPort> parse_listen_address(std::string_view text, bool allow_port_zero = true);

}  // namespace tg::net
