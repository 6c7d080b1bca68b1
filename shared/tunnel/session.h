// Tunnel session: one tunnel over an open ws::Connection, used by hub and
// agent alike. It carries control messages (messages.h), multiplexes request
// streams ("channels") with per-stream credit windows (window.h) and binary
// data frames (frame.h), and runs the heartbeat. It does not authenticate:
// the owner drives challenge/auth/welcome through send() and on_message()
// and then calls authenticated(). Owns the ws::Connection. Memory per tunnel
// is bounded by max_streams x window in each direction plus one message.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"
#include "shared/tunnel/window.h"
#include "shared/ws/connection.h"

namespace tg::tunnel {

// Control messages (answers, claims, settles) queued beyond what flow
// control accounts for, before an unread tunnel is closed.
constexpr size_t kControlBacklog = 4 * 1024 * 1024;

class Session;
class Channel;

struct SessionOptions {
  uint64_t heartbeat_ms = kDefaultHeartbeatMs;  // ping interval
  uint32_t dead_after = kDefaultDeadAfter;      // silent intervals before 4008
  uint32_t max_streams = kDefaultMaxStreams;    // concurrent channels
  uint32_t window = kDefaultWindow;             // credit window per channel and direction
  size_t write_high_water = 1024 * 1024;        // tunnel write queue before producers pause
};

enum class Side { hub, agent };

// Receives one channel's events. Every callback comes from the loop. The
// owner may close the channel or the session inside any callback.
class ChannelHandler {
 public:
  // A stream-bound control message: response, finish or error (never call,
  // credit or abort: the session handles those). finish and error end the
  // channel: it is gone once this returns (no on_channel_closed follows).
  // Also fires on a lingering channel (Channel::abort_linger()).
  virtual void on_channel_message(Channel& ch, const Message& m) noexcept = 0;
  // Body bytes from the peer, valid during the call; `fin` marks the last.
  // The bytes count against the window until consumed() is called (for
  // ever on a lingering channel).
  virtual void on_channel_data(Channel& ch, std::string_view data, bool fin) noexcept = 0;
  // send_capacity() grew from 0 (credit arrived or the tunnel drained).
  virtual void on_channel_writable(Channel& ch) noexcept { (void)ch; }
  // The channel is gone: the peer aborted it (Errc::closed, message is the
  // reason), the session ended, or the peer broke flow control. Fires once,
  // last; the Channel is destroyed after it returns. Not fired for close().
  virtual void on_channel_closed(Channel& ch, const Status& why) noexcept = 0;

 protected:
  virtual ~ChannelHandler() = default;
};

// One request stream. Owned by its Session; valid until close() or
// on_channel_closed.
class Channel {
 public:
  uint32_t id() const noexcept { return id_; }
  Session& session() noexcept { return *session_; }
  void set_handler(ChannelHandler* h) noexcept { handler_ = h; }

  // Body bytes that may be sent now: the credit left, or 0 while the tunnel
  // is write-blocked (and always on a lingering channel). A 0 answer arms
  // on_channel_writable.
  size_t send_capacity() const noexcept;
  // Sends body bytes (split into data frames of at most 64 KiB); `fin` ends
  // this direction. Errc::invalid_argument over send_capacity() or after
  // fin; Errc::closed if the session is over or the channel lingers.
  Status send_data(std::string_view data, bool fin);
  // Sends a stream-bound control message (response, finish, error); its id
  // is set to this channel's. Errc::closed if the channel lingers.
  Status send(Message m);
  // The consumer took `n` bytes delivered by on_channel_data: returns credit
  // to the peer (batched). Ignored on a lingering channel.
  void consumed(size_t n);
  // Ends the channel now: sends abort (unless both directions finished, an
  // error/finish went out, or abort_linger() sent it already), forgets the
  // channel. No callback fires after; the Channel is destroyed (later, from
  // the loop).
  void close(std::string_view reason);
  // Sends abort{reason} like close(), but keeps the channel registered in a
  // "lingering" state: data frames that crossed the abort are still delivered
  // to on_channel_data (window still enforced; no credit is returned, calls to
  // consumed() are ignored), a `finish`/`error` that crossed it is delivered to
  // on_channel_message and ends the channel as usual, send_data/send fail with
  // Errc::closed, and on_channel_closed fires if the session ends. The owner
  // ends the linger with close() (no second abort is sent). A lingering
  // channel still counts toward max_streams until closed. The hub uses it to
  // bill exactly what the agent forwarded; a second call does nothing.
  void abort_linger(std::string_view reason);
  bool lingering() const noexcept { return lingering_; }

  bool local_fin() const noexcept { return local_fin_; }
  bool remote_fin() const noexcept { return remote_fin_; }

 private:
  friend class Session;
  Channel(Session* s, uint32_t id, uint32_t window) : session_(s), id_(id), send_(window), recv_(window) {}
  // Sends abort unless the stream already ended or the tunnel is closing.
  void send_abort(std::string_view reason);

