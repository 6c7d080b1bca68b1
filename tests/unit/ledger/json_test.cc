// The JSON line form: round trips, accepted variations, the 4096-byte limit,
// and every malformation from_json() must refuse with the right code and a
// message naming the field.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "shared/ledger/entry.h"
#include "tests/unit/ledger/examples.h"

namespace tg::ledger {
namespace {

using test::simple;

// Replaces the one occurrence of `from` in `line` by `to`.
std::string replaced(std::string line, const std::string& from, const std::string& to) {
  const size_t at = line.find(from);
  EXPECT_NE(at, std::string::npos) << from << " not in " << line;
  EXPECT_EQ(line.find(from, at + 1), std::string::npos) << from << " twice in " << line;
  if (at != std::string::npos) line.replace(at, from.size(), to);
  return line;
}

void expect_error(const std::string& line, Errc code, const std::string& message) {
  Result<Entry> e = from_json(line);
  ASSERT_FALSE(e.ok()) << "accepted: " << line;
  EXPECT_EQ(e.status().code(), code) << e.status().to_string();
  EXPECT_EQ(e.status().message(), message) << line;
}

// Expects a refusal whose message starts with `prefix`.
void expect_error_prefix(const std::string& line, Errc code, const std::string& prefix) {
  Result<Entry> e = from_json(line);
  ASSERT_FALSE(e.ok()) << "accepted: " << line;
  EXPECT_EQ(e.status().code(), code) << e.status().to_string();
  EXPECT_EQ(e.status().message().substr(0, prefix.size()), prefix) << e.status().message();
}

const std::string& line1() {
  static const std::string line = to_json(test::chain()[0]);
  return line;
}

TEST(LedgerJson, VectorEntriesRoundTrip) {
  for (const Entry& e : test::chain()) {
    const std::string line = to_json(e);
    Result<Entry> back = from_json(line);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_TRUE(*back == e);
    EXPECT_EQ(to_json(*back), line);
  }
}

TEST(LedgerJson, LargestEntryRoundTripsAndFitsTheLimit) {
  Entry e;
  e.agent.fill(0xff);
  e.seq = kMaxSeq;
  e.request_id = std::string(kMaxRequestId, '"');
  e.model = std::string(kMaxModel, '\\');
  e.input = e.cached = e.output = kMaxTokens;
  e.estimated = false;
  e.price_version = kMaxPriceVersion;
  e.cost = kMaxAmount;
  e.tier_ppm = kMaxTierPpm;
  e.credit = kMaxAmount;
  e.time_ms = kMaxTimeMs;
  e.prev.fill(0xfe);
  ASSERT_TRUE(validate(e).ok()) << validate(e).to_string();
  const std::string line = to_json(e);
  EXPECT_EQ(line.size(), 853u);  // the bound LEDGER.md states
  Result<Entry> back = from_json(line);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == e);
}

TEST(LedgerJson, SmallestValuesRoundTrip) {
  Entry e = simple();
  e.request_id = "!";
  e.model = "~";
  e.input = e.cached = e.output = 0;
  e.cost = e.credit = 0;
  e.tier_ppm = 0;
  e.time_ms = 0;
  Result<Entry> back = from_json(to_json(e));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == e);
}

TEST(LedgerJson, EncoderOutputIsCompactAndOrdered) {
  const std::string line = to_json(simple());
  EXPECT_EQ(line.find(' '), std::string::npos);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const char* order[] = {"agent", "seq", "request_id", "model", "input", "cached", "output",
                         "estimated", "price_version", "cost", "tier_ppm", "credit", "time_ms",
                         "prev", "hash"};
  size_t last = 0;
  for (const char* f : order) {
    const size_t at = line.find(std::string("\"") + f + "\":");
    ASSERT_NE(at, std::string::npos) << f;
    EXPECT_GE(at, last) << f;
    last = at;
  }
}

TEST(LedgerJson, AcceptsReorderedFieldsWhitespaceAndTrailingNewline) {
  const Entry want = test::chain()[0];
  const std::string line =
      " {\"hash\":\"6e69c22f30bc42a4873309f77e3f210f5a18da91615a3e12d63093c194b03b02\",\n"
      "  \"seq\" : 1, \"agent\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\",\n"
      "  \"model\":\"gpt-4o-mini\", \"request_id\":\"req-0001\", \"input\":1200,\t\"cached\":200,"
      "  \"output\":350, \"estimated\":false, \"price_version\":3, \"cost\":390,"
      "  \"tier_ppm\":800000, \"credit\":312, \"time_ms\":1717171717000,"
      "  \"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\r\n";
  Result<Entry> e = from_json(line);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_TRUE(*e == want);
}

