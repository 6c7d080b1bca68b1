#include "shared/json/doc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "shared/json/json.h"
#include "tests/support/cjson_reference.h"
#include "tests/unit/json/test_rules.h"

namespace tg::json {
namespace {

using json::testing::rules;

// The member `name` of `v`; a null value (and a test failure) when absent.
const Value& at(const Value& v, const char* name) {
  static const Value kMissing;
  const Value* m = v.member(name);
  EXPECT_NE(m, nullptr) << name;
  return m != nullptr ? *m : kMissing;
}

// The element or member `i` of `v`; a null value (and a failure) when absent.
const Value& nth(const Value& v, size_t i) {
  static const Value kMissing;
  const Value* c = v.child();
  for (size_t k = 0; c != nullptr && k < i; ++k) c = c->next();
  EXPECT_NE(c, nullptr) << i;
  return c != nullptr ? *c : kMissing;
}

// The names of a container's children, or their texts for an array.
std::vector<std::string> children(const Value& v) {
  std::vector<std::string> out;
  for (const Value* c = v.child(); c != nullptr; c = c->next()) {
    out.emplace_back(v.is_object() ? c->key : c->text);
  }
  return out;
}

TEST(JsonDoc, ReadsValuesInDocumentOrderWithLinks) {
  Doc d;
  const std::string text =
      " \t{\"a\":[1,\"two\",{\"b\":null}],\"c\":true,\"d\":false,\"e\":{},\"f\":[],\"g\":-0.5e+3}\r\n";
  ASSERT_TRUE(d.parse(text, rules()).ok());
  const Value& root = d.root();
  ASSERT_TRUE(root.is_object());
  EXPECT_EQ(root.count, 6u);
  EXPECT_EQ(children(root), (std::vector<std::string>{"a", "c", "d", "e", "f", "g"}));
  const Value& a = at(root, "a");
  ASSERT_TRUE(a.is_array());
  EXPECT_EQ(a.count, 3u);
  EXPECT_EQ(a.span, 5u);  // itself, 1, "two", the object and its member
  const Value& one = nth(a, 0);
  ASSERT_TRUE(one.is_number());
  EXPECT_EQ(one.text, "1");
  EXPECT_EQ(one.number(), 1.0);
  const Value& two = nth(a, 1);
  ASSERT_TRUE(two.is_string());
  EXPECT_EQ(two.text, "two");
  const Value& obj = nth(a, 2);
  ASSERT_TRUE(obj.is_object());
  EXPECT_EQ(obj.next(), nullptr);
  EXPECT_TRUE(at(obj, "b").is_null());
  EXPECT_EQ(obj.member("a"), nullptr);
  EXPECT_TRUE(at(root, "c").is_bool() && at(root, "c").truth);
  EXPECT_TRUE(at(root, "d").is_bool() && !at(root, "d").truth);
  EXPECT_TRUE(at(root, "e").is_object());
  EXPECT_EQ(at(root, "e").child(), nullptr);
  EXPECT_TRUE(at(root, "f").is_array());
  EXPECT_EQ(at(root, "f").count, 0u);
  EXPECT_EQ(at(root, "g").text, "-0.5e+3");
  EXPECT_EQ(at(root, "g").number(), -500.0);
  EXPECT_EQ(root.member("zz"), nullptr);
  EXPECT_EQ(at(root, "g").next(), nullptr);
}

TEST(JsonDoc, DecodesEscapesAndKeepsPlainStringsAsViews) {
  Doc d;
  const std::string text =
      R"({"plain":"abc","esc":"q\"b\\s\/n\nt\tr\rb\bf\f","u":"\u00e9\u20ac\ud83d\ude00","k\u0041y":1})";
  ASSERT_TRUE(d.parse(text, rules()).ok());
  const Value& root = d.root();
  const Value& plain = at(root, "plain");
  EXPECT_EQ(plain.text, "abc");
  EXPECT_TRUE(plain.text.data() >= text.data() && plain.text.data() < text.data() + text.size());
  EXPECT_EQ(at(root, "esc").text, "q\"b\\s/n\nt\tr\rb\bf\f");
  EXPECT_EQ(at(root, "u").text, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(at(root, "kAy").text, "1");  // member names are decoded too
}

TEST(JsonDoc, ManyEscapedStringsStayValid) {
  // Every decoded string lives in one buffer: it must not move while filling.
  std::string text = "[";
  for (int i = 0; i < 200; ++i) {
    text += std::string(i ? "," : "") + "\"\\u0041" + std::to_string(i) + "\"";
  }
  text += "]";
  Doc d;
  ASSERT_TRUE(d.parse(text, rules()).ok());
  int i = 0;
  for (const Value* c = d.root().child(); c != nullptr; c = c->next(), ++i) {
    EXPECT_EQ(c->text, "A" + std::to_string(i));
  }
  EXPECT_EQ(i, 200);
}

TEST(JsonDoc, RefusesWhatTheGuardedParserRefusesWithTheSameTexts) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[[[[[1]]]]]", "thing: nesting deeper than 4 at offset 4"},
      {"{\"a\":\"x\\u0000y\"}", "thing: \\u0000 in a string at offset 7"},
      {std::string("{\"a\":\"x\ty\"}"), "thing: control character in a string at offset 7"},
      {"{\"a\":1} {}", "thing: trailing bytes after the JSON value at offset 7"},
  };
  for (const auto& [text, message] : cases) {
    Doc d;
    Status s = d.parse(text, rules());
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.code(), Errc::parse);
    EXPECT_EQ(s.message(), message);
    EXPECT_TRUE(d.empty());
    // The cJSON reference says the same.
    EXPECT_EQ(test::cjson_parse(text, rules()).status().message(), message);
  }
}

