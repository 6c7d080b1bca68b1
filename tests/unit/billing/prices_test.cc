// prices.conf parsing with file:line errors, PriceTable::make's checks, the
// lookup with the "*" default, and cost()/credit() at every rounding, range
// and overflow edge. Ends with the shipped configs/prices.conf.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shared/billing/prices.h"

namespace tg::billing {
namespace {

std::vector<std::string> errors_of(const std::string& text) {
  PricesLoad r = parse_prices(text, "prices.conf");
  EXPECT_FALSE(r.table.has_value());
  std::vector<std::string> out;
  for (const auto& d : r.errors) out.push_back(d.to_string());
  return out;
}

PriceTable table_of(const std::string& text) {
  PricesLoad r = parse_prices(text, "prices.conf");
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_TRUE(r.table.has_value());
  return std::move(*r.table);
}

ModelPrice price(Micros in, Micros cached, Micros out) {
  ModelPrice p;
  p.input = in;
  p.cached_input = cached;
  p.output = out;
  return p;
}

Usage usage(uint64_t in, uint64_t cached, uint64_t out) {
  Usage u;
  u.input = in;
  u.cached = cached;
  u.output = out;
  return u;
}

std::string section(const std::string& label, const std::string& extra = "") {
  return "[price " + label + "]\n" + extra + "input = 1\noutput = 2\n";
}

// ---- prices.conf ----

TEST(BillingPrices, ParsesSectionsWithDefaults) {
  PriceTable t = table_of(
      "# comment\nversion = 3\n\n"
      "[price gpt-4o-mini]\ninput = 150000\ncached_input = 75000\noutput = 600000\n"
      "[price local]\nmodel = llama3.1:8b\ninput = 0\noutput = 0\n"
      "[price default]\nmodel = *\ninput = 1000000\noutput = 4000000\n");
  EXPECT_EQ(t.version(), 3u);
  ASSERT_EQ(t.entries().size(), 3u);
  // Sorted bytewise: '*' < 'g' < 'l'.
  EXPECT_EQ(t.entries()[0].first, "*");
  EXPECT_EQ(t.entries()[1].first, "gpt-4o-mini");
  EXPECT_EQ(t.entries()[2].first, "llama3.1:8b");
  EXPECT_EQ(t.entries()[1].second, price(150000, 75000, 600000));
  // cached_input defaults to input.
  EXPECT_EQ(t.entries()[0].second, price(1000000, 1000000, 4000000));
  EXPECT_EQ(t.entries()[2].second, price(0, 0, 0));
}

TEST(BillingPrices, FindsExactModelThenDefault) {
  PriceTable with_default = table_of("version = 1\n" + section("a") + section("star", "model = *\n"));
  ASSERT_NE(with_default.find("a"), nullptr);
  EXPECT_EQ(with_default.find("a"), &with_default.entries()[1].second);
  EXPECT_EQ(with_default.find("b"), &with_default.entries()[0].second);
  EXPECT_EQ(with_default.find(""), &with_default.entries()[0].second);
  EXPECT_EQ(with_default.find("A"), &with_default.entries()[0].second);  // case matters

  PriceTable without = table_of("version = 1\n" + section("a"));
  EXPECT_NE(without.find("a"), nullptr);
  EXPECT_EQ(without.find("ab"), nullptr);
  EXPECT_EQ(without.find("*"), nullptr);
}

TEST(BillingPrices, NoSectionsIsAnEmptyTable) {
  PriceTable t = table_of("version = 9007199254740991\n");
  EXPECT_EQ(t.version(), 9007199254740991u);
  EXPECT_TRUE(t.entries().empty());
  EXPECT_EQ(t.find("gpt-4o"), nullptr);
}

TEST(BillingPrices, VersionIsRequiredAndInRange) {
  EXPECT_EQ(errors_of(section("a")), std::vector<std::string>{"prices.conf: missing required key 'version'"});
  EXPECT_EQ(errors_of("version = 0\n"),
            std::vector<std::string>{"prices.conf:1: version must be 1..9007199254740991, got 0"});
  EXPECT_EQ(errors_of("version = 9007199254740992\n"),
            std::vector<std::string>{"prices.conf:1: version must be 1..9007199254740991, got 9007199254740992"});
  EXPECT_EQ(errors_of("version = 1.5\n"),
            std::vector<std::string>{"prices.conf:1: version must be an integer in 1..9007199254740991, got '1.5'"});
}

TEST(BillingPrices, PricesAreIntegersInRange) {
  EXPECT_TRUE(parse_prices("version = 1\n[price a]\ninput = 1000000000000\noutput = 1000000000000\n"
                           "cached_input = 1000000000000\n", "p").table.has_value());
  EXPECT_EQ(errors_of("version = 1\n[price a]\ninput = 1000000000001\noutput = 0\n"),
            std::vector<std::string>{"prices.conf:3: input must be 0..1000000000000, got 1000000000001"});
  EXPECT_EQ(errors_of("version = 1\n[price a]\ninput = 0\noutput = -1\n"),
            std::vector<std::string>{"prices.conf:4: output must be 0..1000000000000, got -1"});
  EXPECT_EQ(errors_of("version = 1\n[price a]\ninput = 0.15\noutput = 1\n"),
            std::vector<std::string>{"prices.conf:3: input must be an integer in 0..1000000000000, got '0.15'"});
  EXPECT_EQ(errors_of("version = 1\n[price a]\ninput = 1\noutput = 1\ncached_input = 1000000000001\n"),
            std::vector<std::string>{
                "prices.conf:5: cached_input must be 0..1000000000000, got 1000000000001"});
}

TEST(BillingPrices, InputAndOutputAreRequired) {
  EXPECT_EQ(errors_of("version = 1\n[price a]\ninput = 1\n"),
            std::vector<std::string>{"prices.conf:2: [price a]: missing required key 'output'"});
  EXPECT_EQ(errors_of("version = 1\n[price a]\noutput = 1\n"),
            std::vector<std::string>{"prices.conf:2: [price a]: missing required key 'input'"});
}

TEST(BillingPrices, UnknownKeysAndSectionsAreErrors) {
  EXPECT_EQ(errors_of("version = 1\n[price a]\ninput = 1\noutput = 1\nouput = 2\n").size(), 1u);
  EXPECT_EQ(errors_of("version = 1\n[price a]\ninput = 1\noutput = 1\nouput = 2\n")[0].rfind(
                "prices.conf:5: unknown key 'ouput'", 0),
            0u);
  EXPECT_EQ(errors_of("version = 1\n[model a]\n")[0].rfind("prices.conf:2: unknown section type 'model'", 0), 0u);
}

TEST(BillingPrices, ModelAppearsOnceAndErrorNamesBothLines) {
  EXPECT_EQ(errors_of("version = 1\n" + section("gpt-4o") + "\n" + section("copy", "model = gpt-4o\n")),
            std::vector<std::string>{
                "prices.conf:7: [price copy]: model 'gpt-4o' is already priced at line 2 ([price gpt-4o])"});
  EXPECT_EQ(errors_of("version = 1\n" + section("a", "model = *\n") + section("b", "model = *\n")),
            std::vector<std::string>{"prices.conf:7: [price b]: model '*' is already priced at line 3 ([price a])"});
  // Same label twice is the config format's own error.
  EXPECT_EQ(errors_of("version = 1\n" + section("a") + section("a")),
            std::vector<std::string>{"prices.conf:5: duplicate section [price a] (first at line 2)"});
}

TEST(BillingPrices, ModelNamesAreVisibleAsciiUpTo128Bytes) {
  const std::string m128(kMaxModelName, 'm');
  EXPECT_TRUE(parse_prices("version = 1\n" + section("a", "model = " + m128 + "\n"), "p").table.has_value());
  EXPECT_TRUE(parse_prices("version = 1\n" + section("a", "model = !~/@:.[]{}\n"), "p").table.has_value());
  EXPECT_EQ(errors_of("version = 1\n" + section("a", "model = " + m128 + "x\n")),
            std::vector<std::string>{"prices.conf:3: [price a]: model '" + std::string(64, 'm') +
                                     "'... must be 1..128 bytes long"});
  EXPECT_EQ(errors_of("version = 1\n" + section("a", "model = \"a b\"\n")),
            std::vector<std::string>{
                "prices.conf:3: [price a]: model 'a b' may only hold visible ASCII characters"});
  EXPECT_EQ(errors_of("version = 1\n" + section("a", "model = caf\xc3\xa9\n")),
            std::vector<std::string>{
                "prices.conf:3: [price a]: model 'caf\\xc3\\xa9' may only hold visible ASCII characters"});
  EXPECT_EQ(errors_of("version = 1\n" + section("a", "model =\n")),
            std::vector<std::string>{"prices.conf:3: [price a]: model '' must be 1..128 bytes long"});
}

TEST(BillingPrices, AtMost256Sections) {
  std::string text = "version = 1\n";
  for (size_t i = 0; i < kMaxPricedModels; ++i) text += section("m" + std::to_string(i));
  PricesLoad at = parse_prices(text, "prices.conf");
  ASSERT_TRUE(at.table.has_value());
  EXPECT_EQ(at.table->entries().size(), kMaxPricedModels);
  text += section("one-more");
  // 1 + 256 sections of 3 lines: the 257th header is on line 770.
  EXPECT_EQ(errors_of(text), std::vector<std::string>{"prices.conf:770: [price one-more]: more than 256 [price] sections"});
}

TEST(BillingPrices, ReportsEveryErrorNotJustTheFirst) {
  std::vector<std::string> e = errors_of("version = 1\n" + section("a", "model = x y\n") + section("b", "model = z\n") +
                                         section("c", "model = z\n"));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], "prices.conf:3: [price a]: model 'x y' may only hold visible ASCII characters");
  EXPECT_EQ(e[1], "prices.conf:11: [price c]: model 'z' is already priced at line 7 ([price b])");
}

