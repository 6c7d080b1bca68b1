// stream_options.include_usage injection (byte-exact edits, every shape of
// the request, every error) and the usage-only chunk filter (what it drops,
// what it keeps byte for byte, holding, the size limit, splits).
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include <random>
#include <string>

#include "shared/billing/include_usage.h"
#include "tests/unit/billing/fixtures.h"

namespace tg::billing {
namespace {

std::string inject(const std::string& body, bool want_injected = true) {
  bool injected = !want_injected;
  Result<std::string> r = inject_include_usage(body, &injected);
  EXPECT_TRUE(r.ok()) << body << ": " << r.status().to_string();
  EXPECT_EQ(injected, want_injected) << body;
  if (!r.ok()) return "";
  // Whatever the edit, cJSON reads include_usage as true.
  cJSON* j = cJSON_ParseWithLength(r->data(), r->size());
  EXPECT_NE(j, nullptr) << *r;
  const cJSON* so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
  EXPECT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"))) << *r;
  cJSON_Delete(j);
  return *r;
}

Status inject_error(const std::string& body) {
  bool injected = true;
  Result<std::string> r = inject_include_usage(body, &injected);
  EXPECT_FALSE(r.ok()) << body;
  EXPECT_FALSE(injected);
  return r.ok() ? Status() : r.status();
}

// ---- inject_include_usage ----

TEST(BillingInjectUsage, AddsStreamOptionsAtTheEnd) {
  EXPECT_EQ(inject(R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})"),
            R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],)"
            R"("stream_options":{"include_usage":true}})");
  EXPECT_EQ(inject("{}"), R"({"stream_options":{"include_usage":true}})");
  EXPECT_EQ(inject(" { \n } \n"), " { \n \"stream_options\":{\"include_usage\":true}} \n");
}

TEST(BillingInjectUsage, KeepsEveryOtherByte) {
  const std::string body =
      "{\n  \"model\" : \"gpt-4o\",\n  \"temperature\": 1.50, \"top_p\": 1E0, \"n\": -0,\n"
      "  \"messages\": [{\"role\": \"user\", \"content\": \"caf\\u00e9 \\ud83d\\ude00 \xc3\xa9 \\\"q\\\"\"}],\n"
      "  \"stream\": true\n}";
  const std::string out = inject(body);
  EXPECT_EQ(out, body.substr(0, body.size() - 1) + ",\"stream_options\":{\"include_usage\":true}}");
}

TEST(BillingInjectUsage, AddsIncludeUsageInsideStreamOptions) {
  EXPECT_EQ(inject(R"({"stream":true,"stream_options":{}})"), R"({"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(inject(R"({"stream_options":{ },"stream":true})"), R"({"stream_options":{ "include_usage":true},"stream":true})");
  EXPECT_EQ(inject(R"({"stream_options":{"x":[1,{"include_usage":false}]} ,"stream":true})"),
            R"({"stream_options":{"x":[1,{"include_usage":false}],"include_usage":true} ,"stream":true})");
}

TEST(BillingInjectUsage, ReplacesAnyOtherValue) {
  EXPECT_EQ(inject(R"({"stream_options":{"include_usage":false},"stream":true})"),
            R"({"stream_options":{"include_usage":true},"stream":true})");
  EXPECT_EQ(inject(R"({"stream_options":{"include_usage" : null , "a":1}})"),
            R"({"stream_options":{"include_usage" : true , "a":1}})");
  EXPECT_EQ(inject(R"({"stream_options":{"include_usage":1}})"), R"({"stream_options":{"include_usage":true}})");
  EXPECT_EQ(inject(R"({"stream_options":{"include_usage":"true"}})"), R"({"stream_options":{"include_usage":true}})");
  EXPECT_EQ(inject(R"({"stream_options":{"include_usage":{"a":[true]}}})"),
            R"({"stream_options":{"include_usage":true}})");
  EXPECT_EQ(inject(R"({"stream_options":{"include_\u0075sage":false}})"),
            R"({"stream_options":{"include_\u0075sage":true}})");
}

TEST(BillingInjectUsage, AlreadyTrueIsUnchanged) {
  for (const char* body : {R"({"stream":true,"stream_options":{"include_usage":true}})",
                           R"({ "stream_options" : { "a" : 1 , "include_usage" : true } } )",
                           R"({"stream\u005foptions":{"include_usage":true}})"}) {
    EXPECT_EQ(inject(body, false), body);
  }
}

TEST(BillingInjectUsage, OnlyTheTopLevelStreamOptionsCounts) {
  EXPECT_EQ(inject(R"({"metadata":{"stream_options":{"include_usage":true}},"include_usage":true})"),
            R"({"metadata":{"stream_options":{"include_usage":true}},"include_usage":true,)"
            R"("stream_options":{"include_usage":true}})");
}

TEST(BillingInjectUsage, Errors) {
  Status s = inject_error(R"({"stream_options":null})");
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(), "request body: stream_options must be an object");
  EXPECT_EQ(inject_error(R"({"stream_options":[]})").code(), Errc::invalid_argument);
  EXPECT_EQ(inject_error(R"({"stream_options":true})").code(), Errc::invalid_argument);
  s = inject_error(R"({"stream_options":{},"stream_options":{}})");
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(), "request body: stream_options appears more than once");
  s = inject_error(R"({"stream_options":{"include_usage":true,"include_usage":false}})");
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(), "request body: stream_options.include_usage appears more than once");

  s = inject_error(R"({"model":"x",})");
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "request body: invalid JSON at offset 13: expected a member name, got '}'");
  EXPECT_EQ(inject_error(R"({"model":"x")").message(), "request body: invalid JSON at offset 12: truncated");
  EXPECT_EQ(inject_error("").code(), Errc::parse);
  EXPECT_EQ(inject_error("{} x").code(), Errc::parse);
  s = inject_error(R"([{"stream":true}])");
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "request body: the top level is not a JSON object");
  EXPECT_EQ(inject_error("\"stream\"").code(), Errc::parse);
  EXPECT_EQ(inject_error("1").code(), Errc::parse);

  std::string deep = "{\"a\":" + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  EXPECT_EQ(inject_error(deep).code(), Errc::limit);
  std::string ok_deep = "{\"a\":" + std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']') + "}";
  EXPECT_EQ(inject(ok_deep), ok_deep.substr(0, ok_deep.size() - 1) + ",\"stream_options\":{\"include_usage\":true}}");
}