TEST(LedgerJson, AcceptsEscapesThatDecodeToVisibleAscii) {
  const std::string line = replaced(line1(), "\"req-0001\"", "\"\\u0072eq-0001\"");
  Result<Entry> e = from_json(line);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->request_id, "req-0001");
}

TEST(LedgerJson, SizeLimit) {
  std::string line = line1();
  line.append(kMaxJsonLine - line.size(), ' ');
  EXPECT_TRUE(from_json(line).ok());
  line.push_back(' ');
  expect_error(line, Errc::limit, "entry: line of 4097 bytes, over the limit of 4096");
}

TEST(LedgerJson, SyntaxErrors) {
  expect_error_prefix("", Errc::parse, "entry: invalid JSON");
  expect_error_prefix("not json", Errc::parse, "entry: invalid JSON");
  expect_error_prefix(line1().substr(0, line1().size() - 1), Errc::parse, "entry: invalid JSON");
  expect_error_prefix(line1() + "{}", Errc::parse, "entry: trailing bytes");
  expect_error_prefix(line1() + "\n" + line1(), Errc::parse, "entry: trailing bytes");
  expect_error_prefix(replaced(line1(), "req-0001", "req\t0001"), Errc::parse,
                      "entry: control character in a string");
  expect_error_prefix(replaced(line1(), "req-0001", "req\\u00000001"), Errc::parse,
                      "entry: \\u0000 in a string");
  expect_error_prefix(replaced(line1(), "\"cost\":390", "\"cost\":[[[[390]]]]"), Errc::parse,
                      "entry: nesting deeper than 4");
  expect_error_prefix(std::string(3000, '['), Errc::parse, "entry: nesting deeper than 4");
}

TEST(LedgerJson, NotAnObject) {
  expect_error("[1,2]", Errc::protocol, "entry: must be a JSON object, got an array");
  expect_error("7", Errc::protocol, "entry: must be a JSON object, got 7");
  expect_error("\"x\"", Errc::protocol, "entry: must be a JSON object, got a string");
}

TEST(LedgerJson, UnknownAndDuplicateFields) {
  expect_error(replaced(line1(), "{", "{\"extra\":1,"), Errc::protocol,
               "entry: unknown field \"extra\"");
  expect_error(replaced(line1(), "{", "{\"Seq\":1,"), Errc::protocol,
               "entry: unknown field \"Seq\"");
  expect_error(replaced(line1(), "{", "{\"seq\":1,"), Errc::protocol,
               "entry: duplicate field \"seq\"");
  expect_error(replaced(line1(), "{", "{\"hash\":\"x\","), Errc::protocol,
               "entry: duplicate field \"hash\"");
}

TEST(LedgerJson, EachMissingField) {
  const std::vector<std::pair<std::string, std::string>> members = {
      {"agent", "\"agent\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\","},
      {"seq", "\"seq\":1,"},
      {"request_id", "\"request_id\":\"req-0001\","},
      {"model", "\"model\":\"gpt-4o-mini\","},
      {"input", "\"input\":1200,"},
      {"cached", "\"cached\":200,"},
      {"output", "\"output\":350,"},
      {"estimated", "\"estimated\":false,"},
      {"price_version", "\"price_version\":3,"},
      {"cost", "\"cost\":390,"},
      {"tier_ppm", "\"tier_ppm\":800000,"},
      {"credit", "\"credit\":312,"},
      {"time_ms", "\"time_ms\":1717171717000,"},
      {"prev", "\"prev\":\"" + std::string(64, '0') + "\","},
      {"hash", ",\"hash\":\"6e69c22f30bc42a4873309f77e3f210f5a18da91615a3e12d63093c194b03b02\""},
  };
  for (const auto& [field, text] : members) {
    expect_error(replaced(line1(), text, ""), Errc::protocol, "entry." + field + ": missing");
  }
  expect_error("{}", Errc::protocol, "entry.agent: missing");
}