TEST(BillingPrices, StopsAfterAHundredErrors) {
  std::string text = "version = 1\n";
  for (int i = 0; i < 150; ++i) text += section("m" + std::to_string(i), "model = bad model\n");
  std::vector<std::string> e = errors_of(text);
  ASSERT_EQ(e.size(), 101u);
  EXPECT_EQ(e[99], "prices.conf:399: [price m99]: model 'bad model' may only hold visible ASCII characters");
  EXPECT_EQ(e[100], "prices.conf: too many errors (more than 100); stopping");
}

TEST(BillingPrices, LoadReportsAMissingFile) {
  PricesLoad r = load_prices("/nonexistent/prices.conf");
  EXPECT_FALSE(r.table.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].file, "/nonexistent/prices.conf");
}

TEST(BillingPrices, ShippedExampleParses) {
  PricesLoad r = load_prices(std::string(TG_SOURCE_DIR) + "/configs/prices.conf");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  ASSERT_TRUE(r.table.has_value());
  const PriceTable& t = *r.table;
  EXPECT_EQ(t.version(), 1u);
  for (const char* m : {"*", "gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-3-5-haiku-latest",
                        "claude-sonnet-4-20250514", "deepseek-chat"}) {
    const ModelPrice* p = t.find(m);
    ASSERT_NE(p, nullptr) << m;
    EXPECT_EQ(p, t.find(m));
  }
  EXPECT_EQ(*t.find("gpt-4o-mini"), price(150000, 75000, 600000));
  EXPECT_EQ(*t.find("text-embedding-3-small"), price(20000, 20000, 0));
  EXPECT_EQ(*t.find("some-new-model"), *t.find("*"));
  EXPECT_EQ(t.entries().size(), 7u);
}

