// Writing JSON text directly into a string, for messages whose shape is
// known: no cJSON tree (a node, a key copy and a value copy per member),
// no print pass. Strings are escaped as cJSON prints them (the two quote
// characters, \b \f \n \r \t, other bytes below 0x20 as \u00xx, everything
// else as is), so a text written here equals the one cJSON would print.
// Integers are plain decimal digits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tg::json {

// Appends `s` as a JSON string literal, quotes included.
void append_string(std::string& out, std::string_view s);

// One object or array, written member by member into `out`. close() writes
// the closing bracket; nested values are opened with begin_object /
// begin_array on the same Writer and closed in order.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  Writer& begin_object() { return open('{'); }
  Writer& begin_array() { return open('['); }
  Writer& end_object() { return close('}'); }
  Writer& end_array() { return close(']'); }

  // The name of the next object member.
  Writer& key(std::string_view name);

  Writer& string(std::string_view v);
  Writer& number(uint64_t v);
  Writer& number(int64_t v);
  Writer& boolean(bool v);

 private:
  Writer& open(char c);
  Writer& close(char c);
  void separate();

  std::string& out_;
  bool first_ = true;      // no value yet at this level
  bool after_key_ = false; // a key was written: its value needs no comma
};

}  // namespace tg::json
