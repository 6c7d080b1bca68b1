// Usage normalisation from the vendors' numbers and the meter's rules:
// status, non-stream bodies (usage found, nested usage ignored, estimates,
// broken answers), OpenAI and Anthropic streams, the limits at their edges,
// and split-independence on every fixture.
#include <gtest/gtest.h>

#include <string>

#include "shared/billing/usage.h"
#include "tests/unit/billing/fixtures.h"

namespace tg::billing {
namespace {

using test::meter;

Usage u3(uint64_t in, uint64_t cached, uint64_t out, bool estimated = false) {
  Usage u;
  u.input = in;
  u.cached = cached;
  u.output = out;
  u.estimated = estimated;
  return u;
}

::testing::AssertionResult same(const Usage& got, const Usage& want) {
  if (got == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got {" << got.input << ", " << got.cached << ", " << got.output << ", "
                                       << (got.estimated ? "estimated" : "exact") << "}, want {" << want.input
                                       << ", " << want.cached << ", " << want.output << ", "
                                       << (want.estimated ? "estimated" : "exact") << "}";
}

::testing::AssertionResult parses_to(Api api, const std::string& json, const Usage& want) {
  std::optional<Usage> u = parse_usage(api, json);
  if (!u) return ::testing::AssertionFailure() << json << ": not a valid usage object";
  return same(*u, want);
}

// ---- Usage ----

TEST(BillingUsage, EqualityAndZero) {
  EXPECT_TRUE(u3(1, 2, 3) == u3(1, 2, 3));
  EXPECT_TRUE(u3(1, 2, 3) != u3(1, 2, 3, true));
  EXPECT_TRUE(u3(1, 2, 3) != u3(1, 2, 4));
  EXPECT_TRUE(is_zero(Usage()));
  EXPECT_TRUE(is_zero(u3(0, 0, 0, true)));
  EXPECT_FALSE(is_zero(u3(0, 1, 0)));
}

// ---- normalisation ----

TEST(BillingUsageParse, OpenAISubtractsCachedFromPrompt) {
  EXPECT_TRUE(parses_to(Api::chat, R"({"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,
      "prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0}})", u3(93, 1024, 46)));
  EXPECT_TRUE(parses_to(Api::chat, R"({"prompt_tokens":10,"completion_tokens":2})", u3(10, 0, 2)));
  EXPECT_TRUE(parses_to(Api::chat, R"({"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":null})",
                        u3(10, 0, 2)));
  EXPECT_TRUE(parses_to(Api::chat, R"({"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{}})",
                        u3(10, 0, 2)));
  EXPECT_TRUE(parses_to(Api::chat,
                        R"({"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":null}})",
                        u3(10, 0, 2)));
  // More cached than prompt tokens: cached is capped at the prompt.
  EXPECT_TRUE(parses_to(Api::chat,
                        R"({"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":50}})",
                        u3(0, 10, 2)));
}

TEST(BillingUsageParse, CompletionTokensRequiredForChatOnly) {
  EXPECT_FALSE(parse_usage(Api::chat, R"({"prompt_tokens":5,"total_tokens":5})"));
  EXPECT_FALSE(parse_usage(Api::chat, R"({"prompt_tokens":5,"completion_tokens":null})"));
  EXPECT_TRUE(parses_to(Api::embeddings, R"({"prompt_tokens":5,"total_tokens":5})", u3(5, 0, 0)));
  EXPECT_FALSE(parse_usage(Api::embeddings, R"({"total_tokens":5})"));
  EXPECT_FALSE(parse_usage(Api::chat, R"({"prompt_tokens":null,"completion_tokens":1})"));
}

TEST(BillingUsageParse, AnthropicAddsCacheWritesToInput) {
  EXPECT_TRUE(parses_to(Api::messages, R"({"input_tokens":2095,"cache_creation_input_tokens":100,
      "cache_read_input_tokens":1800,"output_tokens":503,"service_tier":"standard"})", u3(2195, 1800, 503)));
  EXPECT_TRUE(parses_to(Api::messages, R"({"input_tokens":7,"output_tokens":1})", u3(7, 0, 1)));
  EXPECT_TRUE(parses_to(Api::messages,
                        R"({"input_tokens":7,"output_tokens":1,"cache_creation_input_tokens":null,"cache_read_input_tokens":null})",
                        u3(7, 0, 1)));
  EXPECT_FALSE(parse_usage(Api::messages, R"({"input_tokens":7})"));
  EXPECT_FALSE(parse_usage(Api::messages, R"({"output_tokens":7})"));
  // The other vendor's names are not these.
  EXPECT_FALSE(parse_usage(Api::messages, R"({"prompt_tokens":7,"completion_tokens":1})"));
  EXPECT_FALSE(parse_usage(Api::chat, R"({"input_tokens":7,"output_tokens":1})"));
}

TEST(BillingUsageParse, CountsMustBeIntegersUpToTheLimit) {
  auto chat = [](const std::string& p) {
    return parse_usage(Api::chat, R"({"prompt_tokens":)" + p + R"(,"completion_tokens":1})");
  };
  EXPECT_TRUE(chat("12.0"));
  EXPECT_EQ(chat("12.0")->input, 12u);
  EXPECT_TRUE(chat("1.2e1"));
  EXPECT_TRUE(chat("-0"));
  EXPECT_TRUE(chat("1000000000000"));
  EXPECT_EQ(chat("1e12")->input, kMaxTokens);
  EXPECT_FALSE(chat("1000000000001"));
  EXPECT_FALSE(chat("12.5"));
  EXPECT_FALSE(chat("-1"));
  EXPECT_FALSE(chat("\"12\""));
  EXPECT_FALSE(chat("true"));
  EXPECT_FALSE(chat("[12]"));
  EXPECT_FALSE(chat("1e400"));
  EXPECT_FALSE(parse_usage(Api::chat,
                           R"({"prompt_tokens":1,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":-1}})"));
  EXPECT_FALSE(parse_usage(Api::chat, R"({"prompt_tokens":1,"completion_tokens":1,"prompt_tokens_details":3})"));
  EXPECT_FALSE(parse_usage(Api::messages, R"({"input_tokens":1,"output_tokens":1,"cache_read_input_tokens":0.5})"));
}

TEST(BillingUsageParse, AnthropicInputPlusCacheWritesStaysWithinTheLimit) {
  EXPECT_TRUE(parses_to(Api::messages,
                        R"({"input_tokens":999999999999,"cache_creation_input_tokens":1,"output_tokens":0})",
                        u3(kMaxTokens, 0, 0)));
  EXPECT_FALSE(parse_usage(Api::messages,
                           R"({"input_tokens":1000000000000,"cache_creation_input_tokens":1,"output_tokens":0})"));
}

TEST(BillingUsageParse, NotAnObjectOrNotJson) {
  for (const char* t : {"null", "[]", "12", "\"x\"", "", "{", "{\"prompt_tokens\":1,\"completion_tokens\":1} x"}) {
    EXPECT_FALSE(parse_usage(Api::chat, t)) << t;
  }
}

// ---- status ----

TEST(BillingMeter, OnlyA2xxAnswerCosts) {
  const std::string body = test::openai_chat_body();
  EXPECT_TRUE(same(meter(Api::chat, false, body, 100, 200).usage, u3(93, 1024, 46)));
  EXPECT_TRUE(same(meter(Api::chat, false, body, 100, 299).usage, u3(93, 1024, 46)));
  for (int status : {0, 100, 199, 300, 400, 429, 500, 529}) {
    EXPECT_TRUE(same(meter(Api::chat, false, body, 100, status).usage, Usage())) << status;
    EXPECT_TRUE(same(meter(Api::chat, true, test::openai_chat_stream(), 100, status).usage, Usage())) << status;
  }
  UsageMeter never(Api::chat, false);
  never.response_body(body);
  EXPECT_TRUE(same(never.result(), Usage()));
}

TEST(BillingMeter, LastStatusCounts) {
  UsageMeter m(Api::chat, false);
  m.response_status(100);
  m.response_status(200);
  m.response_body(test::openai_chat_body());
  EXPECT_TRUE(same(m.result(), u3(93, 1024, 46)));
  m.response_status(502);
  EXPECT_TRUE(same(m.result(), Usage()));
}

// ---- non-stream ----

TEST(BillingMeterBody, OpenAIChat) {
  const test::Metered r = meter(Api::chat, false, test::openai_chat_body());
  EXPECT_TRUE(same(r.usage, u3(93, 1024, 46)));
  EXPECT_EQ(r.content_bytes, 0u);
}

TEST(BillingMeterBody, AnthropicWithNestedUsageInToolInput) {
  EXPECT_TRUE(same(meter(Api::messages, false, test::anthropic_body()).usage, u3(2195, 1800, 503)));
}

TEST(BillingMeterBody, LargeEmbeddingsBodyWithUsageAtTheEnd) {
  const std::string body = test::openai_embeddings_body(300);  // about 7 MiB
  ASSERT_GT(body.size(), 4u * 1024 * 1024);
  EXPECT_TRUE(same(meter(Api::embeddings, false, body).usage, u3(1500, 0, 0)));
}

TEST(BillingMeterBody, UsageFirstOrLastOrWithEscapedKey) {
  EXPECT_TRUE(same(meter(Api::chat, false, R"({"usage":{"prompt_tokens":3,"completion_tokens":4},"choices":[]})").usage,
                   u3(3, 0, 4)));
  EXPECT_TRUE(same(meter(Api::chat, false, R"({"choices":[],"\u0075sage":{"prompt_tokens":3,"completion_tokens":4}})").usage,
                   u3(3, 0, 4)));
}

TEST(BillingMeterBody, LastValidUsageWins) {
  EXPECT_TRUE(same(meter(Api::chat, false,
                         R"({"usage":{"prompt_tokens":1,"completion_tokens":1},"usage":{"prompt_tokens":2,"completion_tokens":2}})")
                       .usage,
                   u3(2, 0, 2)));
  // An invalid later one does not erase a valid earlier one.
  EXPECT_TRUE(same(meter(Api::chat, false,
                         R"({"usage":{"prompt_tokens":1,"completion_tokens":1},"usage":null,"usage":{"prompt_tokens":-2}})")
                       .usage,
                   u3(1, 0, 1)));
}

TEST(BillingMeterBody, NestedUsageIsIgnored) {
  // 100 request bytes -> 25 input; the body's bytes / 4, rounded up, as output.
  const std::string body =
      R"({"choices":[{"message":{"content":"x","usage":{"prompt_tokens":9,"completion_tokens":9}}}],)"
      R"("meta":{"usage":{"prompt_tokens":9,"completion_tokens":9}},"note":"\"usage\":{}"})";
  EXPECT_TRUE(same(meter(Api::chat, false, body).usage, u3(25, 0, (body.size() + 3) / 4, true)));
}

