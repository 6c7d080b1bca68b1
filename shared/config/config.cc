#include "shared/config/config.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "shared/crypto/wipe.h"

namespace tg::config {

namespace {

bool is_key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The first offending byte for a key name, or npos.
size_t bad_key_char(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!is_key_char(s[i])) return i;
  }
  return std::string_view::npos;
}

// Quoted, escaped, at most kMaxEchoBytes of input: safe to print anywhere.
std::string echo(std::string_view s) {
  std::string out = "'";
  size_t n = std::min(s.size(), kMaxEchoBytes);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '\'';
  if (s.size() > n) out += "...";
  return out;
}

// Offset of the first byte that is not well-formed UTF-8 (no overlongs, no
// surrogates, at most U+10FFFF), or npos.
size_t utf8_error(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// Levenshtein distance, for "did you mean"; long strings are never close.
size_t edit_distance(std::string_view a, std::string_view b) {
  constexpr size_t kMax = 64;
  if (a.size() > kMax || b.size() > kMax) return std::numeric_limits<size_t>::max();
  size_t row[kMax + 1];
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within distance 2, else "".
template <typename Names>
std::string suggest(std::string_view word, const Names& names) {
  size_t best = 3;
  std::string_view best_name;
  for (std::string_view name : names) {
    if (name.empty()) continue;
    size_t d = edit_distance(word, name);
    if (d < best) {
      best = d;
      best_name = name;
    }
  }
  if (best_name.empty()) return "";
  return " (did you mean '" + std::string(best_name) + "'?)";
}

enum class IntParse { ok, not_number, overflow };

// Decimal digits with an optional sign (if `allow_sign`); nothing else.
IntParse parse_int64(std::string_view s, bool allow_sign, int64_t* out) {
  bool negative = false;
  if (allow_sign && !s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return IntParse::not_number;
  uint64_t limit = negative ? uint64_t{1} << 63 : static_cast<uint64_t>(INT64_MAX);
  uint64_t v = 0;
  bool overflow = false;
  for (char c : s) {
    if (c < '0' || c > '9') return IntParse::not_number;
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (limit - d) / 10) overflow = true;  // keep scanning: a letter wins
    if (!overflow) v = v * 10 + d;
  }
  if (overflow) return IntParse::overflow;
  if (negative) {
    *out = v == (uint64_t{1} << 63) ? INT64_MIN : -static_cast<int64_t>(v);
  } else {
    *out = static_cast<int64_t>(v);
  }
  return IntParse::ok;
}

struct Unit {
  const char* suffix;
  int64_t factor;
};
constexpr Unit kDurationUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
constexpr Unit kSizeUnits[] = {{"", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024},
                               {"GiB", 1024 * 1024 * 1024}};

// "<digits><unit>" with a unit from `units`; false if malformed or overflowing.
template <size_t N>
bool parse_with_unit(std::string_view s, const Unit (&units)[N], int64_t* out) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0) return false;
  std::string_view suffix = s.substr(digits);
  int64_t n = 0;
  if (parse_int64(s.substr(0, digits), false, &n) != IntParse::ok) return false;
  for (const Unit& u : units) {
    if (suffix == u.suffix) {
      if (n > INT64_MAX / u.factor) return false;
      *out = n * u.factor;
      return true;
    }
  }
  return false;
}

// The largest unit that divides `v` exactly: 90000 -> "90s", 120000 -> "2m".
template <size_t N>
std::string format_with_unit(int64_t v, const Unit (&units)[N], const char* bare_suffix) {
  for (size_t i = N; i-- > 0;) {
    const Unit& u = units[i];
    if (u.factor > 1 && v != 0 && v % u.factor == 0) {
      return std::to_string(v / u.factor) + u.suffix;
    }
  }
  return std::to_string(v) + bare_suffix;
}

std::string format_duration(int64_t ms) {
  if (ms == 0) return "0";
  return format_with_unit(ms, kDurationUnits, "ms");
}
std::string format_size(int64_t bytes) { return format_with_unit(bytes, kSizeUnits, ""); }

std::string range_text(const Key& k) {
  switch (k.type) {
    case Type::duration: return format_duration(k.min) + ".." + format_duration(k.max);
    case Type::size: return format_size(k.min) + ".." + format_size(k.max);
    default: return std::to_string(k.min) + ".." + std::to_string(k.max);
  }
}

bool in_choices(std::string_view value, std::string_view choices) {
  while (true) {
    size_t bar = choices.find('|');
    if (choices.substr(0, bar) == value) return true;
    if (bar == std::string_view::npos) return false;
    choices.remove_prefix(bar + 1);
  }
}

}  // namespace

