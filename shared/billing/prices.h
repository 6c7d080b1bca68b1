// The price table: micro-units per million tokens for each model, under a
// version number that every settlement names. Loaded from prices.conf (the
// flat config format) or built from parts received over the tunnel; cost()
// and credit() are the only money arithmetic, exact in 128-bit integers.
// No I/O except load_prices().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/billing/money.h"
#include "shared/billing/usage.h"
#include "shared/config/config.h"
#include "shared/core/status.h"

namespace tg::billing {

constexpr size_t kMaxPricedModels = 256;
constexpr size_t kMaxModelName = 128;                     // bytes, visible ASCII
constexpr Micros kMaxPrice = 1'000'000'000'000;           // per million tokens (10^6 units)
constexpr uint64_t kMaxPriceVersion = (uint64_t{1} << 53) - 1;
constexpr uint32_t kMaxTierPpm = 1'000'000;
constexpr std::string_view kDefaultModel = "*";           // the price of every model without its own

// Micro-units per 1,000,000 tokens, each 0..kMaxPrice.
struct ModelPrice {
  Micros input = 0;
  Micros cached_input = 0;
  Micros output = 0;
};
bool operator==(const ModelPrice& a, const ModelPrice& b);
bool operator!=(const ModelPrice& a, const ModelPrice& b);

class PriceTable {
 public:
  uint64_t version() const noexcept { return version_; }
  // The exact model, else the "*" entry, else nullptr.
  const ModelPrice* find(std::string_view model) const;
  // Sorted by model name (bytewise); "*" is included as a model named "*".
  const std::vector<std::pair<std::string, ModelPrice>>& entries() const noexcept { return entries_; }

  // A table from parts already read elsewhere (the agent receives it over the
  // tunnel); checks what the file parser checks: version 1..kMaxPriceVersion,
  // at most kMaxPricedModels entries, model names 1..kMaxModelName visible
  // ASCII bytes, each once, prices 0..kMaxPrice. Any order. Errc::limit for
  // too many entries, Errc::invalid_argument for the rest.
  static Result<PriceTable> make(uint64_t version,
                                 std::vector<std::pair<std::string, ModelPrice>> entries);

  friend bool operator==(const PriceTable& a, const PriceTable& b);

 private:
  PriceTable() = default;

  static constexpr size_t kNone = static_cast<size_t>(-1);

  uint64_t version_ = 0;
  std::vector<std::pair<std::string, ModelPrice>> entries_;
  size_t default_ = kNone;  // index of "*" in entries_
};
bool operator!=(const PriceTable& a, const PriceTable& b);

// Exactly one of: table set and errors empty, or no table and errors.
struct PricesLoad {
  std::optional<PriceTable> table;
  std::vector<config::Diagnostic> errors;
};

// prices.conf: `version` (required, 1..kMaxPriceVersion) and up to
// kMaxPricedModels [price <label>] sections with `model` (default: the
// label), `input` and `output` (required) and `cached_input` (default: input),
// prices 0..kMaxPrice. Errors name the file and line. See README.md.
PricesLoad parse_prices(std::string_view text, const std::string& file_name);
// Reads `path` (at most config::kMaxFileBytes) and parses it.
PricesLoad load_prices(const std::string& path);

// cost = round_half_up((input*p.input + cached*p.cached_input + output*p.output) / 1,000,000)
// computed exactly in unsigned 128 bits. Errc::limit if the cost exceeds
// kMaxAmount; Errc::invalid_argument if a price is outside 0..kMaxPrice.
Result<Micros> cost(const Usage& u, const ModelPrice& p);

// credit = floor(cost * tier_ppm / 1,000,000): 0 <= credit <= cost. A cost
// below 0 gives 0; tier_ppm above kMaxTierPpm counts as kMaxTierPpm.
Micros credit(Micros cost, uint32_t tier_ppm);

}  // namespace tg::billing
