// Levelled single-line logging to stderr: "<UTC time> <LEVEL> <component>: <message>".
// Control characters in messages are escaped so a peer cannot forge log lines.
// Logs carry metadata and hashes, never prompt text or secrets (see secret.h).
#pragma once

#include <cstdarg>

namespace tg::log {

enum class Level { debug = 0, info, warn, error, off };

void set_level(Level level) noexcept;
Level level() noexcept;
inline bool enabled(Level l) noexcept { return l >= level(); }
// Parses "debug|info|warn|error|off"; false if the name is unknown.
bool parse_level(const char* name, Level* out) noexcept;

// Redirects output (tests); nullptr restores stderr. The sink gets one
// complete line without the trailing newline.
using Sink = void (*)(Level, const char* line, void* user);
void set_sink(Sink sink, void* user) noexcept;

void write(Level level, const char* component, const char* fmt, ...) noexcept
    __attribute__((format(printf, 3, 4)));
void vwrite(Level level, const char* component, const char* fmt, va_list ap) noexcept
    __attribute__((format(printf, 3, 0)));

}  // namespace tg::log

// Arguments are evaluated only when the level is enabled.
#define TG_LOG(lvl, component, ...)                                   \
  do {                                                                \
    if (::tg::log::enabled(lvl)) ::tg::log::write(lvl, component, __VA_ARGS__); \
  } while (0)
#define TG_DEBUG(component, ...) TG_LOG(::tg::log::Level::debug, component, __VA_ARGS__)
#define TG_INFO(component, ...) TG_LOG(::tg::log::Level::info, component, __VA_ARGS__)
#define TG_WARN(component, ...) TG_LOG(::tg::log::Level::warn, component, __VA_ARGS__)
#define TG_ERROR(component, ...) TG_LOG(::tg::log::Level::error, component, __VA_ARGS__)
