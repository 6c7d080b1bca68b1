#include "shared/billing/json_scan.h"

#include <cstdio>
#include <cstdlib>

namespace tg::billing {
namespace {

bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "'x'" for a printable byte, "0x0a" otherwise.
std::string show(unsigned char c) {
  char buf[8];
  if (c >= 0x20 && c < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(c));
  }
  return buf;
}

}  // namespace

JsonScanner::JsonScanner(std::initializer_list<std::string_view> keys, int report_depth)
    : report_depth_(report_depth) {
  if (keys.size() > kMaxWatchedKeys) {
    std::fprintf(stderr, "tg::billing: programming error: more than %zu watched JSON keys\n",
                 kMaxWatchedKeys);
    std::abort();
  }
  for (std::string_view k : keys) {
    if (k.size() > kMaxWatchedKeyBytes) {
      std::fprintf(stderr, "tg::billing: programming error: watched JSON key over %zu bytes\n",
                   kMaxWatchedKeyBytes);
      std::abort();
    }
    keys_[key_count_++] = k;
  }
}

void JsonScanner::fail(Errc code, const std::string& what) {
  state_ = State::error;
  status_ = error(code, "invalid JSON at offset " + std::to_string(offset_) + ": " + what);
}

void JsonScanner::key_byte(unsigned char c) {
  if (!match_key_ || candidates_ == 0) return;
  for (size_t i = 0; i < key_count_; ++i) {
    const uint32_t bit = uint32_t{1} << i;
    if ((candidates_ & bit) &&
        (key_pos_ >= keys_[i].size() || static_cast<unsigned char>(keys_[i][key_pos_]) != c)) {
      candidates_ &= ~bit;
    }
  }
  ++key_pos_;
}

void JsonScanner::begin_value(unsigned char c, Handler& h) {
  const bool member = depth_ > 0 && object_[static_cast<size_t>(depth_ - 1)];
  const int key = member ? key_ : -1;
  auto report = [&](JsonKind kind) {
    if (reports(depth_)) h.on_value_begin(depth_, key, kind, offset_);
  };
  switch (c) {
    case '{':
    case '[':
      if (depth_ == kMaxJsonDepth) {
        fail(Errc::limit, "nesting deeper than " + std::to_string(kMaxJsonDepth));
        return;
      }
      report(c == '{' ? JsonKind::object : JsonKind::array);
      object_[static_cast<size_t>(depth_)] = c == '{';
      ++depth_;
      state_ = c == '{' ? State::object_first : State::array_first;
      return;
    case '"':
      report(JsonKind::string);
      in_key_ = false;
      state_ = State::string;
      return;
    case '-':
      report(JsonKind::number);
      state_ = State::num_minus;
      return;
    case 't':
    case 'f':
    case 'n':
      report(JsonKind::literal);
      literal_ = c == 't' ? "true" : c == 'f' ? "false" : "null";
      literal_pos_ = 1;
      state_ = State::literal;
      return;
    default:
      if (is_digit(c)) {
        report(JsonKind::number);
        state_ = c == '0' ? State::num_zero : State::num_int;
        return;
      }
      fail(Errc::parse, "expected a value, got " + show(c));
  }
}

void JsonScanner::end_value(uint64_t end, Handler& h) {
  if (reports(depth_)) h.on_value_end(depth_, end);
  state_ = depth_ == 0 ? State::done : State::after_value;
}

