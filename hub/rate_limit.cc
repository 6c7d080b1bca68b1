#include "hub/rate_limit.h"

#include <algorithm>

namespace tg::hub {
namespace {

constexpr int64_t kMinuteUs = 60'000'000;
// Arrival times never run further ahead than this (a day of debt).
constexpr int64_t kMaxAheadUs = 86'400'000'000;

int64_t mul_sat(uint64_t a, int64_t b) {
  int64_t r = 0;
  if (a > static_cast<uint64_t>(kMaxAheadUs) ||
      __builtin_mul_overflow(static_cast<int64_t>(a), b, &r) || r > kMaxAheadUs) {
    return kMaxAheadUs;
  }
  return r;
}

}  // namespace

Gcra::Gcra(uint64_t per_minute)
    : per_minute_(std::max<uint64_t>(per_minute, 1)),
      interval_us_(std::max<int64_t>(kMinuteUs / static_cast<int64_t>(std::min<uint64_t>(
                                                     per_minute_, static_cast<uint64_t>(kMinuteUs))),
                                     1)) {
  const uint64_t burst = std::max<uint64_t>(per_minute_ * kBurstSeconds / 60, 1);
  tolerance_us_ = mul_sat(burst - 1, interval_us_);
}

bool Gcra::conforms(int64_t now_us) const noexcept { return tat_us_ - now_us <= tolerance_us_; }

void Gcra::charge(int64_t now_us, uint64_t amount) noexcept {
  const int64_t base = std::max(tat_us_, now_us);
  tat_us_ = std::min(base + mul_sat(amount, interval_us_), now_us + kMaxAheadUs);
}

int64_t Gcra::wait_us(int64_t now_us) const noexcept {
  return std::max<int64_t>(0, tat_us_ - tolerance_us_ - now_us);
}

uint64_t Gcra::remaining(int64_t now_us) const noexcept {
  const int64_t ahead = std::max<int64_t>(0, tat_us_ - now_us);
  if (ahead > tolerance_us_) return 0;
  return static_cast<uint64_t>((tolerance_us_ - ahead) / interval_us_) + 1;
}

int64_t Gcra::reset_us(int64_t now_us) const noexcept {
  return std::max<int64_t>(0, tat_us_ - now_us);
}

std::string reset_text(int64_t us) {
  if (us < 1000000) return std::to_string((us + 999) / 1000) + "ms";
  const int64_t s = (us + 999999) / 1000000;
  if (s < 60) return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

RateLimiter::State& RateLimiter::state_of(int64_t token_id, const Limits& limits) {
  auto it = states_.find(token_id);
  if (it != states_.end()) {
    State& st = it->second;
    lru_.splice(lru_.begin(), lru_, st.lru);
    // The operator changed the limits: start over with the new rates.
    if (st.limits.rpm != limits.rpm) st.requests = Gcra(limits.rpm);
    if (st.limits.tpm != limits.tpm) st.tokens = Gcra(limits.tpm);
    st.limits = limits;
    return st;
  }
  if (states_.size() >= kMaxLimitedTokens) {
    states_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(token_id);
  State st;
  st.limits = limits;
  st.requests = Gcra(limits.rpm);
  st.tokens = Gcra(limits.tpm);
  st.lru = lru_.begin();
  return states_.emplace(token_id, std::move(st)).first->second;
}

RateDecision RateLimiter::admit(int64_t token_id, const Limits& limits, uint64_t now_ms) {
  RateDecision d;
  if (limits.rpm == 0 && limits.tpm == 0) return d;
  const int64_t now = static_cast<int64_t>(now_ms) * 1000;
  State& st = state_of(token_id, limits);
  const bool requests_ok = limits.rpm == 0 || st.requests.conforms(now);
  const bool tokens_ok = limits.tpm == 0 || st.tokens.conforms(now);
  if (requests_ok && tokens_ok) {
    if (limits.rpm > 0) st.requests.charge(now, 1);
  } else {
    const int64_t wait = std::max(requests_ok ? 0 : st.requests.wait_us(now),
                                  tokens_ok ? 0 : st.tokens.wait_us(now));
    d.allowed = false;
    d.retry_after_ms = std::max<int64_t>((wait + 999) / 1000, 1);
  }
  if (limits.rpm > 0) {
    d.headers.emplace_back("x-ratelimit-limit-requests", std::to_string(limits.rpm));
    d.headers.emplace_back("x-ratelimit-remaining-requests",
                           std::to_string(st.requests.remaining(now)));
    d.headers.emplace_back("x-ratelimit-reset-requests", reset_text(st.requests.reset_us(now)));
  }
  if (limits.tpm > 0) {
    d.headers.emplace_back("x-ratelimit-limit-tokens", std::to_string(limits.tpm));
    d.headers.emplace_back("x-ratelimit-remaining-tokens", std::to_string(st.tokens.remaining(now)));
    d.headers.emplace_back("x-ratelimit-reset-tokens", reset_text(st.tokens.reset_us(now)));
  }
  return d;
}

void RateLimiter::charge_tokens(int64_t token_id, const Limits& limits, uint64_t tokens,
                                uint64_t now_ms) {
  if (limits.tpm == 0 || tokens == 0) return;
  const int64_t now = static_cast<int64_t>(now_ms) * 1000;
  state_of(token_id, limits).tokens.charge(now, tokens);
}

}  // namespace tg::hub