// ---- Section / Config getters --------------------------------------------

const Section::Value& Section::find(std::string_view key, Type a, Type b) const {
  for (const Value& v : values_) {
    if (v.name == key) {
      if (v.type == a || v.type == b) return v;
      break;
    }
  }
  std::fprintf(stderr, "tg::config: programming error: %s has no key '%.*s' of the asked type\n",
               label().c_str(), static_cast<int>(key.size()), key.data());
  std::abort();
}

std::string_view Section::str(std::string_view key) const {
  return find(key, Type::string, Type::choice).text;
}
int64_t Section::integer(std::string_view key) const {
  return find(key, Type::integer, Type::integer).number;
}
bool Section::boolean(std::string_view key) const {
  return find(key, Type::boolean, Type::boolean).number != 0;
}
uint64_t Section::duration_ms(std::string_view key) const {
  return static_cast<uint64_t>(find(key, Type::duration, Type::duration).number);
}
uint64_t Section::size(std::string_view key) const {
  return static_cast<uint64_t>(find(key, Type::size, Type::size).number);
}
const Secret& Section::secret(std::string_view key) const {
  return find(key, Type::secret, Type::secret).secret;
}

bool Section::is_set(std::string_view key) const {
  for (const Value& v : values_) {
    if (v.name == key) return v.set;
  }
  std::fprintf(stderr, "tg::config: programming error: %s has no key '%.*s'\n",
               label().c_str(), static_cast<int>(key.size()), key.data());
  std::abort();
}

int Section::line_of(std::string_view key) const {
  for (const Value& v : values_) {
    if (v.name == key) return v.set ? v.line : 0;
  }
  std::fprintf(stderr, "tg::config: programming error: %s has no key '%.*s'\n",
               label().c_str(), static_cast<int>(key.size()), key.data());
  std::abort();
}

std::string Section::label() const {
  if (type_.empty()) return "global section";
  return "[" + type_ + (name_.empty() ? "" : " " + name_) + "]";
}

const Section& Config::global() const {
  for (const Section& s : sections_) {
    if (s.type().empty()) return s;
  }
  std::fprintf(stderr, "tg::config: programming error: the schema has no global section\n");
  std::abort();
}

std::vector<const Section*> Config::sections(std::string_view type) const {
  std::vector<const Section*> out;
  for (const Section& s : sections_) {
    if (s.type() == type) out.push_back(&s);
  }
  return out;
}

const Section* Config::section(std::string_view type, std::string_view name) const {
  for (const Section& s : sections_) {
    if (s.type() == type && s.name() == name) return &s;
  }
  return nullptr;
}

std::string Config::where(const Section& section, std::string_view key) const {
  int line = section.line_of(key);
  if (line == 0) line = section.line();
  if (line == 0) return file_;
  return file_ + ":" + std::to_string(line);
}

Diagnostic Config::diagnostic(const Section& section, std::string_view key,
                              std::string message) const {
  Diagnostic d;
  d.file = file_;
  d.line = section.line_of(key) ? section.line_of(key) : section.line();
  d.message = std::move(message);
  return d;
}

std::string Config::resolve_path(std::string_view path) const {
  if (path.empty() || path[0] == '/') return std::string(path);
  size_t slash = file_.rfind('/');
  if (slash == std::string::npos) return std::string(path);
  return file_.substr(0, slash + 1) + std::string(path);
}

std::string Diagnostic::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

// ---- Parser ----------------------------------------------------------------

