// Token usage of one answer and the meter that reads it out of the response
// bytes. Hub and agent run the same meter over the same bytes and must agree,
// so the result depends only on the bytes and the status, never on how the
// body was split into pieces. Bounded memory (kMaxUsageBytes for a
// non-stream answer, kMaxSseLine per stream), linear time, no I/O.
// The rules are written down in shared/billing/README.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared/billing/json_scan.h"
#include "shared/billing/sse.h"

namespace tg::billing {

constexpr uint64_t kMaxTokens = 1'000'000'000'000;  // per field, and per vendor count
constexpr size_t kMaxUsageBytes = 4 * 1024;          // a non-stream answer's "usage" value

struct Usage {
  uint64_t input = 0;      // uncached input tokens (billed at the input price)
  uint64_t cached = 0;     // cached input tokens read (billed at the cached-input price)
  uint64_t output = 0;     // output tokens
  bool estimated = false;  // true: from the documented estimate, not the vendor's numbers
};

bool operator==(const Usage& a, const Usage& b);
bool operator!=(const Usage& a, const Usage& b);
bool is_zero(const Usage& u);  // all three counts zero

// OpenAI chat completions, OpenAI embeddings, Anthropic messages.
enum class Api { chat, embeddings, messages };
// The API a user-facing path speaks: /v1/embeddings, /v1/messages (Anthropic),
// anything else chat completions. Hub and agent both meter by it.
Api api_for_path(std::string_view path) noexcept;

// The vendor's usage object (its JSON text) normalised, or nullopt if it is
// not a valid usage object for `api`:
//   chat, embeddings: prompt_tokens P (required), completion_tokens C
//     (required for chat; absent = 0 for embeddings),
//     prompt_tokens_details.cached_tokens K (absent = 0):
//     input = P - min(K, P), cached = min(K, P), output = C.
//   messages: input_tokens I and output_tokens O (required),
//     cache_creation_input_tokens W and cache_read_input_tokens R (absent = 0):
//     input = I + W, cached = R, output = O.
// Every count must be an integral JSON number 0..kMaxTokens, and I + W too;
// null counts as absent (and is invalid for a required count). estimated is
// false. Every Usage the meter gives has each field within kMaxTokens.
std::optional<Usage> parse_usage(Api api, std::string_view json);

class UsageMeter {
 public:
  // `stream`: the answer is text/event-stream (the request asked to stream).
  UsageMeter(Api api, bool stream);

  // Request body bytes forwarded upstream (for the input estimate); may be
  // called any number of times, the counts add up.
  void request_body(size_t bytes);
  // The upstream HTTP status; the last call counts.
  void response_status(int status);
  // Response body bytes in order, in any split.
  void response_body(std::string_view piece);

  // May be called at any time; final after the last piece. Zero for a status
  // that is not 2xx (or none). See README.md for the rules.
  Usage result() const;
  // Bytes of answer text delivered so far in a stream: content, reasoning,
  // tool-call arguments, thinking. Always 0 for a non-stream answer.
  uint64_t content_bytes() const noexcept { return content_bytes_; }

 private:
  struct Capture;  // the scanner's handler: copies the top-level "usage" value

  void on_event(std::string_view data);
  Usage estimate(uint64_t output) const;

  Api api_;
  bool stream_;
  int status_ = 0;
  uint64_t request_bytes_ = 0;
  uint64_t response_bytes_ = 0;
  uint64_t content_bytes_ = 0;

  // Non-stream: the JSON scanner and the usage value being copied.
  JsonScanner scanner_{{"usage"}, 1};
  bool top_object_ = false;
  bool capturing_ = false;
  bool capture_over_ = false;  // the value went over kMaxUsageBytes
  uint64_t capture_start_ = 0;
  std::string capture_;
  std::optional<Usage> body_usage_;

  // Stream: events; chat keeps the last valid usage, messages the parts.
  SseParser sse_;
  std::optional<Usage> chunk_usage_;
  bool start_seen_ = false;
  bool delta_seen_ = false;
  uint64_t input_ = 0;        // input_tokens
  uint64_t cache_write_ = 0;  // cache_creation_input_tokens
  uint64_t cache_read_ = 0;   // cache_read_input_tokens
  uint64_t start_output_ = 0;
  uint64_t delta_output_ = 0;
};

}  // namespace tg::billing
