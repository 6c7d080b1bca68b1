// Tunnel protocol v1 constants: version, WebSocket subprotocol and path,
// handshake defaults, WebSocket close codes, refusal codes, the stream error
// and abort codes and the billing codes both sides use. Values only; no behaviour. PROTOCOL.md in this
// folder is the reference that explains every one of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tg::tunnel {

constexpr int kProtocolVersion = 1;
constexpr std::string_view kSubprotocol = "tokengo.tunnel.v1";
constexpr std::string_view kDefaultPath = "/tunnel";

// Handshake and liveness defaults (the hub's config may override the ones it
// announces in `welcome`).
constexpr uint32_t kDefaultAuthTimeoutMs = 10000;
constexpr uint32_t kDefaultHeartbeatMs = 15000;
constexpr uint32_t kDefaultDeadAfter = 3;
constexpr uint32_t kDefaultMaxStreams = 64;
constexpr uint32_t kDefaultWindow = 256 * 1024;
// WebSocket pings either side accepts per minute before closing with 1008
// (a ping flood). Heartbeats are at least 1 s apart, so honest peers send
// at most 60; the rest is slack for clock jitter and user pings.
constexpr uint32_t kMaxPingsPerMinute = 120;

// WebSocket close codes the tunnel uses (RFC 6455 codes plus 4000-4999 ours).
namespace close_code {
constexpr uint16_t normal = 1000;
constexpr uint16_t going_away = 1001;         // shutdown
constexpr uint16_t protocol_error = 1002;     // WebSocket-level violation
constexpr uint16_t policy = 1008;
constexpr uint16_t message_too_big = 1009;    // over the phase's message limit
constexpr uint16_t bad_message = 4000;        // invalid JSON/frame, unknown type, range, window overflow
constexpr uint16_t auth_failed = 4001;        // unknown key, bad signature, bad nonce, bad enroll token
constexpr uint16_t revoked = 4003;
constexpr uint16_t replaced = 4004;           // a newer session of the same key took over
constexpr uint16_t heartbeat_timeout = 4008;
constexpr uint16_t rate_limited = 4029;       // handshake budget exceeded
constexpr uint16_t auth_timeout = 4030;
}  // namespace close_code

// `refused.code` values.
namespace refusal {
constexpr std::string_view unknown_key = "unknown_key";
constexpr std::string_view revoked = "revoked";
constexpr std::string_view bad_signature = "bad_signature";
constexpr std::string_view bad_nonce = "bad_nonce";
constexpr std::string_view bad_enroll_token = "bad_enroll_token";
constexpr std::string_view rate_limited = "rate_limited";
constexpr std::string_view protocol = "protocol";
constexpr std::string_view replaced = "replaced";
}  // namespace refusal

// The close code that follows a `refused` with `code`; bad_message for a code
// this build does not know.
constexpr uint16_t close_code_for_refusal(std::string_view code) noexcept {
  if (code == refusal::unknown_key || code == refusal::bad_signature ||
      code == refusal::bad_nonce || code == refusal::bad_enroll_token) {
    return close_code::auth_failed;
  }
  if (code == refusal::revoked) return close_code::revoked;
  if (code == refusal::rate_limited) return close_code::rate_limited;
  if (code == refusal::replaced) return close_code::replaced;
  return close_code::bad_message;
}

// `error.code` values (a stream ended with a failure). Receivers accept any
// well-formed code and treat one they do not know like `internal`.
namespace stream_error {
constexpr std::string_view bad_request = "bad_request";          // call rejected by the agent
constexpr std::string_view unknown_model = "unknown_model";
constexpr std::string_view busy = "busy";                        // over max_parallel
constexpr std::string_view upstream_unreachable = "upstream_unreachable";
constexpr std::string_view upstream_timeout = "upstream_timeout";
constexpr std::string_view upstream_error = "upstream_error";    // broken upstream response
constexpr std::string_view deadline_exceeded = "deadline_exceeded";
constexpr std::string_view shutting_down = "shutting_down";      // after goaway / SIGTERM
// The agent refused before any response head: the provider's rate limit is
// reached or the vendor answered 429. The message starts "retry in N ms".
// Not the agent's fault: the hub routes the request elsewhere.
constexpr std::string_view rate_limited = "rate_limited";    // the agent's own limit: no vendor call
constexpr std::string_view upstream_rate_limited = "upstream_rate_limited";  // the vendor answered 429
constexpr std::string_view internal = "internal";
}  // namespace stream_error

// `abort.reason` values.
namespace abort_reason {
constexpr std::string_view client_gone = "client_gone";
constexpr std::string_view deadline = "deadline";
constexpr std::string_view shutdown = "shutdown";
}  // namespace abort_reason

// `goaway.reason` values.
namespace goaway_reason {
constexpr std::string_view restart = "restart";
constexpr std::string_view shutdown = "shutdown";
}  // namespace goaway_reason

// `claim_rejected.code` values. Receivers accept any well-formed code.
namespace claim_rejection {
constexpr std::string_view unknown_request = "unknown_request";  // no attempt with this request id
constexpr std::string_view not_yours = "not_yours";              // the attempt went to another agent
constexpr std::string_view expired = "expired";                  // claimed too late to settle
constexpr std::string_view bad_ticket = "bad_ticket";            // its call ticket does not verify
}  // namespace claim_rejection

// `ack.result` values: the only two the decoder accepts.
namespace ack_result {
constexpr std::string_view ok = "ok";            // entry recomputed, equal, appended
constexpr std::string_view dispute = "dispute";  // the agent's view differs; see ack.message
}  // namespace ack_result

}  // namespace tg::tunnel