TEST(LedgerJson, WrongTypes) {
  expect_error(replaced(line1(), "\"seq\":1", "\"seq\":\"1\""), Errc::protocol,
               "entry.seq: must be an integer 1..9007199254740991, got a string");
  expect_error(replaced(line1(), "\"cost\":390", "\"cost\":null"), Errc::protocol,
               "entry.cost: must be an integer 0..9000000000000000, got null");
  expect_error(replaced(line1(), "\"input\":1200", "\"input\":true"), Errc::protocol,
               "entry.input: must be an integer 0..1000000000000, got a boolean");
  expect_error(replaced(line1(), "\"cached\":200", "\"cached\":{}"), Errc::protocol,
               "entry.cached: must be an integer 0..1000000000000, got an object");
  expect_error(replaced(line1(), "\"estimated\":false", "\"estimated\":0"), Errc::protocol,
               "entry.estimated: must be true or false, got 0");
  expect_error(replaced(line1(), "\"estimated\":false", "\"estimated\":\"false\""),
               Errc::protocol, "entry.estimated: must be true or false, got a string");
  expect_error(replaced(line1(), "\"req-0001\"", "1"), Errc::protocol,
               "entry.request_id: must be a string, got 1");
  expect_error(replaced(line1(), "\"gpt-4o-mini\"", "[]"), Errc::protocol,
               "entry.model: must be a string, got an array");
  expect_error(replaced(line1(), "\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\"", "0"),
               Errc::protocol, "entry.agent: must be a base64 string, got 0");
  expect_error(replaced(line1(), "\"prev\":\"" + std::string(64, '0') + "\"", "\"prev\":null"),
               Errc::protocol, "entry.prev: must be a hex string, got null");
}

TEST(LedgerJson, NumbersMustBePlainIntegers) {
  const std::string want = "entry.cost: must be an integer 0..9000000000000000, got ";
  for (const char* text : {"390.0", "390.5", "3.9e2", "39E1", "-390", "-0", "1e400",
                           "39000000000000000", "9007199254740993"}) {
    expect_error(replaced(line1(), "\"cost\":390", std::string("\"cost\":") + text),
                 Errc::protocol, want + text);
  }
  // Not JSON numbers at all (RFC 8259 has no leading zeros either).
  for (const char* text : {"+390", "-", ".5", "0x10", "0390"}) {
    expect_error_prefix(replaced(line1(), "\"cost\":390", std::string("\"cost\":") + text),
                        Errc::parse, "entry: ");
  }
}

TEST(LedgerJson, LongBadNumbersAreShortenedInMessages) {
  const std::string digits(100, '7');
  expect_error(replaced(line1(), "\"cost\":390", "\"cost\":" + digits), Errc::protocol,
               "entry.cost: must be an integer 0..9000000000000000, got " + digits.substr(0, 40) +
                   "...");
}

TEST(LedgerJson, NumbersJustOverTheirRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\"seq\":1", "\"seq\":0|entry.seq: must be an integer 1..9007199254740991, got 0"},
      {"\"seq\":1",
       "\"seq\":9007199254740992|entry.seq: must be an integer 1..9007199254740991, got "
       "9007199254740992"},
      {"\"input\":1200",
       "\"input\":1000000000001|entry.input: must be an integer 0..1000000000000, got "
       "1000000000001"},
      {"\"cached\":200",
       "\"cached\":1000000000001|entry.cached: must be an integer 0..1000000000000, got "
       "1000000000001"},
      {"\"output\":350",
       "\"output\":1000000000001|entry.output: must be an integer 0..1000000000000, got "
       "1000000000001"},
      {"\"price_version\":3",
       "\"price_version\":0|entry.price_version: must be an integer 1..9007199254740991, got 0"},
      {"\"price_version\":3",
       "\"price_version\":9007199254740992|entry.price_version: must be an integer "
       "1..9007199254740991, got 9007199254740992"},
      {"\"cost\":390",
       "\"cost\":9000000000000001|entry.cost: must be an integer 0..9000000000000000, got "
       "9000000000000001"},
      {"\"tier_ppm\":800000",
       "\"tier_ppm\":1000001|entry.tier_ppm: must be an integer 0..1000000, got 1000001"},
      {"\"credit\":312",
       "\"credit\":9000000000000001|entry.credit: must be an integer 0..9000000000000000, got "
       "9000000000000001"},
      {"\"time_ms\":1717171717000",
       "\"time_ms\":9007199254740992|entry.time_ms: must be an integer 0..9007199254740991, got "
       "9007199254740992"},
  };
  for (const auto& [from, spec] : cases) {
    const size_t bar = spec.find('|');
    expect_error(replaced(line1(), from, spec.substr(0, bar)), Errc::protocol,
                 spec.substr(bar + 1));
  }
}

TEST(LedgerJson, NumbersAtTheirLimitsAreAccepted) {
  Entry e = simple();
  e.seq = kMaxSeq;
  e.prev.fill(0x42);
  e.input = e.cached = e.output = kMaxTokens;
  e.price_version = kMaxPriceVersion;
  e.cost = e.credit = kMaxAmount;
  e.tier_ppm = kMaxTierPpm;
  e.time_ms = kMaxTimeMs;
  const std::string line = to_json(e);
  EXPECT_NE(line.find("\"seq\":9007199254740991,"), std::string::npos) << line;
  EXPECT_NE(line.find("\"cost\":9000000000000000,"), std::string::npos) << line;
  Result<Entry> back = from_json(line);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == e);
}

