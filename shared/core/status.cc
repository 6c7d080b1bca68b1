#include "shared/core/status.h"

namespace tg {

const char* errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::parse: return "parse error";
    case Errc::limit: return "limit exceeded";
    case Errc::not_found: return "not found";
    case Errc::permission: return "permission denied";
    case Errc::io: return "i/o error";
    case Errc::closed: return "closed";
    case Errc::timeout: return "timeout";
    case Errc::tls: return "tls error";
    case Errc::protocol: return "protocol error";
    case Errc::internal: return "internal error";
  }
  return "unknown error";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  std::string s = errc_name(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace tg
