// Fuzzes the WebSocket frame decoder: arbitrary bytes fed in arbitrary splits
// (chosen by the first input byte) must decode to the same frames as a
// whole-buffer feed, never crash, and every decoded frame must re-encode and
// decode to itself. Close payloads and UTF-8 checks ride along.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "shared/ws/frame.h"
#include "shared/ws/utf8.h"

namespace {

struct Frame {
  tg::ws::FrameHeader header;
  std::string payload;
};

constexpr uint64_t kMax = 1 << 16;

// Decodes `wire` in pieces of `piece` bytes; returns whether it ended in error.
bool decode(const std::string& wire, size_t piece, std::vector<Frame>* frames) {
  tg::ws::FrameDecoder dec(kMax);
  Frame cur;
  for (size_t at = 0; at < wire.size(); at += piece) {
    std::string_view in(wire.data() + at, std::min(piece, wire.size() - at));
    for (;;) {
      auto step = dec.next(in, &cur.payload);
      if (!step.ok()) return true;
      if (*step == tg::ws::FrameDecoder::Step::need_more) break;
      if (*step == tg::ws::FrameDecoder::Step::header_ready) {
        cur.header = dec.header();
        if (cur.header.payload_len > kMax) std::abort();
        if (tg::ws::is_control(cur.header.opcode) &&
            (!cur.header.fin || cur.header.payload_len > tg::ws::kMaxControlPayload)) {
          std::abort();
        }
      } else {
        if (cur.payload.size() != cur.header.payload_len) std::abort();
        frames->push_back(std::move(cur));
        cur = Frame();
      }
    }
    if (!in.empty()) std::abort();
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = (data[0] % 16) + 1;
  const std::string wire(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<Frame> whole;
  std::vector<Frame> split;
  const bool err_whole = decode(wire, wire.size() ? wire.size() : 1, &whole);
  const bool err_split = decode(wire, piece, &split);
  if (err_whole != err_split || whole.size() != split.size()) std::abort();

  for (size_t i = 0; i < whole.size(); ++i) {
    const Frame& f = whole[i];
    if (f.payload != split[i].payload || f.header.opcode != split[i].header.opcode) std::abort();
    // Re-encode (masked as received) and decode again: must be identical.
    std::string again;
    tg::ws::encode_frame(again, f.header.fin, f.header.opcode, f.payload,
                         f.header.masked ? &f.header.mask : nullptr);
    std::vector<Frame> round;
    if (decode(again, again.size(), &round) || round.size() != 1) std::abort();
    if (round[0].payload != f.payload || round[0].header.fin != f.header.fin ||
        round[0].header.masked != f.header.masked) {
      std::abort();
    }
    if (f.header.opcode == tg::ws::Opcode::close) {
      auto info = tg::ws::parse_close_payload(f.payload);
      if (info.ok()) {
        auto rebuilt = tg::ws::make_close_payload(info->code, info->reason);
        if (!rebuilt.ok() || *rebuilt != f.payload) std::abort();
      }
    }
    tg::ws::Utf8Validator v;
    bool inc = true;
    for (size_t at = 0; at < f.payload.size(); at += piece) {
      inc = v.feed(std::string_view(f.payload).substr(at, piece)) && inc;
    }
    if ((inc && v.complete()) != tg::ws::is_valid_utf8(f.payload)) std::abort();
  }
  return 0;
}