  Session* session_;
  uint32_t id_;
  ChannelHandler* handler_ = nullptr;
  SendWindow send_;
  RecvWindow recv_;
  bool local_fin_ = false;
  bool remote_fin_ = false;
  bool ended_ = false;        // finish/error sent or received: no abort needed
  bool lingering_ = false;    // abort_linger() ran: receive only, no credit
  mutable bool wants_write_ = false;  // capacity was 0; notify on credit or drain
};

// Receives the session's own events. Every callback comes from the loop; the
// owner may destroy the Session inside any of them (nothing fires after).
class SessionHandler {
 public:
  // A control message that is not stream-bound (challenge, auth, welcome,
  // refused, register, registered, goaway, and the billing messages prices,
  // claim, claim_rejected, settle, ack, sync, checkpoint).
  virtual void on_message(Session& s, const Message& m) noexcept = 0;
  // Agent side: the hub opened channel `ch` with `call`. Set its handler now;
  // the request body follows as on_channel_data.
  virtual void on_call(Session& s, Channel& ch, const Call& call) noexcept {
    (void)s;
    (void)call;
    ch.close(abort_reason::shutdown);
  }
  // The tunnel is over. When we closed it: our code and reason (heartbeat
  // timeout, protocol error...); otherwise the peer's close code and reason
  // (1006 if the transport just ended).
  // Every open channel got on_channel_closed before this. Fires once, last.
  virtual void on_closed(Session& s, uint16_t code, const std::string& why) noexcept = 0;

 protected:
  virtual ~SessionHandler() = default;
};

class Session final : private ws::Handler {
 public:
  Session(uv_loop_t* loop, ws::ConnectionPtr ws, Side side, SessionHandler* handler,
          SessionOptions options = {});
  // Aborts the transport at once; no callback fires.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts reading and the heartbeat. Pre-auth limits apply until
  // authenticated() is called.
  void start();
  // Switches to the session phase: 64 KiB messages, channels and data
  // frames allowed. Options may change (the agent takes them from welcome).
  void authenticated(const SessionOptions& options);
  bool is_authenticated() const noexcept { return phase_ == Phase::session; }

  // Sends a control message (not a stream-bound one: use Channel::send).
  Status send(const Message& m);
  // Hub side: opens a channel with `call` (its id is assigned here) and
  // sends the call. Errc::limit at max_streams; Errc::closed when closing.
  Result<Channel*> open_channel(Call call, ChannelHandler* handler);
  size_t channel_count() const noexcept { return channels_.size(); }

  // Sends `refused` (if `refusal` is given) then closes with `code`.
  // Open channels get on_channel_closed; on_closed fires when the close
  // handshake ends (or times out).
  void close(uint16_t code, const std::string& why, const Refused* refusal = nullptr);
  bool closing() const noexcept { return closing_; }

  bool write_blocked() const noexcept;
  // Bytes in the transport's write queue (not yet taken by the kernel).
  size_t queued_bytes() const noexcept;
  // The write queue a peer may leave unread before the tunnel is closed
  // (1008): what flow control allows (max_streams x window of data, the
  // high-water mark) plus kControlBacklog of control messages. A peer that
  // stops reading but keeps asking for answers cannot grow it further.
  size_t max_queued() const noexcept;
  const std::string& peer_address() const noexcept { return ws_->peer_address(); }
  const net::TlsInfo* tls() const noexcept { return ws_->tls(); }
  Side side() const noexcept { return side_; }

 private:
  friend class Channel;
  void on_ws_message(ws::Connection& c, ws::Opcode type, std::string_view payload) noexcept override;
  void on_ws_pong(ws::Connection& c, std::string_view payload) noexcept override;
  void on_ws_drain(ws::Connection& c) noexcept override;
  void on_ws_close(ws::Connection& c, uint16_t code, std::string_view reason,
                   bool clean) noexcept override;

  void on_text(std::string_view text);
  void on_binary(std::string_view bytes);
  void on_heartbeat();
  void fail(uint16_t code, const std::string& why);
  // Removes a channel; calls its handler when `notify`.
  void drop_channel(uint32_t id, const Status& why, bool notify);
  void notify_writable();
  // Applies options_.write_high_water to the transport's marks.
  void apply_watermarks();
  // Closes the tunnel (1008) when the peer left more than max_queued() unread.
  bool over_queue_limit();
  Status write_data(uint32_t id, std::string_view data, bool fin);
  // True if `id` was used before in this session (late data is ignored).
  bool seen_before(uint32_t id) const noexcept { return id != 0 && id <= highest_id_; }

  uv_loop_t* loop_;
  ws::ConnectionPtr ws_;
  Side side_;
  SessionHandler* handler_;
  SessionOptions options_;
  Phase phase_ = Phase::pre_auth;
  std::map<uint32_t, std::unique_ptr<Channel>> channels_;
  uint32_t highest_id_ = 0;
  Timer heartbeat_;
  Deferred reaper_;                               // frees closed channels from the loop
  std::vector<std::unique_ptr<Channel>> graveyard_;
  uint64_t last_rx_ms_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  std::string close_why_;
  uint16_t close_code_ = 0;  // set when we started the close
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tg::tunnel