TEST(BillingMeterBody, CompleteAnswerWithoutValidUsageIsEstimated) {
  const std::string body = R"({"id":"x","choices":[],"usage":{"prompt_tokens":"9"}})";  // 53 bytes
  ASSERT_EQ(body.size(), 53u);
  EXPECT_TRUE(same(meter(Api::chat, false, body, 0).usage, u3(0, 0, 14, true)));
  EXPECT_TRUE(same(meter(Api::chat, false, body, 1).usage, u3(1, 0, 14, true)));
  EXPECT_TRUE(same(meter(Api::chat, false, body, 4).usage, u3(1, 0, 14, true)));
  EXPECT_TRUE(same(meter(Api::chat, false, body, 5).usage, u3(2, 0, 14, true)));
  EXPECT_TRUE(same(meter(Api::messages, false, body, 8).usage, u3(2, 0, 14, true)));
  // Embeddings have no output tokens.
  EXPECT_TRUE(same(meter(Api::embeddings, false, body, 8).usage, u3(2, 0, 0, true)));
  EXPECT_TRUE(same(meter(Api::chat, false, "{}", 3).usage, u3(1, 0, 1, true)));
}

TEST(BillingMeterBody, TruncatedOrBrokenAnswerCostsNothing) {
  const std::string body = test::openai_chat_body();
  const size_t usage_at = body.find("\"usage\"");
  ASSERT_NE(usage_at, std::string::npos);
  // Cut before the usage: zero, not estimated.
  EXPECT_TRUE(same(meter(Api::chat, false, body.substr(0, usage_at)).usage, Usage()));
  // Cut after the usage value: the vendor's usage still counts.
  const size_t after = body.find("\"service_tier\"");
  EXPECT_TRUE(same(meter(Api::chat, false, body.substr(0, after)).usage, u3(93, 1024, 46)));
  // Garbage after a complete answer without usage: broken.
  EXPECT_TRUE(same(meter(Api::chat, false, R"({"id":"x"} {"id":"y"})").usage, Usage()));
  EXPECT_TRUE(same(meter(Api::chat, false, "").usage, Usage()));
  EXPECT_TRUE(same(meter(Api::chat, false, "not json").usage, Usage()));
  EXPECT_TRUE(same(meter(Api::chat, false, "data: {}\n\n").usage, Usage()));
  // A top level that is not an object is not an answer.
  EXPECT_TRUE(same(meter(Api::chat, false, R"([{"usage":{"prompt_tokens":1,"completion_tokens":1}}])").usage, Usage()));
  EXPECT_TRUE(same(meter(Api::chat, false, "12").usage, Usage()));
  // Trailing whitespace is fine.
  EXPECT_TRUE(same(meter(Api::chat, false, "{}\r\n \t", 0).usage, u3(0, 0, 2, true)));
}