// ---- is_usage_only_chunk ----

TEST(BillingUsageChunk, RecognisesOnlyTheUsageOnlyChunk) {
  EXPECT_TRUE(is_usage_only_chunk(R"({"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}})"));
  EXPECT_TRUE(is_usage_only_chunk(R"( {"usage":{},"choices":[ ]} )"));
  EXPECT_TRUE(is_usage_only_chunk(R"({"choices":[],"usage":0})"));  // any non-null usage
  EXPECT_FALSE(is_usage_only_chunk(R"({"choices":[],"usage":null})"));
  EXPECT_FALSE(is_usage_only_chunk(R"({"choices":[]})"));
  EXPECT_FALSE(is_usage_only_chunk(R"({"choices":[{"delta":{}}],"usage":{"prompt_tokens":1}})"));
  EXPECT_FALSE(is_usage_only_chunk(R"({"choices":{},"usage":{}})"));
  EXPECT_FALSE(is_usage_only_chunk(R"({"usage":{}})"));
  EXPECT_FALSE(is_usage_only_chunk(R"([{"choices":[],"usage":{}}])"));
  EXPECT_FALSE(is_usage_only_chunk(R"({"choices":[],"usage":{}} x)"));
  EXPECT_FALSE(is_usage_only_chunk("[DONE]"));
  EXPECT_FALSE(is_usage_only_chunk(""));
}

// ---- UsageChunkFilter ----

std::string filter(const std::string& in, size_t step = 0, uint64_t* dropped = nullptr) {
  UsageChunkFilter f;
  std::string out;
  for (size_t pos = 0; pos < in.size();) {
    const size_t n = step ? std::min(step, in.size() - pos) : in.size() - pos;
    f.feed(std::string_view(in).substr(pos, n), &out);
    pos += n;
  }
  f.finish(&out);
  if (dropped) *dropped = f.dropped();
  return out;
}

std::string all_splits(const std::string& in) {
  const std::string whole = filter(in);
  for (size_t step : {size_t{1}, size_t{2}, size_t{5}, size_t{13}}) EXPECT_EQ(filter(in, step), whole) << step;
  std::mt19937 rng(3);
  for (int round = 0; round < 4; ++round) {
    UsageChunkFilter f;
    std::string out;
    size_t pos = 0;
    while (pos < in.size()) {
      const size_t n = std::min<size_t>(std::uniform_int_distribution<size_t>(1, 300)(rng), in.size() - pos);
      f.feed(std::string_view(in).substr(pos, n), &out);
      pos += n;
    }
    f.finish(&out);
    EXPECT_EQ(out, whole) << "round " << round;
  }
  return whole;
}

const char* kUsageEvent =
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,"
    "\"completion_tokens\":10,\"total_tokens\":29}}\n\n";

