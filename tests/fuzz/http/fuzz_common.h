// Drives a Parser over fuzz input the way a connection does: the first two
// bytes choose split points, the rest is fed in pieces; every event is
// checked for basic invariants (pieces inside the input, progress made).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "shared/http/parser.h"

namespace tg::http::fuzz {

inline void drive(Parser::Mode mode, const uint8_t* data, size_t size) {
  if (size < 2) return;
  const size_t split = 1 + data[0] % 64;
  const bool head_request = (data[1] & 1) != 0;
  ParserLimits limits;
  limits.head_bytes = 2048;
  limits.header_count = 16;
  limits.url_bytes = 512;
  limits.body_bytes = (data[1] & 2) ? 4096 : 0;
  Parser p(mode, limits);
  if (head_request) p.expect_no_body();
  const std::string input(reinterpret_cast<const char*>(data + 2), size - 2);
  std::string pending;
  size_t pos = 0;
  while (pos < input.size()) {
    const size_t n = std::min(split, input.size() - pos);
    pending.assign(input, pos, n);
    pos += n;
    size_t off = 0;
    for (int guard = 0;; ++guard) {
      if (guard > 100000) std::abort();  // no progress: a hang
      auto r = p.step(std::string_view(pending).substr(off));
      if (!r.ok()) return;
      if (r->consumed > pending.size() - off) std::abort();
      if (r->event == ParseEvent::body) {
        if (r->body.data() < pending.data() ||
            r->body.data() + r->body.size() > pending.data() + pending.size()) {
          std::abort();
        }
      }
      off += r->consumed;
      if (r->event == ParseEvent::head) {
        const size_t fields = mode == Parser::Mode::request ? p.request_head().headers.size()
                                                            : p.response_head().headers.size();
        if (fields > limits.header_count) std::abort();
        if (p.request_head().target.size() > limits.url_bytes) std::abort();
      }
      if (r->event == ParseEvent::message_end && p.upgrade()) return;
      if (r->event == ParseEvent::need_more) {
        if (off != pending.size()) std::abort();
        break;
      }
      if (limits.body_bytes && p.body_received() > limits.body_bytes) std::abort();
    }
  }
  (void)p.finish();
}

}  // namespace tg::http::fuzz