TEST(BillingMeterBody, UsageValueSizeLimitEdge) {
  const std::string base = R"({"prompt_tokens":3,"completion_tokens":4})";
  auto padded = [&](size_t size) {  // the usage value grown to `size` bytes with inner spaces
    return "{" + std::string(size - base.size(), ' ') + base.substr(1);
  };
  const std::string at = R"({"usage":)" + padded(kMaxUsageBytes) + "}";
  EXPECT_TRUE(same(meter(Api::chat, false, at).usage, u3(3, 0, 4)));
  const std::string over = R"({"usage":)" + padded(kMaxUsageBytes + 1) + "}";
  EXPECT_TRUE(same(meter(Api::chat, false, over, 0).usage, u3(0, 0, (over.size() + 3) / 4, true)));
}

TEST(BillingMeterBody, ResultIsAvailableAtAnyTime) {
  const std::string body = test::openai_chat_body();
  UsageMeter m(Api::chat, false);
  m.response_status(200);
  m.request_body(40);
  m.response_body(body.substr(0, 10));
  EXPECT_TRUE(same(m.result(), Usage()));
  m.response_body(body.substr(10));
  EXPECT_TRUE(same(m.result(), u3(93, 1024, 46)));
}

// ---- OpenAI streams ----

TEST(BillingMeterStream, OpenAIChatWithUsageChunk) {
  const test::Metered r = meter(Api::chat, true, test::openai_chat_stream());
  EXPECT_TRUE(same(r.usage, u3(19, 0, 10)));
  EXPECT_EQ(r.content_bytes, test::kOpenAIStreamContent);
}

