#include "agent/backoff.h"

#include <sodium.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "shared/crypto/hash.h"

namespace tg::agent {
namespace {

// Uniform in [0, bound] from libsodium (unbiased below 2^32, which covers any
// configurable delay; above it the modulo bias is below 2^-32).
uint64_t sodium_uniform(uint64_t bound) {
  crypto::init();
  if (bound < std::numeric_limits<uint32_t>::max()) {
    return randombytes_uniform(static_cast<uint32_t>(bound + 1));
  }
  uint64_t x = 0;
  randombytes_buf(&x, sizeof x);
  if (bound == std::numeric_limits<uint64_t>::max()) return x;
  return x % (bound + 1);
}

}  // namespace

Backoff::Backoff(BackoffSettings settings, Random random)
    : settings_(settings), random_(std::move(random)) {
  if (settings_.max_ms < settings_.min_ms) settings_.max_ms = settings_.min_ms;
  if (!random_) random_ = sodium_uniform;
}

uint64_t Backoff::ceiling(uint32_t attempt) const noexcept {
  const uint64_t max = settings_.max_ms;
  const uint64_t min = settings_.min_ms;
  if (attempt >= 64 || min > (max >> attempt)) return max;  // min * 2^attempt > max
  return std::min(max, min << attempt);
}

uint64_t Backoff::draw(uint64_t bound) {
  // Clamp what an injected source returns: a delay never exceeds its bound.
  return std::min(random_(bound), bound);
}

uint64_t Backoff::next() {
  const uint64_t bound = ceiling(attempt_);
  if (attempt_ < kMaxAttempt) ++attempt_;
  if (has_override_) {
    has_override_ = false;
    return override_ms_;
  }
  return draw(bound);
}

uint64_t Backoff::next_rejected() {
  attempt_ = kMaxAttempt;
  if (has_override_) {
    has_override_ = false;
    return override_ms_;
  }
  const uint64_t max = settings_.max_ms;
  const uint64_t half = max / 2;
  return half + draw(max - half);
}

void Backoff::override_next(uint64_t ms) noexcept {
  has_override_ = true;
  override_ms_ = ms;
}

void Backoff::tunnel_ended(uint64_t up_ms) noexcept {
  if (up_ms >= settings_.reset_after_ms) attempt_ = 0;
}

}  // namespace tg::agent
