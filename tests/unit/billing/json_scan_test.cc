// The incremental JSON scanner: grammar (accepts RFC 8259 JSON, rejects the
// rest with an offset), the nesting limit at its edge, the values it reports
// (depth, offsets, watched keys with escapes decoded), and split-independence.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shared/billing/json_scan.h"

namespace tg::billing {
namespace {

// Records every report as text: "b<depth>:<key>:<kind>@<offset>" / "e<depth>@<end>".
struct Recorder final : JsonScanner::Handler {
  void on_value_begin(int depth, int key, JsonKind kind, uint64_t offset) noexcept override {
    static const char* kKinds[] = {"object", "array", "string", "number", "literal"};
    log.push_back("b" + std::to_string(depth) + ":" + std::to_string(key) + ":" +
                  kKinds[static_cast<int>(kind)] + "@" + std::to_string(offset));
  }
  void on_value_end(int depth, uint64_t end) noexcept override {
    log.push_back("e" + std::to_string(depth) + "@" + std::to_string(end));
  }
  std::vector<std::string> log;
};

struct Scan {
  bool done = false;
  Status status;
  std::vector<std::string> log;
};

Scan scan(const std::string& text, size_t step = 0, int depth = 1,
          std::initializer_list<std::string_view> keys = {"usage", "stream_options"}, bool finish = true) {
  JsonScanner s(keys, depth);
  Recorder r;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = step ? std::min(step, text.size() - pos) : text.size() - pos;
    s.feed(std::string_view(text).substr(pos, n), r);
    pos += n;
  }
  if (finish) s.finish(r);
  return Scan{s.done(), s.status(), r.log};
}

void expect_valid(const std::string& text) {
  const Scan whole = scan(text, 0, 3);
  EXPECT_TRUE(whole.done) << text << ": " << whole.status.to_string();
  EXPECT_TRUE(whole.status.ok()) << text;
  const Scan bytes = scan(text, 1, 3);
  EXPECT_EQ(bytes.log, whole.log) << text;
  EXPECT_TRUE(bytes.done) << text;
}

std::string invalid(const std::string& text) {
  const Scan whole = scan(text);
  EXPECT_FALSE(whole.done) << text;
  EXPECT_FALSE(whole.status.ok()) << text;
  const Scan bytes = scan(text, 1);
  EXPECT_EQ(bytes.status.message(), whole.status.message()) << text;
  return whole.status.message();
}

TEST(BillingJsonScan, AcceptsJson) {
  for (const char* t :
       {"{}", "[]", " { } ", "0", "-0", "12", "-12.5e+3", "1E-2", "0.5", "1e5", "\"\"", "\"a\\\"\\\\\\/\\b\\f\\n\\r\\tz\"",
        "\"\\u00e9\\uD83D\\uDE00\"", "true", "false", "null", "[1,\"a\",{\"b\":[true,null]},[]]",
        "{\"a\":{\"b\":{\"c\":[1,2,{\"d\":\"e\"}]}},\"f\":-0.0}", "\t\r\n[ 1 , 2 ]\n", "\"caf\xc3\xa9\""}) {
    expect_valid(t);
  }
}

TEST(BillingJsonScan, RejectsWhatIsNotJson) {
  EXPECT_EQ(invalid("{\"a\" 1}"), "invalid JSON at offset 5: expected ':' after a member name, got '1'");
  EXPECT_EQ(invalid("[1,]"), "invalid JSON at offset 3: expected a value, got ']'");
  EXPECT_EQ(invalid("{\"a\":1,}"), "invalid JSON at offset 7: expected a member name, got '}'");
  EXPECT_EQ(invalid("{1:2}"), "invalid JSON at offset 1: expected a member name or '}', got '1'");
  EXPECT_EQ(invalid("[1}"), "invalid JSON at offset 2: expected ']', got '}'");
  EXPECT_EQ(invalid("{\"a\":1]"), "invalid JSON at offset 6: expected '}', got ']'");
  EXPECT_EQ(invalid("[1 2]"), "invalid JSON at offset 3: expected ',' or a closing bracket, got '2'");
  EXPECT_EQ(invalid("01"), "invalid JSON at offset 1: number with a leading zero");
  EXPECT_EQ(invalid("-"), "invalid JSON at offset 1: truncated");
  EXPECT_EQ(invalid("-a"), "invalid JSON at offset 1: expected a digit after '-', got 'a'");
  EXPECT_EQ(invalid("1."), "invalid JSON at offset 2: truncated");
  EXPECT_EQ(invalid("[1.]"), "invalid JSON at offset 3: expected a digit after '.', got ']'");
  EXPECT_EQ(invalid("[1e]"), "invalid JSON at offset 3: expected a digit in the exponent, got ']'");
  EXPECT_EQ(invalid("[1e+]"), "invalid JSON at offset 4: expected a digit in the exponent, got ']'");
  EXPECT_EQ(invalid("[.5]"), "invalid JSON at offset 1: expected a value, got '.'");
  EXPECT_EQ(invalid("[+1]"), "invalid JSON at offset 1: expected a value, got '+'");
  EXPECT_EQ(invalid("tru"), "invalid JSON at offset 3: truncated");
  EXPECT_EQ(invalid("[trUe]"), "invalid JSON at offset 3: expected 'true', got 'U'");
  EXPECT_EQ(invalid("nul"), "invalid JSON at offset 3: truncated");
  EXPECT_EQ(invalid("\"a\nb\""), "invalid JSON at offset 2: control character 0x0a in a string");
  EXPECT_EQ(invalid("\"\\x\""), "invalid JSON at offset 2: bad escape 'x' after '\\' in a string");
  EXPECT_EQ(invalid("\"\\u12g4\""), "invalid JSON at offset 5: expected a hex digit in \\u escape, got 'g'");
  EXPECT_EQ(invalid("{} {}"), "invalid JSON at offset 3: bytes after the JSON value: '{'");
  EXPECT_EQ(invalid("{}x"), "invalid JSON at offset 2: bytes after the JSON value: 'x'");
  EXPECT_EQ(invalid(""), "invalid JSON at offset 0: truncated");
  EXPECT_EQ(invalid("  "), "invalid JSON at offset 2: truncated");
  EXPECT_EQ(invalid("{\"a\":"), "invalid JSON at offset 5: truncated");
  EXPECT_EQ(invalid("[1"), "invalid JSON at offset 2: truncated");
  EXPECT_EQ(invalid("\xef\xbb\xbf{}"), "invalid JSON at offset 0: expected a value, got 0xef");
  EXPECT_EQ(invalid("'a'"), "invalid JSON at offset 0: expected a value, got '''");
  EXPECT_EQ(invalid("NaN"), "invalid JSON at offset 0: expected a value, got 'N'");
}

TEST(BillingJsonScan, ErrorStopsTheScan) {
  JsonScanner s({}, 0);
  Recorder r;
  s.feed("[1,,2]", r);
  EXPECT_TRUE(s.failed());
  EXPECT_EQ(s.offset(), 4u);  // the failing byte was read
  s.feed("[]", r);
  s.finish(r);
  EXPECT_EQ(s.status().message(), "invalid JSON at offset 3: expected a value, got ','");
  EXPECT_EQ(s.status().code(), Errc::parse);
}

TEST(BillingJsonScan, NestingLimitEdge) {
  const std::string at = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(scan(at).done);
  const std::string over = std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  const Scan s = scan(over);
  EXPECT_FALSE(s.done);
  EXPECT_EQ(s.status.code(), Errc::limit);
  EXPECT_EQ(s.status.message(), "invalid JSON at offset 256: nesting deeper than 256");
  // Objects count the same.
  std::string objs;
  for (int i = 0; i < kMaxJsonDepth; ++i) objs += "{\"a\":";
  EXPECT_EQ(scan(objs + "{}" + std::string(kMaxJsonDepth, '}')).status.code(), Errc::limit);
  EXPECT_TRUE(scan(objs + "1" + std::string(kMaxJsonDepth, '}')).done);
}

TEST(BillingJsonScan, ReportsValuesUpToTheReportDepth) {
  //                 0123456789012345678901234567890
  const std::string t = R"({"usage":{"a":1},"x":[2,"s"],"n":null})";
  EXPECT_EQ(scan(t).log, (std::vector<std::string>{"b0:-1:object@0", "b1:0:object@9", "e1@16", "b1:-1:array@21",
                                                    "e1@28", "b1:-1:literal@33", "e1@37", "e0@38"}));
  EXPECT_EQ(scan(t, 0, 2).log,
            (std::vector<std::string>{"b0:-1:object@0", "b1:0:object@9", "b2:-1:number@14", "e2@15", "e1@16",
                                      "b1:-1:array@21", "b2:-1:number@22", "e2@23", "b2:-1:string@24", "e2@27",
                                      "e1@28", "b1:-1:literal@33", "e1@37", "e0@38"}));
  EXPECT_EQ(scan(t, 0, 0).log, (std::vector<std::string>{"b0:-1:object@0", "e0@38"}));
}

TEST(BillingJsonScan, NumberEndsAtTheNextByteOrAtFinish) {
  EXPECT_EQ(scan(R"({"usage":12 })").log,
            (std::vector<std::string>{"b0:-1:object@0", "b1:0:number@9", "e1@11", "e0@13"}));
  const Scan top = scan("-1.5e3", 0, 0);
  EXPECT_TRUE(top.done);
  EXPECT_EQ(top.log, (std::vector<std::string>{"b0:-1:number@0", "e0@6"}));
  const Scan unfinished = scan("-1.5e3", 0, 0, {}, false);
  EXPECT_FALSE(unfinished.done);
  EXPECT_EQ(unfinished.log, (std::vector<std::string>{"b0:-1:number@0"}));
}

TEST(BillingJsonScan, WatchedKeysMatchExactlyWithEscapesDecoded) {
  auto key_of = [](const std::string& name) {
    const Scan s = scan("{\"" + name + "\":0}");
    EXPECT_TRUE(s.done) << name;
    return s.log.size() > 1 ? s.log[1].substr(0, s.log[1].find(":", 3)) : "";
  };
  EXPECT_EQ(key_of("usage"), "b1:0");
  EXPECT_EQ(key_of("stream_options"), "b1:1");
  EXPECT_EQ(key_of("\\u0075sage"), "b1:0");
  EXPECT_EQ(key_of("us\\u0061ge"), "b1:0");
  EXPECT_EQ(key_of("stream\\u005Foptions"), "b1:1");
  EXPECT_EQ(key_of("usag"), "b1:-1");
  EXPECT_EQ(key_of("usages"), "b1:-1");
  EXPECT_EQ(key_of("Usage"), "b1:-1");
  EXPECT_EQ(key_of(""), "b1:-1");
  EXPECT_EQ(key_of("usage\\u0000"), "b1:-1");
  EXPECT_EQ(key_of("usag\\u00e9"), "b1:-1");
  EXPECT_EQ(key_of("us\\nage"), "b1:-1");
}

TEST(BillingJsonScan, ArrayElementsAndTopLevelHaveNoKey) {
  EXPECT_EQ(scan(R"(["usage",{"usage":1}])", 0, 2).log,
            (std::vector<std::string>{"b0:-1:array@0", "b1:-1:string@1", "e1@8", "b1:-1:object@9",
                                      "b2:0:number@18", "e2@19", "e1@20", "e0@21"}));
}

TEST(BillingJsonScan, StringValuesEqualToAKeyAreNotKeys) {
  EXPECT_EQ(scan(R"({"a":"usage","usage":"usage"})").log,
            (std::vector<std::string>{"b0:-1:object@0", "b1:-1:string@5", "e1@12", "b1:0:string@21", "e1@28",
                                      "e0@29"}));
}

TEST(BillingJsonScan, SplitsDoNotChangeTheReports) {
  const std::string t =
      " {\"usage\" : {\"prompt_tokens\": 12, \"x\": [1.5e-3, -0, true, false, null]}, "
      "\"s\\u0074ream_options\": {\"k\": \"\\\"\\u00e9\"}, \"z\": 123456789}\n";
  const Scan whole = scan(t, 0, 3);
  EXPECT_TRUE(whole.done);
  for (size_t step = 1; step < 12; ++step) {
    const Scan s = scan(t, step, 3);
    EXPECT_EQ(s.log, whole.log) << step;
    EXPECT_TRUE(s.done);
  }
}

}  // namespace
}  // namespace tg::billing
