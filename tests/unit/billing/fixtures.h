// Answers that look like the vendors' own (OpenAI chat and embeddings,
// DeepSeek reasoning, Anthropic messages; bodies and SSE streams), and a
// helper that runs the usage meter over a body whole, byte by byte and in
// random splits and checks that all agree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/billing/usage.h"

namespace tg::billing::test {

// Non-stream bodies.
std::string openai_chat_body();          // usage 1117 prompt (1024 cached), 46 completion
std::string openai_embeddings_body(size_t inputs);  // 1536 floats per input; usage 5 * inputs prompt
std::string anthropic_body();            // usage 2095 input, 100 cache write, 1800 cache read, 503 output

// Streams (text/event-stream bodies).
std::string openai_chat_stream();        // "Hello! How can I help?" + usage-only chunk (19/10, 0 cached)
std::string openai_chat_stream_no_usage();  // the same text, no usage chunk
std::string openai_tool_call_stream();   // get_weather({"location":"Paris"}) + usage chunk (82/18, 64 cached)
std::string deepseek_reasoning_stream(); // reasoning + content; usage in the last choice chunk
std::string anthropic_stream();          // thinking, text and tool_use blocks; 472 in / 89 out

// Text bytes the streams above deliver (content_bytes()).
constexpr uint64_t kOpenAIStreamContent = 22;     // "Hello! How can I help?"
constexpr uint64_t kToolCallContent = 20;         // {"location":"Paris"}
constexpr uint64_t kDeepSeekContent = 23 + 16;    // reasoning + content
constexpr uint64_t kAnthropicContent = 25 + 11 + 21;  // thinking + text + partial_json

// Rewrites every "\n" line end as "\r\n" or "\r".
std::string with_line_ends(const std::string& sse, const std::string& end);

struct Metered {
  Usage usage;
  uint64_t content_bytes = 0;
};

// Runs a meter over `body` whole, one byte at a time and in several seeded
// random splits, with `request_bytes` and `status`; adds a gtest failure if
// any run differs from the whole one, and returns the whole run's result.
Metered meter(Api api, bool stream, const std::string& body, uint64_t request_bytes = 100,
              int status = 200);

}  // namespace tg::billing::test
