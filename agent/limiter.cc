#include "agent/limiter.h"

#include <algorithm>
#include <limits>
#include <string>

#include "agent/config.h"
#include "shared/tunnel/messages.h"

namespace tg::agent {

static_assert(kMaxProviderRpm == tunnel::kMaxCapacityRpm, "the rpm key and capacity.rpm share a range");
static_assert(kMaxReportReadyMs == tunnel::kMaxReadyInMs, "reports fit capacity.ready_in_ms");
static_assert(kMaxRetryAfterMs <= kMaxReportReadyMs, "a pause fits a report");

namespace {

// b > 0; a stays far below 2^63 everywhere here.
uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// Clock values are the caller's: never let a sum wrap around.
uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}

}  // namespace

// ---- Limiter ----

Limiter::Limiter(const std::vector<ProviderLimits>& providers) : st_(providers.size()) {
  for (size_t i = 0; i < providers.size(); ++i) {
    State& s = st_[i];
    s.limits.rpm = std::min<uint32_t>(providers[i].rpm, static_cast<uint32_t>(kMaxProviderRpm));
    s.limits.tpm = std::min<uint64_t>(providers[i].tpm, static_cast<uint64_t>(kMaxProviderTpm));
    s.effective = s.limits.rpm;
    if (s.effective > 0) s.requests.level = request_capacity(s.effective);
    if (s.limits.tpm > 0) s.tokens.level = token_capacity(s.limits.tpm);
  }
}

int64_t Limiter::request_capacity(uint32_t rpm) noexcept {
  return std::max<int64_t>(1, rpm / 6) * kUnit;
}

int64_t Limiter::token_capacity(uint64_t tpm) noexcept {
  return std::max<int64_t>(1, static_cast<int64_t>(tpm / 6)) * kUnit;
}

int64_t Limiter::level_at(const Bucket& b, uint64_t rate, int64_t capacity, uint64_t now_ms) noexcept {
  if (now_ms <= b.at_ms || b.level >= capacity || rate == 0) return b.level;
  const uint64_t elapsed = now_ms - b.at_ms;
  const auto need = static_cast<uint64_t>(capacity - b.level);
  if (elapsed >= ceil_div(need, rate)) return capacity;
  return b.level + static_cast<int64_t>(elapsed * rate);  // < need + rate: no overflow
}

void Limiter::settle(Bucket& b, uint64_t rate, int64_t capacity, uint64_t now_ms) noexcept {
  b.level = level_at(b, rate, capacity, now_ms);
  b.at_ms = std::max(b.at_ms, now_ms);
}

uint64_t Limiter::pause_wait(const State& s, uint64_t now_ms) const noexcept {
  return s.paused_until_ms > now_ms ? s.paused_until_ms - now_ms : 0;
}

uint64_t Limiter::token_wait(const State& s, uint64_t now_ms) const noexcept {
  if (s.limits.tpm == 0) return 0;
  const int64_t level = level_at(s.tokens, s.limits.tpm, token_capacity(s.limits.tpm), now_ms);
  return level >= 0 ? 0 : ceil_div(static_cast<uint64_t>(-level), s.limits.tpm);
}

uint64_t Limiter::request_wait(const State& s, uint64_t now_ms) const noexcept {
  if (s.effective == 0) return 0;
  const int64_t level = level_at(s.requests, s.effective, request_capacity(s.effective), now_ms);
  return level >= kUnit ? 0 : ceil_div(static_cast<uint64_t>(kUnit - level), s.effective);
}

uint64_t Limiter::recent(const State& s, uint64_t now_ms) const noexcept {
  const uint64_t second = now_ms / 1000;
  uint64_t n = 0;
  for (const Slot& slot : s.recent) {
    if (slot.count > 0 && slot.second <= second && second - slot.second < s.recent.size()) {
      n += slot.count;
    }
  }
  return n;
}

void Limiter::set_effective(State& s, uint32_t rpm, uint64_t now_ms) noexcept {
  if (rpm == s.effective) return;
  if (rpm > 0) {
    const int64_t capacity = request_capacity(rpm);
    if (s.effective == 0) {
      s.requests.level = capacity;  // from unlimited: full at the new size
      s.requests.at_ms = now_ms;
    } else {
      settle(s.requests, s.effective, request_capacity(s.effective), now_ms);
      s.requests.level = std::min(s.requests.level, capacity);
    }
  }
  s.effective = rpm;
}

