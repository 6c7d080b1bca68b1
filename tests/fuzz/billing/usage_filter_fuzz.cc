// libFuzzer target for the usage-only chunk filter. Byte 0 seeds the splits;
// the rest is an SSE stream. The output (with finish()) must equal a plain
// reference: the input split into events at blank lines, minus each whole
// event whose data is the usage-only chunk. It must not depend on the split
// and is never longer than the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/billing/include_usage.h"

namespace {

using tg::billing::kMaxSseLine;

// The whole-input reading of the rules, written without any state machine.
std::string reference(std::string_view in) {
  std::string out;
  size_t block = 0;  // where the current event's bytes start
  std::string data;
  bool has_data = false;
  bool skip = false;
  size_t i = 0;
  while (i < in.size()) {
    const size_t e = in.find_first_of("\r\n", i);
    if (e == std::string_view::npos) break;  // an unfinished line: the tail
    const std::string_view line = in.substr(i, e - i);
    const size_t after = e + (in[e] == '\r' && e + 1 < in.size() && in[e + 1] == '\n' ? 2 : 1);
    if (line.empty()) {
      const bool drop = e + 1 - block <= kMaxSseLine && has_data && !skip &&
                        tg::billing::is_usage_only_chunk(data);
      if (!drop) out.append(in.substr(block, after - block));
      block = after;
      data.clear();
      has_data = false;
      skip = false;
    } else if (line.size() > kMaxSseLine) {
      skip = true;
    } else if (line[0] != ':') {
      const size_t colon = line.find(':');
      const std::string_view name = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
      if (name == "data") {
        if (has_data) data += '\n';
        data.append(value);
        has_data = true;
        if (data.size() > kMaxSseLine) skip = true;
      }
    }
    i = after;
  }
  out.append(in.substr(block));
  return out;
}

std::string filtered(std::string_view in, uint32_t seed, size_t max_piece) {
  tg::billing::UsageChunkFilter f;
  std::string out;
  uint32_t x = seed * 2654435761u + 7;
  size_t fed = 0;
  while (!in.empty()) {
    x = x * 1103515245u + 12345u;
    const size_t n = max_piece == 0 ? in.size() : 1 + (x >> 8) % max_piece;
    const size_t take = n < in.size() ? n : in.size();
    f.feed(in.substr(0, take), &out);
    fed += take;
    if (out.size() > fed) std::abort();  // never ahead of the input
    in.remove_prefix(take);
  }
  f.finish(&out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t seed = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string whole = filtered(in, seed, 0);
  if (whole.size() > in.size()) std::abort();
  if (whole != reference(in)) std::abort();
  if (filtered(in, seed, 1) != whole) std::abort();
  if (filtered(in, seed, 5) != whole) std::abort();
  if (filtered(in, seed, 100) != whole) std::abort();
  return 0;
}
