// libFuzzer target for the vendor-key store: the sealed token parser
// (shared/crypto/seal.h) and the api_key line rewrite (agent/keystore.h).
// Any input must give a parsed token that formats and parses back to itself,
// or a bounded error; and a config the strict parser accepts must, after the
// rewrite, still parse, with the new value in the right section and every
// other section's api_key unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "agent/keystore.h"
#include "shared/config/config.h"
#include "shared/crypto/seal.h"

namespace {

using tg::crypto::SealedValue;

constexpr const char* kNewValue = "sealed:v1:keyfile:RlVaWg==";

const tg::crypto::SealKey& fuzz_key() {
  static const tg::crypto::SealKey k =
      std::move(tg::crypto::SealKey::from_bytes(std::string(32, 'f'))).value();
  return k;
}

void check_token(std::string_view text) {
  auto v = tg::crypto::parse_sealed(text);
  if (!v.ok()) {
    if (v.status().message().size() > 256) std::abort();
    return;
  }
  if (v->payload.size() > tg::crypto::kMaxSealPayloadBytes) std::abort();
  const std::string again = tg::crypto::format_sealed(*v);
  auto w = tg::crypto::parse_sealed(again);
  if (!w.ok() || w->kind != v->kind || w->salt != v->salt || w->payload != v->payload) std::abort();
  // No key opens a box nobody sealed; this must fail cleanly.
  if (v->kind == tg::crypto::SealKind::keyfile &&
      tg::crypto::open(fuzz_key(), *v, "[provider a] type openai").ok()) {
    std::abort();
  }
}

void check_rewrite(std::string_view text) {
  std::vector<tg::agent::ApiKeyEdit> edits{{"a", kNewValue}};
  auto out = tg::agent::rewrite_api_keys(text, edits);
  if (!out.ok()) return;
  // At most one new line per edit.
  if (out->size() > text.size() + 16 + std::string_view(kNewValue).size()) std::abort();
  const auto& schema = tg::agent::schema();
  tg::config::ParseResult before = tg::config::parse(text, "fuzz.conf", schema);
  if (!before.config) return;
  tg::config::ParseResult after = tg::config::parse(*out, "fuzz.conf", schema);
  if (!after.config) std::abort();
  for (const tg::config::Section* s : before.config->sections("provider")) {
    const tg::config::Section* t = after.config->section("provider", s->name());
    if (!t) std::abort();
    const tg::Secret& now = t->secret("api_key");
    if (s->name() == "a" ? !now.equals(kNewValue) : !now.equals(s->secret("api_key").reveal())) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_token(text);
  (void)tg::agent::check_api_key(text);
  check_rewrite(text);
  return 0;
}
