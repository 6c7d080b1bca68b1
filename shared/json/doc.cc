#include "shared/json/doc.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace tg::json {
namespace {

// Deeper nesting than this is refused whatever the rules say: the parser
// recurses once per level.
constexpr int kDepthCap = 256;
// Values reserved before parsing, at most (24 KiB).
constexpr size_t kReservedValues = 512;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

double Value::number() const noexcept {
  if (type != Type::number) return 0;
  // Plain integers of up to 15 digits are exact in a double: no strtod.
  if (text.size() <= 15 && text.find_first_not_of("0123456789") == std::string_view::npos) {
    uint64_t v = 0;
    for (char c : text) v = v * 10 + static_cast<uint64_t>(c - '0');
    return static_cast<double>(v);
  }
  char buf[64];
  if (text.size() < sizeof buf) {
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    return std::strtod(buf, nullptr);
  }
  return std::strtod(std::string(text).c_str(), nullptr);
}

const Value* Value::member(std::string_view name) const noexcept {
  if (type != Type::object) return nullptr;
  for (const Value* m = child(); m != nullptr; m = m->next()) {
    if (m->key == name) return m;
  }
  return nullptr;
}

// One parse: a recursive descent over the text, appending values in
// document order (a container before its contents).
class Doc::Parser {
 public:
  Parser(Doc& doc, std::string_view text, const Rules& rules)
      : doc_(doc), p_(text.data()), begin_(text.data()), end_(text.data() + text.size()),
        rules_(rules),
        max_depth_(rules.max_depth < kDepthCap ? rules.max_depth : kDepthCap) {}

  Status run() {
    skip_space();
    TG_TRY(value(0));
    const size_t value_end = offset();
    skip_space();
    if (p_ != end_) {
      return fail("trailing bytes after the JSON value at offset " + std::to_string(value_end));
    }
    return Status();
  }

 private:
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }

  Status fail(const std::string& why) const {
    return error(Errc::parse, std::string(rules_.what) + ": " + why);
  }
  Status invalid(const char* why) const {
    return fail("invalid JSON at offset " + std::to_string(offset()) + ": " + why);
  }

  void skip_space() {
    while (p_ < end_ && is_space(*p_)) ++p_;
  }

  size_t add(Type t) {
    doc_.values_.emplace_back();
    doc_.values_.back().type = t;
    return doc_.values_.size() - 1;
  }

  // One value at nesting `depth` (0: the top level).
  Status value(int depth) {
    if (p_ == end_) return invalid("expected a value, got the end");
    const char c = *p_;
    if (c == '-' || is_digit(c)) return number();
    switch (c) {
      case '"': {
        const size_t i = add(Type::string);
        std::string_view s;
        TG_TRY(string(&s));
        doc_.values_[i].text = s;
        return Status();
      }
      case '{':
      case '[':
        return container(depth, c == '{');
      case 't':
        return literal("true", Type::boolean, true);
      case 'f':
        return literal("false", Type::boolean, false);
      case 'n':
        return literal("null", Type::null, false);
      default:
        return invalid("expected a value");
    }
  }

