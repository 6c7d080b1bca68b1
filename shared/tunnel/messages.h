// Tunnel protocol v1 control messages (WebSocket text frames): one struct per
// message, a strict JSON decoder checking every field's type, range, length and
// characters, and a deterministic compact encoder. Pure code: no I/O, no state;
// who may send what when is the session's job (sent_by_hub(), PROTOCOL.md).
// Billing messages carry ledger hashes and signatures but never compute or
// verify them (shared/ledger does).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"

namespace tg::tunnel {

// Limits (bytes unless stated). Every string, array and number has one.
constexpr size_t kMaxPreAuthMessage = 4 * 1024;
constexpr size_t kMaxSessionMessage = 64 * 1024;
constexpr int kMaxJsonDepth = 16;        // nesting of [ and { in a whole message
constexpr size_t kMaxModel = 128;
constexpr size_t kMaxModels = 256;
constexpr size_t kMaxMethod = 16;
constexpr size_t kMaxPath = 2048;
constexpr size_t kMaxHeaderName = 128;
constexpr size_t kMaxHeaderValue = 8192;
constexpr size_t kMaxHeaders = 64;
constexpr size_t kMaxText = 512;         // human-readable `message` fields
constexpr size_t kMaxCode = 64;          // codes and reasons
constexpr size_t kMaxEnrollToken = 128;
constexpr size_t kMaxOwner = 128;
constexpr size_t kMaxAgentVersion = 64;
constexpr size_t kMaxPlatform = 64;
constexpr uint32_t kMaxStreamId = 0xFFFFFFFFu;
constexpr uint32_t kMinHeartbeatMs = 1000;
constexpr uint32_t kMaxHeartbeatMs = 600000;
constexpr uint32_t kMaxDeadAfter = 100;
constexpr uint32_t kMaxMaxStreams = 4096;
constexpr uint32_t kMinWindow = 64 * 1024;   // at least one full data frame
constexpr uint32_t kMaxWindow = 16 * 1024 * 1024;
constexpr uint32_t kMaxMaxParallel = 256;
constexpr uint32_t kMaxDeadlineMs = 86400000;  // 24 h
constexpr uint32_t kMaxReconnectAfterMs = 3600000;
// Billing. Integers that can pass 2^32 stay within 2^53-1 so a JSON number
// (an IEEE double) holds them exactly.
constexpr uint64_t kMaxSafeInteger = 9007199254740991;  // 2^53-1: seq, versions, time_ms
constexpr size_t kMaxRequestId = 64;
constexpr size_t kMaxTicket = 160;
constexpr size_t kMaxPriceModels = 256;
constexpr int64_t kMaxPrice = 1000000000000;           // micro-units per million tokens
constexpr uint64_t kMaxTokens = 1000000000000;         // per request and kind
constexpr int64_t kMaxAmount = 9000000000000000;       // micro-units: cost, credit, totals
constexpr uint32_t kMaxTierPpm = 1000000;              // credit ratio, parts per million
// Capacity reports.
constexpr uint32_t kMaxReadyInMs = 3600000;            // 1 h
constexpr uint32_t kMaxCapacityRpm = 10000000;         // requests per minute

using Nonce = std::array<uint8_t, 32>;
// A SHA-256 (ledger entry hash, chain head): 64 lowercase hex digits on the
// wire. The same type as crypto::Sha256.
using HashBytes = std::array<uint8_t, 32>;
using Headers = std::vector<std::pair<std::string, std::string>>;

// hub -> agent, first message after the upgrade.
struct Challenge {
  int v = 1;  // protocol version; the decoder accepts only kProtocolVersion
  Nonce nonce{};
};
// agent -> hub, answer to the challenge.
struct Auth {
  crypto::PublicKey pubkey{};
  crypto::Signature sig{};
  std::string agent_version;
  std::string platform;
  std::string enroll_token;  // empty: absent on the wire
};
// hub -> agent, authentication accepted.
struct Welcome {
  std::string owner;
  uint32_t heartbeat_ms = 0;
  uint32_t dead_after = 0;
  uint32_t max_streams = 0;
  uint32_t window = 0;
  crypto::PublicKey ledger_key{};  // the hub's key that signs ledger checkpoints
  uint32_t tier_ppm = 0;           // this agent's credit ratio, 0..kMaxTierPpm
};
// hub -> agent, then the hub closes (before authentication, or later for
// `revoked` / `replaced`).
struct Refused {
  std::string code;     // refusal::*
  std::string message;  // human text, may be empty
};
// agent -> hub, may be repeated to update.
struct Register {
  std::vector<std::string> models;  // unique
  uint32_t max_parallel = 0;
};
// hub -> agent, answer to register.
struct Registered {
  uint32_t models = 0;  // how many models the hub accepted
};
// hub -> agent, opens stream `id`; the request body follows as data frames.
struct Call {
  uint32_t id = 0;
  std::string request_id;  // the hub's id of this attempt: unique, the settlement key
  std::string model;
  std::string method;
  std::string path;
  Headers headers;  // names lowercase
  bool stream = false;
  uint32_t deadline_ms = 0;
  // The hub's sealed billing ticket for this attempt (hub/call_ticket.h):
  // opaque to the agent, which keeps it with the call's outbox row and
  // returns it in the claim. Empty: none (a hub without billing).
  std::string ticket;
};
// agent -> hub, response head of stream `id`; the body follows as data frames.
struct Response {
  uint32_t id = 0;
  uint32_t status = 0;
  Headers headers;
};
// agent -> hub, after the response body's FIN: the stream succeeded.
// (The usage travels in `claim`.)
struct Finish {
  uint32_t id = 0;
  uint32_t upstream_status = 0;
};
// either way: stream `id` ended with a failure.
struct Error {
  uint32_t id = 0;
  std::string code;     // stream_error::*
  std::string message;
};
// either way: cancel stream `id` now.
struct Abort {
  uint32_t id = 0;
  std::string reason;   // abort_reason::*
};
// either way: the receiver of stream `id`'s body consumed `bytes` more.
struct Credit {
  uint32_t id = 0;
  uint32_t bytes = 0;
};
// hub -> agent: no new calls on this tunnel; reconnect after the delay.
struct Goaway {
  std::string reason;   // goaway_reason::*
  uint32_t reconnect_after_ms = 0;
};

// One row of a price table: micro-units per million tokens of each kind.
struct PriceEntry {
  std::string model;  // a model name, or "*" for every model not listed
  int64_t input = 0;
  int64_t cached_input = 0;
  int64_t output = 0;
};
// hub -> agent: the price table settlements name by `version`.
struct Prices {
  uint64_t version = 0;
  std::vector<PriceEntry> models;  // unique models
};
// agent -> hub: the usage the agent read from the bytes it forwarded for
// attempt `request_id`; sent from its outbox until settled or rejected.
struct Claim {
  std::string request_id;
  std::string model;
  uint64_t input = 0;
  uint64_t cached = 0;
  uint64_t output = 0;
  bool estimated = false;  // usage not found in the bytes: estimated
  std::string ticket;      // the call's ticket, as received (empty: none)
};
// hub -> agent: the claim for `request_id` will never be settled.
struct ClaimRejected {
  std::string request_id;
  std::string code;     // claim_rejection::*
  std::string message;
};
// hub -> agent: entry `seq` of this agent's ledger chain.
struct Settle {
  uint64_t seq = 0;
  std::string request_id;
  std::string model;
  uint64_t input = 0;
  uint64_t cached = 0;
  uint64_t output = 0;
  bool estimated = false;
  uint64_t price_version = 0;
  int64_t cost = 0;      // micro-units
  uint32_t tier_ppm = 0;
  int64_t credit = 0;    // micro-units, at most cost
  int64_t time_ms = 0;   // unix ms of the settlement
  HashBytes prev{};      // hash of entry seq-1 (all zeros for seq 1)
  HashBytes hash{};      // hash of this entry
};
// agent -> hub: answer to settle `seq`.
struct Ack {
  uint64_t seq = 0;
  HashBytes hash{};     // the hash the agent computed
  std::string result;   // ack_result::ok or ack_result::dispute
  std::string message;  // why, for a dispute; may be empty
};
// agent -> hub: the head of the agent's chain (seq 0 and zero head: empty).
struct Sync {
  uint64_t seq = 0;
  HashBytes head{};
};
// hub -> agent: the hub's signed statement of the chain up to `seq`.
struct Checkpoint {
  uint64_t seq = 0;
  HashBytes head{};
  int64_t total_cost = 0;
  int64_t total_credit = 0;
  int64_t time_ms = 0;
  crypto::Signature sig{};  // by welcome.ledger_key
};
// agent -> hub: the listed models (those of one provider) cannot take calls
// on this agent for `ready_in_ms` (0: they can again now).
struct Capacity {
  std::vector<std::string> models;  // 1..kMaxModels, unique
  uint32_t ready_in_ms = 0;         // 0..kMaxReadyInMs
  uint32_t rpm = 0;                 // the provider's effective requests per minute; 0: no limit
};

// Order matches Message's alternatives.
enum class Type : uint8_t {
  challenge, auth, welcome, refused, register_, registered, call, response,
  finish, error, abort, credit, goaway,
  prices, claim, claim_rejected, settle, ack, sync, checkpoint, capacity,
};
constexpr size_t kTypeCount = 21;

using Message = std::variant<Challenge, Auth, Welcome, Refused, Register, Registered, Call,
                             Response, Finish, Error, Abort, Credit, Goaway, Prices, Claim,
                             ClaimRejected, Settle, Ack, Sync, Checkpoint, Capacity>;

inline Type type_of(const Message& m) noexcept { return static_cast<Type>(m.index()); }
// The wire name ("challenge", "register", ...).
const char* type_name(Type t) noexcept;
// Whether the hub may send this type / the agent may (both for error, abort
// and credit).
bool sent_by_hub(Type t) noexcept;
bool sent_by_agent(Type t) noexcept;

enum class Phase {
  pre_auth,  // challenge, auth, welcome, refused; kMaxPreAuthMessage
  session,   // every type but challenge, auth, welcome; kMaxSessionMessage
};
size_t max_message_size(Phase p) noexcept;
bool allowed_in(Type t, Phase p) noexcept;

// Parses one text frame. Errors (message names the field and the bad value,
// e.g. "call.id: must be an integer 1..4294967295, got -1"):
//   Errc::limit    the text is over the phase's size limit (close 1009);
//   Errc::parse    not JSON, nesting over kMaxJsonDepth, control characters or
//                  \u0000 in strings, a number that is not an integer but
//                  reads as one (1.0000000000000001), trailing bytes (close 4000);
//   Errc::protocol unknown or phase-forbidden type, unknown/duplicate/missing
//                  field, wrong JSON type, out-of-range value (close 4000).
Result<Message> decode(std::string_view json, Phase phase);
// The close code to send after decode() failed with `s`.
uint16_t close_code_for(const Status& s) noexcept;

// Checks every limit decode() checks, on a message built in memory.
Status validate(const Message& m);
// Compact JSON, fields in a fixed order ("type" first). `m` must pass
// validate() and fit the phase's size limit; otherwise the peer will refuse
// what comes out (encode_checked() checks both).
std::string encode(const Message& m);
// validate(), the phase rule and the size limit, then encode(). Errc::protocol
// for an invalid message or a type not allowed in `phase`, Errc::limit when
// the text is over max_message_size(phase) (e.g. a call with many large
// headers). Use it for messages built from untrusted input.
Result<std::string> encode_checked(const Message& m, Phase phase);

bool operator==(const Challenge& a, const Challenge& b);
bool operator==(const Auth& a, const Auth& b);
bool operator==(const Welcome& a, const Welcome& b);
bool operator==(const Refused& a, const Refused& b);
bool operator==(const Register& a, const Register& b);
bool operator==(const Registered& a, const Registered& b);
bool operator==(const Call& a, const Call& b);
bool operator==(const Response& a, const Response& b);
bool operator==(const Finish& a, const Finish& b);
bool operator==(const Error& a, const Error& b);
bool operator==(const Abort& a, const Abort& b);
bool operator==(const Credit& a, const Credit& b);
bool operator==(const Goaway& a, const Goaway& b);
bool operator==(const PriceEntry& a, const PriceEntry& b);
bool operator==(const Prices& a, const Prices& b);
bool operator==(const Claim& a, const Claim& b);
bool operator==(const ClaimRejected& a, const ClaimRejected& b);
bool operator==(const Settle& a, const Settle& b);
bool operator==(const Ack& a, const Ack& b);
bool operator==(const Sync& a, const Sync& b);
bool operator==(const Checkpoint& a, const Checkpoint& b);
bool operator==(const Capacity& a, const Capacity& b);

}  // namespace tg::tunnel