TEST(BillingMeterStream, OpenAIChatWithoutUsageIsEstimatedFromText) {
  const test::Metered r = meter(Api::chat, true, test::openai_chat_stream_no_usage(), 41);
  // 41 request bytes -> 11; 22 text bytes -> 6.
  EXPECT_TRUE(same(r.usage, u3(11, 0, 6, true)));
  EXPECT_EQ(r.content_bytes, test::kOpenAIStreamContent);
}

TEST(BillingMeterStream, EmptyAnswerWithoutUsageCostsNothing) {
  const std::string empty = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
                            "data: [DONE]\n\n";
  EXPECT_TRUE(same(meter(Api::chat, true, empty, 500).usage, Usage()));
  EXPECT_TRUE(same(meter(Api::chat, true, "", 500).usage, Usage()));
  EXPECT_TRUE(same(meter(Api::messages, true, "", 500).usage, Usage()));
}

TEST(BillingMeterStream, ToolCallArgumentsAreContent) {
  const test::Metered r = meter(Api::chat, true, test::openai_tool_call_stream());
  EXPECT_TRUE(same(r.usage, u3(18, 64, 18)));
  EXPECT_EQ(r.content_bytes, test::kToolCallContent);
}

TEST(BillingMeterStream, ReasoningContentCountsAndUsageInAChoiceChunk) {
  const test::Metered r = meter(Api::chat, true, test::deepseek_reasoning_stream());
  EXPECT_TRUE(same(r.usage, u3(13, 0, 61)));
  EXPECT_EQ(r.content_bytes, test::kDeepSeekContent);
}

