// WebSocket (RFC 6455) frame codec: an incremental frame decoder that checks
// every header rule (RSV bits, opcodes, control-frame rules, minimal 7/16/64-bit
// lengths, size limits) and unmasks payload into a caller-chosen buffer, plus
// frame encoders and close-payload helpers. Pure code over byte spans: no I/O,
// no randomness (the caller supplies mask keys), no message reassembly.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::ws {

enum class Opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

inline bool is_control(Opcode op) noexcept { return (static_cast<uint8_t>(op) & 0x8) != 0; }
const char* opcode_name(Opcode op) noexcept;

// Close codes (RFC 6455 section 7.4.1) that this module sends or reports.
namespace close_code {
constexpr uint16_t normal = 1000;
constexpr uint16_t going_away = 1001;
constexpr uint16_t protocol_error = 1002;
constexpr uint16_t unsupported_data = 1003;
constexpr uint16_t no_status = 1005;  // reported only: the peer's close had no code
constexpr uint16_t abnormal = 1006;   // reported only: no close frame arrived
constexpr uint16_t invalid_payload = 1007;
constexpr uint16_t policy_violation = 1008;
constexpr uint16_t message_too_big = 1009;
constexpr uint16_t internal_error = 1011;
}  // namespace close_code

// A code a peer may put in a close frame: 1000-1003, 1007-1014, 3000-4999.
bool is_valid_close_code(uint16_t code) noexcept;

constexpr size_t kMaxControlPayload = 125;
constexpr size_t kMaxHeaderSize = 14;  // 2 + 8 (64-bit length) + 4 (mask key)
constexpr uint64_t kDefaultMaxFramePayload = 1u << 20;    // 1 MiB
constexpr uint64_t kDefaultMaxMessageSize = 1u << 20;     // 1 MiB
constexpr uint64_t kAbsoluteMaxPayload = 1ull << 32;      // no configuration goes above 4 GiB

using MaskKey = std::array<uint8_t, 4>;

struct FrameHeader {
  bool fin = false;
  Opcode opcode = Opcode::continuation;
  bool masked = false;
  MaskKey mask{};
  uint64_t payload_len = 0;
  size_t header_len = 0;  // bytes the header took on the wire
};

// XORs `n` bytes at `data` with `key`, starting at key position `offset % 4`
// (the offset of data[0] within the frame payload). Masking and unmasking are
// the same operation.
void apply_mask(uint8_t* data, size_t n, const MaskKey& key, uint64_t offset) noexcept;

// Parses one frame header from the start of `data`. Sets *need to the number
// of bytes a complete header needs (>= 2) and returns Errc::ok with
// *need > data.size() when more bytes are needed. Errors:
//  Errc::protocol (-> close 1002): RSV bit set, unknown opcode, fragmented or
//    oversized (> 125) control frame, non-minimal length, 64-bit length with
//    the top bit set;
//  Errc::limit (-> close 1009): payload length above `max_payload`.
// The mask rules depend on the role and are checked by the caller.
Status parse_header(std::string_view data, uint64_t max_payload, FrameHeader* out, size_t* need);

// Incremental decoder: feed it bytes in any split and it walks
// header -> payload -> frame end, copying unmasked payload into the string the
// caller passes. It never buffers more than one header (kMaxHeaderSize bytes).
class FrameDecoder {
 public:
  enum class Step {
    need_more,     // `in` is consumed; call again with more bytes
    header_ready,  // header() is valid; payload follows (possibly empty)
    frame_done,    // the current frame's payload has been fully delivered
  };

  explicit FrameDecoder(uint64_t max_frame_payload = kDefaultMaxFramePayload) noexcept
      : max_payload_(max_frame_payload) {}

  // Consumes bytes from the front of `in` (advancing it) until the next step.
  // Payload bytes are unmasked and appended to *payload_sink (may be nullptr to
  // discard them). After an error the decoder is broken: every further call
  // fails with the same kind of error.
  Result<Step> next(std::string_view& in, std::string* payload_sink);

  const FrameHeader& header() const noexcept { return header_; }
  // Payload bytes of the current frame not delivered yet.
  uint64_t remaining() const noexcept { return header_.payload_len - delivered_; }

 private:
  enum class State { header, payload, broken };
  uint64_t max_payload_;
  State state_ = State::header;
  std::array<char, kMaxHeaderSize> hbuf_{};
  size_t hlen_ = 0;
  FrameHeader header_;
  uint64_t delivered_ = 0;
  Status broken_;
};

// Appends a frame header to `out`. `mask` nullptr: unmasked.
void encode_header(std::string& out, bool fin, Opcode op, uint64_t payload_len,
                   const MaskKey* mask);
// Appends a whole frame (header + payload, masked with *mask when given).
void encode_frame(std::string& out, bool fin, Opcode op, std::string_view payload,
                  const MaskKey* mask);

// A close frame's decoded payload.
struct CloseInfo {
  uint16_t code = close_code::no_status;  // no_status when the payload is empty
  std::string reason;
};
// Validates a received close payload: empty, or a valid code plus a UTF-8
// reason. Errc::protocol names what is wrong (-> close 1002).
Result<CloseInfo> parse_close_payload(std::string_view payload);
// Builds a close payload: code (big-endian) + reason; empty when code is
// no_status. Errc::invalid_argument for a code we may not send, a reason
// longer than 123 bytes or one that is not UTF-8.
Result<std::string> make_close_payload(uint16_t code, std::string_view reason);

}  // namespace tg::ws
