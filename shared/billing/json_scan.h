// Incremental JSON scanner: checks, byte by byte and in any split, that the
// input is one JSON value (RFC 8259 grammar; UTF-8 is not checked) and tells
// a handler where the values near the top begin and end, with the member key
// matched against a few watched names. Constant state (one bit per nesting
// level), no allocation while scanning, never buffers input: it finds
// `usage` in a many-MiB answer and the edit points in a request body.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::billing {

constexpr int kMaxJsonDepth = 256;         // open [ and { at once; deeper is Errc::limit
constexpr size_t kMaxWatchedKeys = 4;
constexpr size_t kMaxWatchedKeyBytes = 32;

enum class JsonKind { object, array, string, number, literal };  // literal: true, false, null

class JsonScanner {
 public:
  // Told about values at depth <= the scanner's report depth (the top-level
  // value is depth 0, its members or elements depth 1, ...). Called inside
  // feed()/finish(), in input order; must not call back into the scanner.
  class Handler {
   public:
    virtual ~Handler() = default;
    // A value begins at absolute byte `offset`. `key` is the index of the
    // member's name in the watched names (escapes decoded, exact match), or -1
    // for other names, array elements and the top-level value.
    virtual void on_value_begin(int depth, int key, JsonKind kind, uint64_t offset) noexcept = 0;
    // The value that began last at `depth` ends; `end` is one past its last
    // byte (a number ends when the byte after it arrives, or at finish()).
    virtual void on_value_end(int depth, uint64_t end) noexcept = 0;
  };

  // `keys`: at most kMaxWatchedKeys ASCII names of at most kMaxWatchedKeyBytes
  // each (longer lists or names are a programming error and abort); the views
  // must outlive the scanner (string literals).
  JsonScanner(std::initializer_list<std::string_view> keys, int report_depth);

  // Scans the next bytes. After an error the rest of the input is ignored.
  void feed(std::string_view piece, Handler& handler);
  // End of input: ends a top-level number; anything else unfinished is an
  // error ("truncated").
  void finish(Handler& handler);

  // The top-level value is complete and only whitespace followed so far.
  bool done() const noexcept { return state_ == State::done; }
  bool failed() const noexcept { return state_ == State::error; }
  // Errc::parse (grammar, with the byte offset) or Errc::limit (nesting);
  // ok while neither happened.
  const Status& status() const noexcept { return status_; }
  uint64_t offset() const noexcept { return offset_; }  // bytes consumed so far

 private:
  enum class State : uint8_t {
    value,         // a value must come (top level, after ':' or ',' in an array)
    array_first,   // after '[': a value or ']'
    object_first,  // after '{': a key or '}'
    key,           // after ',' in an object: a key
    colon,         // after a key
    after_value,   // ',' or the closing bracket of the open container
    string,        // inside a string (key_ says whether it is a key)
    escape,        // after '\' in a string
    unicode,       // inside \uXXXX
    num_minus,     // after '-'
    num_zero,      // a leading 0
    num_int,       // integer digits
    num_dot,       // after '.'
    num_frac,      // fraction digits
    num_e,         // after 'e'/'E'
    num_e_sign,    // after the exponent's sign
    num_exp,       // exponent digits
    literal,       // inside true/false/null
    done,
    error,
  };

  // One byte; false if the byte must be looked at again (after a number ended).
  bool step(unsigned char c, Handler& h);
  void begin_value(unsigned char c, Handler& h);
  void end_value(uint64_t end, Handler& h);
  void key_byte(unsigned char c);
  void fail(Errc code, const std::string& what);
  bool reports(int depth) const noexcept { return depth <= report_depth_; }

  std::array<std::string_view, kMaxWatchedKeys> keys_{};
  size_t key_count_ = 0;
  int report_depth_ = 0;

  State state_ = State::value;
  uint64_t offset_ = 0;
  int depth_ = 0;                      // open containers
  std::bitset<kMaxJsonDepth> object_;  // per open container: object (1) or array (0)
  bool in_key_ = false;                // the string being read is a member name
  bool match_key_ = false;             // ... whose depth is reported, so match it
  uint32_t candidates_ = 0;            // watched names still matching the key so far
  size_t key_pos_ = 0;                 // decoded key bytes so far
  int key_ = -1;                       // watched index of the last complete key
  int hex_left_ = 0;
  uint32_t code_ = 0;                  // \uXXXX being read
  const char* literal_ = nullptr;      // "true", "false" or "null"
  size_t literal_pos_ = 0;
  Status status_;
};

}  // namespace tg::billing
