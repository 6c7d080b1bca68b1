// Flat config files (`key = value` lines in `[type name]` sections) checked
// against a strict schema table: one row per key with type, range and default.
// Parsing collects every error with file and line; a parsed Config holds only
// validated values, so its getters cannot fail. Secret values are kept in
// tg::Secret and never appear in an error message. No I/O except load().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/core/secret.h"

namespace tg::config {

inline constexpr size_t kMaxFileBytes = 1024 * 1024;
inline constexpr size_t kMaxLineBytes = 4096;        // excluding the newline
inline constexpr size_t kMaxSections = 1024;
inline constexpr size_t kMaxKeysPerSection = 256;    // key lines per section
inline constexpr size_t kMaxNameBytes = 64;          // section names
inline constexpr size_t kMaxDiagnostics = 100;       // then "too many errors", parse stops
inline constexpr size_t kMaxEchoBytes = 64;          // of offending input in a message

enum class Type {
  string,    // any UTF-8; empty only if the default is ""
  integer,   // decimal int64, optional sign, checked against [min, max]
  boolean,   // true/false, yes/no, on/off, 1/0
  duration,  // integer + unit ms|s|m|h ("0" alone allowed); milliseconds, [min, max]
  size,      // integer bytes, optional unit KiB|MiB|GiB; bytes, [min, max]
  choice,    // one of `choices` ("a|b|c")
  secret,    // string held in a tg::Secret, never echoed; empty only if the default is ""
};

// One schema row. `min`/`max` (inclusive) apply to integer, duration (ms) and
// size (bytes) and must be given for them: the 0..0 default admits only 0.
struct Key {
  const char* name;
  Type type;
  const char* default_value;  // nullptr: the key is required
  int64_t min = 0;
  int64_t max = 0;
  const char* choices = nullptr;  // Type::choice only
  const char* help = nullptr;
};

// One section type. type "" is the global section (keys before any header).
// An unnamed non-repeatable section always exists in a parsed Config, with
// defaults, even if the file omits its header (then its line() is 0).
struct SectionRule {
  const char* type;
  bool named;       // header is [type name]
  bool repeatable;  // may appear more than once (named: with distinct names)
  std::vector<Key> keys;
};

struct Schema {
  std::vector<SectionRule> sections;
};

class Section {
 public:
  const std::string& type() const noexcept { return type_; }  // "" for global
  const std::string& name() const noexcept { return name_; }  // "" if unnamed
  int line() const noexcept { return line_; }                 // header line, 0 if none

  // Each getter aborts if `key` is not in this section's schema or has another
  // type: that is a programming error, never an input error.
  std::string_view str(std::string_view key) const;  // string or choice
  int64_t integer(std::string_view key) const;
  bool boolean(std::string_view key) const;
  uint64_t duration_ms(std::string_view key) const;
  uint64_t size(std::string_view key) const;
  // Valid while the Config lives; copy with Secret(s.reveal()) to keep it longer.
  const Secret& secret(std::string_view key) const;
  // True if the file wrote the key (false: the default applies).
  bool is_set(std::string_view key) const;
  int line_of(std::string_view key) const;  // 0 if not written

  // "[provider openai-main]", "[limits]" or "global section".
  std::string label() const;

 private:
  friend class Parser;
  struct Value {
    std::string name;
    Type type;
    bool set = false;
    int line = 0;
    std::string text;  // string, choice
    int64_t number = 0;  // integer, boolean (0/1), duration (ms), size (bytes)
    Secret secret;
  };
  const Value& find(std::string_view key, Type a, Type b) const;

  std::string type_;
  std::string name_;
  int line_ = 0;
  std::vector<Value> values_;  // one per schema key, in schema order
};

class Config {
 public:
  const std::string& file() const noexcept { return file_; }
  // Aborts if the schema has no global section.
  const Section& global() const;
  // Every section of `type`, in file order.
  std::vector<const Section*> sections(std::string_view type) const;
  // The section with this type and name ("" for unnamed), or nullptr.
  const Section* section(std::string_view type, std::string_view name = "") const;
  // "agent.conf:12" (where `key` was written, else the section header), or
  // "agent.conf" if neither has a line; for the caller's cross-field errors.
  std::string where(const Section& section, std::string_view key) const;
  // A cross-field error placed like where(): at `key`'s line, else the section's.
  struct Diagnostic diagnostic(const Section& section, std::string_view key,
                               std::string message) const;
  // `path` as written in this file: absolute stays, relative is taken from
  // the directory the file is in ("" stays "").
  std::string resolve_path(std::string_view path) const;

 private:
  friend class Parser;
  std::string file_;
  std::vector<Section> sections_;  // global first (if in the schema), then file order
};

struct Diagnostic {
  std::string file;
  int line = 0;  // 0: the error concerns the whole file
  std::string message;
  // "agent.conf:12: max_parallel must be 1..256, got 0" ("agent.conf: ..." if line is 0).
  std::string to_string() const;
};

// Exactly one of: config set and errors empty, or config empty and errors non-empty.
struct ParseResult {
  std::optional<Config> config;
  std::vector<Diagnostic> errors;
};

// `file_name` only labels diagnostics. The schema must be valid (defaults
// within range); a bad default is reported as a diagnostic on line 0.
ParseResult parse(std::string_view text, const std::string& file_name, const Schema& schema);
// Reads `path` (at most kMaxFileBytes) and parses it; read errors are a
// Diagnostic with line 0. The file buffer is wiped after parsing.
ParseResult load(const std::string& path, const Schema& schema);

}  // namespace tg::config