// ---- PriceTable::make ----

TEST(BillingPriceTable, MakeSortsAndFinds) {
  Result<PriceTable> t = PriceTable::make(2, {{"b", price(1, 1, 1)}, {"*", price(9, 9, 9)}, {"a", price(2, 2, 2)}});
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->version(), 2u);
  ASSERT_EQ(t->entries().size(), 3u);
  EXPECT_EQ(t->entries()[0].first, "*");
  EXPECT_EQ(t->entries()[1].first, "a");
  EXPECT_EQ(t->entries()[2].first, "b");
  EXPECT_EQ(*t->find("a"), price(2, 2, 2));
  EXPECT_EQ(*t->find("zzz"), price(9, 9, 9));
}

TEST(BillingPriceTable, MakeMatchesTheParsedTable) {
  PriceTable parsed = table_of("version = 5\n" + section("x", "cached_input = 7\n") + section("y"));
  Result<PriceTable> made = PriceTable::make(5, {{"y", price(1, 1, 2)}, {"x", price(1, 7, 2)}});
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(*made == parsed);
  Result<PriceTable> other = PriceTable::make(6, {{"y", price(1, 1, 2)}, {"x", price(1, 7, 2)}});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(*other != parsed);
}

TEST(BillingPriceTable, MakeChecksTheFileLimits) {
  auto status = [](uint64_t v, std::vector<std::pair<std::string, ModelPrice>> e) {
    Result<PriceTable> t = PriceTable::make(v, std::move(e));
    return t.ok() ? Status() : t.status();
  };
  EXPECT_TRUE(status(1, {}).ok());
  EXPECT_TRUE(status(kMaxPriceVersion, {{"a", price(kMaxPrice, kMaxPrice, kMaxPrice)}}).ok());
  EXPECT_EQ(status(0, {}).message(), "price table: version must be 1..9007199254740991, got 0");
  EXPECT_EQ(status(kMaxPriceVersion + 1, {}).code(), Errc::invalid_argument);
  EXPECT_EQ(status(1, {{"a", price(kMaxPrice + 1, 0, 0)}}).message(),
            "price table: model 'a': input must be 0..1000000000000, got 1000000000001");
  EXPECT_EQ(status(1, {{"a", price(0, -1, 0)}}).message(),
            "price table: model 'a': cached_input must be 0..1000000000000, got -1");
  EXPECT_EQ(status(1, {{"a", price(0, 0, -5)}}).message(),
            "price table: model 'a': output must be 0..1000000000000, got -5");
  EXPECT_EQ(status(1, {{"", price(0, 0, 0)}}).message(), "price table: model '' must be 1..128 bytes long");
  EXPECT_EQ(status(1, {{"a\tb", price(0, 0, 0)}}).message(),
            "price table: model 'a\\x09b' may only hold visible ASCII characters");
  EXPECT_EQ(status(1, {{std::string(129, 'x'), price(0, 0, 0)}}).code(), Errc::invalid_argument);
  EXPECT_EQ(status(1, {{"a", price(0, 0, 0)}, {"b", price(0, 0, 0)}, {"a", price(1, 1, 1)}}).message(),
            "price table: model 'a' appears more than once");

  std::vector<std::pair<std::string, ModelPrice>> many;
  for (size_t i = 0; i < kMaxPricedModels; ++i) many.emplace_back("m" + std::to_string(i), price(0, 0, 0));
  EXPECT_TRUE(status(1, many).ok());
  many.emplace_back("one-more", price(0, 0, 0));
  const Status over = status(1, many);
  EXPECT_EQ(over.code(), Errc::limit);
  EXPECT_EQ(over.message(), "price table: 257 models, more than 256");
}

