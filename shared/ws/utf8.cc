#include "shared/ws/utf8.h"

#include <cstdint>
#include <cstring>

namespace tg::ws {

bool Utf8Validator::feed(std::string_view bytes) noexcept {
  if (bad_) return false;
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end) {
    if (need_ == 0) {
      // Eight ASCII bytes at a time: most of what the tunnel sends as text
      // is ASCII JSON.
      uint64_t word = 0;
      while (end - p >= 8) {
        std::memcpy(&word, p, 8);
        if ((word & 0x8080808080808080ULL) != 0) break;
        p += 8;
      }
      if (p == end) break;
    }
    const auto b = static_cast<uint8_t>(*p++);
    if (need_ == 0) {
      if (b < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        need_ = 2;
        if (b == 0xE0) lo_ = 0xA0;       // no overlong 3-byte forms
        else if (b == 0xED) hi_ = 0x9F;  // no UTF-16 surrogates
      } else if (b >= 0xF0 && b <= 0xF4) {
        need_ = 3;
        if (b == 0xF0) lo_ = 0x90;       // no overlong 4-byte forms
        else if (b == 0xF4) hi_ = 0x8F;  // nothing above U+10FFFF
      } else {
        bad_ = true;  // 0x80-0xC1 (stray continuation, overlong 2-byte), 0xF5-0xFF
        return false;
      }
    } else {
      if (b < lo_ || b > hi_) {
        bad_ = true;
        return false;
      }
      lo_ = 0x80;
      hi_ = 0xBF;
      --need_;
    }
  }
  return true;
}

bool is_valid_utf8(std::string_view bytes) noexcept {
  Utf8Validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace tg::ws
