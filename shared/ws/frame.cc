#include "shared/ws/frame.h"

#include <algorithm>
#include <cstring>

#include "shared/ws/utf8.h"

namespace tg::ws {
namespace {

bool known_opcode(uint8_t op) noexcept {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

std::string hex_byte(uint8_t b) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  s += kDigits[b >> 4];
  s += kDigits[b & 0xF];
  return s;
}

}  // namespace

const char* opcode_name(Opcode op) noexcept {
  switch (op) {
    case Opcode::continuation: return "continuation";
    case Opcode::text: return "text";
    case Opcode::binary: return "binary";
    case Opcode::close: return "close";
    case Opcode::ping: return "ping";
    case Opcode::pong: return "pong";
  }
  return "unknown";
}

bool is_valid_close_code(uint16_t code) noexcept {
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

void apply_mask(uint8_t* data, size_t n, const MaskKey& key, uint64_t offset) noexcept {
  size_t k = static_cast<size_t>(offset & 3u);
  for (size_t i = 0; i < n; ++i) {
    data[i] = static_cast<uint8_t>(data[i] ^ key[k]);
    k = (k + 1) & 3u;
  }
}

Status parse_header(std::string_view data, uint64_t max_payload, FrameHeader* out, size_t* need) {
  *need = 2;
  if (data.size() < 2) return Status();
  const auto b0 = static_cast<uint8_t>(data[0]);
  const auto b1 = static_cast<uint8_t>(data[1]);
  if ((b0 & 0x70) != 0) {
    return error(Errc::protocol, "ws frame: RSV bits set in first byte " + hex_byte(b0) +
                                     " but no extension was negotiated");
  }
  const uint8_t op = b0 & 0x0F;
  if (!known_opcode(op)) {
    return error(Errc::protocol, "ws frame: unknown opcode " + hex_byte(op));
  }
  const bool fin = (b0 & 0x80) != 0;
  const bool masked = (b1 & 0x80) != 0;
  const uint8_t len7 = b1 & 0x7F;
  const auto opcode = static_cast<Opcode>(op);
  if (is_control(opcode)) {
    if (!fin) {
      return error(Errc::protocol,
                   std::string("ws frame: fragmented control frame (") + opcode_name(opcode) + ")");
    }
    if (len7 > kMaxControlPayload) {
      return error(Errc::protocol, std::string("ws frame: control frame (") + opcode_name(opcode) +
                                       ") longer than 125 bytes (length code " +
                                       std::to_string(len7) + ")");
    }
  }
  size_t n = 2;
  if (len7 == 126) n += 2;
  else if (len7 == 127) n += 8;
  const size_t len_end = n;
  if (masked) n += 4;
  *need = n;
  if (data.size() < n) return Status();

  uint64_t len = len7;
  if (len7 == 126) {
    len = (static_cast<uint64_t>(static_cast<uint8_t>(data[2])) << 8) |
          static_cast<uint8_t>(data[3]);
    if (len < 126) {
      return error(Errc::protocol, "ws frame: 16-bit length " + std::to_string(len) +
                                       " should have used the 7-bit form");
    }
  } else if (len7 == 127) {
    len = 0;
    for (size_t i = 2; i < 10; ++i) len = (len << 8) | static_cast<uint8_t>(data[i]);
    if ((len >> 63) != 0) {
      return error(Errc::protocol, "ws frame: 64-bit length has its most significant bit set");
    }
    if (len <= 0xFFFF) {
      return error(Errc::protocol, "ws frame: 64-bit length " + std::to_string(len) +
                                       " should have used a shorter form");
    }
  }
  if (len > max_payload) {
    return error(Errc::limit, "ws frame: payload of " + std::to_string(len) +
                                  " bytes exceeds the limit of " + std::to_string(max_payload));
  }
  out->fin = fin;
  out->opcode = opcode;
  out->masked = masked;
  out->mask = MaskKey{};
  if (masked) {
    for (size_t i = 0; i < 4; ++i) out->mask[i] = static_cast<uint8_t>(data[len_end + i]);
  }
  out->payload_len = len;
  out->header_len = n;
  return Status();
}

Result<FrameDecoder::Step> FrameDecoder::next(std::string_view& in, std::string* payload_sink) {
  if (state_ == State::broken) return broken_;
  if (state_ == State::header) {
    for (;;) {
      size_t need = 0;
      Status s = parse_header(std::string_view(hbuf_.data(), hlen_), max_payload_, &header_, &need);
      if (!s.ok()) {
        state_ = State::broken;
        broken_ = s;
        return s;
      }
      if (need <= hlen_) break;
      if (in.empty()) return Step::need_more;
      const size_t take = std::min(need - hlen_, in.size());
      std::memcpy(hbuf_.data() + hlen_, in.data(), take);
      hlen_ += take;
      in.remove_prefix(take);
    }
    state_ = State::payload;
    delivered_ = 0;
    return Step::header_ready;
  }
  // State::payload
  if (remaining() > 0) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining(), in.size()));
    if (take == 0) return Step::need_more;
    if (payload_sink) {
      const size_t at = payload_sink->size();
      payload_sink->append(in.data(), take);
      if (header_.masked) {
        apply_mask(reinterpret_cast<uint8_t*>(&(*payload_sink)[at]), take, header_.mask,
                   delivered_);
      }
    }
    delivered_ += take;
    in.remove_prefix(take);
    if (remaining() > 0) return Step::need_more;
  }
  state_ = State::header;
  hlen_ = 0;
  return Step::frame_done;
}

