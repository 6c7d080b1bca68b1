// Per-token request and token limits on the user API, with GCRA (the generic
// cell rate algorithm): each token has a theoretical arrival time per limit;
// a request is admitted while that time is at most `burst` intervals ahead
// of now, and pushes it one interval (requests) or n intervals (tokens, once
// the usage is known) further. No per-minute window, so no cliff at a minute
// boundary: capacity comes back continuously. Tokens per minute are charged
// after the answer (the usage is known only then), so one long answer may
// put a token in debt; it then waits until the debt is paid. Pure logic over
// loop milliseconds; bounded memory (least recently used tokens forgotten).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

namespace tg::hub {

// Tokens whose state is kept; the least recently used one is forgotten
// beyond (it starts again with a full burst: generous, never wrong).
constexpr size_t kMaxLimitedTokens = 100000;
// A limit lets this many seconds of its rate through at once.
constexpr int64_t kBurstSeconds = 10;

struct Limits {
  uint64_t rpm = 0;  // requests per minute; 0 = no limit
  uint64_t tpm = 0;  // tokens (input + output) per minute; 0 = no limit
};

// One GCRA limit over microseconds.
class Gcra {
 public:
  // `per_minute` > 0.
  explicit Gcra(uint64_t per_minute);
  // Admitted now? (at most `burst` intervals of debt ahead of `now_us`)
  bool conforms(int64_t now_us) const noexcept;
  // Pushes the arrival time by `amount` intervals.
  void charge(int64_t now_us, uint64_t amount) noexcept;
  // Microseconds until conforms() is true again (0 if it is).
  int64_t wait_us(int64_t now_us) const noexcept;
  // Whole units that may still pass at once now.
  uint64_t remaining(int64_t now_us) const noexcept;
  // Microseconds until the limit is back to a full burst.
  int64_t reset_us(int64_t now_us) const noexcept;
  uint64_t per_minute() const noexcept { return per_minute_; }

 private:
  uint64_t per_minute_;
  int64_t interval_us_;  // 60 s / per_minute (at least 1)
  int64_t tolerance_us_;  // (burst - 1) x interval
  int64_t tat_us_ = 0;    // theoretical arrival time
};

struct RateDecision {
  bool allowed = true;
  int64_t retry_after_ms = 0;  // when not allowed
  // For the x-ratelimit-* headers (only for limits that are set).
  std::vector<std::pair<std::string, std::string>> headers;
};

class RateLimiter {
 public:
  // Checks both limits of `token_id` and, when admitted, counts the request.
  RateDecision admit(int64_t token_id, const Limits& limits, uint64_t now_ms);
  // Charges the tokens of an answer to the token's tokens-per-minute limit.
  void charge_tokens(int64_t token_id, const Limits& limits, uint64_t tokens, uint64_t now_ms);
  size_t tracked() const noexcept { return states_.size(); }

 private:
  struct State {
    Limits limits;
    Gcra requests{1};
    Gcra tokens{1};
    std::list<int64_t>::iterator lru;
  };
  State& state_of(int64_t token_id, const Limits& limits);

  std::unordered_map<int64_t, State> states_;
  std::list<int64_t> lru_;  // most recent first
};

// "1s", "6m0s", "250ms": the reset format OpenAI uses in x-ratelimit-reset-*.
std::string reset_text(int64_t us);

}  // namespace tg::hub
