#include "shared/billing/json_doc.h"

namespace tg::billing::detail {

bool parse_document(std::string_view text, json::Doc* doc) {
  json::Rules rules;
  rules.what = "vendor JSON";
  rules.max_depth = 256;
  rules.allow_nul = true;
  return doc->parse(text, rules).ok();
}

const json::Value* member(const json::Value* obj, std::string_view name) {
  return obj != nullptr ? obj->member(name) : nullptr;
}

}  // namespace tg::billing::detail