// ---- cost ----

Micros cost_of(const Usage& u, const ModelPrice& p) {
  Result<Micros> c = cost(u, p);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? *c : -1;
}

TEST(BillingCost, ZeroUsageOrZeroPriceCostsNothing) {
  EXPECT_EQ(cost_of(usage(0, 0, 0), price(kMaxPrice, kMaxPrice, kMaxPrice)), 0);
  EXPECT_EQ(cost_of(usage(kMaxTokens, kMaxTokens, kMaxTokens), price(0, 0, 0)), 0);
}

TEST(BillingCost, EachCountHasItsOwnPrice) {
  // gpt-4o-mini: 1117 prompt tokens of which 1024 cached, 46 output:
  // 93 * 150000 + 1024 * 75000 + 46 * 600000 = 13950000 + 76800000 + 27600000
  // = 118350000 -> 118.35 micro-units, rounds to 118.
  EXPECT_EQ(cost_of(usage(93, 1024, 46), price(150000, 75000, 600000)), 118);
  EXPECT_EQ(cost_of(usage(1000000, 0, 0), price(150000, 75000, 600000)), 150000);
  EXPECT_EQ(cost_of(usage(0, 1000000, 0), price(150000, 75000, 600000)), 75000);
  EXPECT_EQ(cost_of(usage(0, 0, 1000000), price(150000, 75000, 600000)), 600000);
}

