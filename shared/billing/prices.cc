#include "shared/billing/prices.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace tg::billing {
namespace {

// Unsigned 128-bit arithmetic, only what cost() and credit() need, in
// plain 64-bit operations: 32-bit targets (armhf, mipsel) have no
// unsigned __int128, and one code path everywhere is tested everywhere.
struct U128 {
  uint64_t hi = 0;
  uint64_t lo = 0;
};

// a * b, exactly.
U128 mul(uint64_t a, uint64_t b) {
  constexpr uint64_t kLow = 0xffffffffULL;
  const uint64_t a0 = a & kLow, a1 = a >> 32, b0 = b & kLow, b1 = b >> 32;
  const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const uint64_t mid = (p00 >> 32) + (p01 & kLow) + (p10 & kLow);  // < 3 * 2^32
  return U128{p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), (p00 & kLow) | (mid << 32)};
}

// x + y; the callers' sums stay far below 2^128.
U128 add(U128 x, U128 y) {
  const uint64_t lo = x.lo + y.lo;
  return U128{x.hi + y.hi + (lo < x.lo ? 1 : 0), lo};
}

// x / d, rounded down, for 0 < d < 2^32: long division by 32-bit digits.
U128 divide(U128 x, uint32_t d) {
  const uint32_t digits[4] = {static_cast<uint32_t>(x.hi >> 32), static_cast<uint32_t>(x.hi),
                              static_cast<uint32_t>(x.lo >> 32), static_cast<uint32_t>(x.lo)};
  uint64_t rem = 0;
  uint64_t q[4] = {};
  for (int i = 0; i < 4; ++i) {
    const uint64_t cur = (rem << 32) | digits[i];  // rem < d < 2^32: no overflow
    q[i] = cur / d;
    rem = cur % d;
  }
  return U128{(q[0] << 32) | q[1], (q[2] << 32) | q[3]};
}

// x > v
bool above(U128 x, uint64_t v) { return x.hi != 0 || x.lo > v; }

constexpr uint64_t kMicros = static_cast<uint64_t>(kMicrosPerUnit);
constexpr uint32_t kMicros32 = static_cast<uint32_t>(kMicrosPerUnit);

// Quoted for a message: printable ASCII kept, other bytes as \xNN, cut after
// 64 bytes.
std::string quote(std::string_view s) {
  constexpr size_t kEcho = 64;
  std::string out = "'";
  const size_t n = std::min(s.size(), kEcho);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '\'';
  if (s.size() > n) out += "...";
  return out;
}

// Empty if the name is acceptable, else why not.
std::string check_model(std::string_view m) {
  if (m.empty() || m.size() > kMaxModelName) {
    return "model " + quote(m) + " must be 1.." + std::to_string(kMaxModelName) + " bytes long";
  }
  for (char c : m) {
    if (c < '!' || c > '~') return "model " + quote(m) + " may only hold visible ASCII characters";
  }
  return std::string();
}

std::string check_price(const char* field, Micros v) {
  if (v < 0 || v > kMaxPrice) {
    return std::string(field) + " must be 0.." + std::to_string(kMaxPrice) + ", got " + std::to_string(v);
  }
  return std::string();
}

const config::Schema& schema() {
  using config::Key;
  using config::Type;
  static const config::Schema s{{
      {"", false, false,
       {
           Key{"version", Type::integer, nullptr, 1, static_cast<int64_t>(kMaxPriceVersion), nullptr,
               "the price table version named by every settlement"},
       }},
      {"price", true, true,
       {
           Key{"model", Type::string, "", 0, 0, nullptr,
               "model name as requested, default the section name; * = every other model"},
           Key{"input", Type::integer, nullptr, 0, kMaxPrice, nullptr,
               "micro-units per 1,000,000 uncached input tokens"},
           Key{"cached_input", Type::integer, "0", 0, kMaxPrice, nullptr,
               "micro-units per 1,000,000 cached input tokens, default input"},
           Key{"output", Type::integer, nullptr, 0, kMaxPrice, nullptr,
               "micro-units per 1,000,000 output tokens"},
       }},
  }};
  return s;
}

