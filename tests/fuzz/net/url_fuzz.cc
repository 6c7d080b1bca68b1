// Fuzzes the URL parser: any input gives a URL or an error, never a crash;
// a parsed URL is internally consistent and re-parses to the same result.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/net/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto url = tg::net::parse_url(text);
  if (!url.ok()) return 0;
  if (url->port == 0 || url->path.empty() || url->path[0] != '/' || url->host.empty()) std::abort();
  std::string again = url->scheme + "://" + url->authority() + url->path;
  auto second = tg::net::parse_url(again);
  if (!second.ok() || second->host != url->host || second->port != url->port ||
      second->path != url->path) {
    std::abort();
  }
  return 0;
}
