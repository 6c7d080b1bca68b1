// WebSocket connection (RFC 6455) over a net::Stream, after the HTTP upgrade:
// reassembles messages, enforces masking, UTF-8 and size rules, answers pings,
// runs the close handshake with a timeout. Owns the Stream; knows nothing about
// HTTP (see handshake.h) and never buffers more than one message plus one
// pending pong per connection.
#pragma once

#include <uv.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/net/stream.h"
#include "shared/ws/frame.h"
#include "shared/ws/utf8.h"

namespace tg::ws {

enum class Role { client, server };

struct Options {
  // Largest single frame payload accepted from the peer (close 1009 above).
  uint64_t max_frame_payload = kDefaultMaxFramePayload;
  // Largest reassembled message accepted from the peer (close 1009 above).
  uint64_t max_message_size = kDefaultMaxMessageSize;
  // How long to wait for the peer's close frame after ours, and for the
  // transport to end after the close frames were exchanged.
  uint64_t close_timeout_ms = 5000;
  // Pings accepted from the peer per minute (fixed one-minute windows); one
  // more fails the connection with 1008. 0: no limit (pongs are coalesced
  // either way, so memory stays bounded; this stops the CPU being burnt).
  uint32_t max_pings_per_minute = 0;
};

class Connection;

// Receives a Connection's events. Every callback comes from the loop, never
// from inside a Connection method. The owner may destroy the Connection inside
// any callback; nothing fires afterwards.
class Handler {
 public:
  // A complete message: `type` is Opcode::text (valid UTF-8) or
  // Opcode::binary. `payload` is valid only during the call.
  virtual void on_ws_message(Connection& c, Opcode type, std::string_view payload) noexcept = 0;
  // A pong arrived (solicited or not). The ping that caused it was answered
  // automatically; pings are not reported.
  virtual void on_ws_pong(Connection& c, std::string_view payload) noexcept {
    (void)c;
    (void)payload;
  }
  // The write queue drained below the low-water mark after write_blocked().
  virtual void on_ws_drain(Connection& c) noexcept { (void)c; }
  // The connection is over and its transport closed; fires exactly once and
  // last. `code`/`reason`: the peer's close frame if one arrived (1005 if it
  // had no code), else the code we failed the connection with, else 1006.
  // `clean`: both close frames were exchanged.
  virtual void on_ws_close(Connection& c, uint16_t code, std::string_view reason,
                           bool clean) noexcept = 0;

 protected:
  virtual ~Handler() = default;
};

class Connection final : private net::StreamHandler {
 public:
  enum class State {
    idle,      // constructed, start() not called yet
    open,      // messages flow both ways
    closing,   // we sent a close frame and wait for the peer's
    draining,  // no more frames processed; transport shut down, waiting for its end
    finished,  // on_ws_close fired; the transport is closed
  };

