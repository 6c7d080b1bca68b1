// Zeroing a buffer that held a secret (a vendor key, a user's token, a
// private key) before it is reused or freed. Header-only: it needs libsodium
// (sodium_memzero, which the compiler cannot drop as a dead store), not
// tg_crypto.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <string>
#include <string_view>

namespace tg::crypto {

// Zeroes every byte `s` owns (its whole capacity, not only its size), then
// empties it; the capacity stays.
inline void wipe(std::string* s) noexcept {
  if (s->capacity() > 0) sodium_memzero(s->data(), s->capacity());
  s->clear();
}

// Makes room for at least `capacity` bytes in `s` without leaving a copy
// behind: where std::string would move its bytes to a larger buffer and free
// the old one as it is, this zeroes the old one first. For a buffer that
// grows while it holds a secret.
inline void reserve_wiped(std::string* s, size_t capacity) {
  if (capacity <= s->capacity()) return;
  std::string bigger;
  bigger.reserve(capacity);
  bigger.append(*s);
  wipe(s);
  s->swap(bigger);
}

// Appends `more` to `s` the same way; when `s` must grow, its capacity at
// least doubles, as std::string's would.
inline void append_wiped(std::string* s, std::string_view more) {
  if (s->size() + more.size() > s->capacity()) {
    reserve_wiped(s, std::max(s->size() + more.size(), 2 * s->capacity()));
  }
  s->append(more);
}

}  // namespace tg::crypto
