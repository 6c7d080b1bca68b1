#include "shared/core/log.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <sys/time.h>

namespace tg::log {
namespace {

Level g_level = Level::info;
Sink g_sink = nullptr;
void* g_sink_user = nullptr;

constexpr size_t kMaxLine = 2048;  // longer messages are cut with "..."
constexpr size_t kMaxComponent = 64;  // longer component names are cut

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "DEBUG";
    case Level::info: return "INFO ";
    case Level::warn: return "WARN ";
    case Level::error: return "ERROR";
    case Level::off: break;
  }
  return "?    ";
}

// Copies src into dst escaping control bytes; returns bytes written.
size_t append_escaped(char* dst, size_t cap, const char* src) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (const unsigned char* p = reinterpret_cast<const unsigned char*>(src); *p; ++p) {
    if (*p >= 0x20 && *p != 0x7f) {
      if (n + 1 >= cap) break;
      dst[n++] = static_cast<char>(*p);
    } else {
      if (n + 4 >= cap) break;
      dst[n++] = '\\';
      if (*p == '\n') { dst[n++] = 'n'; continue; }
      if (*p == '\r') { dst[n++] = 'r'; continue; }
      if (*p == '\t') { dst[n++] = 't'; continue; }
      dst[n++] = 'x';
      dst[n++] = hex[*p >> 4];
      dst[n++] = hex[*p & 15];
    }
  }
  dst[n] = '\0';
  return n;
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ " into `out` (25 bytes). The text up to the
// seconds is formatted once per second per thread: a daemon logs a line per
// request, and gmtime_r and snprintf were most of a line's cost.
size_t put_time(char* out, const struct timeval& tv) {
  constexpr size_t kSeconds = 19;  // "YYYY-MM-DDTHH:MM:SS"
  thread_local time_t cached_sec = -1;
  thread_local char cached[48];
  if (tv.tv_sec != cached_sec) {
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_sec = tv.tv_sec;
  }
  std::memcpy(out, cached, kSeconds);
  const int ms = static_cast<int>(tv.tv_usec / 1000);
  out[kSeconds] = '.';
  out[kSeconds + 1] = static_cast<char>('0' + ms / 100);
  out[kSeconds + 2] = static_cast<char>('0' + ms / 10 % 10);
  out[kSeconds + 3] = static_cast<char>('0' + ms % 10);
  out[kSeconds + 4] = 'Z';
  out[kSeconds + 5] = ' ';
  return kSeconds + 6;
}

}  // namespace

void set_level(Level l) noexcept { g_level = l; }
Level level() noexcept { return g_level; }

bool parse_level(const char* name, Level* out) noexcept {
  static const struct { const char* name; Level level; } kLevels[] = {
      {"debug", Level::debug}, {"info", Level::info}, {"warn", Level::warn},
      {"error", Level::error}, {"off", Level::off}};
  for (const auto& l : kLevels) {
    if (std::strcmp(name, l.name) == 0) {
      *out = l.level;
      return true;
    }
  }
  return false;
}

void set_sink(Sink sink, void* user) noexcept {
  g_sink = sink;
  g_sink_user = user;
}

void vwrite(Level l, const char* component, const char* fmt, va_list ap) noexcept {
  char msg[kMaxLine];
  int len = std::vsnprintf(msg, sizeof msg, fmt, ap);
  if (len < 0) std::snprintf(msg, sizeof msg, "(bad log format)");
  if (len >= static_cast<int>(sizeof msg)) std::memcpy(msg + sizeof msg - 4, "...", 4);

  struct timeval tv;
  gettimeofday(&tv, nullptr);
  char line[kMaxLine + 128];
  size_t n = put_time(line, tv);
  const char* level = level_name(l);
  std::memcpy(line + n, level, 5);
  n += 5;
  line[n++] = ' ';
  const size_t component_len = strnlen(component, kMaxComponent);
  std::memcpy(line + n, component, component_len);
  n += component_len;
  line[n++] = ':';
  line[n++] = ' ';
  n += append_escaped(line + n, sizeof line - n, msg);
  if (g_sink) {
    g_sink(l, line, g_sink_user);
    return;
  }
  line[n++] = '\n';
  std::fwrite(line, 1, n, stderr);
}

void write(Level l, const char* component, const char* fmt, ...) noexcept {
  va_list ap;
  va_start(ap, fmt);
  vwrite(l, component, fmt, ap);
  va_end(ap);
}

}  // namespace tg::log
