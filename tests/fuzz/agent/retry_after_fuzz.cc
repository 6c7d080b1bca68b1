// libFuzzer target for the agent's Retry-After parser (agent/limiter.h):
// the first 8 bytes are the wall clock (int64 ms, any value), the rest is
// the header value. Any input must give a delay within the cap or a short
// error; the same input gives the same answer; delay-seconds do not depend
// on the clock; and a date's delay shrinks (or stays) as the clock moves on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "agent/limiter.h"

namespace {

bool only_seconds(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return false;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  int64_t now = 0;
  std::memcpy(&now, data, sizeof now);
  const std::string_view value(reinterpret_cast<const char*>(data + 8), size - 8);

  auto r = tg::agent::parse_retry_after(value, now);
  auto again = tg::agent::parse_retry_after(value, now);
  if (r.ok() != again.ok() || (r.ok() && *r != *again)) std::abort();
  if (!r.ok()) {
    // The message shows at most kMaxRetryAfterBytes of the value.
    if (r.status().message().size() > tg::agent::kMaxRetryAfterBytes + 64) std::abort();
    if (value.size() > tg::agent::kMaxRetryAfterBytes && r.status().code() != tg::Errc::limit) {
      std::abort();
    }
    return 0;
  }
  if (value.size() > tg::agent::kMaxRetryAfterBytes) std::abort();
  if (*r > tg::agent::kMaxRetryAfterMs) std::abort();

  // One second later: a number of seconds gives the same delay; a date a
  // delay at most a second shorter, never longer. RFC 850 dates (the only
  // form with '-') are left out: their two-digit year is read against the
  // clock's century, which a second may cross.
  if (now < INT64_MAX - 1000 && value.find('-') == std::string_view::npos) {
    auto later = tg::agent::parse_retry_after(value, now + 1000);
    if (!later.ok()) std::abort();
    if (only_seconds(value)) {
      if (*later != *r) std::abort();
    } else if (*later > *r || *later + 1000 < *r) {
      std::abort();
    }
  }
  return 0;
}