TEST(LedgerJson, BadStrings) {
  expect_error(replaced(line1(), "\"req-0001\"", "\"\""), Errc::protocol,
               "entry.request_id: length must be 1..64, got 0");
  expect_error(replaced(line1(), "\"req-0001\"", "\"" + std::string(65, 'r') + "\""),
               Errc::protocol, "entry.request_id: length must be 1..64, got 65");
  expect_error(replaced(line1(), "\"req-0001\"", "\"req 0001\""), Errc::protocol,
               "entry.request_id: must be visible ASCII (0x21..0x7e), bad byte 0x20 at 3");
  expect_error(replaced(line1(), "\"gpt-4o-mini\"", "\"caf\\u00e9\""), Errc::protocol,
               "entry.model: must be visible ASCII (0x21..0x7e), bad byte 0xc3 at 3");
  expect_error(replaced(line1(), "\"gpt-4o-mini\"", "\"" + std::string(129, 'm') + "\""),
               Errc::protocol, "entry.model: length must be 1..128, got 129");
}

TEST(LedgerJson, BadAgent) {
  const std::string agent = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
  expect_error(replaced(line1(), agent, agent.substr(0, 40)), Errc::protocol,
               "entry.agent: must be the base64 of 32 bytes (44 characters), got 40 characters");
  expect_error_prefix(replaced(line1(), agent, "*" + agent.substr(1)), Errc::protocol,
                      "entry.agent: base64");
  expect_error_prefix(replaced(line1(), agent, agent.substr(0, 42) + "=="), Errc::protocol,
                      "entry.agent: ");
}

TEST(LedgerJson, BadHexFields) {
  const std::string zero(64, '0');
  expect_error(replaced(line1(), zero, zero.substr(1)), Errc::protocol,
               "entry.prev: must be 64 lowercase hex digits, got 63 characters");
  expect_error(replaced(line1(), "6e69c22f30bc42a4873309f77e3f210f", "6E69C22F30BC42A4873309F77E3F210F"),
               Errc::protocol,
               "entry.hash: must be 64 lowercase hex digits, bad character 0x45 at 1");
}

TEST(LedgerJson, CrossFieldRules) {
  // credit over cost; seq 2 with a zero prev; seq 1 with a non-zero prev.
  expect_error(replaced(line1(), "\"credit\":312", "\"credit\":391"), Errc::protocol,
               "entry.credit: must be 0..cost (390), got 391");
  expect_error(replaced(line1(), "\"seq\":1", "\"seq\":2"), Errc::protocol,
               "entry.prev: must be the hash of entry 1, got all zero");
  expect_error_prefix(replaced(line1(), std::string(64, '0'), std::string(63, '0') + "1"),
                      Errc::protocol, "entry.prev: must be all zero for seq 1");
}

TEST(LedgerJson, HashMismatch) {
  expect_error(replaced(line1(), "\"cost\":390", "\"cost\":391"), Errc::protocol,
               "hash mismatch at seq 1: line says "
               "6e69c22f30bc42a4873309f77e3f210f5a18da91615a3e12d63093c194b03b02, the entry "
               "hashes to " +
                   to_hex(hash([] {
                     Entry e = test::chain()[0];
                     e.cost = 391;
                     return e;
                   }())));
  // Any single field changed in the line, hash kept: refused.
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"\"seq\":1,", "\"seq\":1 ,"},  // whitespace only: accepted
      {"\"input\":1200", "\"input\":1201"},
      {"\"cached\":200", "\"cached\":201"},
      {"\"output\":350", "\"output\":351"},
      {"\"estimated\":false", "\"estimated\":true"},
      {"\"price_version\":3", "\"price_version\":4"},
      {"\"tier_ppm\":800000", "\"tier_ppm\":800001"},
      {"\"credit\":312", "\"credit\":311"},
      {"\"time_ms\":1717171717000", "\"time_ms\":1717171717001"},
      {"req-0001", "req-0002"},
      {"gpt-4o-mini", "gpt-4o-maxi"},
      {"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
       "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbA="},
  };
  EXPECT_TRUE(from_json(replaced(line1(), edits[0].first, edits[0].second)).ok());
  for (size_t i = 1; i < edits.size(); ++i) {
    expect_error_prefix(replaced(line1(), edits[i].first, edits[i].second), Errc::protocol,
                        "hash mismatch at seq 1: line says 6e69c22f");
  }
}

}  // namespace
}  // namespace tg::ledger
