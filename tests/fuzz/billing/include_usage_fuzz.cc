// libFuzzer target for inject_include_usage. On success the output is the
// input with exactly one documented edit (an insertion of one of the fixed
// texts, or an old include_usage value replaced by `true`), or the input
// itself when nothing was injected; every other byte is kept. When cJSON
// reads the input as a JSON document, it must read the output too, with
// stream_options.include_usage true.
#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/billing/include_usage.h"

namespace {

bool parses(std::string_view s) {
  const char* end = nullptr;
  cJSON* j = cJSON_ParseWithLengthOpts(s.data(), s.size(), &end, false);
  if (j == nullptr) return false;
  cJSON_Delete(j);
  for (const char* p = end; p < s.data() + s.size(); ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return false;
  }
  return true;
}

bool include_usage_true(std::string_view s) {
  cJSON* j = cJSON_ParseWithLength(s.data(), s.size());
  const cJSON* so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
  const bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
  cJSON_Delete(j);
  return ok;
}

size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// out == in[0, a) + edit + in[b, end) for some a <= b, with a == b for an
// insertion; `replaced` reports the removed text.
bool one_edit(std::string_view in, std::string_view out, std::string_view edit, bool insertion,
              std::string_view* replaced) {
  if (out.size() < edit.size()) return false;
  const size_t p = common_prefix(in, out);
  const size_t tail = out.size() - edit.size();  // bytes of out outside the edit
  for (size_t a = p >= edit.size() ? p - edit.size() : 0; a <= p && a <= tail; ++a) {
    if (out.substr(a, edit.size()) != edit) continue;
    const size_t kept_after = tail - a;
    if (kept_after > in.size() || in.size() - kept_after < a) continue;
    const size_t b = in.size() - kept_after;
    if (insertion && b != a) continue;
    if (in.substr(0, a) != out.substr(0, a) || in.substr(b) != out.substr(a + edit.size())) continue;
    *replaced = in.substr(a, b - a);
    return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  bool injected = true;
  tg::Result<std::string> r = tg::billing::inject_include_usage(in, &injected);
  if (!r.ok()) {
    if (injected) std::abort();
    const tg::Errc c = r.status().code();
    if (c != tg::Errc::parse && c != tg::Errc::limit && c != tg::Errc::invalid_argument) std::abort();
    return 0;
  }
  const std::string& out = *r;
  if (!injected) {
    if (out != in) std::abort();
  } else {
    static const char* const kInserts[] = {",\"stream_options\":{\"include_usage\":true}",
                                           "\"stream_options\":{\"include_usage\":true}",
                                           ",\"include_usage\":true", "\"include_usage\":true"};
    bool found = false;
    std::string_view replaced;
    for (const char* e : kInserts) found = found || one_edit(in, out, e, true, &replaced);
    if (!found) {
      found = one_edit(in, out, "true", false, &replaced) && !replaced.empty() && replaced != "true";
    }
    if (!found) std::abort();
  }
  // cJSON cuts strings at \u0000, so a key with one may read as another.
  const bool nul_escape = in.find("\\u0000") != std::string_view::npos;
  if (!nul_escape && parses(in)) {
    if (!parses(out) || !include_usage_true(out)) std::abort();
  }
  return 0;
}
