// Fuzzes json::Doc against the cJSON reference reader (cJSON behind the same
// guards, tests/support/cjson_reference.h) on the same text and rules: what
// Doc accepts, cJSON accepts too and reads the same,
// value by value (types, member names and order, strings byte for byte,
// numbers as the same double). Doc may refuse what cJSON lets through (its
// grammar is strict: "01", "1.", "-"), never the reverse. The one known
// exception is skipped: cJSON refuses a number literal over 63 characters.
#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "shared/json/doc.h"
#include "shared/json/json.h"
#include "tests/support/cjson_reference.h"

namespace {

using tg::json::Value;

bool same(const Value& v, const cJSON* j) {
  if (!v.key.empty() || j->string != nullptr) {
    if (j->string == nullptr || v.key != std::string_view(j->string)) return false;
  }
  switch (v.type) {
    case tg::json::Type::null: return cJSON_IsNull(j) != 0;
    case tg::json::Type::boolean: return cJSON_IsBool(j) && (cJSON_IsTrue(j) != 0) == v.truth;
    case tg::json::Type::number: {
      if (!cJSON_IsNumber(j)) return false;
      const double a = v.number();
      const double b = j->valuedouble;
      return std::memcmp(&a, &b, sizeof a) == 0 || a == b;
    }
    case tg::json::Type::string:
      return cJSON_IsString(j) && j->valuestring != nullptr &&
             v.text == std::string_view(j->valuestring);
    case tg::json::Type::array:
    case tg::json::Type::object: {
      if (v.is_array() ? !cJSON_IsArray(j) : !cJSON_IsObject(j)) return false;
      const Value* c = v.child();
      const cJSON* k = j->child;
      uint32_t n = 0;
      for (; c != nullptr && k != nullptr; c = c->next(), k = k->next, ++n) {
        if (v.is_array() && !c->key.empty()) return false;
        if (!same(*c, k)) return false;
      }
      return c == nullptr && k == nullptr && n == v.count;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bool long_number = false;
  tg::json::Rules rules;
  rules.what = "fuzz";
  rules.max_depth = 16;
  rules.on_number = [&](const tg::json::Literal& n) {
    if (n.text.size() > 63) long_number = true;
    return tg::Status();
  };
  tg::json::Doc doc;
  const tg::Status mine = doc.parse(text, rules);
  if (!mine.ok() && mine.code() != tg::Errc::parse) std::abort();
  if (!mine.ok() && !doc.empty()) std::abort();
  tg::Result<tg::test::CjsonPtr> theirs = tg::test::cjson_parse(text, rules);
  if (long_number) return 0;
  if (!mine.ok()) return 0;
  if (!theirs.ok() || !same(doc.root(), theirs->get())) std::abort();
  return 0;
}
