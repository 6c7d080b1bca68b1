// Test helpers for the WebSocket tests: a connected loopback TCP pair, a
// recording ws::Handler and a raw byte peer that speaks hand-made frames.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shared/core/loop.h"
#include "shared/net/tcp.h"
#include "shared/ws/connection.h"
#include "shared/ws/frame.h"

namespace tg::ws::test {

constexpr uint64_t kTestTimeoutMs = 5000;

// Connects a client stream to a server stream over 127.0.0.1 (ephemeral port).
inline bool connect_pair(Loop& loop, net::StreamPtr* client, net::StreamPtr* server) {
  net::TcpListener listener(loop);
  Status s = listener.listen("127.0.0.1", 0, [&](net::StreamPtr st) { *server = std::move(st); });
  if (!s.ok()) {
    ADD_FAILURE() << s.to_string();
    return false;
  }
  net::TcpConnector connector(loop);
  bool done = false;
  s = connector.connect("127.0.0.1", listener.port(), kTestTimeoutMs, [&](Result<net::StreamPtr> r) {
    done = true;
    if (r.ok()) *client = std::move(r.value());
    else ADD_FAILURE() << r.status().to_string();
  });
  if (!s.ok()) {
    ADD_FAILURE() << s.to_string();
    return false;
  }
  bool ok = loop.run_until([&] { return done && *server != nullptr; }, kTestTimeoutMs);
  return ok && *client && *server;
}

struct Message {
  Opcode type;
  std::string payload;
};

// Records every event; optional hooks run inside the callbacks.
struct Recorder final : Handler {
  std::vector<Message> messages;
  std::vector<std::string> pongs;
  int drains = 0;
  int closes = 0;
  uint16_t close_code = 0;
  std::string close_reason;
  bool clean = false;
  std::function<void(Connection&, const Message&)> on_message;
  std::function<void(Connection&)> on_close;

  void on_ws_message(Connection& c, Opcode type, std::string_view payload) noexcept override {
    messages.push_back(Message{type, std::string(payload)});
    if (on_message) on_message(c, messages.back());
  }
  void on_ws_pong(Connection&, std::string_view payload) noexcept override {
    pongs.emplace_back(payload);
  }
  void on_ws_drain(Connection&) noexcept override { ++drains; }
  void on_ws_close(Connection& c, uint16_t code, std::string_view reason,
                   bool was_clean) noexcept override {
    ++closes;
    close_code = code;
    close_reason = std::string(reason);
    clean = was_clean;
    if (on_close) on_close(c);
  }
};

// A peer that writes raw bytes and collects what it reads.
struct RawPeer final : net::StreamHandler {
  net::StreamPtr stream;
  std::string received;
  bool ended = false;
  Status end_status;

  explicit RawPeer(net::StreamPtr s) : stream(std::move(s)) { stream->set_handler(this); }
  ~RawPeer() {
    if (stream) stream->set_handler(nullptr);
  }
  void on_stream_read(net::Stream&, std::string_view data) noexcept override {
    received.append(data.data(), data.size());
  }
  // Like a real TCP peer, closes its end once the other side has ended.
  void on_stream_end(net::Stream& s, const Status& why) noexcept override {
    ended = true;
    end_status = why;
    s.close();
  }
  void send(const std::string& bytes) { ASSERT_TRUE(stream->write(bytes).ok()); }
  // Sends one frame; `masked` uses a fixed key (as a client would).
  void send_frame(bool fin, Opcode op, std::string_view payload, bool masked) {
    static const MaskKey key{0x12, 0x34, 0x56, 0x78};
    std::string f;
    encode_frame(f, fin, op, payload, masked ? &key : nullptr);
    send(f);
  }

  // Decodes every complete frame received so far.
  std::vector<std::pair<FrameHeader, std::string>> frames() const {
    std::vector<std::pair<FrameHeader, std::string>> out;
    FrameDecoder dec(1 << 24);
    std::string_view in(received);
    std::string payload;
    for (;;) {
      auto step = dec.next(in, &payload);
      if (!step.ok() || *step == FrameDecoder::Step::need_more) break;
      if (*step == FrameDecoder::Step::frame_done) {
        out.emplace_back(dec.header(), payload);
        payload.clear();
      }
    }
    return out;
  }
  // The close frame received, if any: code (0 if none).
  uint16_t close_code() const {
    for (auto& [h, p] : frames()) {
      if (h.opcode == Opcode::close) {
        auto info = parse_close_payload(p);
        return info.ok() ? info->code : 0;
      }
    }
    return 0;
  }
};

}  // namespace tg::ws::test
