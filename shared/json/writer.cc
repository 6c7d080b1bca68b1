#include "shared/json/writer.h"

#include <charconv>

namespace tg::json {

void append_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  size_t plain = 0;  // start of the run of bytes copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    out += '\\';
    switch (c) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '\b': out += 'b'; break;
      case '\f': out += 'f'; break;
      case '\n': out += 'n'; break;
      case '\r': out += 'r'; break;
      case '\t': out += 't'; break;
      default:
        out += "u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
        break;
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out += '"';
}

void Writer::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_) out_ += ',';
  first_ = false;
}

Writer& Writer::open(char c) {
  separate();
  out_ += c;
  first_ = true;
  return *this;
}

Writer& Writer::close(char c) {
  out_ += c;
  first_ = false;
  after_key_ = false;
  return *this;
}

Writer& Writer::key(std::string_view name) {
  separate();
  append_string(out_, name);
  out_ += ':';
  after_key_ = true;
  return *this;
}

Writer& Writer::string(std::string_view v) {
  separate();
  append_string(out_, v);
  return *this;
}

namespace {

template <typename T>
void append_integer(std::string& out, T v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // cannot fail: 20 digits and a sign fit
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace

Writer& Writer::number(uint64_t v) {
  separate();
  append_integer(out_, v);
  return *this;
}

Writer& Writer::number(int64_t v) {
  separate();
  append_integer(out_, v);
  return *this;
}

Writer& Writer::boolean(bool v) {
  separate();
  out_ += v ? "true" : "false";
  return *this;
}

}  // namespace tg::json
