#include "shared/json/json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tg::json {
namespace {

Rules rules(int depth = 4) {
  Rules r;
  r.what = "thing";
  r.max_depth = depth;
  return r;
}

TEST(Json, ParsesOneValueWithWhitespaceAround) {
  auto j = parse(" \t{\"a\":[1,2,{\"b\":\"c\"}]}\r\n", rules());
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_TRUE(cJSON_IsObject(j->get()));
}

TEST(Json, RefusesWhatCjsonWouldAcceptOrMisread) {
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
    auto j = parse(c.text, rules());
    ASSERT_FALSE(j.ok()) << c.text;
    EXPECT_EQ(j.status().code(), Errc::parse);
    EXPECT_EQ(j.status().message(), c.message);
  }
  // Brackets and escapes inside strings are text, not structure.
  EXPECT_TRUE(parse("{\"a\":\"[[[[[[\\\"\\\\\"}", rules()).ok());
}

TEST(Json, HandsOverNumbersAsWrittenAndTopLevelMemberValuesInOrder) {
  std::vector<std::string> numbers;
  std::vector<std::string> members;
  Rules r = rules();
  r.on_number = [&](const Literal& n) {
    numbers.push_back(std::string(n.text) + "@" + std::to_string(n.offset));
    return Status();
  };
  r.on_member_value = [&](std::string_view v) { members.emplace_back(v); };
  auto j = parse("{\"a\": 1.50, \"b\":\"7\", \"c\":[2,-3e4], \"d\":{\"e\":5}, \"f\":true}", r);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ(numbers, (std::vector<std::string>{"1.50@6", "2@26", "-3e4@28", "5@44"}));
  EXPECT_EQ(members, (std::vector<std::string>{"1.50", "", "", "", ""}));
  // A number check that refuses stops the parse with its error.
  r.on_number = [](const Literal& n) {
    return n.text == "2" ? error(Errc::parse, "no twos") : Status();
  };
  auto refused = parse("[1,2,3]", r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "no twos");
}

TEST(Json, PlainIntegers) {
  EXPECT_TRUE(is_plain_integer("0", 16));
  EXPECT_TRUE(is_plain_integer("9007199254740991", 16));
  EXPECT_FALSE(is_plain_integer("90071992547409910", 16));
  for (const char* bad : {"", "01", "-1", "+1", "1.0", "1e3", "1 ", "0x1"}) {
    EXPECT_FALSE(is_plain_integer(bad, 16)) << bad;
  }
}

}  // namespace
}  // namespace tg::json