Admission Limiter::admit(size_t provider, uint64_t now_ms) noexcept {
  State& s = st_[provider];
  const uint64_t paused = pause_wait(s, now_ms);
  const uint64_t tokens = token_wait(s, now_ms);
  const uint64_t requests = request_wait(s, now_ms);
  Admission a;
  if (paused > 0 || tokens > 0 || requests > 0) {
    const uint64_t wait = std::max({paused, tokens, requests});
    a.wait_ms = std::min(wait, kMaxReportReadyMs);
    a.refusal = wait == paused ? Refusal::paused : wait == tokens ? Refusal::tokens : Refusal::requests;
    s.want_report = true;
    return a;
  }
  if (s.effective > 0) {
    settle(s.requests, s.effective, request_capacity(s.effective), now_ms);
    s.requests.level -= kUnit;
    if (s.requests.level < kUnit) s.want_report = true;  // the bucket ran empty
  }
  const uint64_t second = now_ms / 1000;
  Slot& slot = s.recent[static_cast<size_t>(second % s.recent.size())];
  if (slot.second != second || slot.count == 0) {
    slot.second = second;
    slot.count = 0;
  }
  if (slot.count < std::numeric_limits<uint32_t>::max()) ++slot.count;
  a.admitted = true;
  return a;
}

void Limiter::finished(size_t provider, uint64_t now_ms, int status, uint64_t tokens) noexcept {
  State& s = st_[provider];
  const uint64_t tpm = s.limits.tpm;
  if (tpm > 0 && tokens > 0) {
    settle(s.tokens, tpm, token_capacity(tpm), now_ms);
    const uint64_t charged = std::min<uint64_t>(tokens, tpm * (kMaxDebtMinutes + 1));
    const int64_t floor = -static_cast<int64_t>(tpm * kMaxDebtMinutes) * kUnit;
    const bool was_free = s.tokens.level >= 0;
    s.tokens.level = std::max(floor, s.tokens.level - static_cast<int64_t>(charged) * kUnit);
    if (was_free && s.tokens.level < 0) s.want_report = true;
  }
  if (status < 200 || status > 299) return;
  s.consecutive_429 = 0;
  if (s.effective == 0 || s.effective == s.limits.rpm) return;  // not lowered
  if (s.limits.rpm > 0) {
    set_effective(s, std::min(s.limits.rpm, s.effective + 1), now_ms);
  } else if (s.effective + 1ull > 2 * recent(s, now_ms)) {
    set_effective(s, 0, now_ms);  // well above the traffic: unlimited again
  } else {
    set_effective(s, s.effective + 1, now_ms);
  }
}

uint64_t Limiter::throttled(size_t provider, uint64_t now_ms, uint64_t admitted_ms,
                            std::optional<uint64_t> retry_after_ms) noexcept {
  State& s = st_[provider];
  const bool fresh = !s.decreased || admitted_ms > s.last_decrease_ms;
  if (fresh) {
    const uint64_t base = s.effective > 0 ? s.effective : std::max<uint64_t>(1, recent(s, now_ms));
    const uint64_t halved = std::clamp<uint64_t>(base / 2, 1, static_cast<uint64_t>(kMaxProviderRpm));
    set_effective(s, static_cast<uint32_t>(halved), now_ms);
    s.decreased = true;
    s.last_decrease_ms = now_ms;
    if (s.consecutive_429 < 32) ++s.consecutive_429;
  }
  uint64_t pause = 0;
  if (retry_after_ms) {
    pause = std::min(*retry_after_ms, kMaxRetryAfterMs);
  } else if (fresh) {  // a stale 429 without Retry-After adds nothing to the pause it caused
    const uint32_t n = std::max<uint32_t>(1, s.consecutive_429);
    pause = n > 7 ? kMax429PauseMs : std::min(kMax429PauseMs, kFirst429PauseMs << (n - 1));
  }
  s.paused_until_ms = std::max(s.paused_until_ms, sat_add(now_ms, pause));
  s.want_report = true;
  return ready_in_ms(provider, now_ms);
}

