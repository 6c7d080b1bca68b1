#include "shared/http/message.h"

#include <cstdio>
#include <cstring>
#include <utility>

#include "shared/crypto/wipe.h"

namespace tg::http {
namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool has_ctl_break(std::string_view s) noexcept {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Checks every field before anything is copied, so a refused head leaves no
// partial copy of its values (they may hold credentials) behind.
Status check_fields(const Headers& headers, const char* where) {
  for (const Header& h : headers) {
    if (!is_token(h.name)) {
      return error(Errc::invalid_argument,
                   std::string(where) + ": header name is not a token: \"" + h.name + "\"");
    }
    if (has_ctl_break(h.value)) {
      return error(Errc::invalid_argument,
                   std::string(where) + ": value of header " + h.name + " contains CR, LF or NUL");
    }
  }
  return Status();
}

// Bytes append_fields() writes: "name: value\r\n" per field, then "\r\n".
size_t fields_size(const Headers& headers) {
  size_t n = 2;
  for (const Header& h : headers) n += h.name.size() + 2 + trim_ows(h.value).size() + 2;
  return n;
}

void append_fields(const Headers& headers, std::string* out) {
  for (const Header& h : headers) {
    out->append(h.name);
    out->append(": ");
    out->append(trim_ows(h.value));
    out->append("\r\n");
  }
  out->append("\r\n");
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

Header::~Header() { crypto::wipe(&value); }

void Headers::add(std::string name, std::string value) {
  bytes_ += name.size() + value.size();
  fields_.push_back(Header{std::move(name), std::move(value)});
}

Status Headers::add_limited(std::string name, std::string value, size_t max_count,
                            size_t max_bytes) {
  if (fields_.size() >= max_count) {
    return error(Errc::limit, "header " + name + ": more than " + std::to_string(max_count) +
                                  " header fields");
  }
  if (bytes_ + name.size() + value.size() > max_bytes) {
    return error(Errc::limit, "header " + name + ": header fields exceed " +
                                  std::to_string(max_bytes) + " bytes");
  }
  add(std::move(name), std::move(value));
  return Status();
}

void Headers::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

std::string_view Headers::get(std::string_view name) const {
  for (const Header& h : fields_) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

bool Headers::has(std::string_view name) const {
  for (const Header& h : fields_) {
    if (iequals(h.name, name)) return true;
  }
  return false;
}

bool Headers::has_token(std::string_view name, std::string_view token) const {
  for (const Header& h : fields_) {
    if (!iequals(h.name, name)) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = trim_ows(rest.substr(0, comma));
      if (iequals(item, token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

void Headers::remove(std::string_view name) {
  size_t out = 0;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (iequals(fields_[i].name, name)) {
      bytes_ -= fields_[i].name.size() + fields_[i].value.size();
      crypto::wipe(&fields_[i].value);  // a move onto it need not free it
      continue;
    }
    if (out != i) fields_[out] = std::move(fields_[i]);
    ++out;
  }
  fields_.resize(out);
}

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

Result<std::string> serialize(const RequestHead& head) {
  if (!is_token(head.method)) {
    return error(Errc::invalid_argument, "request method is not a token: \"" + head.method + "\"");
  }
  if (head.target.empty() || has_ctl_break(head.target) ||
      head.target.find_first_of(" \t") != std::string::npos) {
    return error(Errc::invalid_argument,
                 "request target is empty or contains CR, LF, NUL or whitespace");
  }
  if (head.version_minor != 0 && head.version_minor != 1) {
    return error(Errc::invalid_argument,
                 "request version HTTP/1." + std::to_string(head.version_minor) + " unsupported");
  }
  TG_TRY(check_fields(head.headers, "request"));
  // Sized exactly: the buffer never grows, so no freed copy of a credential
  // header is left behind, and the caller holds the only one (it wipes it).
  const char* version = head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  std::string out;
  out.reserve(head.method.size() + 1 + head.target.size() + std::strlen(version) +
              fields_size(head.headers));
  out.append(head.method);
  out.push_back(' ');
  out.append(head.target);
  out.append(version);
  append_fields(head.headers, &out);
  return Result<std::string>(std::move(out));
}

Result<std::string> serialize(const ResponseHead& head) {
  if (head.status < 100 || head.status > 999) {
    return error(Errc::invalid_argument,
                 "response status " + std::to_string(head.status) + " outside 100..999");
  }
  if (has_ctl_break(head.reason)) {
    return error(Errc::invalid_argument, "response reason contains CR, LF or NUL");
  }
  TG_TRY(check_fields(head.headers, "response"));
  const std::string code = std::to_string(head.status);
  const std::string_view reason = head.reason.empty() ? std::string_view(reason_phrase(head.status))
                                                     : std::string_view(head.reason);
  std::string out;
  out.reserve(9 + code.size() + 1 + reason.size() + 2 + fields_size(head.headers));
  out.append("HTTP/1.1 ");
  out.append(code);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\n");
  append_fields(head.headers, &out);
  return Result<std::string>(std::move(out));
}

}  // namespace tg::http