class Parser {
 public:
  Parser(const std::string& file, const Schema& schema) : schema_(schema) {
    config_.file_ = file;
    value_.reserve(kMaxLineBytes);  // never reallocates: no stray copies of secrets
  }
  ~Parser() { wipe_value(); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  ParseResult run(std::string_view text);

 private:
  void error(int line, std::string message);
  void handle_line(int line_no, std::string_view line);
  void handle_header(int line_no, std::string_view header);
  void handle_key(int line_no, std::string_view line);
  // Unquotes `raw` into value_; false (and a diagnostic) if the quoting is bad.
  bool unquote(int line_no, std::string_view raw);
  // Converts text to `v`; on failure returns false and sets *why (never
  // containing a secret's value).
  static bool convert(const Key& key, std::string_view text, Section::Value* v, std::string* why);
  size_t add_section(const SectionRule& rule, std::string name, int line);
  void finish();
  void wipe_value() { crypto::wipe(&value_); }

  const Schema& schema_;
  Config config_;
  std::vector<const SectionRule*> rules_;  // parallel to config_.sections_
  std::vector<size_t> key_lines_;          // key lines seen, per section
  std::vector<Diagnostic> errors_;
  bool stop_ = false;
  // Section that key lines go to; none after a bad header (its keys are skipped).
  enum class Target { none_yet, section, skip } target_ = Target::none_yet;
  size_t current_ = 0;
  std::string value_;
};

void Parser::error(int line, std::string message) {
  if (stop_) return;
  if (errors_.size() >= kMaxDiagnostics) {
    errors_.push_back({config_.file_, 0,
                       "too many errors (more than " + std::to_string(kMaxDiagnostics) +
                           "); stopping"});
    stop_ = true;
    return;
  }
  errors_.push_back({config_.file_, line, std::move(message)});
}

size_t Parser::add_section(const SectionRule& rule, std::string name, int line) {
  Section s;
  s.type_ = rule.type;
  s.name_ = std::move(name);
  s.line_ = line;
  s.values_.reserve(rule.keys.size());
  for (const Key& k : rule.keys) {
    Section::Value v;
    v.name = k.name;
    v.type = k.type;
    s.values_.push_back(std::move(v));
  }
  config_.sections_.push_back(std::move(s));
  rules_.push_back(&rule);
  key_lines_.push_back(0);
  return config_.sections_.size() - 1;
}

ParseResult Parser::run(std::string_view text) {
  if (text.size() > kMaxFileBytes) {
    error(0, "file is larger than " + format_size(kMaxFileBytes) + " (" +
                 std::to_string(text.size()) + " bytes)");
    return {std::nullopt, std::move(errors_)};
  }
  for (const SectionRule& rule : schema_.sections) {
    if (rule.type[0] == '\0') {
      current_ = add_section(rule, "", 0);
      target_ = Target::section;
      break;
    }
  }
  if (text.substr(0, 3) == "\xef\xbb\xbf") text.remove_prefix(3);  // UTF-8 BOM

  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size() && !stop_) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.size() > kMaxLineBytes) {
      error(line_no, "line is longer than " + std::to_string(kMaxLineBytes) + " bytes");
      stop_ = true;
      break;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    handle_line(line_no, line);
    wipe_value();
  }
  if (!stop_) finish();
  if (!errors_.empty()) return {std::nullopt, std::move(errors_)};
  return {std::move(config_), {}};
}

void Parser::handle_line(int line_no, std::string_view line) {
  // Line-level errors name a column, never the content: it may hold a secret.
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\0') {
      error(line_no, "NUL byte at column " + std::to_string(i + 1));
      return;
    }
  }
  size_t bad = utf8_error(line);
  if (bad != std::string_view::npos) {
    error(line_no, "invalid UTF-8 at column " + std::to_string(bad + 1));
    return;
  }
  for (size_t i = 0; i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(c));
      error(line_no, std::string("control character ") + buf + " at column " +
                         std::to_string(i + 1));
      return;
    }
  }
  std::string_view t = trim(line);
  if (t.empty() || t[0] == '#' || t[0] == ';') return;
  if (t[0] == '[') {
    handle_header(line_no, t);
  } else {
    handle_key(line_no, t);
  }
}

void Parser::handle_header(int line_no, std::string_view t) {
  target_ = Target::skip;  // until this header proves good
  if (t.size() < 2 || t.back() != ']') {
    error(line_no, "malformed section header (expected '[type]' or '[type name]')");
    return;
  }
  std::string_view inner = trim(t.substr(1, t.size() - 2));
  size_t sp = 0;
  while (sp < inner.size() && !is_space(inner[sp])) ++sp;
  std::string_view type = inner.substr(0, sp);
  std::string_view name = trim(inner.substr(sp));
  if (type.empty()) {
    error(line_no, "malformed section header (expected '[type]' or '[type name]')");
    return;
  }
  if (bad_key_char(type) != std::string_view::npos) {
    error(line_no, "invalid section type " + echo(type) + " (allowed: a-z, 0-9, _)");
    return;
  }
  for (char c : name) {
    if (is_space(c)) {
      error(line_no, "malformed section header (expected '[type]' or '[type name]')");
      return;
    }
  }
  if (name.size() > kMaxNameBytes || !std::all_of(name.begin(), name.end(), is_name_char)) {
    error(line_no, "invalid section name " + echo(name) +
                       " (allowed: A-Z, a-z, 0-9, '.', '_', '-'; at most " +
                       std::to_string(kMaxNameBytes) + " bytes)");
    return;
  }
  const SectionRule* rule = nullptr;
  for (const SectionRule& r : schema_.sections) {
    if (r.type[0] != '\0' && type == r.type) rule = &r;
  }
  if (!rule) {
    std::vector<std::string_view> types;
    for (const SectionRule& r : schema_.sections) types.push_back(r.type);
    error(line_no, "unknown section type " + echo(type) + suggest(type, types));
    return;
  }
  if (rule->named && name.empty()) {
    error(line_no, "section [" + std::string(type) + "] needs a name: [" + std::string(type) +
                       " <name>]");
    return;
  }
  if (!rule->named && !name.empty()) {
    error(line_no, "section [" + std::string(type) + "] takes no name, got " + echo(name));
    return;
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Section& s = config_.sections_[i];
    if (rules_[i] != rule) continue;
    if (rule->named && s.name() == name) {
      error(line_no, "duplicate section " + s.label() + " (first at line " +
                         std::to_string(s.line()) + ")");
      return;
    }
    if (!rule->repeatable) {
      error(line_no, "section [" + std::string(type) + "] may appear only once (first at line " +
                         std::to_string(s.line()) + ")");
      return;
    }
  }
  if (config_.sections_.size() >= kMaxSections) {
    error(line_no, "more than " + std::to_string(kMaxSections) + " sections");
    stop_ = true;
    return;
  }
  current_ = add_section(*rule, std::string(name), line_no);
  target_ = Target::section;
}

