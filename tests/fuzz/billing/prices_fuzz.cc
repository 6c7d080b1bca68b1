// libFuzzer target for prices.conf: any text gives either a table or bounded
// diagnostics, never both. A table keeps every documented limit, and
// PriceTable::make() rebuilds an equal table from its parts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/billing/prices.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tg::billing;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  PricesLoad r = parse_prices(text, "fuzz.conf");
  if (r.table.has_value() == !r.errors.empty()) std::abort();
  if (r.errors.size() > tg::config::kMaxDiagnostics + 1) std::abort();
  for (const auto& d : r.errors) {
    if (d.message.empty() || d.message.size() > 1024) std::abort();
  }
  if (!r.table) return 0;
  const PriceTable& t = *r.table;
  if (t.version() < 1 || t.version() > kMaxPriceVersion) std::abort();
  if (t.entries().size() > kMaxPricedModels) std::abort();
  for (size_t i = 0; i < t.entries().size(); ++i) {
    const auto& [model, p] = t.entries()[i];
    if (i > 0 && !(t.entries()[i - 1].first < model)) std::abort();
    if (model.empty() || model.size() > kMaxModelName) std::abort();
    for (Micros v : {p.input, p.cached_input, p.output}) {
      if (v < 0 || v > kMaxPrice) std::abort();
    }
    if (t.find(model) != &p) std::abort();
    Usage u;
    u.input = kMaxTokens;
    u.cached = kMaxTokens;
    u.output = kMaxTokens;
    tg::Result<Micros> c = cost(u, p);
    if (!c.ok() && c.status().code() != tg::Errc::limit) std::abort();
  }
  tg::Result<PriceTable> again = PriceTable::make(t.version(), t.entries());
  if (!again.ok() || !(*again == t)) std::abort();
  return 0;
}
