// Tunnel protocol v1 data frames (WebSocket binary frames): byte 0 flags (bit 0
// FIN, other bits zero), bytes 1..4 stream id (uint32 big-endian, nonzero),
// then 0..65536 payload bytes (empty only with FIN). Pure codec: no I/O; the
// decoder returns views into the caller's buffer and never copies the payload.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::tunnel {

constexpr size_t kFrameHeaderSize = 5;
constexpr size_t kMaxFramePayload = 64 * 1024;
constexpr uint8_t kFlagFin = 0x01;

using FrameHeaderBytes = std::array<uint8_t, kFrameHeaderSize>;

struct DataFrame {
  uint32_t id = 0;
  bool fin = false;
  std::string_view payload;  // points into the buffer passed to decode_frame()
};

// The 5-byte header of a frame carrying `payload_len` bytes, so a caller can
// write header and payload with one writev without copying the payload.
// Errc::invalid_argument for id 0, payload_len over kMaxFramePayload, or an
// empty payload without FIN.
Result<FrameHeaderBytes> encode_frame_header(uint32_t id, bool fin, size_t payload_len);
// Header + payload in one string; same errors.
Result<std::string> encode_frame(uint32_t id, bool fin, std::string_view payload);
// Parses one whole binary message. Errc::protocol (close 4000) names what is
// wrong: shorter than the header, unknown flag bits, id 0, payload over
// kMaxFramePayload, empty payload without FIN.
Result<DataFrame> decode_frame(std::string_view bytes);

}  // namespace tg::tunnel
