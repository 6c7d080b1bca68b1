// The cJSON reference reader (tests/support/cjson_reference.h): its guards.
#include "tests/support/cjson_reference.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/json/test_rules.h"

namespace tg::test {
using json::Literal;
using json::Rules;
namespace {

using json::testing::rules;

TEST(CjsonReference, ParsesOneValueWithWhitespaceAround) {
  auto j = cjson_parse(" \t{\"a\":[1,2,{\"b\":\"c\"}]}\r\n", rules());
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_TRUE(cJSON_IsObject(j->get()));
}

TEST(CjsonReference, RefusesWhatCjsonWouldAcceptOrMisread) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"[[[[[1]]]]]", "thing: nesting deeper than 4 at offset 4"},
      {"{\"a\":\"x\\u0000y\"}", "thing: \\u0000 in a string at offset 7"},
      {"{\"a\":\"x\\u20\\\"y\"}", "thing: \\u without four hex digits in a string at offset 7"},
      {"{\"a\":\"x\\u12", "thing: \\u without four hex digits in a string at offset 7"},
      {std::string("{\"a\":\"x\ty\"}"), "thing: control character in a string at offset 7"},
      {"{\"a\":1} {}", "thing: trailing bytes after the JSON value at offset 7"},
      {"{\"a\":}", "thing: invalid JSON at offset 5"},
      {"", "thing: invalid JSON at offset 0"},
  };
  for (const Case& c : cases) {
    auto j = cjson_parse(c.text, rules());
    ASSERT_FALSE(j.ok()) << c.text;
    EXPECT_EQ(j.status().code(), Errc::parse);
    EXPECT_EQ(j.status().message(), c.message);
  }
  // Brackets and escapes inside strings are text, not structure.
  EXPECT_TRUE(cjson_parse("{\"a\":\"[[[[[[\\\"\\\\\"}", rules()).ok());
}

TEST(CjsonReference, HandsOverNumbersAsWrittenInOrder) {
  std::vector<std::string> numbers;
  Rules r = rules();
  r.on_number = [&](const Literal& n) {
    numbers.push_back(std::string(n.text) + "@" + std::to_string(n.offset));
    return Status();
  };
  auto j = cjson_parse("{\"a\": 1.50, \"b\":\"7\", \"c\":[2,-3e4], \"d\":{\"e\":5}, \"f\":true}", r);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ(numbers, (std::vector<std::string>{"1.50@6", "2@26", "-3e4@28", "5@44"}));
  // A number check that refuses stops the parse with its error.
  r.on_number = [](const Literal& n) {
    return n.text == "2" ? error(Errc::parse, "no twos") : Status();
  };
  auto refused = cjson_parse("[1,2,3]", r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "no twos");
}

}  // namespace
}  // namespace tg::test