uint64_t Limiter::ready_in_ms(size_t provider, uint64_t now_ms) const noexcept {
  const State& s = st_[provider];
  const uint64_t wait = std::max({pause_wait(s, now_ms), token_wait(s, now_ms), request_wait(s, now_ms)});
  return std::min(wait, kMaxReportReadyMs);
}

int64_t Limiter::tokens(size_t provider, uint64_t now_ms) const noexcept {
  const State& s = st_[provider];
  if (s.limits.tpm == 0) return 0;
  const int64_t level = level_at(s.tokens, s.limits.tpm, token_capacity(s.limits.tpm), now_ms);
  return level >= 0 ? level / kUnit : -((-level + kUnit - 1) / kUnit);
}

uint64_t Limiter::recent_calls(size_t provider, uint64_t now_ms) const noexcept {
  return recent(st_[provider], now_ms);
}

std::optional<CapacityReport> Limiter::poll_report(size_t provider, uint64_t now_ms) noexcept {
  State& s = st_[provider];
  if (s.reported && now_ms < sat_add(s.last_report_ms, kReportIntervalMs)) return std::nullopt;
  const uint64_t ready = ready_in_ms(provider, now_ms);
  std::optional<CapacityReport> out;
  if (ready > 0 && s.want_report) {
    out = CapacityReport{ready, s.effective};
    s.announced = true;
  } else if (ready == 0 && s.announced) {
    out = CapacityReport{0, s.effective};
    s.announced = false;
  }
  s.want_report = false;
  if (out) {
    s.reported = true;
    s.last_report_ms = now_ms;
  }
  return out;
}

std::optional<uint64_t> Limiter::next_report_ms(size_t provider, uint64_t now_ms) const noexcept {
  const State& s = st_[provider];
  if (!s.want_report && !s.announced) return std::nullopt;
  const uint64_t earliest =
      s.reported ? std::max(now_ms, sat_add(s.last_report_ms, kReportIntervalMs)) : now_ms;
  if (s.want_report) return earliest;
  return std::max(earliest, sat_add(now_ms, ready_in_ms(provider, now_ms)));
}

void Limiter::reset_reports(uint64_t now_ms) noexcept {
  for (size_t i = 0; i < st_.size(); ++i) {
    State& s = st_[i];
    s.announced = false;
    s.reported = false;
    s.last_report_ms = 0;
    s.want_report = ready_in_ms(i, now_ms) > 0;
  }
}

// ---- Retry-After ----

