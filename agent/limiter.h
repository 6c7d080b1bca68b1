// The agent's rate limits per provider key: a request bucket (rpm) and a
// token bucket (tpm) checked before a call goes to the vendor, the AIMD
// adjustment after vendor 429s, the Retry-After parser, and the throttle of
// the `capacity` reports the passthrough sends to the hub. Pure logic over a
// millisecond clock the caller passes in (the loop's); no I/O, no timer, no
// allocation after construction. The rules are written in agent/README.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "shared/core/status.h"

namespace tg::agent {

// A 429 without Retry-After pauses the provider 1 s, doubled per consecutive
// 429 up to 60 s; a Retry-After is honoured up to 1 h.
constexpr uint64_t kFirst429PauseMs = 1000;
constexpr uint64_t kMax429PauseMs = 60000;
constexpr uint64_t kMaxRetryAfterMs = 3600000;
// Longest Retry-After value parsed (an IMF-fixdate is 29 bytes).
constexpr size_t kMaxRetryAfterBytes = 64;
// At most one capacity report per provider per this interval.
constexpr uint64_t kReportIntervalMs = 250;
// A report's ready_in_ms never exceeds this (the tunnel's limit).
constexpr uint64_t kMaxReportReadyMs = 3600000;
// The token bucket's debt never goes below this many minutes of refill.
constexpr uint64_t kMaxDebtMinutes = 60;

// A provider's configured limits; 0 = none.
struct ProviderLimits {
  uint32_t rpm = 0;  // requests per minute, 0..kMaxProviderRpm
  uint64_t tpm = 0;  // tokens per minute, 0..kMaxProviderTpm
};

// Why admit() refused.
enum class Refusal { none, paused, tokens, requests };

struct Admission {
  bool admitted = false;
  Refusal refusal = Refusal::none;
  uint64_t wait_ms = 0;  // refused: until a call would be admitted (>= 1, <= kMaxReportReadyMs)
};

// What a `capacity` message says for one provider.
struct CapacityReport {
  uint64_t ready_in_ms = 0;  // 0: available again
  uint32_t rpm = 0;          // the effective limit; 0: none
};

class Limiter {
 public:
  // One entry per provider, in config order. Buckets start full.
  explicit Limiter(const std::vector<ProviderLimits>& providers);

  size_t size() const noexcept { return st_.size(); }

  // Before a call goes to `provider`'s vendor: admits it (taking one request
  // from the bucket and counting it) unless the provider is paused after a
  // 429, its token bucket is in debt or its request bucket holds less than
  // one request. A refusal, or an admission that leaves the request bucket
  // empty, makes a capacity report due.
  Admission admit(size_t provider, uint64_t now_ms) noexcept;

  // An admitted call ended: its tokens (input + cached + output, as metered)
  // are charged to the token bucket, which may go into debt (down to
  // kMaxDebtMinutes of refill); a 2xx `status` adds 1 rpm back to a lowered
  // limit and ends a run of consecutive 429s.
  void finished(size_t provider, uint64_t now_ms, int status, uint64_t tokens) noexcept;

  // The vendor answered 429 to a call admitted at `admitted_ms`: the
  // effective rpm halves (from the calls of the last 60 s when unlimited)
  // and the provider is paused for `retry_after_ms` (capped at
  // kMaxRetryAfterMs) or, without one, for the back-off of consecutive 429s.
  // A call admitted before the last decrease was sent at the old rate: its
  // 429 neither halves again nor counts as consecutive, and only its
  // Retry-After (if any) may extend the pause. Returns the new ready_in_ms().
  uint64_t throttled(size_t provider, uint64_t now_ms, uint64_t admitted_ms,
                     std::optional<uint64_t> retry_after_ms) noexcept;

  // Milliseconds until admit() would admit a call (0: now), at most
  // kMaxReportReadyMs.
  uint64_t ready_in_ms(size_t provider, uint64_t now_ms) const noexcept;
  // The effective requests per minute (0: unlimited).
  uint32_t effective_rpm(size_t provider) const noexcept { return st_.at(provider).effective; }
  // Whole tokens in the token bucket at `now_ms` (negative: debt); 0 without tpm.
  int64_t tokens(size_t provider, uint64_t now_ms) const noexcept;
  // Calls admitted in the last 60 s (counted in one-second slots).
  uint64_t recent_calls(size_t provider, uint64_t now_ms) const noexcept;

  // The capacity report due for `provider` now, if any: the provider became
  // unavailable since the last report (ready_in_ms > 0), or is available
  // again after a report that said it was not (ready_in_ms 0). Never two
  // within kReportIntervalMs.
  std::optional<CapacityReport> poll_report(size_t provider, uint64_t now_ms) noexcept;
  // When poll_report() may have something for `provider` (a throttled
  // report, or the "available again" one); nullopt when nothing is pending.
  std::optional<uint64_t> next_report_ms(size_t provider, uint64_t now_ms) const noexcept;
  // A new tunnel: the hub knows nothing yet. Providers unavailable now get a
  // report at once; the throttle starts over.
  void reset_reports(uint64_t now_ms) noexcept;

 private:
  // Bucket levels are in units of 1/60000 of a request or token, so that a
  // limit of R per minute refills exactly R units per millisecond.
  static constexpr int64_t kUnit = 60000;

  struct Bucket {
    int64_t level = 0;
    uint64_t at_ms = 0;  // the time `level` was computed for
  };
  struct Slot {
    uint64_t second = 0;
    uint32_t count = 0;
  };
  struct State {
    ProviderLimits limits;
    uint32_t effective = 0;          // requests per minute now; 0 = unlimited
    Bucket requests;                 // used while effective > 0
    Bucket tokens;                   // used while limits.tpm > 0
    uint64_t paused_until_ms = 0;
    bool decreased = false;          // a 429 lowered the rate at least once
    uint64_t last_decrease_ms = 0;
    uint32_t consecutive_429 = 0;
    std::array<Slot, 60> recent{};   // admitted calls per second, last 60 s
    bool want_report = false;        // an event since the last report
    bool announced = false;          // the last report said "not before ..."
    bool reported = false;           // a report went out (the throttle applies)
    uint64_t last_report_ms = 0;
  };

  static int64_t request_capacity(uint32_t rpm) noexcept;
  static int64_t token_capacity(uint64_t tpm) noexcept;
  static int64_t level_at(const Bucket& b, uint64_t rate, int64_t capacity, uint64_t now_ms) noexcept;
  static void settle(Bucket& b, uint64_t rate, int64_t capacity, uint64_t now_ms) noexcept;
  // Waits, each 0 when not the reason.
  uint64_t pause_wait(const State& s, uint64_t now_ms) const noexcept;
  uint64_t token_wait(const State& s, uint64_t now_ms) const noexcept;
  uint64_t request_wait(const State& s, uint64_t now_ms) const noexcept;
  uint64_t recent(const State& s, uint64_t now_ms) const noexcept;
  void set_effective(State& s, uint32_t rpm, uint64_t now_ms) noexcept;

  std::vector<State> st_;
};

// Parses a Retry-After value (RFC 9110 10.2.3): delay-seconds, or an
// HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms) read
// against `now_unix_ms`. Returns the delay in milliseconds, capped at
// kMaxRetryAfterMs; a date in the past is 0. Errors name the value (its
// printable bytes): Errc::limit over kMaxRetryAfterBytes, Errc::parse for
// anything else (empty, a negative or fractional number, a bad date).
Result<uint64_t> parse_retry_after(std::string_view value, int64_t now_unix_ms);

}  // namespace tg::agent
