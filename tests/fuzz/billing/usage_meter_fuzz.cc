// libFuzzer target for the usage meter (and through it the JSON scanner and
// the SSE reader). Byte 0 picks the API and stream mode, byte 1 seeds the
// splits; the rest is the response body. The result and content_bytes() must
// not depend on the split (whole, byte by byte, random pieces), a failed
// status must give zero, and every count stays within its bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "shared/billing/usage.h"

namespace {

using tg::billing::Api;
using tg::billing::Usage;
using tg::billing::UsageMeter;

struct Run {
  Usage usage;
  uint64_t content = 0;
};

// Pieces chosen by a small LCG from `seed`: sizes 1..max_piece.
Run run(Api api, bool stream, std::string_view body, int status, uint32_t seed, size_t max_piece) {
  UsageMeter m(api, stream);
  m.request_body(body.size());
  m.response_status(status);
  uint32_t x = seed * 2654435761u + 1;
  while (!body.empty()) {
    x = x * 1103515245u + 12345u;
    const size_t n = max_piece == 0 ? body.size() : 1 + (x >> 8) % max_piece;
    const size_t take = n < body.size() ? n : body.size();
    m.response_body(body.substr(0, take));
    body.remove_prefix(take);
  }
  return Run{m.result(), m.content_bytes()};
}

bool same(const Run& a, const Run& b) { return a.usage == b.usage && a.content == b.content; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Api api = static_cast<Api>(data[0] % 3);
  const bool stream = (data[0] & 0x04) != 0;
  const uint32_t seed = data[1];
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);

  const Run whole = run(api, stream, body, 200, seed, 0);
  if (!same(run(api, stream, body, 200, seed, 1), whole)) std::abort();
  if (!same(run(api, stream, body, 200, seed, 3), whole)) std::abort();
  if (!same(run(api, stream, body, 200, seed, 64), whole)) std::abort();

  const Usage& u = whole.usage;
  constexpr uint64_t kMax = tg::billing::kMaxTokens;
  if (u.input > kMax || u.cached > kMax || u.output > kMax) std::abort();
  if (!stream && whole.content != 0) std::abort();
  if (u.estimated) {
    // An estimate's input is the request bytes / 4, rounded up.
    if (u.input != (body.size() + 3) / 4 && !(api == Api::messages && stream)) std::abort();
    if (u.cached != 0 && !(api == Api::messages && stream)) std::abort();
  }
  const Run failed = run(api, stream, body, 500, seed, 7);
  if (!(failed.usage == Usage())) std::abort();
  if (failed.content != whole.content) std::abort();
  return 0;
}
