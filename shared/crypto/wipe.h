// Zeroing a buffer that held a secret (a vendor key, a user's token, a
// private key) before it is reused or freed. Header-only: it needs libsodium
// (sodium_memzero, which the compiler cannot drop as a dead store), not
// tg_crypto.
#pragma once

#include <sodium.h>

#include <string>

namespace tg::crypto {

// Zeroes every byte `s` owns (its whole capacity, not only its size), then
// empties it; the capacity stays.
inline void wipe(std::string* s) noexcept {
  if (s->capacity() > 0) sodium_memzero(s->data(), s->capacity());
  s->clear();
}

}  // namespace tg::crypto