TEST(BillingCost, RoundsHalfUp) {
  const ModelPrice one = price(1, 1, 1);  // 1 micro-unit per million tokens
  EXPECT_EQ(cost_of(usage(499999, 0, 0), one), 0);   // 0.499999 -> 0
  EXPECT_EQ(cost_of(usage(500000, 0, 0), one), 1);   // 0.5 -> 1 (a tie goes up)
  EXPECT_EQ(cost_of(usage(500001, 0, 0), one), 1);
  EXPECT_EQ(cost_of(usage(1499999, 0, 0), one), 1);
  EXPECT_EQ(cost_of(usage(1500000, 0, 0), one), 2);  // 1.5 -> 2
  EXPECT_EQ(cost_of(usage(2500000, 0, 0), one), 3);  // 2.5 -> 3, not to even
  EXPECT_EQ(cost_of(usage(1, 0, 0), one), 0);
  // The sum is rounded once, not each part: 3 x 0.4 = 1.2 -> 1.
  EXPECT_EQ(cost_of(usage(400000, 400000, 400000), one), 1);
  // 3 x 0.5 = 1.5 -> 2, where rounding each part would give 3.
  EXPECT_EQ(cost_of(usage(500000, 500000, 500000), one), 2);
}

TEST(BillingCost, LargestUsageAtLargestPriceIsOverTheLimit) {
  Result<Micros> c = cost(usage(kMaxTokens, kMaxTokens, kMaxTokens), price(kMaxPrice, kMaxPrice, kMaxPrice));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::limit);
  EXPECT_EQ(c.status().message(),
            "cost: over the limit 9000000000.000000 (usage 1000000000000 input, 1000000000000 cached, "
            "1000000000000 output tokens)");
  // Counts far beyond kMaxTokens still cannot overflow the 128-bit sum.
  Result<Micros> huge = cost(usage(UINT64_MAX, UINT64_MAX, UINT64_MAX), price(kMaxPrice, kMaxPrice, kMaxPrice));
  EXPECT_EQ(huge.status().code(), Errc::limit);
}

// Sums past 2^64, exactly (32-bit targets have no unsigned __int128: the
// arithmetic is done in 64-bit halves; expected values from Python).
TEST(BillingCost, SumsBeyond64BitsAreExact) {
  EXPECT_EQ(cost_of(usage(8999999999, 0, 0), price(999999999999, 0, 0)), 8999999998991000);
  // 2^64 - 1 + 0.5 unit carries into the high half before the division.
  EXPECT_EQ(cost_of(usage(UINT64_MAX, 0, 0), price(1, 0, 0)), 18446744073710);
  EXPECT_EQ(cost_of(usage(4000000000, 3000000000, 1000000000),
                    price(999999999999, 777777777777, 1000000000000)),
            7333333333327000);
  EXPECT_EQ(credit(kMaxAmount, 999999), 8999991000000000);
  EXPECT_EQ(credit(kMaxAmount, 1000000), kMaxAmount);
}