TEST(BillingMeterStream, LastValidUsageChunkWins) {
  const std::string s = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n"
                        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n"
                        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"bad\",\"completion_tokens\":9}}\n\n"
                        "data: {\"choices\":[],\"usage\":null}\n\n";
  EXPECT_TRUE(same(meter(Api::chat, true, s).usage, u3(5, 0, 7)));
}

TEST(BillingMeterStream, LineEndsDoNotMatter) {
  for (const char* end : {"\r\n", "\r"}) {
    const std::string s = test::with_line_ends(test::openai_chat_stream(), end);
    const test::Metered r = meter(Api::chat, true, s);
    EXPECT_TRUE(same(r.usage, u3(19, 0, 10)));
    EXPECT_EQ(r.content_bytes, test::kOpenAIStreamContent);
    EXPECT_TRUE(same(meter(Api::messages, true, test::with_line_ends(test::anthropic_stream(), end)).usage,
                     u3(472, 0, 89)));
  }
}

TEST(BillingMeterStream, BadEventsAreSkipped) {
  const std::string s = "data: {\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]\n\n"  // invalid JSON
                        "data: [\"usage\"]\n\n"
                        "data: {\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]} trailing\n\n"
                        ": {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n"
                        "event: x\n\n"
                        "data: {\"choices\":[{\"delta\":{\"content\":\"abc\"}},{\"delta\":{\"content\":7}},"
                        "{\"delta\":{\"content\":\"de\",\"tool_calls\":[{\"function\":{\"arguments\":\"f\"}},{}]}}]}\n\n"
                        "data: {\"choices\":[{\"delta\":{\"content\":\"ignored: no blank line\"}}]}\n";
  const test::Metered r = meter(Api::chat, true, s, 4);
  EXPECT_EQ(r.content_bytes, 6u);
  EXPECT_TRUE(same(r.usage, u3(1, 0, 2, true)));
}

TEST(BillingMeterStream, EscapesCountAsTheBytesTheyDecodeTo) {
  // "a\u0000b" is three bytes (a NUL from a vendor is content, not an end);
  // "\u00e9" two, "\n" one; a \u escape without four hex digits makes the
  // event invalid JSON, skipped.
  const std::string s = "data: {\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}\n\n"
                        "data: {\"choices\":[{\"delta\":{\"content\":\"\\u00e9\\n\"}}]}\n\n"
                        "data: {\"choices\":[{\"delta\":{\"content\":\"\\u12\"}}]}\n\n";
  EXPECT_EQ(meter(Api::chat, true, s).content_bytes, 6u);
}

TEST(BillingMeterStream, MultiLineDataIsOneDocument) {
  const std::string s = "data: {\"choices\":[],\n"
                        "data: \"usage\":{\"prompt_tokens\":4,\n"
                        "data: \"completion_tokens\":2}}\n\n";
  EXPECT_TRUE(same(meter(Api::chat, true, s).usage, u3(4, 0, 2)));
}