namespace {

constexpr const char* kDayNames[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr const char* kLongDayNames[] = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};
constexpr const char* kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The value for an error message: printable ASCII, others as '?'.
std::string shown(std::string_view v) {
  std::string out(v.substr(0, kMaxRetryAfterBytes));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

// Reads a date left to right; every step either matches and advances or
// leaves the position alone. Case-sensitive, as RFC 9110 writes the names.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool lit(std::string_view t) {
    if (s_.substr(i_, t.size()) != t) return false;
    i_ += t.size();
    return true;
  }
  bool digits(size_t n, int* out) {
    if (s_.size() - i_ < n) return false;
    int v = 0;
    for (size_t k = 0; k < n; ++k) {
      if (!is_digit(s_[i_ + k])) return false;
      v = v * 10 + (s_[i_ + k] - '0');
    }
    i_ += n;
    *out = v;
    return true;
  }
  template <size_t N>
  bool name(const char* const (&names)[N], int* index) {
    for (size_t k = 0; k < N; ++k) {
      if (lit(names[k])) {
        *index = static_cast<int>(k);
        return true;
      }
    }
    return false;
  }
  bool done() const { return i_ == s_.size(); }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

struct Civil {
  int year = 0;
  int month = 0;  // 1..12
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

bool time_of_day(Cursor& c, Civil* t) {
  return c.digits(2, &t->hour) && c.lit(":") && c.digits(2, &t->minute) && c.lit(":") &&
         c.digits(2, &t->second);
}

bool month(Cursor& c, Civil* t) {
  int m = 0;
  if (!c.name(kMonthNames, &m)) return false;
  t->month = m + 1;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12).
int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// The year of a day count since 1970-01-01.
int64_t year_of_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  return yoe + era * 400 + (mp >= 10 ? 1 : 0);
}

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
bool imf_fixdate(std::string_view v, Civil* t) {
  Cursor c(v);
  int dow = 0;
  return c.name(kDayNames, &dow) && c.lit(", ") && c.digits(2, &t->day) && c.lit(" ") && month(c, t) &&
         c.lit(" ") && c.digits(4, &t->year) && c.lit(" ") && time_of_day(c, t) && c.lit(" GMT") &&
         c.done();
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year more
// than 50 years ahead of now is the most recent past year with those digits.
bool rfc850_date(std::string_view v, int64_t now_year, Civil* t) {
  Cursor c(v);
  int dow = 0;
  int yy = 0;
  if (!(c.name(kLongDayNames, &dow) && c.lit(", ") && c.digits(2, &t->day) && c.lit("-") &&
        month(c, t) && c.lit("-") && c.digits(2, &yy) && c.lit(" ") && time_of_day(c, t) &&
        c.lit(" GMT") && c.done())) {
    return false;
  }
  int64_t year = now_year / 100 * 100 + yy;
  if (year > now_year + 50) year -= 100;
  t->year = static_cast<int>(year);
  return true;
}

// asctime-date: "Sun Nov  6 08:49:37 1994".
bool asctime_date(std::string_view v, Civil* t) {
  Cursor c(v);
  int dow = 0;
  return c.name(kDayNames, &dow) && c.lit(" ") && month(c, t) && c.lit(" ") &&
         (c.digits(2, &t->day) || (c.lit(" ") && c.digits(1, &t->day))) && c.lit(" ") &&
         time_of_day(c, t) && c.lit(" ") && c.digits(4, &t->year) && c.done();
}

bool valid(const Civil& t) {
  return t.month >= 1 && t.month <= 12 && t.day >= 1 && t.day <= days_in_month(t.year, t.month) &&
         t.hour <= 23 && t.minute <= 59 && t.second <= 60;  // 60: a leap second
}

}  // namespace

Result<uint64_t> parse_retry_after(std::string_view value, int64_t now_unix_ms) {
  if (value.size() > kMaxRetryAfterBytes) {
    return error(Errc::limit, "Retry-After: " + std::to_string(value.size()) +
                                  " bytes, over the limit of " + std::to_string(kMaxRetryAfterBytes));
  }
  std::string_view v = value;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return error(Errc::parse, "Retry-After: empty value");
  if (std::all_of(v.begin(), v.end(), is_digit)) {
    // delay-seconds; ten digits already exceed any cap.
    if (v.size() > 10) return kMaxRetryAfterMs;
    uint64_t seconds = 0;
    for (char c : v) seconds = seconds * 10 + static_cast<uint64_t>(c - '0');
    return std::min(seconds * 1000, kMaxRetryAfterMs);
  }
  // A wall clock beyond +-31000 years is as good as that far: keeps the
  // arithmetic below far from overflowing.
  constexpr int64_t kFarMs = 1000000000000000;
  const int64_t now_ms = std::clamp(now_unix_ms, -kFarMs, kFarMs);
  const int64_t now_days = (now_ms >= 0 ? now_ms : now_ms - 86399999) / 86400000;
  Civil t;
  bool matched = imf_fixdate(v, &t);
  if (!matched) matched = rfc850_date(v, year_of_days(now_days), &(t = Civil{}));
  if (!matched) matched = asctime_date(v, &(t = Civil{}));
  if (!matched) {
    return error(Errc::parse, "Retry-After \"" + shown(value) +
                                  "\": neither delay-seconds nor an HTTP-date");
  }
  if (!valid(t)) {
    return error(Errc::parse, "Retry-After \"" + shown(value) + "\": not a valid date and time");
  }
  const int64_t at_ms =
      (days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 + t.minute * 60 + t.second) * 1000;
  if (at_ms <= now_ms) return uint64_t{0};
  return std::min(static_cast<uint64_t>(at_ms - now_ms), kMaxRetryAfterMs);
}

}  // namespace tg::agent
