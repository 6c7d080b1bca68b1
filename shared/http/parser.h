// HTTP/1.1 message parser over llhttp: pure (no I/O, no loop), pull-style,
// fuzzable. It returns one event per step (head, body piece, message end) and
// never buffers a body: body pieces are views into the caller's input. Every
// input has a limit; over a limit is an error with a defined HTTP status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "shared/core/status.h"
#include "shared/http/message.h"

namespace tg::http {

struct ParserLimits {
  static constexpr size_t kDefaultHeadBytes = 16 * 1024;
  static constexpr size_t kDefaultHeaderCount = 64;
  static constexpr size_t kDefaultUrlBytes = 8 * 1024;

  // Raw bytes of the head: start line, header fields, every CRLF, and any
  // empty lines before the start line. Trailer fields count against it too.
  size_t head_bytes = kDefaultHeadBytes;
  // Header fields in the head (and, separately, in the trailer section).
  size_t header_count = kDefaultHeaderCount;
  // Request target length (request mode).
  size_t url_bytes = kDefaultUrlBytes;
  // Decoded body bytes of one message; 0 = unlimited.
  uint64_t body_bytes = 0;
};

enum class ParseEvent {
  need_more,    // all input consumed; feed more
  head,         // a head is complete: see request_head() / response_head()
  body,         // ParseStep::body holds a piece of the decoded body
  message_end,  // the message is complete (see upgrade() / keep_alive())
};

struct ParseStep {
  ParseEvent event = ParseEvent::need_more;
  // Input bytes used by this step; the caller passes the rest next time.
  size_t consumed = 0;
  // event == body: view into the input given to step().
  std::string_view body;
};

class Parser {
 public:
  enum class Mode { request, response };
  // Where the parser is inside a message.
  enum class Phase {
    idle,      // between messages, nothing of the next one seen
    head,      // reading a head
    body,      // head delivered; reading body (or trailers)
    upgraded,  // the message ended with a protocol switch; the rest is not HTTP
    failed,    // a step returned an error; the parser is dead
  };

  explicit Parser(Mode mode, const ParserLimits& limits = {});
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses from the start of `data` up to the next event. Call it again with
  // the unused rest (even when that is empty) until it returns need_more: a
  // message without body ends without further input. Errors:
  // Errc::parse (malformed), Errc::limit (see error_http_status()), and
  // Errc::protocol after upgrade or failure. On error the parser is dead.
  Result<ParseStep> step(std::string_view data);
  // The input ended (peer EOF). A close-delimited response body in progress
  // ends here: returns message_end. Between messages: need_more. Anywhere
  // else: Errc::closed ("ended inside a message").
  Result<ParseStep> finish();

  // Response mode: the next response answers a HEAD request, so it has no
  // body whatever its framing headers say. Reset after that message.
  void expect_no_body() noexcept { no_body_next_ = true; }

  Phase phase() const noexcept { return phase_; }
  // Valid after a head event until the next message starts.
  const RequestHead& request_head() const noexcept { return request_; }
  RequestHead& request_head() noexcept { return request_; }
  const ResponseHead& response_head() const noexcept { return response_; }
  ResponseHead& response_head() noexcept { return response_; }
  // After a head event: the current message's properties.
  bool keep_alive() const noexcept;
  bool chunked() const noexcept;
  bool has_content_length() const noexcept;
  // Declared Content-Length (0 if absent or chunked).
  uint64_t content_length() const noexcept { return declared_length_; }
  // Request mode: the request carries a body (Content-Length > 0 or chunked).
  bool has_body() const noexcept;
  // After message_end: llhttp saw a protocol switch (request with
  // Connection: upgrade + Upgrade, CONNECT, or a 101 response with both).
  // Further bytes are not HTTP; the caller takes them as leftover.
  bool upgrade() const noexcept { return phase_ == Phase::upgraded; }
  // Body bytes of the current message delivered so far.
  uint64_t body_received() const noexcept { return body_received_; }
  // After an error: the HTTP status a server answers (400, 413, 414, 431, 505).
  int error_http_status() const noexcept { return error_status_; }

 private:
  struct Impl;
  friend struct Impl;
  Status fail(Errc code, int http_status, std::string message);

  std::unique_ptr<Impl> impl_;
  Mode mode_;
  ParserLimits limits_;
  Phase phase_ = Phase::idle;
  RequestHead request_;
  ResponseHead response_;
  // Head accounting and field assembly.
  size_t head_used_ = 0;
  size_t trailer_bytes_ = 0;
  size_t trailer_count_ = 0;
  std::string field_;
  std::string value_;
  uint64_t declared_length_ = 0;
  uint64_t body_received_ = 0;
  bool no_body_next_ = false;
  int error_status_ = 0;
  Status pending_error_;        // set by a callback that refuses input
  std::string_view piece_;      // body piece found by the current step
  ParseEvent event_ = ParseEvent::need_more;
};

}  // namespace tg::http
