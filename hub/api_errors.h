// Error answers of the user API in each API's own format, so SDKs parse them:
// OpenAI {"error":{"message","type","param":null,"code"}} and Anthropic
// {"type":"error","error":{"type","message"}}, as whole bodies or as a final
// SSE event; and the HTTP status for each tunnel stream error code. Pure
// functions; no I/O.
#pragma once

#include <string>
#include <string_view>

namespace tg::hub {

enum class Dialect { openai, anthropic };

// /v1/messages (and below) is Anthropic; everything else OpenAI.
Dialect dialect_for_path(std::string_view path) noexcept;

// Our error codes (OpenAI `code`; Anthropic has none).
namespace api_code {
constexpr std::string_view invalid_api_key = "invalid_api_key";
constexpr std::string_view model_not_found = "model_not_found";
constexpr std::string_view unknown_url = "unknown_url";
constexpr std::string_view method_not_allowed = "method_not_allowed";
constexpr std::string_view invalid_json = "invalid_json";
constexpr std::string_view missing_model = "missing_model";
constexpr std::string_view request_too_large = "request_too_large";
constexpr std::string_view no_agent = "no_agent_available";
constexpr std::string_view shutting_down = "shutting_down";
constexpr std::string_view timeout = "timeout";
constexpr std::string_view agent_failed = "agent_failed";
constexpr std::string_view internal = "internal_error";
constexpr std::string_view insufficient_balance = "insufficient_quota";
constexpr std::string_view rate_limited = "rate_limit_exceeded";
}  // namespace api_code

// The `type` each API uses for an HTTP status (OpenAI: invalid_request_error
// for 4xx, insufficient_quota for 402, rate_limit_exceeded for 429,
// server_error for 5xx; Anthropic: invalid_request_error,
// authentication_error, billing_error (402), permission_error,
// not_found_error, request_too_large, rate_limit_error, overloaded_error
// (503), timeout_error (504), api_error).
const char* error_type(Dialect d, int status) noexcept;

// The whole JSON body of an error answer. `code` empty: JSON null.
std::string error_body(Dialect d, int status, std::string_view message, std::string_view code);

// A final SSE event reporting a failure after the stream started: OpenAI
// "data: {"error":{...}}\n\n", Anthropic
// "event: error\ndata: {"type":"error","error":{...}}\n\n".
std::string sse_error_event(Dialect d, int status, std::string_view message, std::string_view code);

// HTTP status for a tunnel `error.code` that arrived before the response
// head: unknown_model 404, bad_request 400, busy 503, shutting_down 503,
// upstream_unreachable 502, upstream_timeout 504, deadline_exceeded 504,
// anything else 502.
int status_for_stream_error(std::string_view code) noexcept;

}  // namespace tg::hub
