// The hub's side of OpenAI streaming usage: it asks the vendor for the usage
// chunk (stream_options.include_usage) when the user did not, and then keeps
// that chunk from the user. Byte-exact edits: the request body is patched in
// place, never re-serialised, and the answer passes through unchanged except
// for the dropped events. No I/O.
#pragma once

#include <string>
#include <string_view>

#include "shared/billing/sse.h"
#include "shared/core/status.h"

namespace tg::billing {

// For an OpenAI chat request with "stream": true. Returns the body to send
// upstream and sets *injected:
// - top-level stream_options.include_usage already `true`: the body
//   unchanged, *injected = false;
// - otherwise *injected = true and the body with include_usage set to true:
//   its value replaced if present, else `"include_usage":true` added at the
//   end of stream_options, else `"stream_options":{"include_usage":true}`
//   added at the end of the top-level object.
// Every other byte stays as the user sent it. Errors: Errc::parse for
// invalid JSON or a top level that is not an object, Errc::limit for nesting
// deeper than kMaxJsonDepth, Errc::invalid_argument if stream_options is not
// an object or a key the edit depends on (stream_options, its include_usage)
// appears twice. O(body), one copy of the body.
Result<std::string> inject_include_usage(std::string_view body, bool* injected);

// Whether SSE event data is the usage-only chunk: a JSON object whose
// "choices" is an empty array and whose "usage" is present and not null.
bool is_usage_only_chunk(std::string_view data);

// Passes an SSE byte stream through, dropping the usage-only chunk events
// (the whole event: its lines and its blank line). Complete events are
// forwarded at once; only an incomplete trailing event is held back, at most
// kMaxSseLine bytes: an event longer than that is forwarded as it comes,
// unfiltered. Splits do not change the output.
class UsageChunkFilter {
 public:
  // Appends the bytes to forward now to *out.
  void feed(std::string_view piece, std::string* out);
  // End of stream: appends whatever is still held (an unfinished event).
  void finish(std::string* out);

  uint64_t dropped() const noexcept { return dropped_; }  // events dropped so far

 private:
  SseParser sse_;
  std::string held_;          // the current event's bytes, while it may still be dropped
  bool passthrough_ = false;  // the current event went over the limit: forward as it comes
  bool after_cr_ = false;     // the last event ended with \r: a \n now belongs to it
  bool last_dropped_ = false;
  uint64_t dropped_ = 0;
};

}  // namespace tg::billing