  Status literal(std::string_view word, Type t, bool truth) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return invalid("expected a value");
    }
    p_ += word.size();
    const size_t i = add(t);
    doc_.values_[i].truth = truth;
    return Status();
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Status number() {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_ || !is_digit(*p_)) return invalid("expected a digit");
    if (*p_ == '0') {
      ++p_;
      if (p_ < end_ && is_digit(*p_)) return invalid("number with a leading zero");
    } else {
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return invalid("expected a digit after '.'");
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return invalid("expected a digit in the exponent");
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    const std::string_view lit(start, static_cast<size_t>(p_ - start));
    if (rules_.on_number) {
      TG_TRY(rules_.on_number(Literal{lit, static_cast<size_t>(start - begin_)}));
    }
    const size_t i = add(Type::number);
    doc_.values_[i].text = lit;
    return Status();
  }

  // A string, p_ at its opening quote; `out` views the text when it holds
  // no escape, the decoded buffer otherwise.
  Status string(std::string_view* out) {
    ++p_;
    const char* start = p_;
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"' || c == '\\' || c < 0x20) break;
      ++p_;
    }
    if (p_ < end_ && *p_ == '"') {
      *out = std::string_view(start, static_cast<size_t>(p_ - start));
      ++p_;
      return Status();
    }
    std::string& d = doc_.decoded_;
    // Decoded strings are never longer than their text: reserved for the
    // whole text at the first escape (no view into the buffer exists yet),
    // it never moves while views into it are handed out.
    const auto whole = static_cast<size_t>(end_ - begin_);
    if (d.capacity() < whole) d.reserve(whole);
    const size_t first = d.size();
    d.append(start, static_cast<size_t>(p_ - start));
    while (p_ < end_) {
      const char c = *p_;
      if (c == '"') {
        ++p_;
        *out = std::string_view(d.data() + first, d.size() - first);
        return Status();
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return fail("control character in a string at offset " + std::to_string(offset()));
      }
      if (c != '\\') {
        d.push_back(c);
        ++p_;
        continue;
      }
      TG_TRY(escape(d));
    }
    return invalid("unterminated string");
  }

  // One escape, p_ at its backslash, decoded onto `d`.
  Status escape(std::string& d) {
    const size_t at = offset();
    if (end_ - p_ < 2) return invalid("unterminated string");
    const char e = p_[1];
    static constexpr char kFrom[] = "\"\\/bfnrt";
    static constexpr char kTo[] = "\"\\/\b\f\n\r\t";
    if (const char* hit = std::strchr(kFrom, e); hit != nullptr && e != '\0') {
      d.push_back(kTo[hit - kFrom]);
      p_ += 2;
      return Status();
    }
    if (e != 'u') return invalid("bad escape in a string");
    uint32_t unit = 0;
    TG_TRY(hex4(&unit));
    if (unit == 0 && !rules_.allow_nul) {
      return fail("\\u0000 in a string at offset " + std::to_string(at));
    }
    if (unit >= 0xDC00 && unit <= 0xDFFF) return invalid("UTF-16 low surrogate without a high one");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
        return invalid("UTF-16 high surrogate without a low one");
      }
      uint32_t low = 0;
      TG_TRY(hex4(&low));
      if (low < 0xDC00 || low > 0xDFFF) return invalid("UTF-16 high surrogate without a low one");
      unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(d, unit);
    return Status();
  }

  // "\uXXXX" at p_ into `out`.
  Status hex4(uint32_t* out) {
    if (end_ - p_ < 6) return invalid("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 2; k < 6; ++k) {
      const int h = hex_value(p_[k]);
      if (h < 0) return invalid("expected four hex digits after \\u");
      v = v * 16 + static_cast<uint32_t>(h);
    }
    p_ += 6;
    *out = v;
    return Status();
  }

  // An array or object, p_ at its opening bracket.
  Status container(int depth, bool object) {
    if (depth + 1 > max_depth_) {
      return fail("nesting deeper than " + std::to_string(max_depth_) + " at offset " +
                  std::to_string(offset()));
    }
    const size_t i = add(object ? Type::object : Type::array);
    const char close = object ? '}' : ']';
    ++p_;
    skip_space();
    uint32_t count = 0;
    size_t prev = 0;  // the last element or member so far
    if (p_ < end_ && *p_ == close) {
      ++p_;
    } else {
      for (;;) {
        std::string_view key;
        if (object) {
          if (p_ == end_ || *p_ != '"') return invalid("expected a member name");
          TG_TRY(string(&key));
          skip_space();
          if (p_ == end_ || *p_ != ':') return invalid("expected ':' after a member name");
          ++p_;
          skip_space();
        }
        const size_t v = doc_.values_.size();
        TG_TRY(value(depth + 1));
        doc_.values_[v].key = key;
        if (count != 0) doc_.values_[prev].last = false;
        prev = v;
        ++count;
        skip_space();
        if (p_ < end_ && *p_ == ',') {
          ++p_;
          skip_space();
          continue;
        }
        if (p_ < end_ && *p_ == close) {
          ++p_;
          break;
        }
        return invalid(object ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    doc_.values_[i].count = count;
    doc_.values_[i].span = static_cast<uint32_t>(doc_.values_.size() - i);
    return Status();
  }

  Doc& doc_;
  const char* p_;
  const char* const begin_;
  const char* const end_;
  const Rules& rules_;
  const int max_depth_;
};

Status Doc::parse(std::string_view text, const Rules& rules) {
  values_.clear();
  decoded_.clear();
  // A guess for small texts (at most text.size() / 2 + 1 values are made);
  // a large one grows the array as it needs, instead of reserving up front
  // an allocation mapped and unmapped per call.
  values_.reserve(std::min<size_t>(text.size() / 8 + 4, kReservedValues));
  if (text.size() > std::numeric_limits<uint32_t>::max()) {
    return error(Errc::limit, std::string(rules.what) + ": JSON text over 4 GiB");
  }
  Status s = Parser(*this, text, rules).run();
  if (!s.ok()) {
    values_.clear();
    decoded_.clear();
  }
  return s;
}

namespace {
thread_local Doc t_scratch;
thread_local bool t_scratch_lent = false;
}  // namespace

ScratchDoc::ScratchDoc(size_t keep) noexcept : keep_(keep), doc_(&t_scratch) {
  if (t_scratch_lent) {
    own_ = std::make_unique<Doc>();
    doc_ = own_.get();
  } else {
    t_scratch_lent = true;
  }
}

ScratchDoc::~ScratchDoc() {
  if (own_) return;
  t_scratch.trim(keep_);
  t_scratch_lent = false;
}

void Doc::trim(size_t bytes) noexcept {
  if (capacity_bytes() <= bytes) return;
  std::vector<Value>().swap(values_);
  std::string().swap(decoded_);
}

}  // namespace tg::json
