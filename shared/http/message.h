// HTTP/1.1 message heads: Headers (ordered, case-insensitive lookup, bounded),
// RequestHead, ResponseHead, and Upgraded (what a 101 hands to a new protocol).
// Plain values: no I/O, no parsing of bodies. Serialisation refuses CR, LF and
// NUL in any field, so header injection cannot be expressed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/core/status.h"
#include "shared/net/stream.h"

namespace tg::http {

// One field. Its value may be a credential (Authorization, x-api-key), so a
// Header zeroes its value's buffer when it ends (message.cc).
struct Header {
  std::string name;
  std::string value;

  Header() = default;
  Header(std::string n, std::string v) noexcept : name(std::move(n)), value(std::move(v)) {}
  Header(const Header&) = default;
  Header(Header&&) noexcept = default;
  Header& operator=(const Header&) = default;
  Header& operator=(Header&&) noexcept = default;
  ~Header();
};

class Headers {
 public:
  // Appends a field (no validation here; serialisation validates).
  void add(std::string name, std::string value);
  // Appends a field unless that would exceed `max_count` fields or
  // `max_bytes` total name+value bytes; Errc::limit names the field.
  Status add_limited(std::string name, std::string value, size_t max_count, size_t max_bytes);
  // Replaces all occurrences of `name` by one field.
  void set(std::string name, std::string value);
  // Case-insensitive, first match, "" if absent.
  std::string_view get(std::string_view name) const;
  bool has(std::string_view name) const;
  // True if the comma-separated values of all `name` fields contain `token`
  // (case-insensitive, surrounding whitespace ignored).
  bool has_token(std::string_view name, std::string_view token) const;
  // Removes all occurrences.
  void remove(std::string_view name);
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  // Sum of name and value bytes of all fields.
  size_t bytes() const { return bytes_; }
  void clear() { fields_.clear(); bytes_ = 0; }
  std::vector<Header>::const_iterator begin() const { return fields_.begin(); }
  std::vector<Header>::const_iterator end() const { return fields_.end(); }

 private:
  std::vector<Header> fields_;
  size_t bytes_ = 0;
};

struct RequestHead {
  std::string method;
  std::string target;
  int version_minor = 1;  // HTTP/1.<version_minor>
  Headers headers;
};

struct ResponseHead {
  int status = 200;
  std::string reason;  // empty: the standard reason phrase for `status`
  Headers headers;
};

// What a protocol upgrade hands over: the raw transport (plain TCP or TLS; its
// handler is detached, i.e. nullptr, so the new owner must call set_handler) and
// the bytes already read past the HTTP head, which belong to the new protocol.
struct Upgraded {
  net::StreamPtr stream;
  std::string leftover;
};

// True for an RFC 9110 token (method, header name).
bool is_token(std::string_view s) noexcept;
// Case-insensitive ASCII equality.
bool iequals(std::string_view a, std::string_view b) noexcept;
// Standard reason phrase, "Unknown" for unlisted codes.
const char* reason_phrase(int status) noexcept;

// "METHOD target HTTP/1.x\r\n" + fields + "\r\n". Errc::invalid_argument if the
// method or a header name is not a token, or the target / a value contains
// CR, LF, NUL (or the target a space or is empty); fields are checked before
// any byte is copied. The result is built in one buffer of its exact size and
// is the only copy made: a caller whose head holds a credential wipes it.
Result<std::string> serialize(const RequestHead& head);
// "HTTP/1.1 status reason\r\n" + fields + "\r\n"; same validation; status must be
// 100..999.
Result<std::string> serialize(const ResponseHead& head);

}  // namespace tg::http
