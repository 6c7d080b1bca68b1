// Fuzzes the data-frame codec and the credit windows. The input is a series of
// records: 2-byte big-endian length, then that many bytes of binary message.
// Every accepted frame must re-encode to exactly its bytes; its payload is fed
// to a per-stream receive window and partly consumed, the returned credit
// goes to the matching send window, and the accounting invariants must hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/tunnel/frame.h"
#include "shared/tunnel/window.h"

namespace {

constexpr size_t kStreams = 4;
constexpr uint32_t kWindow = 256 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tg::tunnel;
  RecvWindow rx[kStreams] = {RecvWindow(kWindow), RecvWindow(kWindow), RecvWindow(kWindow),
                             RecvWindow(kWindow)};
  SendWindow tx[kStreams] = {SendWindow(kWindow), SendWindow(kWindow), SendWindow(kWindow),
                             SendWindow(kWindow)};
  size_t at = 0;
  while (at + 2 <= size) {
    const size_t len = (static_cast<size_t>(data[at]) << 8) | data[at + 1];
    at += 2;
    const size_t n = len < size - at ? len : size - at;
    const std::string_view msg(reinterpret_cast<const char*>(data + at), n);
    at += n;

    tg::Result<DataFrame> f = decode_frame(msg);
    if (!f.ok()) {
      if (f.status().code() != tg::Errc::protocol) std::abort();
      continue;
    }
    if (f->id == 0 || f->payload.size() > kMaxFramePayload || (f->payload.empty() && !f->fin)) {
      std::abort();
    }
    tg::Result<std::string> wire = encode_frame(f->id, f->fin, f->payload);
    if (!wire.ok() || *wire != msg) std::abort();

    // The sender mirrors what the receiver sees; both must agree.
    const size_t s = f->id % kStreams;
    const size_t bytes = f->payload.size();
    const bool fits = tx[s].can_send(bytes);
    const bool sent = tx[s].on_sent(bytes).ok();
    const bool received = rx[s].on_received(bytes).ok();
    if (fits != sent || sent != received) std::abort();
    if (received && bytes > 0) {
      const size_t take = bytes / 2 + (f->fin ? bytes - bytes / 2 : 0);
      tg::Result<uint32_t> credit = rx[s].consumed(take);
      if (!credit.ok()) std::abort();
      if (*credit > 0 && !tx[s].on_credit(*credit).ok()) std::abort();
    }
    if (static_cast<uint64_t>(rx[s].buffered()) + rx[s].pending_credit() + tx[s].available() !=
        kWindow) {
      std::abort();
    }
  }
  return 0;
}
