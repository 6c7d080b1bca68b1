// Strict UTF-8 validation (RFC 3629) for WebSocket text messages and close
// reasons: rejects overlong forms, surrogates and code points above U+10FFFF.
// Incremental, so a text message split over frames can fail early. Pure code.
#pragma once

#include <cstdint>
#include <string_view>

namespace tg::ws {

class Utf8Validator {
 public:
  // Feeds the next bytes; false as soon as the input cannot be UTF-8 (sticky).
  bool feed(std::string_view bytes) noexcept;
  // True if everything fed so far is valid and ends on a character boundary.
  bool complete() const noexcept { return !bad_ && need_ == 0; }
  void reset() noexcept { *this = Utf8Validator(); }

 private:
  uint32_t need_ = 0;   // continuation bytes still expected
  uint8_t lo_ = 0x80;   // allowed range of the next continuation byte
  uint8_t hi_ = 0xBF;
  bool bad_ = false;
};

// Whole-buffer check.
bool is_valid_utf8(std::string_view bytes) noexcept;

}  // namespace tg::ws
