// A whole untrusted JSON text read into one flat array of values, with no
// allocation per value and no copy of the text: the one reader of JSON
// that arrives from outside (tunnel messages, thousands per second; vendor
// SSE events and usage; ledger entry and export lines).
//
//   - the strict RFC 8259 grammar: exactly one value, whitespace around it;
//     no leading zeros, no "1." or ".5", no comments, no trailing commas;
//   - nesting deeper than Rules::max_depth (at most 256: the parser
//     recurses once per level) refused before it is entered;
//   - raw control characters in strings refused, and \u0000 unless
//     Rules::allow_nul (strings then never hold a NUL); a \u escape of a
//     UTF-16 surrogate must be a whole pair;
//   - every number literal handed to Rules::on_number as written (a
//     number's Value::text is that literal, too).
// Every error is Errc::parse, prefixed by Rules::what and giving the byte
// offset. UTF-8 is not checked (the WebSocket layer does that for text
// frames). Tests and json_doc_fuzz check it against cJSON behind the same
// guards (tests/support/cjson_reference.h).
//
// Memory: one array of at most text.size() / 2 + 1 values (48 bytes each on
// 64-bit) and one buffer of at most text.size() bytes for strings that
// hold escapes; the caller bounds the text. Strings without escapes and
// number literals are views into the parsed text: keep it alive and
// unchanged while the Doc is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/core/status.h"
#include "shared/json/json.h"

namespace tg::json {

enum class Type : uint8_t { null, boolean, number, string, array, object };

struct Value {
  std::string_view key;   // member name, escapes decoded (object members only)
  std::string_view text;  // string: its content, decoded; number: the literal
  uint32_t count = 0;  // elements or members
  uint32_t span = 1;   // values in this one's subtree, itself included
  Type type = Type::null;
  bool truth = false;  // boolean
  bool last = true;    // no element or member of the parent follows

  // The values are stored in document order, each container followed by
  // its contents: the first element or member is the next value, and the
  // next one of the parent comes after this one's subtree.
  const Value* child() const noexcept { return count != 0 ? this + 1 : nullptr; }
  const Value* next() const noexcept { return last ? nullptr : this + span; }

  bool is_null() const noexcept { return type == Type::null; }
  bool is_bool() const noexcept { return type == Type::boolean; }
  bool is_number() const noexcept { return type == Type::number; }
  bool is_string() const noexcept { return type == Type::string; }
  bool is_array() const noexcept { return type == Type::array; }
  bool is_object() const noexcept { return type == Type::object; }
  // A number's value as the nearest double (strtod's reading; exact for
  // integers up to 2^53).
  double number() const noexcept;
  // The first member named `name`, or null (also when not an object).
  const Value* member(std::string_view name) const noexcept;
};

class Doc {
 public:
  Doc() = default;
  Doc(const Doc&) = delete;
  Doc& operator=(const Doc&) = delete;

  // Reads `text`, replacing what the Doc held. On error the Doc is empty.
  Status parse(std::string_view text, const Rules& rules);

  // The top-level value; only after a successful parse.
  const Value& root() const noexcept { return values_.front(); }
  bool empty() const noexcept { return values_.empty(); }

  // A Doc kept and parsed into again reuses its memory (no allocation per
  // text). trim() frees that memory when it is over `bytes`, so a kept Doc
  // does not hold on to what its largest text needed. The values read so far
  // stay valid only if nothing was freed.
  void trim(size_t bytes) noexcept;
  // Bytes held for values and decoded strings (capacity, not use).
  size_t capacity_bytes() const noexcept {
    return values_.capacity() * sizeof(Value) + decoded_.capacity();
  }

 private:
  class Parser;

  std::vector<Value> values_;
  std::string decoded_;  // strings with escapes, decoded; never reallocated while parsing
};

// The thread's reusable Doc, lent to one reader at a time: a reader of many
// small texts (the tunnel's messages, a stream's SSE events) parses into
// it again and again instead of allocating a Doc per text. When the
// ScratchDoc goes out of scope the Doc is trimmed to `keep` bytes
// (Doc::trim). A reader that asks while it is lent (a nested use) gets a
// Doc of its own, so nesting is safe, just not free.
class ScratchDoc {
 public:
  explicit ScratchDoc(size_t keep) noexcept;
  ~ScratchDoc();
  ScratchDoc(const ScratchDoc&) = delete;
  ScratchDoc& operator=(const ScratchDoc&) = delete;

  Doc& operator*() noexcept { return *doc_; }
  Doc* operator->() noexcept { return doc_; }
  Doc* get() noexcept { return doc_; }

 private:
  size_t keep_;
  Doc* doc_;
  std::unique_ptr<Doc> own_;  // set for a nested use
};

}  // namespace tg::json