TEST(JsonDoc, RefusesWhatRfc8259Forbids) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "invalid JSON at offset 0: expected a value, got the end"},
      {"{\"a\":}", "invalid JSON at offset 5: expected a value"},
      {"[01]", "invalid JSON at offset 2: number with a leading zero"},
      {"[1.]", "invalid JSON at offset 3: expected a digit after '.'"},
      {"[.5]", "invalid JSON at offset 1: expected a value"},
      {"[+1]", "invalid JSON at offset 1: expected a value"},
      {"[-]", "invalid JSON at offset 2: expected a digit"},
      {"[1e]", "invalid JSON at offset 3: expected a digit in the exponent"},
      {"[1,]", "invalid JSON at offset 3: expected a value"},
      {"{\"a\":1,}", "invalid JSON at offset 7: expected a member name"},
      {"{\"a\" 1}", "invalid JSON at offset 5: expected ':' after a member name"},
      {"{1:2}", "invalid JSON at offset 1: expected a member name"},
      {"[1 2]", "invalid JSON at offset 3: expected ',' or ']'"},
      {"{\"a\":1 \"b\":2}", "invalid JSON at offset 7: expected ',' or '}'"},
      {"[tru]", "invalid JSON at offset 1: expected a value"},
      {"\"abc", "invalid JSON at offset 4: unterminated string"},
      {"\"a\\", "invalid JSON at offset 2: unterminated string"},
      {"\"a\\x\"", "invalid JSON at offset 2: bad escape in a string"},
      {"\"\\u12\"", "invalid JSON at offset 1: truncated \\u escape"},
      {"\"\\u12G4\"", "invalid JSON at offset 1: expected four hex digits after \\u"},
      {"\"\\udc00\"", "invalid JSON at offset 7: UTF-16 low surrogate without a high one"},
      {"\"\\ud800x\"", "invalid JSON at offset 7: UTF-16 high surrogate without a low one"},
      {"\"\\ud800\\u0041\"", "invalid JSON at offset 13: UTF-16 high surrogate without a low one"},
      {"[1]]", "trailing bytes after the JSON value at offset 3"},
      {"/*c*/1", "invalid JSON at offset 0: expected a value"},
  };
  for (const auto& [text, message] : cases) {
    Doc d;
    Status s = d.parse(text, rules());
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.code(), Errc::parse) << text;
    EXPECT_EQ(s.message(), "thing: " + message) << text;
  }
}

// The number check sees what the cJSON reference's sees, in the same order
// (cjson_reference_test pins those), and a refusing one stops the parse with
// its error.
TEST(JsonDoc, CallsTheNumberCheckAsTheReferenceDoes) {
  auto record = [](std::vector<std::string>* log) {
    Rules r = rules();
    r.on_number = [log](const Literal& n) {
      log->push_back(std::string(n.text) + "@" + std::to_string(n.offset));
      return n.text == "13" ? error(Errc::parse, "no thirteens") : Status();
    };
    return r;
  };
  for (const char* text : {"{\"a\": 1.50, \"b\":\"7\", \"c\":[2,-3e4], \"d\":{\"e\":5}, \"f\":true}",
                           "[1,{\"x\":2}, 13, 4]", "{\"n\":13,\"m\":1}", "7"}) {
    std::vector<std::string> mine, theirs;
    Doc d;
    const Status s = d.parse(text, record(&mine));
    const auto j = test::cjson_parse(text, record(&theirs));
    EXPECT_EQ(mine, theirs) << text;
    EXPECT_EQ(s.ok(), j.ok()) << text;
    if (!s.ok()) {
      EXPECT_EQ(s.message(), "no thirteens");
      EXPECT_TRUE(d.empty());
    }
  }
}

