// Fuzzes ws::Connection's reassembly and close logic: arbitrary bytes from the
// peer, in arbitrary splits, into a client- or server-role Connection over an
// in-memory Stream. Checks: no crash, text messages are valid UTF-8, messages
// respect the size limit, on_ws_close fires at most once, the output is
// bounded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/net/stream.h"
#include "shared/ws/connection.h"
#include "shared/ws/utf8.h"

namespace {

constexpr uint64_t kMaxMessage = 4096;

class MemoryStream final : public tg::net::Stream {
 public:
  tg::net::StreamHandler* handler = nullptr;
  size_t written = 0;
  bool blocked = false;
  bool shut = false;
  bool closed = false;

  void set_handler(tg::net::StreamHandler* h) noexcept override { handler = h; }
  tg::Status write(std::string_view data) override { return writev(&data, 1); }
  tg::Status writev(const std::string_view* parts, size_t count) override {
    if (shut || closed) return tg::error(tg::Errc::closed, "memory stream ended");
    for (size_t i = 0; i < count; ++i) written += parts[i].size();
    return tg::Status();
  }
  size_t queued_bytes() const noexcept override { return blocked ? 2048 : 0; }
  void set_write_watermarks(size_t, size_t) noexcept override {}
  size_t high_water() const noexcept override { return 1024; }
  void pause_reading() noexcept override {}
  void resume_reading() noexcept override {}
  void shutdown() noexcept override { shut = true; }
  void close() noexcept override {
    closed = true;
    handler = nullptr;
  }
  const std::string& peer_address() const noexcept override { return address_; }

 private:
  std::string address_ = "fuzz";
};

struct Checker final : tg::ws::Handler {
  int closes = 0;
  void on_ws_message(tg::ws::Connection&, tg::ws::Opcode type,
                     std::string_view payload) noexcept override {
    if (closes != 0) std::abort();
    if (payload.size() > kMaxMessage) std::abort();
    if (type == tg::ws::Opcode::text && !tg::ws::is_valid_utf8(payload)) std::abort();
    if (type != tg::ws::Opcode::text && type != tg::ws::Opcode::binary) std::abort();
  }
  void on_ws_close(tg::ws::Connection&, uint16_t, std::string_view, bool) noexcept override {
    if (++closes > 1) std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  tg::log::set_level(tg::log::Level::off);
  const bool server = (data[0] & 1) != 0;
  const bool blocked = (data[0] & 2) != 0;
  const size_t piece = (data[1] % 32) + 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  // The first piece rides in as upgrade leftover.
  const std::string leftover(input.substr(0, piece));

  tg::Loop loop;
  {
    auto owned = std::make_unique<MemoryStream>();
    MemoryStream* stream = owned.get();
    stream->blocked = blocked;
    tg::ws::Options opts;
    opts.max_message_size = kMaxMessage;
    opts.max_frame_payload = kMaxMessage;
    tg::ws::Connection conn(loop, std::move(owned), leftover,
                            server ? tg::ws::Role::server : tg::ws::Role::client, opts);
    Checker checker;
    conn.start(&checker);
    uv_run(loop, UV_RUN_NOWAIT);  // processes the leftover, attaches the stream
    for (size_t at = piece; at < input.size() && stream->handler; at += piece) {
      stream->handler->on_stream_read(*stream, input.substr(at, piece));
    }
    if (stream->handler) stream->handler->on_stream_drain(*stream);
    if (stream->handler) stream->handler->on_stream_end(*stream, tg::Status());
    if (checker.closes != 1) std::abort();
    // Pongs are coalesced and frames are bounded: output stays proportional.
    if (stream->written > 2 * input.size() + 1024) std::abort();
  }
  if (!loop.close().ok()) std::abort();
  return 0;
}
