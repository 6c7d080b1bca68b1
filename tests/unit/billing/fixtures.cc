#include "tests/unit/billing/fixtures.h"

#include <gtest/gtest.h>

#include <random>

namespace tg::billing::test {
namespace {

std::string event(const std::string& data) { return "data: " + data + "\n\n"; }

std::string named(const std::string& name, const std::string& data) {
  return "event: " + name + "\n" + event(data);
}

std::string chat_chunk(const std::string& delta, const std::string& finish = "null") {
  return event(
      R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741570283,)"
      R"("model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306",)"
      R"("choices":[{"index":0,"delta":)" + delta + R"(,"logprobs":null,"finish_reason":)" + finish +
      R"(}],"usage":null})");
}

std::string chat_text_chunks() {
  return chat_chunk(R"({"role":"assistant","content":"","refusal":null})") +
         chat_chunk(R"({"content":"Hello"})") + chat_chunk(R"({"content":"!"})") +
         chat_chunk(R"({"content":" How"})") + chat_chunk(R"({"content":" can"})") +
         chat_chunk(R"({"content":" I"})") + chat_chunk(R"({"content":" help"})") +
         chat_chunk(R"({"content":"?"})") + chat_chunk("{}", R"("stop")");
}

std::string tool_chunk(const std::string& args) {
  return event(
      R"({"id":"chatcmpl-BJ2kF8r2UvVxX","object":"chat.completion.chunk","created":1743948000,"model":"gpt-4o-2024-08-06",)"
      R"("system_fingerprint":"fp_f5bdcc3276","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":)" +
      args + R"(}}]},"logprobs":null,"finish_reason":null}],"usage":null})");
}

}  // namespace

std::string openai_chat_body() {
  return R"({
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The usage field of a response reports \"usage\": {\"prompt_tokens\": 9} and more.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {
      "cached_tokens": 1024,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}
)";
}

std::string openai_embeddings_body(size_t inputs) {
  std::string out = "{\n  \"object\": \"list\",\n  \"data\": [\n";
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> digits(0, 99999999);
  for (size_t i = 0; i < inputs; ++i) {
    out += "    {\n      \"object\": \"embedding\",\n      \"index\": " + std::to_string(i) +
           ",\n      \"embedding\": [\n";
    for (int k = 0; k < 1536; ++k) {
      const int d = digits(rng);
      out += "        " + std::string(d % 2 ? "-" : "") + "0.0" + std::to_string(d) +
             (k + 1 < 1536 ? ",\n" : "\n");
    }
    out += std::string("      ]\n    }") + (i + 1 < inputs ? ",\n" : "\n");
  }
  const std::string n = std::to_string(5 * inputs);
  out += "  ],\n  \"model\": \"text-embedding-3-small\",\n  \"usage\": {\n    \"prompt_tokens\": " + n +
         ",\n    \"total_tokens\": " + n + "\n  }\n}\n";
  return out;
}

std::string anthropic_body() {
  return R"({"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant",)"
         R"("model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi! The \"usage\" object )"
         R"(counts tokens."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather",)"
         R"("input":{"location":"Paris","usage":{"input_tokens":1,"output_tokens":1}}}],"stop_reason":"tool_use",)"
         R"("stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":100,)"
         R"("cache_read_input_tokens":1800,"output_tokens":503,"service_tier":"standard"}})";
}

std::string openai_chat_stream() {
  return chat_text_chunks() +
         event(R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk",)"
               R"("created":1741570283,"model":"gpt-4o-mini-2024-07-18","service_tier":"default",)"
               R"("system_fingerprint":"fp_06737a9306","choices":[],"usage":{"prompt_tokens":19,)"
               R"("completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,)"
               R"("audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
               R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})") +
         event("[DONE]");
}

std::string openai_chat_stream_no_usage() { return chat_text_chunks() + event("[DONE]"); }

std::string openai_tool_call_stream() {
  return event(
             R"({"id":"chatcmpl-BJ2kF8r2UvVxX","object":"chat.completion.chunk","created":1743948000,)"
             R"("model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f5bdcc3276","choices":[{"index":0,)"
             R"("delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA",)"
             R"("type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},)"
             R"("logprobs":null,"finish_reason":null}],"usage":null})") +
         tool_chunk(R"("{\"")") + tool_chunk(R"("location")") + tool_chunk(R"("\":\"")") +
         tool_chunk(R"("Paris")") + tool_chunk(R"("\"}")") +
         event(R"({"id":"chatcmpl-BJ2kF8r2UvVxX","object":"chat.completion.chunk","created":1743948000,)"
               R"("model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f5bdcc3276","choices":[{"index":0,)"
               R"("delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null})") +
         event(R"({"id":"chatcmpl-BJ2kF8r2UvVxX","object":"chat.completion.chunk","created":1743948000,)"
               R"("model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f5bdcc3276","choices":[],)"
               R"("usage":{"prompt_tokens":82,"completion_tokens":18,"total_tokens":100,)"
               R"("prompt_tokens_details":{"cached_tokens":64,"audio_tokens":0},)"
               R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
               R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})") +
         event("[DONE]");
}