TEST(JsonDoc, NumbersReadAsDoubles) {
  Doc d;
  ASSERT_TRUE(d.parse("[0,123456789012345,9007199254740993,1e400,-2.5,1E2]", rules()).ok());
  std::vector<double> got;
  for (const Value* c = d.root().child(); c != nullptr; c = c->next()) got.push_back(c->number());
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0], 0.0);
  EXPECT_EQ(got[1], 123456789012345.0);
  EXPECT_EQ(got[2], 9007199254740992.0);  // the nearest double, as strtod reads it
  EXPECT_TRUE(std::isinf(got[3]));
  EXPECT_EQ(got[4], -2.5);
  EXPECT_EQ(got[5], 100.0);
}

TEST(JsonDoc, NestingLimitIsCappedForItsOwnStack) {
  Rules r = rules(100000);
  const std::string deep(300, '[');
  Doc d;
  Status s = d.parse(deep, r);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "thing: nesting deeper than 256 at offset 256");
}

TEST(JsonDoc, GrowsPastWhatItReservedUpFront) {
  // 5,001 values, ten times what parse() reserves: the array moves while
  // filling, and every link is still right afterwards.
  std::string text = "[";
  for (int i = 0; i < 5000; ++i) {
    const std::string n = std::to_string(i);
    text += std::string(i ? "," : "") + (i % 2 ? "[" + n + "]" : n);
  }
  text += "]";
  Doc d;
  ASSERT_TRUE(d.parse(text, rules()).ok());
  EXPECT_EQ(d.root().count, 5000u);
  EXPECT_EQ(d.root().span, 7501u);
  int i = 0;
  for (const Value* c = d.root().child(); c != nullptr; c = c->next(), ++i) {
    const Value* n = c->is_array() ? c->child() : c;
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->text, std::to_string(i));
  }
  EXPECT_EQ(i, 5000);
}

TEST(JsonDoc, ReusedDocForgetsThePreviousText) {
  Doc d;
  ASSERT_TRUE(d.parse("{\"a\":\"\\u0041\"}", rules()).ok());
  ASSERT_TRUE(d.parse("[true]", rules()).ok());
  ASSERT_TRUE(d.root().is_array());
  EXPECT_EQ(d.root().count, 1u);
  EXPECT_TRUE(nth(d.root(), 0).truth);
}

TEST(JsonDoc, TrimFreesOnlyWhatIsOverTheBound) {
  Doc d;
  ASSERT_TRUE(d.parse("[1,2,3]", rules()).ok());
  const size_t small = d.capacity_bytes();
  EXPECT_GT(small, 0u);
  d.trim(small);  // at the bound: kept, values still readable
  EXPECT_EQ(d.capacity_bytes(), small);
  EXPECT_EQ(nth(d.root(), 2).text, "3");

  std::string big = "[\"\\u0041\"";
  for (int i = 0; i < 3000; ++i) big += ",\"\\u0042\"";
  big += "]";
  ASSERT_TRUE(d.parse(big, rules()).ok());
  EXPECT_EQ(nth(d.root(), 3000).text, "B");
  EXPECT_GT(d.capacity_bytes(), 3000 * sizeof(Value));
  d.trim(small);
  // Values and decoded strings given back (an empty std::string keeps its
  // in-place buffer: 15 bytes).
  EXPECT_LT(d.capacity_bytes(), sizeof(Value));
  ASSERT_TRUE(d.parse("{\"k\":\"v\"}", rules()).ok());  // and usable again
  EXPECT_EQ(d.root().member("k")->text, "v");
}

TEST(JsonDoc, ScratchDocIsReusedLentOnceAtATimeAndTrimmed) {
  Doc* first = nullptr;
  {
    ScratchDoc a(1 << 20);
    first = a.get();
    ASSERT_TRUE(a->parse("[1,2,3]", rules()).ok());
    {
      ScratchDoc nested(1 << 20);  // lent already: a Doc of its own
      EXPECT_NE(nested.get(), first);
      ASSERT_TRUE(nested->parse("[4]", rules()).ok());
    }
    EXPECT_EQ(nth(a->root(), 2).text, "3");  // the outer reading is intact
  }
  size_t kept = 0;
  {
    ScratchDoc again(1 << 20);
    EXPECT_EQ(again.get(), first);  // the thread's Doc, lent again
    kept = again->capacity_bytes();
    EXPECT_GT(kept, 0u);  // what the first use reserved is still there
  }
  {
    ScratchDoc small(0);  // trims to nothing when it is given back
    EXPECT_EQ(small.get(), first);
  }
  ScratchDoc last(0);
  EXPECT_LT(last->capacity_bytes(), sizeof(Value));
  std::thread other([first] {
    ScratchDoc theirs(0);
    EXPECT_NE(theirs.get(), first);  // one per thread
  });
  other.join();
}

}  // namespace
}  // namespace tg::json
