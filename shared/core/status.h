// Status and Result<T>: errors as values. A Status is a code plus a message
// that names the bad value and where it came from. Nothing here throws, and
// nothing here allocates on the success path.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace tg {

enum class Errc {
  ok = 0,
  invalid_argument,  // the caller passed something unusable
  parse,             // input bytes do not follow the grammar
  limit,             // input exceeds a configured or protocol limit
  not_found,
  permission,        // file mode, auth or pin refusal
  io,                // OS or socket error
  closed,            // the peer or our side closed the channel
  timeout,
  tls,               // TLS handshake or record failure
  protocol,          // a peer broke the protocol after parsing succeeded
  internal,
};

const char* errc_name(Errc c) noexcept;

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // ok
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status success() noexcept { return Status(); }

  bool ok() const noexcept { return code_ == Errc::ok; }
  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "errc: message", for logs and user-facing errors.
  std::string to_string() const;

 private:
  Errc code_ = Errc::ok;
  std::string message_;
};

inline Status error(Errc code, std::string message) { return Status(code, std::move(message)); }

// A value or the Status that explains its absence.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const noexcept { return value_.has_value(); }
  const Status& status() const noexcept { return status_; }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tg

// Returns the Status of an expression from the enclosing function if it failed.
#define TG_TRY(expr)                       \
  do {                                     \
    ::tg::Status tg_try_status_ = (expr);  \
    if (!tg_try_status_.ok()) return tg_try_status_; \
  } while (0)