std::string deepseek_reasoning_stream() {
  auto chunk = [](const std::string& delta, const std::string& tail) {
    return event(R"({"id":"5f6b1c2a-8d9e-4f3a-b1c2-3d4e5f6a7b8c","object":"chat.completion.chunk",)"
                 R"("created":1738000000,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08_prod0225",)"
                 R"("choices":[{"index":0,"delta":)" + delta + tail);
  };
  const std::string open = R"(,"logprobs":null,"finish_reason":null}]})";
  return ": keep-alive\n\n" +
         chunk(R"({"role":"assistant","content":null,"reasoning_content":""})", open) +
         chunk(R"({"content":null,"reasoning_content":"Okay"})", open) +
         chunk(R"({"content":null,"reasoning_content":", the user"})", open) +
         chunk(R"({"content":null,"reasoning_content":" says hi."})", open) +
         chunk(R"({"content":"Hello","reasoning_content":null})", open) +
         chunk(R"({"content":" there","reasoning_content":null})", open) +
         chunk(R"({"content":"! Hi.","reasoning_content":null})", open) +
         chunk(R"({"content":"","reasoning_content":null})",
               R"(,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":13,)"
               R"("completion_tokens":61,"total_tokens":74,"prompt_tokens_details":{"cached_tokens":0},)"
               R"("completion_tokens_details":{"reasoning_tokens":52},"prompt_cache_hit_tokens":0,)"
               R"("prompt_cache_miss_tokens":13}})") +
         event("[DONE]");
}

std::string anthropic_stream() {
  return named("message_start",
               R"({"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message",)"
               R"("role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,)"
               R"("stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,)"
               R"("cache_read_input_tokens":0,"output_tokens":2,"service_tier":"standard"}}})") +
         named("content_block_start",
               R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})") +
         named("ping", R"({"type": "ping"})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" about Paris."}})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}})") +
         named("content_block_stop", R"({"type":"content_block_stop","index":0})") +
         named("content_block_start",
               R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello"}})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" Paris"}})") +
         named("content_block_stop", R"({"type":"content_block_stop","index":1})") +
         named("content_block_start",
               R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}})") +
         named("content_block_delta",
               R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" \"Paris\"}"}})") +
         named("content_block_stop", R"({"type":"content_block_stop","index":2})") +
         named("message_delta",
               R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}})") +
         named("message_stop", R"({"type":"message_stop"})");
}

std::string with_line_ends(const std::string& sse, const std::string& end) {
  std::string out;
  for (char c : sse) {
    if (c == '\n') {
      out += end;
    } else {
      out += c;
    }
  }
  return out;
}

Metered meter(Api api, bool stream, const std::string& body, uint64_t request_bytes, int status) {
  auto run = [&](const std::vector<size_t>& cuts) {
    UsageMeter m(api, stream);
    m.request_body(static_cast<size_t>(request_bytes));
    m.response_status(status);
    size_t pos = 0;
    for (size_t cut : cuts) {
      m.response_body(std::string_view(body).substr(pos, cut - pos));
      pos = cut;
    }
    m.response_body(std::string_view(body).substr(pos));
    return Metered{m.result(), m.content_bytes()};
  };
  const Metered whole = run({});
  auto same = [&](const Metered& other, const std::string& how) {
    EXPECT_TRUE(other.usage == whole.usage) << how;
    EXPECT_EQ(other.content_bytes, whole.content_bytes) << how;
  };
  if (body.size() <= 64 * 1024) {
    std::vector<size_t> each;
    for (size_t i = 1; i < body.size(); ++i) each.push_back(i);
    same(run(each), "byte by byte");
  }
  std::mt19937 rng(static_cast<unsigned>(body.size()));
  for (int round = 0; round < 8; ++round) {
    std::vector<size_t> cuts;
    std::uniform_int_distribution<size_t> step(1, round < 4 ? 7 : 4096);
    for (size_t at = step(rng); at < body.size(); at += step(rng)) cuts.push_back(at);
    same(run(cuts), "random split " + std::to_string(round));
  }
  return whole;
}

}  // namespace tg::billing::test
