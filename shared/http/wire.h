// Internal wire helpers shared by the HTTP server and client: body framing
// bits that are not part of the public message API (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::http {

// Decimal Content-Length value (1..19 digits, nothing else).
inline Result<uint64_t> parse_content_length(std::string_view v) {
  if (v.empty() || v.size() > 19) {
    return error(Errc::invalid_argument, "Content-Length \"" + std::string(v) + "\" is not a number");
  }
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') {
      return error(Errc::invalid_argument,
                   "Content-Length \"" + std::string(v) + "\" is not a number");
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// "<hex size>\r\n" that opens a chunk of `size` bytes.
inline std::string chunk_size_line(size_t size) {
  static const char kHex[] = "0123456789abcdef";
  char buf[24];
  size_t i = sizeof buf;
  buf[--i] = '\n';
  buf[--i] = '\r';
  do {
    buf[--i] = kHex[size & 0xf];
    size >>= 4;
  } while (size != 0);
  return std::string(buf + i, sizeof buf - i);
}

}  // namespace tg::http