void encode_header(std::string& out, bool fin, Opcode op, uint64_t payload_len,
                   const MaskKey* mask) {
  out.push_back(static_cast<char>((fin ? 0x80 : 0x00) | static_cast<uint8_t>(op)));
  const uint8_t mask_bit = mask ? 0x80 : 0x00;
  if (payload_len < 126) {
    out.push_back(static_cast<char>(mask_bit | static_cast<uint8_t>(payload_len)));
  } else if (payload_len <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>((payload_len >> 8) & 0xFF));
    out.push_back(static_cast<char>(payload_len & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((payload_len >> shift) & 0xFF));
    }
  }
  if (mask) {
    for (uint8_t b : *mask) out.push_back(static_cast<char>(b));
  }
}

void encode_frame(std::string& out, bool fin, Opcode op, std::string_view payload,
                  const MaskKey* mask) {
  encode_header(out, fin, op, payload.size(), mask);
  const size_t at = out.size();
  out.append(payload.data(), payload.size());
  if (mask && !payload.empty()) {
    apply_mask(reinterpret_cast<uint8_t*>(&out[at]), payload.size(), *mask, 0);
  }
}

Result<CloseInfo> parse_close_payload(std::string_view payload) {
  CloseInfo info;
  if (payload.empty()) return info;
  if (payload.size() == 1) {
    return error(Errc::protocol, "ws close frame: 1-byte payload (a code needs 2 bytes)");
  }
  if (payload.size() > kMaxControlPayload) {
    return error(Errc::protocol, "ws close frame: payload of " + std::to_string(payload.size()) +
                                     " bytes exceeds 125");
  }
  const auto code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                          static_cast<uint8_t>(payload[1]));
  if (!is_valid_close_code(code)) {
    return error(Errc::protocol, "ws close frame: invalid close code " + std::to_string(code));
  }
  const std::string_view reason = payload.substr(2);
  if (!is_valid_utf8(reason)) {
    return error(Errc::protocol, "ws close frame: reason is not valid UTF-8");
  }
  info.code = code;
  info.reason.assign(reason.data(), reason.size());
  return info;
}

Result<std::string> make_close_payload(uint16_t code, std::string_view reason) {
  if (code == close_code::no_status) {
    if (!reason.empty()) {
      return error(Errc::invalid_argument, "ws close: a reason needs a close code");
    }
    return std::string();
  }
  if (!is_valid_close_code(code)) {
    return error(Errc::invalid_argument, "ws close: code " + std::to_string(code) +
                                             " may not be sent (use 1000-1003, 1007-1014, "
                                             "3000-4999)");
  }
  if (reason.size() > kMaxControlPayload - 2) {
    return error(Errc::invalid_argument, "ws close: reason of " + std::to_string(reason.size()) +
                                             " bytes exceeds 123");
  }
  if (!is_valid_utf8(reason)) {
    return error(Errc::invalid_argument, "ws close: reason is not valid UTF-8");
  }
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason.data(), reason.size());
  return out;
}

}  // namespace tg::ws