void Parser::handle_key(int line_no, std::string_view t) {
  size_t eq = t.find('=');
  if (eq == std::string_view::npos) {
    // Name the leading word only if it looks like a key: the line may be a pasted secret.
    size_t n = 0;
    while (n < t.size() && is_key_char(t[n])) ++n;
    if (n > 0 && n <= kMaxEchoBytes && (n == t.size() || is_space(t[n]))) {
      error(line_no, "malformed line starting with " + echo(t.substr(0, n)) +
                         " (expected 'key = value')");
    } else {
      error(line_no, "malformed line (expected 'key = value', '[section]' or a comment)");
    }
    return;
  }
  std::string_view key = trim(t.substr(0, eq));
  if (key.empty()) {
    error(line_no, "missing key name before '='");
    return;
  }
  size_t bad = bad_key_char(key);
  if (bad != std::string_view::npos) {
    error(line_no, "invalid character " + echo(key.substr(bad, 1)) + " in key name at column " +
                       std::to_string(bad + 1) + " (keys use a-z, 0-9, _)");
    return;
  }
  if (target_ == Target::skip) return;  // the header was bad and already reported
  if (target_ == Target::none_yet) {
    error(line_no, "key " + echo(key) + " before any [section] header");
    return;
  }
  Section& section = config_.sections_[current_];
  if (++key_lines_[current_] > kMaxKeysPerSection) {
    error(line_no, "more than " + std::to_string(kMaxKeysPerSection) + " keys in " +
                       section.label());
    stop_ = true;
    return;
  }
  const SectionRule& rule = *rules_[current_];
  size_t index = 0;
  while (index < rule.keys.size() && key != rule.keys[index].name) ++index;
  if (index == rule.keys.size()) {
    std::vector<std::string_view> names;
    for (const Key& k : rule.keys) names.push_back(k.name);
    error(line_no, "unknown key " + echo(key) + suggest(key, names));
    return;
  }
  Section::Value& v = section.values_[index];
  if (v.line != 0) {
    error(line_no, "duplicate key " + echo(key) + " (first set at line " +
                       std::to_string(v.line) + ")");
    return;
  }
  v.line = line_no;
  if (!unquote(line_no, trim(t.substr(eq + 1)))) return;
  std::string why;
  if (convert(rule.keys[index], value_, &v, &why)) {
    v.set = true;
  } else {
    error(line_no, std::move(why));
  }
}

bool Parser::unquote(int line_no, std::string_view raw) {
  value_.clear();
  if (raw.empty() || raw[0] != '"') {
    value_.append(raw.data(), raw.size());
    return true;
  }
  for (size_t i = 1; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\') {
      if (i + 1 < raw.size() && (raw[i + 1] == '"' || raw[i + 1] == '\\')) {
        value_ += raw[++i];
        continue;
      }
      error(line_no, "bad escape in quoted value at column " + std::to_string(i + 1) +
                         " (only \\\" and \\\\ are allowed)");
      return false;
    }
    if (c == '"') {
      if (i + 1 != raw.size()) {
        error(line_no, "text after the closing quote");
        return false;
      }
      return true;
    }
    value_ += c;
  }
  error(line_no, "unterminated quoted value (missing closing '\"')");
  return false;
}

