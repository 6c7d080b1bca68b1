#include "shared/billing/json_doc.h"

namespace tg::billing::detail {

JsonPtr parse_document(std::string_view text) {
  if (text.empty()) return nullptr;
  const char* end = nullptr;
  JsonPtr root(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, false));
  if (!root || end == nullptr) return nullptr;
  const char* const limit = text.data() + text.size();
  for (const char* p = end; p < limit; ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return nullptr;
  }
  return root;
}

const cJSON* member(const cJSON* obj, const char* name) {
  if (!cJSON_IsObject(obj)) return nullptr;
  return cJSON_GetObjectItemCaseSensitive(obj, name);
}

}  // namespace tg::billing::detail