TEST(BillingCost, LimitEdgeIncludesRounding) {
  // 9e9 output tokens at 10^12 per million = 9e21 / 10^6 = kMaxAmount exactly.
  const ModelPrice p = price(1, 1, kMaxPrice);
  EXPECT_EQ(cost_of(usage(0, 0, 9000000000), p), kMaxAmount);
  EXPECT_EQ(cost_of(usage(499999, 0, 9000000000), p), kMaxAmount);  // + 0.499999 rounds down
  EXPECT_EQ(cost(usage(500000, 0, 9000000000), p).status().code(), Errc::limit);  // + 0.5 rounds up: over
  EXPECT_EQ(cost(usage(0, 0, 9000000001), p).status().code(), Errc::limit);
}

TEST(BillingCost, RejectsPricesOutsideTheRange) {
  EXPECT_EQ(cost(usage(1, 1, 1), price(-1, 0, 0)).status().code(), Errc::invalid_argument);
  EXPECT_EQ(cost(usage(1, 1, 1), price(0, kMaxPrice + 1, 0)).status().message(),
            "cost: price 1000000000001 is outside 0..1000000000000");
  EXPECT_EQ(cost(usage(1, 1, 1), price(0, 0, INT64_MAX)).status().code(), Errc::invalid_argument);
}

TEST(BillingCost, EstimatedFlagDoesNotChangeTheCost) {
  Usage u = usage(10, 20, 30);
  const Micros plain = cost_of(u, price(1000000, 500000, 2000000));
  u.estimated = true;
  EXPECT_EQ(cost_of(u, price(1000000, 500000, 2000000)), plain);
  EXPECT_EQ(plain, 80);
}

// ---- credit ----

TEST(BillingCredit, FloorOfCostTimesTier) {
  EXPECT_EQ(credit(1000, 0), 0);
  EXPECT_EQ(credit(1000, 1000000), 1000);
  EXPECT_EQ(credit(1000, 700000), 700);
  EXPECT_EQ(credit(999, 700000), 699);   // 699.3 -> 699
  EXPECT_EQ(credit(1, 999999), 0);       // 0.999999 -> 0: never rounds up
  EXPECT_EQ(credit(3, 500000), 1);       // 1.5 -> 1
  EXPECT_EQ(credit(0, 1000000), 0);
}

TEST(BillingCredit, NeverAboveCostAndNoOverflow) {
  EXPECT_EQ(credit(kMaxAmount, 1000000), kMaxAmount);
  EXPECT_EQ(credit(kMaxAmount, 999999), kMaxAmount - kMaxAmount / 1000000);
  EXPECT_EQ(credit(INT64_MAX, 1000000), INT64_MAX);
  EXPECT_EQ(credit(INT64_MAX, 1), INT64_MAX / 1000000);
  for (Micros c : {Micros{1}, Micros{7}, Micros{123456789}, kMaxAmount}) {
    for (uint32_t t : {0u, 1u, 333333u, 500000u, 999999u, 1000000u}) {
      const Micros cr = credit(c, t);
      EXPECT_GE(cr, 0);
      EXPECT_LE(cr, c);
    }
  }
}

TEST(BillingCredit, OutOfRangeInputsAreClamped) {
  EXPECT_EQ(credit(1000, 1000001), 1000);
  EXPECT_EQ(credit(1000, UINT32_MAX), 1000);
  EXPECT_EQ(credit(-5, 1000000), 0);
}

}  // namespace
}  // namespace tg::billing