bool Parser::convert(const Key& key, std::string_view text, Section::Value* v, std::string* why) {
  const std::string name = key.name;
  switch (key.type) {
    case Type::string:
      if (text.empty() && !(key.default_value && key.default_value[0] == '\0')) {
        *why = name + " must not be empty";
        return false;
      }
      v->text.assign(text.data(), text.size());
      return true;
    case Type::secret:
      if (text.empty()) {
        if (key.default_value && key.default_value[0] == '\0') return true;  // optional, unset
        *why = name + " must not be empty";
        return false;
      }
      v->secret = Secret(text);
      return true;
    case Type::choice: {
      std::string_view choices = key.choices ? key.choices : "";
      if (text.empty() || !in_choices(text, choices)) {
        *why = name + " must be one of " + std::string(choices) + ", got " + echo(text);
        return false;
      }
      v->text.assign(text.data(), text.size());
      return true;
    }
    case Type::boolean:
      if (text == "true" || text == "yes" || text == "on" || text == "1") {
        v->number = 1;
        return true;
      }
      if (text == "false" || text == "no" || text == "off" || text == "0") {
        v->number = 0;
        return true;
      }
      *why = name + " must be true or false (or yes/no, on/off, 1/0), got " + echo(text);
      return false;
    case Type::integer: {
      int64_t n = 0;
      if (parse_int64(text, true, &n) != IntParse::ok) {
        *why = name + " must be an integer in " + range_text(key) + ", got " + echo(text);
        return false;
      }
      if (n < key.min || n > key.max) {
        *why = name + " must be " + range_text(key) + ", got " + std::to_string(n);
        return false;
      }
      v->number = n;
      return true;
    }
    case Type::duration:
    case Type::size: {
      bool is_duration = key.type == Type::duration;
      int64_t n = 0;
      bool ok = is_duration ? (text == "0" || parse_with_unit(text, kDurationUnits, &n))
                            : parse_with_unit(text, kSizeUnits, &n);
      if (!ok) {
        *why = name +
               (is_duration ? " must be a duration like 250ms, 15s, 2m or 1h"
                            : " must be a size like 512, 64KiB, 1MiB or 2GiB") +
               " in " + range_text(key) + ", got " + echo(text);
        return false;
      }
      if (n < key.min || n > key.max) {
        *why = name + " must be " + range_text(key) + ", got " +
               (is_duration ? format_duration(n) : format_size(n));
        return false;
      }
      v->number = n;
      return true;
    }
  }
  *why = name + ": unknown type in schema";
  return false;
}

void Parser::finish() {
  // Unnamed single sections exist even when the file leaves them out.
  for (const SectionRule& rule : schema_.sections) {
    if (rule.named || rule.repeatable || rule.type[0] == '\0') continue;
    if (std::find(rules_.begin(), rules_.end(), &rule) == rules_.end()) add_section(rule, "", 0);
  }
  for (size_t i = 0; i < config_.sections_.size(); ++i) {
    Section& s = config_.sections_[i];
    const SectionRule& rule = *rules_[i];
    for (size_t k = 0; k < rule.keys.size(); ++k) {
      const Key& key = rule.keys[k];
      Section::Value& v = s.values_[k];
      if (v.line != 0) continue;  // written (valid, or already reported)
      if (!key.default_value) {
        std::string msg = "missing required key '" + std::string(key.name) + "'";
        error(s.line(), s.type().empty() ? msg : s.label() + ": " + msg);
        continue;
      }
      std::string why;
      if (!convert(key, key.default_value, &v, &why)) {
        error(0, "schema error: default of " + s.label() + " key '" + key.name + "': " + why);
      }
    }
  }
}

ParseResult parse(std::string_view text, const std::string& file_name, const Schema& schema) {
  Parser parser(file_name, schema);
  return parser.run(text);
}

ParseResult load(const std::string& path, const Schema& schema) {
  auto fail = [&](const std::string& what) {
    ParseResult r;
    r.errors.push_back({path, 0, what});
    return r;
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  // Read one byte past the limit so an over-long file is reported as such.
  std::string text;
  text.resize(kMaxFileBytes + 1);
  size_t len = 0;
  while (len < text.size()) {
    ssize_t n = ::read(fd, &text[len], text.size() - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      sodium_memzero(text.data(), text.size());
      return fail(std::string("read failed: ") + std::strerror(err));
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  ParseResult r;
  if (len > kMaxFileBytes) {
    r = fail("file is larger than " + format_size(kMaxFileBytes));
  } else {
    r = parse(std::string_view(text.data(), len), path, schema);
  }
  sodium_memzero(text.data(), text.size());
  return r;
}

}  // namespace tg::config
