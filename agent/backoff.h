// Reconnect delays of the tunnel client: exponential back-off with full jitter
// (attempt n waits a uniform random time in [0, min(max, min * 2^n)]), the
// reset rule, the longer wait after a refusal that will not fix itself, and a
// goaway's exact delay. Pure arithmetic: no clock, no timer, no I/O; the random
// source is injectable so tests are deterministic.
#pragma once

#include <cstdint>
#include <functional>

namespace tg::agent {

struct BackoffSettings {
  uint64_t min_ms = 500;             // ceiling of the first delay
  uint64_t max_ms = 60000;           // ceiling of every delay
  uint64_t reset_after_ms = 60000;   // a registered tunnel up this long starts the back-off over
};

class Backoff {
 public:
  // Returns a uniformly distributed integer in [0, bound] (bound inclusive).
  using Random = std::function<uint64_t(uint64_t bound)>;
  // Attempts beyond this all use the full ceiling; the counter saturates here.
  static constexpr uint32_t kMaxAttempt = 64;

  // `random` empty: libsodium's uniform generator. max_ms below min_ms is
  // raised to min_ms.
  explicit Backoff(BackoffSettings settings, Random random = {});

  // The delay before the next connect attempt, and counts the attempt:
  // uniform in [0, ceiling(attempt())], or exactly the override if one is set.
  uint64_t next();
  // The delay after a refusal the agent cannot fix by retrying (unknown key,
  // revoked, bad enrollment token): uniform in [max/2, max], so a rejected
  // agent does not hammer the hub. Later next() calls stay at the full
  // ceiling until a reset. An override, if set, still wins.
  uint64_t next_rejected();
  // The next delay (one only) is exactly `ms`: a goaway's reconnect_after_ms.
  void override_next(uint64_t ms) noexcept;
  // A tunnel that reached `registered` ended after `up_ms`: the back-off
  // starts over if it stayed up for at least reset_after_ms. Tunnels that
  // never registered must not call this.
  void tunnel_ended(uint64_t up_ms) noexcept;

  // min(max_ms, min_ms * 2^attempt), without overflow for any attempt.
  uint64_t ceiling(uint32_t attempt) const noexcept;
  uint32_t attempt() const noexcept { return attempt_; }
  const BackoffSettings& settings() const noexcept { return settings_; }

 private:
  uint64_t draw(uint64_t bound);

  BackoffSettings settings_;
  Random random_;
  uint32_t attempt_ = 0;
  bool has_override_ = false;
  uint64_t override_ms_ = 0;
};

}  // namespace tg::agent
