#include "shared/net/url.h"

#include <uv.h>

#include <cctype>

namespace tg::net {
namespace {

constexpr size_t kMaxEcho = 80;

std::string echo(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxEcho)) {
    auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (text.size() > kMaxEcho) out += "...";
  return out;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

// RFC 3986 pchar plus '/' and '?', and '%' (escapes are passed on untouched).
bool is_path_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '\'':
    case '(': case ')': case '*': case '+': case ',': case ';': case '=': case ':':
    case '@': case '/': case '?': case '%':
      return true;
    default:
      return false;
  }
}

uint16_t default_port(std::string_view scheme) {
  return (scheme == "wss" || scheme == "https") ? 443 : 80;
}

}  // namespace

std::string Url::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<Url> parse_url(std::string_view text) {
  auto fail = [&](const std::string& why) -> Status {
    return error(Errc::parse, "url '" + echo(text) + "': " + why);
  };
  if (text.size() > kMaxUrlBytes) {
    return fail("longer than " + std::to_string(kMaxUrlBytes) + " bytes");
  }
  Url url;
  size_t colon = text.find("://");
  if (colon == std::string_view::npos) return fail("missing scheme (expected e.g. wss://host/path)");
  for (char c : text.substr(0, colon)) url.scheme += lower(c);
  if (url.scheme != "ws" && url.scheme != "wss" && url.scheme != "http" && url.scheme != "https") {
    return fail("scheme must be ws, wss, http or https");
  }
  std::string_view rest = text.substr(colon + 3);
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);

  if (authority.find('@') != std::string_view::npos) return fail("user info is not allowed");
  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail("unexpected text after IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return fail("empty port");
    }
    if (host.empty()) return fail("empty host");
    unsigned char addr[16];
    if (host.size() > 45 || uv_inet_pton(AF_INET6, std::string(host).c_str(), addr) != 0) {
      return fail("bad IPv6 literal");
    }
  } else {
    size_t pc = authority.rfind(':');
    host = authority.substr(0, pc);
    if (pc != std::string_view::npos) {
      port_text = authority.substr(pc + 1);
      if (port_text.empty()) return fail("empty port");
    }
    if (host.empty()) return fail("empty host");
    if (host.size() > kMaxHostBytes) return fail("host name longer than 253 bytes");
    for (char c : host) {
      if (!is_host_char(c)) return fail("bad character in host name");
    }
    if (host.front() == '.' || host.front() == '-' || host.find("..") != std::string_view::npos) {
      return fail("malformed host name");
    }
  }
  for (char c : host) url.host += lower(c);

  if (port_text.empty()) {
    url.port = default_port(url.scheme);
  } else {
    uint32_t port = 0;
    if (port_text.size() > 5) return fail("port must be 1..65535");
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return fail("port is not a number");
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return fail("port must be 1..65535");
    url.port = static_cast<uint16_t>(port);
  }

  if (path.empty()) {
    url.path = "/";
  } else {
    if (path.find('#') != std::string_view::npos) return fail("fragments are not allowed");
    if (path[0] == '?') url.path = "/";
    for (char c : path) {
      if (!is_path_char(c)) return fail("bad character in path");
    }
    url.path += std::string(path);
  }
  return url;
}

Result<HostPort> parse_listen_address(std::string_view text, bool allow_port_zero) {
  auto fail = [&](const std::string& why) -> Status {
    return error(Errc::parse, "address '" + echo(text) + "': " + why);
  };
  HostPort hp;
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail("expected host:port, e.g. 0.0.0.0:8443");
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host.size() > 45) return fail("expected a numeric IP address before the port");
  hp.host = std::string(host);
  unsigned char addr[16];
  if (uv_inet_pton(AF_INET, hp.host.c_str(), addr) != 0 &&
      uv_inet_pton(AF_INET6, hp.host.c_str(), addr) != 0) {
    return fail("'" + echo(host) + "' is not a numeric IP address");
  }
  if (port.empty() || port.size() > 5) return fail("port must be 0..65535");
  uint32_t n = 0;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return fail("port is not a number");
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n > 65535 || (n == 0 && !allow_port_zero)) {
    return fail(allow_port_zero ? "port must be 0..65535" : "port must be 1..65535");
  }
  hp.port = static_cast<uint16_t>(n);
  return hp;
}

}  // namespace tg::net
