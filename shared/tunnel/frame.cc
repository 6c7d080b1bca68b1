#include "shared/tunnel/frame.h"

#include <cstdio>

namespace tg::tunnel {

namespace {

Status check(uint32_t id, bool fin, size_t payload_len, Errc code, const char* where) {
  const std::string at(where);
  if (id == 0) return error(code, at + ": stream id must be 1..4294967295, got 0");
  if (payload_len > kMaxFramePayload) {
    return error(code, at + ": payload of " + std::to_string(payload_len) +
                           " bytes is over the limit of " + std::to_string(kMaxFramePayload));
  }
  if (payload_len == 0 && !fin) {
    return error(code, at + ": empty payload without FIN on stream " + std::to_string(id));
  }
  return Status();
}

}  // namespace

Result<FrameHeaderBytes> encode_frame_header(uint32_t id, bool fin, size_t payload_len) {
  TG_TRY(check(id, fin, payload_len, Errc::invalid_argument, "data frame"));
  FrameHeaderBytes h{};
  h[0] = fin ? kFlagFin : 0;
  h[1] = static_cast<uint8_t>(id >> 24);
  h[2] = static_cast<uint8_t>(id >> 16);
  h[3] = static_cast<uint8_t>(id >> 8);
  h[4] = static_cast<uint8_t>(id);
  return h;
}

Result<std::string> encode_frame(uint32_t id, bool fin, std::string_view payload) {
  Result<FrameHeaderBytes> h = encode_frame_header(id, fin, payload.size());
  if (!h.ok()) return h.status();
  std::string out;
  out.reserve(kFrameHeaderSize + payload.size());
  out.append(reinterpret_cast<const char*>(h->data()), h->size());
  out.append(payload);
  return out;
}

Result<DataFrame> decode_frame(std::string_view bytes) {
  if (bytes.size() < kFrameHeaderSize) {
    return error(Errc::protocol, "data frame: " + std::to_string(bytes.size()) +
                                     " bytes, shorter than the 5-byte header");
  }
  const auto flags = static_cast<uint8_t>(bytes[0]);
  if ((flags & static_cast<uint8_t>(~kFlagFin)) != 0) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(flags));
    return error(Errc::protocol, std::string("data frame: flags byte ") + hex +
                                     " has unknown bits (only bit 0, FIN, is defined)");
  }
  DataFrame f;
  f.fin = (flags & kFlagFin) != 0;
  f.id = (static_cast<uint32_t>(static_cast<uint8_t>(bytes[1])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(bytes[2])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(bytes[3])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(bytes[4]));
  f.payload = bytes.substr(kFrameHeaderSize);
  TG_TRY(check(f.id, f.fin, f.payload.size(), Errc::protocol, "data frame"));
  return f;
}

}  // namespace tg::tunnel
