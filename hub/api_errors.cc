#include "hub/api_errors.h"

#include <cjson/cJSON.h>

#include <memory>

#include "shared/tunnel/codes.h"

namespace tg::hub {
namespace {

using JsonPtr = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

std::string print(const JsonPtr& root) {
  char* text = cJSON_PrintUnformatted(root.get());
  if (!text) return "{}";
  std::string out(text);
  cJSON_free(text);
  return out;
}

// cJSON strings are NUL-terminated: cut at an embedded NUL.
std::string c_str(std::string_view s) { return std::string(s.substr(0, s.find('\0'))); }

JsonPtr error_object(Dialect d, int status, std::string_view message, std::string_view code) {
  JsonPtr root(cJSON_CreateObject(), cJSON_Delete);
  if (d == Dialect::anthropic) {
    cJSON_AddStringToObject(root.get(), "type", "error");
    cJSON* e = cJSON_AddObjectToObject(root.get(), "error");
    cJSON_AddStringToObject(e, "type", error_type(d, status));
    cJSON_AddStringToObject(e, "message", c_str(message).c_str());
    return root;
  }
  cJSON* e = cJSON_AddObjectToObject(root.get(), "error");
  cJSON_AddStringToObject(e, "message", c_str(message).c_str());
  cJSON_AddStringToObject(e, "type", error_type(d, status));
  cJSON_AddNullToObject(e, "param");
  if (code.empty()) {
    cJSON_AddNullToObject(e, "code");
  } else {
    cJSON_AddStringToObject(e, "code", c_str(code).c_str());
  }
  return root;
}

}  // namespace

Dialect dialect_for_path(std::string_view path) noexcept {
  const std::string_view messages = "/v1/messages";
  if (path.substr(0, messages.size()) == messages &&
      (path.size() == messages.size() || path[messages.size()] == '/' ||
       path[messages.size()] == '?')) {
    return Dialect::anthropic;
  }
  return Dialect::openai;
}

const char* error_type(Dialect d, int status) noexcept {
  if (d == Dialect::anthropic) {
    switch (status) {
      case 400: return "invalid_request_error";
      case 401: return "authentication_error";
      case 402: return "billing_error";
      case 403: return "permission_error";
      case 404: return "not_found_error";
      case 413: return "request_too_large";
      case 429: return "rate_limit_error";
      case 503: return "overloaded_error";
      case 504: return "timeout_error";
      default: return status < 500 ? "invalid_request_error" : "api_error";
    }
  }
  if (status == 429) return "rate_limit_exceeded";
  if (status == 402) return "insufficient_quota";
  return status < 500 ? "invalid_request_error" : "server_error";
}

std::string error_body(Dialect d, int status, std::string_view message, std::string_view code) {
  return print(error_object(d, status, message, code));
}

std::string sse_error_event(Dialect d, int status, std::string_view message, std::string_view code) {
  const std::string json = print(error_object(d, status, message, code));
  if (d == Dialect::anthropic) return "event: error\ndata: " + json + "\n\n";
  return "data: " + json + "\n\n";
}

int status_for_stream_error(std::string_view code) noexcept {
  namespace se = tunnel::stream_error;
  if (code == se::unknown_model) return 404;
  if (code == se::bad_request) return 400;
  if (code == se::busy || code == se::shutting_down) return 503;
  if (code == se::upstream_unreachable) return 502;
  if (code == se::upstream_timeout || code == se::deadline_exceeded) return 504;
  return 502;
}

}  // namespace tg::hub