  // Takes over `stream` (its handler must be detached). `leftover`: bytes read
  // past the HTTP head during the upgrade; they are processed first, from the
  // loop, after start(). `subprotocol` is what the handshake agreed on ("" for
  // none), kept for subprotocol().
  Connection(uv_loop_t* loop, net::StreamPtr stream, std::string leftover, Role role,
             Options opts = {}, std::string subprotocol = {});
  // Aborts the transport at once (no close frame); no callback afterwards.
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts delivering events to `handler` (which must outlive the
  // Connection or destroy it first). Call once, before any other method.
  void start(Handler* handler);

  // Whole messages. Errc::invalid_argument: text not UTF-8, or a fragmented
  // send is in progress. Errc::closed: not open (close started or over).
  Status send_text(std::string_view text);
  Status send_binary(std::string_view data);
  // Fragmented send: the first call fixes `type` (text or binary), fin=true
  // ends the message. Control frames may interleave. Text fragments are
  // UTF-8-checked as a stream; a bad fragment is refused and nothing sent.
  Status send_fragment(Opcode type, std::string_view data, bool fin);
  // Payload up to 125 bytes.
  Status ping(std::string_view payload = {});
  // Starts the close handshake: sends a close frame and waits (close_timeout_ms)
  // for the peer's. code 1005 sends an empty close payload. A no-op returning
  // ok when a close is already under way.
  Status close(uint16_t code = close_code::normal, std::string_view reason = {});

  // Backpressure, forwarded from the transport.
  bool write_blocked() const noexcept { return stream_->write_blocked(); }
  size_t queued_bytes() const noexcept { return stream_->queued_bytes(); }
  // Sets the transport's marks: write_blocked() above `high`, on_ws_drain
  // once the queue is back to `low`.
  void set_write_watermarks(size_t high, size_t low) noexcept { stream_->set_write_watermarks(high, low); }
  // Stops / restarts message delivery; unprocessed bytes of the current read
  // are kept and processed, from the loop, after resume_reading().
  void pause_reading() noexcept;
  void resume_reading() noexcept;

  State state() const noexcept { return state_; }
  Role role() const noexcept { return role_; }
  const std::string& subprotocol() const noexcept { return subprotocol_; }
  const std::string& peer_address() const noexcept { return stream_->peer_address(); }
  // TLS details of the transport; nullptr on plain TCP.
  const net::TlsInfo* tls() const noexcept { return stream_->tls(); }

 private:
  void on_stream_read(net::Stream& s, std::string_view data) noexcept override;
  void on_stream_end(net::Stream& s, const Status& why) noexcept override;
  void on_stream_drain(net::Stream& s) noexcept override;

  void transition(State next);
  // Runs frames out of `data`; returns false if `this` was destroyed.
  bool process(std::string_view data);
  void process_pending();
  // Header / frame-end steps; false stops processing (failed or destroyed).
  bool on_header();
  bool on_payload(size_t before);
  bool on_frame_done();
  bool on_control_frame(Opcode op);
  // Fails the connection: close frame with `code` (unless one was sent),
  // then drain. Never calls the handler synchronously except via finish().
  void fail(uint16_t code, const std::string& why);
  // Both close frames exchanged, or failure: shut the transport, arm the timer.
  void start_draining();
  // Closes the transport and fires on_ws_close. Returns false if destroyed.
  bool finish();
  void on_close_timeout();

  Status write_frame(bool fin, Opcode op, std::string_view payload);
  MaskKey next_mask_key();
  Status send_close_frame(uint16_t code, std::string_view reason);
  void send_pong(std::string_view payload);
  Status check_sendable() const;

  net::StreamPtr stream_;
  Role role_;
  Options opts_;
  std::string subprotocol_;
  Handler* handler_ = nullptr;
  State state_ = State::idle;

  FrameDecoder decoder_;
  std::string* sink_ = nullptr;   // where the current frame's payload goes
  bool in_message_ = false;       // a fragmented data message is being reassembled
  Opcode msg_type_ = Opcode::binary;
  std::string msg_;               // reassembly buffer, <= max_message_size
  Utf8Validator msg_utf8_;
  std::string control_;           // current control frame payload, <= 125 bytes

  bool attached_ = false;         // the stream delivers to us (after the leftover)
  bool paused_ = false;
  std::string pending_in_;        // bytes left unprocessed by a pause, or the leftover

  bool sending_fragmented_ = false;
  Opcode send_type_ = Opcode::binary;
  Utf8Validator send_utf8_;

  bool pong_pending_ = false;     // one coalesced pong waiting for drain
  std::string pending_pong_;

  bool close_sent_ = false;
  bool close_received_ = false;
  uint16_t report_code_ = close_code::abnormal;
  std::string report_reason_;

  uv_loop_t* loop_;
  std::array<uint8_t, 256> mask_pool_{};  // client role: unused random mask keys
  size_t mask_pool_used_ = 256;           // all used: refill on the next frame
  uint64_t ping_window_start_ms_ = 0;
  uint32_t pings_in_window_ = 0;
  Timer close_timer_;
  Timer defer_timer_;
  std::shared_ptr<char> alive_ = std::make_shared<char>(0);
};

using ConnectionPtr = std::unique_ptr<Connection>;

}  // namespace tg::ws
