// HTTP/1.1 client connection over one net::Stream (plain TCP or TLS): sends a
// request head and a streamed body, reports the response head and body pieces
// with backpressure, and is reusable for the next request when keep-alive
// holds. It never holds a whole body. One request at a time.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/http/message.h"
#include "shared/http/parser.h"
#include "shared/net/stream.h"

namespace tg::http {

struct ClientOptions {
  static constexpr uint64_t kDefaultResponseTimeoutMs = 120 * 1000;
  // Response limits; body_bytes 0 = unlimited.
  ParserLimits limits;
  // From request() (re-armed by each write/finish) to the response head;
  // 0 = none. Expiry reports Errc::timeout and closes the stream.
  uint64_t response_timeout_ms = kDefaultResponseTimeoutMs;
  // After the head: the longest silence between body bytes while we read
  // (time paused by pause_response() does not count); 0 = none. Expiry
  // reports Errc::timeout and closes the stream.
  uint64_t body_idle_timeout_ms = 0;
};

class ClientConnection;

// Callbacks for one request; all fire from the loop. After on_response_end,
// on_upgrade or on_error nothing more fires for that request. The handler
// may destroy the ClientConnection inside any callback.
class ClientHandler {
 public:
  // Final response head (1xx interim answers other than 101 are skipped).
  virtual void on_response_head(ClientConnection& c, const ResponseHead& head) noexcept = 0;
  // A piece of the decoded body; valid only during the call.
  virtual void on_response_body(ClientConnection& c, std::string_view piece) noexcept = 0;
  virtual void on_response_end(ClientConnection& c) noexcept = 0;
  // Errc::parse / limit (bad response), closed (stream ended early),
  // timeout, protocol (unexpected bytes), or the stream's own error.
  virtual void on_error(ClientConnection& c, const Status& why) noexcept = 0;
  // Status 101: the stream (handler detached) and the bytes past the head
  // belong to the new protocol; this connection is finished.
  virtual void on_upgrade(ClientConnection& c, const ResponseHead& head, Upgraded up) noexcept {
    (void)head;
    (void)up;
    on_error(c, error(Errc::protocol, "unexpected 101 Switching Protocols"));
  }
  // The request write queue drained below the low-water mark.
  virtual void on_request_drain(ClientConnection& c) noexcept { (void)c; }

 protected:
  virtual ~ClientHandler() = default;
};

class ClientConnection final : private net::StreamHandler {
 public:
  ClientConnection(uv_loop_t* loop, net::StreamPtr stream, const ClientOptions& options = {});
  ~ClientConnection() override;  // closes the stream; no callback fires
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Sends the head. Body framing comes from the caller's headers:
  // Content-Length: N (then exactly N bytes via write), Transfer-Encoding:
  // chunked (write pieces, finish ends), or neither (no body; the request is
  // complete at once). The caller sets Host. Errors at once: not idle
  // (Errc::invalid_argument / closed), bad head (invalid_argument).
  Status request(const RequestHead& head, ClientHandler* handler);
  // Queues a piece of the request body (copied).
  Status write(std::string_view piece);
  // Ends the request body. Errc::invalid_argument if Content-Length bytes
  // are missing.
  Status finish();
  bool write_blocked() const noexcept { return stream_ && stream_->write_blocked(); }

  // Response body flow control; resume delivers pending bytes from the loop.
  void pause_response() noexcept;
  void resume_response() noexcept;

  // True when a new request() may be sent (previous exchange ended with
  // keep-alive and the stream is open).
  bool reusable() const noexcept { return state_ == State::idle; }
  const std::string& peer_address() const noexcept;

 private:
  enum class State { idle, active, upgraded, closed };
  enum class Framing { none, length, chunked };

  void on_stream_read(net::Stream& s, std::string_view data) noexcept override;
  void on_stream_end(net::Stream& s, const Status& why) noexcept override;
  void on_stream_drain(net::Stream& s) noexcept override;

  void transition(State to);
  void process() noexcept;
  // Reports `why` once and closes; returns false if `this` was destroyed.
  bool fail(const Status& why);
  void arm_response_timer();
  // (Re)starts the body silence timer (after the head, while reading).
  void arm_body_timer();

  net::StreamPtr stream_;
  ClientOptions options_;
  Parser parser_;
  Timer timer_;   // response head, then body silence (arm_body_timer)
  Timer defer_;
  State state_ = State::idle;
  ClientHandler* handler_ = nullptr;
  std::string in_;
  size_t in_off_ = 0;
  Framing framing_ = Framing::none;
  uint64_t remaining_ = 0;
  bool request_done_ = false;
  bool request_close_ = false;
  bool head_seen_ = false;
  bool paused_ = false;
  bool* destroyed_ = nullptr;  // set by the destructor while dispatching
};

}  // namespace tg::http