TEST(BillingMeterStream, EventDataLimitEdge) {
  const std::string head = "{\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2},\"pad\":\"";
  auto event_of = [&](size_t data_size) {
    return "data: " + head + std::string(data_size - head.size() - 2, 'p') + "\"}\n\n";
  };
  // The limit counts the line: "data: " + data.
  EXPECT_TRUE(same(meter(Api::chat, true, event_of(kMaxSseLine - 6)).usage, u3(4, 0, 2)));
  EXPECT_TRUE(same(meter(Api::chat, true, event_of(kMaxSseLine - 5)).usage, Usage()));
  EXPECT_TRUE(same(meter(Api::chat, true, event_of(kMaxSseLine - 5) + event_of(1000)).usage, u3(4, 0, 2)));
}

TEST(BillingMeterStream, EmbeddingsStreamReadsLikeChat) {
  const std::string s = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}\n\n";
  EXPECT_TRUE(same(meter(Api::embeddings, true, s).usage, u3(8, 0, 0)));
  EXPECT_TRUE(same(meter(Api::chat, true, s).usage, Usage()));  // chat needs completion_tokens
}

// ---- Anthropic streams ----

TEST(BillingMeterStream, AnthropicFullStream) {
  const test::Metered r = meter(Api::messages, true, test::anthropic_stream());
  EXPECT_TRUE(same(r.usage, u3(472, 0, 89)));
  EXPECT_EQ(r.content_bytes, test::kAnthropicContent);
}

TEST(BillingMeterStream, AnthropicDeltaInputReplacesStartValues) {
  const std::string s =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
      "\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":12,"
      "\"cache_read_input_tokens\":70,\"output_tokens\":30}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":31}}\n\n";
  // input = 12 + 5 (the write count kept from the start), cached 70, output the last delta's.
  EXPECT_TRUE(same(meter(Api::messages, true, s).usage, u3(17, 70, 31)));
}

TEST(BillingMeterStream, AnthropicWithoutDeltaIsEstimated) {
  const std::string full = test::anthropic_stream();
  const std::string cut = full.substr(0, full.find("event: message_delta"));
  // 57 text bytes -> 15 > the start's 2.
  const test::Metered r = meter(Api::messages, true, cut);
  EXPECT_TRUE(same(r.usage, u3(472, 0, 15, true)));
  EXPECT_EQ(r.content_bytes, test::kAnthropicContent);
  // The start's output when it is larger.
  const std::string start_only =
      "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"cache_read_input_tokens\":4,"
      "\"output_tokens\":9}}}\n\n";
  EXPECT_TRUE(same(meter(Api::messages, true, start_only).usage, u3(3, 4, 9, true)));
}

TEST(BillingMeterStream, AnthropicWithoutAnyUsageIsEstimatedFromText) {
  const std::string s =
      "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
      "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":\"x\",\"output_tokens\":1}}}\n\n"
      "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":5}}\n\n";
  const test::Metered r = meter(Api::messages, true, s, 9);
  EXPECT_EQ(r.content_bytes, 5u);
  EXPECT_TRUE(same(r.usage, u3(3, 0, 2, true)));
}

TEST(BillingMeterStream, AnthropicDeltaThatWouldPassTheLimitIsIgnored) {
  const std::string s =
      "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
      "\"cache_creation_input_tokens\":999999999990,\"output_tokens\":1}}}\n\n"
      "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":11,\"output_tokens\":5}}\n\n"
      "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":6}}\n\n";
  EXPECT_TRUE(same(meter(Api::messages, true, s).usage, u3(kMaxTokens, 0, 6)));
}

TEST(BillingMeterStream, AnthropicDeltaWithoutStart) {
  const std::string s = "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":6}}\n\n";
  EXPECT_TRUE(same(meter(Api::messages, true, s).usage, u3(0, 0, 6)));
}

TEST(BillingMeterStream, OpenAIChunksMeanNothingToMessagesAndBack) {
  EXPECT_TRUE(same(meter(Api::messages, true, test::openai_chat_stream()).usage, Usage()));
  EXPECT_EQ(meter(Api::messages, true, test::openai_chat_stream()).content_bytes, 0u);
  EXPECT_TRUE(same(meter(Api::chat, true, test::anthropic_stream()).usage, Usage()));
}

}  // namespace
}  // namespace tg::billing