bool JsonScanner::step(unsigned char c, Handler& h) {
  auto close = [&]() {
    const bool is_object = object_[static_cast<size_t>(depth_ - 1)];
    if ((c == '}') != is_object) {
      fail(Errc::parse, std::string("expected ") + (is_object ? "'}'" : "']'") + ", got " + show(c));
      return;
    }
    --depth_;
    end_value(offset_ + 1, h);
  };
  auto start_key = [&]() {
    in_key_ = true;
    match_key_ = reports(depth_);
    candidates_ = (uint32_t{1} << key_count_) - 1;
    key_pos_ = 0;
    state_ = State::string;
  };
  auto end_number = [&]() {
    end_value(offset_, h);
    return false;  // the byte after the number is looked at again
  };

  switch (state_) {
    case State::value:
      if (!is_ws(c)) begin_value(c, h);
      return true;
    case State::array_first:
      if (is_ws(c)) return true;
      if (c == ']') {
        close();
      } else {
        begin_value(c, h);
      }
      return true;
    case State::object_first:
      if (is_ws(c)) return true;
      if (c == '}') {
        close();
      } else if (c == '"') {
        start_key();
      } else {
        fail(Errc::parse, "expected a member name or '}', got " + show(c));
      }
      return true;
    case State::key:
      if (is_ws(c)) return true;
      if (c == '"') {
        start_key();
      } else {
        fail(Errc::parse, "expected a member name, got " + show(c));
      }
      return true;
    case State::colon:
      if (is_ws(c)) return true;
      if (c == ':') {
        state_ = State::value;
      } else {
        fail(Errc::parse, "expected ':' after a member name, got " + show(c));
      }
      return true;
    case State::after_value:
      if (is_ws(c)) return true;
      if (c == ',') {
        state_ = object_[static_cast<size_t>(depth_ - 1)] ? State::key : State::value;
      } else if (c == '}' || c == ']') {
        close();
      } else {
        fail(Errc::parse, "expected ',' or a closing bracket, got " + show(c));
      }
      return true;
    case State::string:
      if (c == '"') {
        if (in_key_) {
          key_ = -1;
          if (match_key_) {
            for (size_t i = 0; i < key_count_; ++i) {
              if ((candidates_ & (uint32_t{1} << i)) && keys_[i].size() == key_pos_) {
                key_ = static_cast<int>(i);
                break;
              }
            }
          }
          in_key_ = false;
          state_ = State::colon;
        } else {
          end_value(offset_ + 1, h);
        }
      } else if (c == '\\') {
        state_ = State::escape;
      } else if (c < 0x20) {
        fail(Errc::parse, "control character " + show(c) + " in a string");
      } else if (in_key_) {
        key_byte(c);
      }
      return true;
    case State::escape: {
      static constexpr char kFrom[] = "\"\\/bfnrt";
      static constexpr char kTo[] = "\"\\/\b\f\n\r\t";
      if (c == 'u') {
        hex_left_ = 4;
        code_ = 0;
        state_ = State::unicode;
        return true;
      }
      for (size_t i = 0; i + 1 < sizeof kFrom; ++i) {
        if (c == static_cast<unsigned char>(kFrom[i])) {
          if (in_key_) key_byte(static_cast<unsigned char>(kTo[i]));
          state_ = State::string;
          return true;
        }
      }
      fail(Errc::parse, "bad escape " + show(c) + " after '\\' in a string");
      return true;
    }
    case State::unicode: {
      const int v = hex_value(c);
      if (v < 0) {
        fail(Errc::parse, "expected a hex digit in \\u escape, got " + show(c));
        return true;
      }
      code_ = code_ * 16 + static_cast<uint32_t>(v);
      if (--hex_left_ == 0) {
        // Watched names are ASCII: any other code point only has to mismatch.
        if (in_key_) key_byte(code_ < 0x80 ? static_cast<unsigned char>(code_) : 0x80);
        state_ = State::string;
      }
      return true;
    }
    case State::num_minus:
      if (c == '0') {
        state_ = State::num_zero;
      } else if (is_digit(c)) {
        state_ = State::num_int;
      } else {
        fail(Errc::parse, "expected a digit after '-', got " + show(c));
      }
      return true;
    case State::num_zero:
      if (c == '.') {
        state_ = State::num_dot;
      } else if (c == 'e' || c == 'E') {
        state_ = State::num_e;
      } else if (is_digit(c)) {
        fail(Errc::parse, "number with a leading zero");
      } else {
        return end_number();
      }
      return true;
    case State::num_int:
      if (is_digit(c)) return true;
      if (c == '.') {
        state_ = State::num_dot;
      } else if (c == 'e' || c == 'E') {
        state_ = State::num_e;
      } else {
        return end_number();
      }
      return true;
    case State::num_dot:
      if (is_digit(c)) {
        state_ = State::num_frac;
      } else {
        fail(Errc::parse, "expected a digit after '.', got " + show(c));
      }
      return true;
    case State::num_frac:
      if (is_digit(c)) return true;
      if (c == 'e' || c == 'E') {
        state_ = State::num_e;
        return true;
      }
      return end_number();
    case State::num_e:
      if (c == '+' || c == '-') {
        state_ = State::num_e_sign;
      } else if (is_digit(c)) {
        state_ = State::num_exp;
      } else {
        fail(Errc::parse, "expected a digit in the exponent, got " + show(c));
      }
      return true;
    case State::num_e_sign:
      if (is_digit(c)) {
        state_ = State::num_exp;
      } else {
        fail(Errc::parse, "expected a digit in the exponent, got " + show(c));
      }
      return true;
    case State::num_exp:
      if (is_digit(c)) return true;
      return end_number();
    case State::literal:
      if (c != static_cast<unsigned char>(literal_[literal_pos_])) {
        fail(Errc::parse, std::string("expected '") + literal_ + "', got " + show(c));
        return true;
      }
      if (literal_[++literal_pos_] == '\0') end_value(offset_ + 1, h);
      return true;
    case State::done:
      if (!is_ws(c)) fail(Errc::parse, "bytes after the JSON value: " + show(c));
      return true;
    case State::error:
      return true;
  }
  return true;
}

void JsonScanner::feed(std::string_view piece, Handler& handler) {
  const char* p = piece.data();
  const char* const end = p + piece.size();
  while (p < end) {
    if (state_ == State::error) return;
    if (state_ == State::string && (!in_key_ || !match_key_ || candidates_ == 0)) {
      // Most of an answer is the text inside strings: in a value, and in a
      // member name that can no longer match a watched one (or is not
      // matched at this depth), bytes other than '"', '\\' and control
      // characters change nothing, so skip them without a step() each.
      const char* q = p;
      while (q < end) {
        const auto c = static_cast<unsigned char>(*q);
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++q;
      }
      offset_ += static_cast<uint64_t>(q - p);
      p = q;
      if (p == end) return;
    }
    const auto c = static_cast<unsigned char>(*p);
    while (!step(c, handler)) {
    }
    ++offset_;
    ++p;
  }
}

void JsonScanner::finish(Handler& handler) {
  switch (state_) {
    case State::num_zero:
    case State::num_int:
    case State::num_frac:
    case State::num_exp:
      if (depth_ == 0) {
        end_value(offset_, handler);
        return;
      }
      break;
    case State::done:
    case State::error:
      return;
    default:
      break;
  }
  fail(Errc::parse, "truncated");
}

}  // namespace tg::billing