TEST(BillingUsageFilter, DropsTheUsageChunkOfARealStream) {
  const std::string in = test::openai_chat_stream();
  const size_t at = in.find("data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_06737a9306\",\"choices\":[]");
  ASSERT_NE(at, std::string::npos);
  const size_t end = in.find("\n\n", at) + 2;
  uint64_t dropped = 0;
  EXPECT_EQ(filter(in, 0, &dropped), in.substr(0, at) + in.substr(end));
  EXPECT_EQ(dropped, 1u);
  EXPECT_EQ(all_splits(in), in.substr(0, at) + in.substr(end));
}

TEST(BillingUsageFilter, KeepsEverythingElseByteForByte) {
  for (const std::string& in : {test::openai_chat_stream_no_usage(), test::deepseek_reasoning_stream(),
                                test::anthropic_stream(), std::string(": ping\n\n\n\nevent: x\nid: 1\n\n"),
                                std::string("data: {\"choices\":[],\"usage\":null}\n\n")}) {
    EXPECT_EQ(all_splits(in), in);
  }
}

TEST(BillingUsageFilter, DropsTheWholeEventWithItsLineEnds) {
  const std::string usage_crlf = test::with_line_ends(kUsageEvent, "\r\n");
  const std::string usage_cr = test::with_line_ends(kUsageEvent, "\r");
  const std::string before = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n";
  const std::string after = "data: [DONE]\r\n\r\n";
  EXPECT_EQ(all_splits(before + usage_crlf + after), before + after);
  EXPECT_EQ(all_splits(before + usage_cr + after), before + after);
  EXPECT_EQ(all_splits(usage_crlf), "");
  // Comments inside the usage event go with it; a comment block before it stays.
  EXPECT_EQ(all_splits(": x\n\n: y\n" + std::string(kUsageEvent)), ": x\n\n");
  // An event ending in \r followed by \n-started text: the \n is the \r's.
  EXPECT_EQ(all_splits(usage_cr + "\ndata: 1\n\n"), "data: 1\n\n");
}

TEST(BillingUsageFilter, HoldsOnlyTheUnfinishedEvent) {
  UsageChunkFilter f;
  std::string out;
  f.feed("data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"choices\":[],", &out);
  EXPECT_EQ(out, "data: {\"choices\":[{\"delta\":{}}]}\n\n");
  f.feed("\"usage\":{}}\n", &out);
  EXPECT_EQ(out, "data: {\"choices\":[{\"delta\":{}}]}\n\n");
  f.feed("\n", &out);  // the blank line decides: dropped
  EXPECT_EQ(out, "data: {\"choices\":[{\"delta\":{}}]}\n\n");
  f.feed("data: [DONE]\n\n", &out);
  EXPECT_EQ(out, "data: {\"choices\":[{\"delta\":{}}]}\n\ndata: [DONE]\n\n");
  EXPECT_EQ(f.dropped(), 1u);
}

TEST(BillingUsageFilter, FinishForwardsAnUnfinishedEvent) {
  const std::string in = std::string(kUsageEvent).substr(0, std::string(kUsageEvent).size() - 1);
  EXPECT_EQ(all_splits(in), in);  // no blank line: not an event, never dropped
}

TEST(BillingUsageFilter, EventOverTheLimitPassesUnfiltered) {
  // A usage chunk grown by a comment line to `total` bytes, its blank line's
  // \n included: that last byte decides, so `total` is what the limit sees.
  const std::string event = kUsageEvent;
  auto padded = [&](size_t total) {
    return ": " + std::string(total - event.size() - 3, 'c') + "\n" + event;
  };
  ASSERT_EQ(padded(kMaxSseLine).size(), kMaxSseLine);
  EXPECT_EQ(filter(padded(kMaxSseLine), 4096), "");
  EXPECT_EQ(filter(padded(kMaxSseLine), 1), "");
  const std::string over = padded(kMaxSseLine + 1);
  EXPECT_EQ(filter(over, 4096), over);
  EXPECT_EQ(filter(over, 1), over);
  EXPECT_EQ(filter(over), over);
  // After it, filtering resumes.
  EXPECT_EQ(filter(over + event + "data: x\n\n", 777), over + "data: x\n\n");
}

TEST(BillingUsageFilter, OutputIsTheInputWithoutTheDroppedEvents) {
  const std::string a = test::openai_chat_stream();
  const std::string b = test::openai_tool_call_stream();
  uint64_t dropped = 0;
  const std::string out = filter(a + kUsageEvent + b, 0, &dropped);
  EXPECT_EQ(dropped, 3u);
  EXPECT_EQ(out, filter(a) + filter(b));
  EXPECT_LT(filter(b).size(), b.size());
}

}  // namespace
}  // namespace tg::billing
