#include "shared/json/writer.h"

#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include <cstdint>
#include <limits>
#include <string>

#include "shared/json/doc.h"
#include "shared/json/json.h"

namespace tg::json {
namespace {

// What cJSON prints for the string `s` (up to its first NUL, as cJSON reads it).
std::string cjson_printed(const std::string& s) {
  cJSON* j = cJSON_CreateString(s.c_str());
  char* text = cJSON_PrintUnformatted(j);
  std::string out(text);
  cJSON_free(text);
  cJSON_Delete(j);
  return out;
}

std::string written(std::string_view s) {
  std::string out;
  append_string(out, s);
  return out;
}

TEST(JsonWriter, EscapesStringsExactlyAsCjsonPrintsThem) {
  for (int c = 1; c < 256; ++c) {
    const std::string s = "a" + std::string(1, static_cast<char>(c)) + "b";
    EXPECT_EQ(written(s), cjson_printed(s)) << "byte " << c;
  }
  const std::string mixed = "tab\there \"quoted\" back\\slash \x01\x1f\x7f caf\xc3\xa9 /end";
  EXPECT_EQ(written(mixed), cjson_printed(mixed));
  EXPECT_EQ(written(""), "\"\"");
}

TEST(JsonWriter, WritesWhatTheReaderReadsBack) {
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  std::string text;
  Writer w(text);
  w.begin_object().key("s").string(all).end_object();
  Doc d;
  Status parsed = d.parse(text, Rules());
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  const Value* s = d.root().member("s");
  ASSERT_TRUE(s != nullptr && s->is_string());
  EXPECT_EQ(std::string(s->text), all);
  // A NUL is written escaped; the reader refuses it unless Rules::allow_nul.
  EXPECT_EQ(written(std::string_view("a\0b", 3)), "\"a\\u0000b\"");
  Rules nul;
  nul.allow_nul = true;
  ASSERT_TRUE(d.parse("\"a\\u0000b\"", nul).ok());
  EXPECT_EQ(d.root().text, std::string_view("a\0b", 3));
}

TEST(JsonWriter, NestsObjectsAndArraysWithCommasInTheRightPlaces) {
  std::string text;
  Writer w(text);
  w.begin_object();
  w.key("type").string("prices");
  w.key("version").number(uint64_t{7});
  w.key("models").begin_array();
  w.begin_array().string("*").number(int64_t{3}).number(int64_t{-1}).end_array();
  w.begin_array().string("m").number(int64_t{0}).number(int64_t{0}).end_array();
  w.end_array();
  w.key("empty").begin_array().end_array();
  w.key("obj").begin_object().end_object();
  w.key("ok").boolean(true);
  w.key("no").boolean(false);
  w.end_object();
  EXPECT_EQ(text,
            R"({"type":"prices","version":7,"models":[["*",3,-1],["m",0,0]],"empty":[],"obj":{},)"
            R"("ok":true,"no":false})");
}

TEST(JsonWriter, IntegersAreWrittenInFullAsPlainDigits) {
  std::string text;
  Writer w(text);
  w.begin_array()
      .number(std::numeric_limits<uint64_t>::max())
      .number(std::numeric_limits<int64_t>::min())
      .number(uint64_t{1000000000000000})
      .number(uint64_t{9007199254740993})
      .end_array();
  EXPECT_EQ(text, "[18446744073709551615,-9223372036854775808,1000000000000000,9007199254740993]");
}

}  // namespace
}  // namespace tg::json