PricesLoad finish(config::ParseResult parsed) {
  PricesLoad out;
  if (!parsed.config) {
    out.errors = std::move(parsed.errors);
    return out;
  }
  const config::Config& c = *parsed.config;
  const auto version = static_cast<uint64_t>(c.global().integer("version"));
  std::vector<std::pair<std::string, ModelPrice>> entries;
  std::map<std::string, const config::Section*, std::less<>> seen;
  const std::vector<const config::Section*> sections = c.sections("price");
  for (size_t i = 0; i < sections.size(); ++i) {
    const config::Section& s = *sections[i];
    if (out.errors.size() >= config::kMaxDiagnostics) {  // as the config parser does
      out.errors.push_back(config::Diagnostic{
          c.file(), 0,
          "too many errors (more than " + std::to_string(config::kMaxDiagnostics) + "); stopping"});
      break;
    }
    if (i == kMaxPricedModels) {
      out.errors.push_back(config::Diagnostic{
          c.file(), s.line(),
          s.label() + ": more than " + std::to_string(kMaxPricedModels) + " [price] sections"});
      break;
    }
    const std::string model = s.is_set("model") ? std::string(s.str("model")) : s.name();
    if (std::string why = check_model(model); !why.empty()) {
      out.errors.push_back(c.diagnostic(s, "model", s.label() + ": " + why));
      continue;
    }
    auto [it, fresh] = seen.emplace(model, &s);
    if (!fresh) {
      const config::Section& first = *it->second;
      const int first_line = first.line_of("model") ? first.line_of("model") : first.line();
      out.errors.push_back(c.diagnostic(
          s, "model", s.label() + ": model " + quote(model) + " is already priced at line " +
                          std::to_string(first_line) + " (" + first.label() + ")"));
      continue;
    }
    ModelPrice p;
    p.input = s.integer("input");
    p.cached_input = s.is_set("cached_input") ? s.integer("cached_input") : p.input;
    p.output = s.integer("output");
    entries.emplace_back(model, p);
  }
  if (!out.errors.empty()) return out;
  Result<PriceTable> table = PriceTable::make(version, std::move(entries));
  if (!table.ok()) {  // the checks above and the schema's ranges cover make()'s
    out.errors.push_back(config::Diagnostic{c.file(), 0, table.status().message()});
    return out;
  }
  out.table = std::move(*table);
  return out;
}

}  // namespace

bool operator==(const ModelPrice& a, const ModelPrice& b) {
  return a.input == b.input && a.cached_input == b.cached_input && a.output == b.output;
}

bool operator!=(const ModelPrice& a, const ModelPrice& b) { return !(a == b); }

bool operator==(const PriceTable& a, const PriceTable& b) {
  return a.version_ == b.version_ && a.entries_ == b.entries_;
}

bool operator!=(const PriceTable& a, const PriceTable& b) { return !(a == b); }

const ModelPrice* PriceTable::find(std::string_view model) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), model,
                             [](const auto& e, std::string_view m) { return std::string_view(e.first) < m; });
  if (it != entries_.end() && it->first == model) return &it->second;
  return default_ == kNone ? nullptr : &entries_[default_].second;
}

Result<PriceTable> PriceTable::make(uint64_t version,
                                    std::vector<std::pair<std::string, ModelPrice>> entries) {
  if (version < 1 || version > kMaxPriceVersion) {
    return error(Errc::invalid_argument, "price table: version must be 1.." +
                                             std::to_string(kMaxPriceVersion) + ", got " +
                                             std::to_string(version));
  }
  if (entries.size() > kMaxPricedModels) {
    return error(Errc::limit, "price table: " + std::to_string(entries.size()) +
                                  " models, more than " + std::to_string(kMaxPricedModels));
  }
  for (const auto& [model, p] : entries) {
    std::string why = check_model(model);
    if (why.empty()) {
      why = check_price("input", p.input);
      if (why.empty()) why = check_price("cached_input", p.cached_input);
      if (why.empty()) why = check_price("output", p.output);
      if (!why.empty()) why = "model " + quote(model) + ": " + why;
    }
    if (!why.empty()) return error(Errc::invalid_argument, "price table: " + why);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].first == entries[i - 1].first) {
      return error(Errc::invalid_argument,
                   "price table: model " + quote(entries[i].first) + " appears more than once");
    }
  }
  PriceTable t;
  t.version_ = version;
  t.entries_ = std::move(entries);
  for (size_t i = 0; i < t.entries_.size(); ++i) {
    if (t.entries_[i].first == kDefaultModel) t.default_ = i;
  }
  return t;
}

PricesLoad parse_prices(std::string_view text, const std::string& file_name) {
  return finish(config::parse(text, file_name, schema()));
}

PricesLoad load_prices(const std::string& path) { return finish(config::load(path, schema())); }

Result<Micros> cost(const Usage& u, const ModelPrice& p) {
  for (Micros v : {p.input, p.cached_input, p.output}) {
    if (v < 0 || v > kMaxPrice) {
      return error(Errc::invalid_argument, "cost: price " + std::to_string(v) + " is outside 0.." +
                                               std::to_string(kMaxPrice));
    }
  }
  // Each product is below 2^64 * 2^40, the sum below 2^106: no overflow.
  const U128 sum = add(add(mul(u.input, static_cast<uint64_t>(p.input)),
                           mul(u.cached, static_cast<uint64_t>(p.cached_input))),
                       mul(u.output, static_cast<uint64_t>(p.output)));
  const U128 rounded = divide(add(sum, U128{0, kMicros / 2}), kMicros32);  // half up
  if (above(rounded, static_cast<uint64_t>(kMaxAmount))) {
    return error(Errc::limit, "cost: over the limit " + format_amount(kMaxAmount) +
                                  " (usage " + std::to_string(u.input) + " input, " +
                                  std::to_string(u.cached) + " cached, " + std::to_string(u.output) +
                                  " output tokens)");
  }
  return static_cast<Micros>(rounded.lo);
}

Micros credit(Micros cost, uint32_t tier_ppm) {
  if (cost <= 0) return 0;
  const uint64_t ppm = std::min<uint64_t>(tier_ppm, kMaxTierPpm);
  // cost * ppm is below 2^63 * 2^20: exact in 128 bits; the quotient fits.
  return static_cast<Micros>(divide(mul(static_cast<uint64_t>(cost), ppm), kMicros32).lo);
}

}  // namespace tg::billing
