// Stream: the byte-stream transport interface that plain TCP and TLS both
// implement, so HTTP and WebSocket code never know which one they run on and
// never include an mbedTLS header. Single-threaded, owned by one loop.
// Rules every implementation keeps:
//  - No handler callback fires inside the call that caused it (write, close,
//    set_handler...): success and I/O failure arrive later, from the loop.
//  - Destroying the Stream (or close()) ends it at once; no callback fires
//    afterwards. The handler may destroy the Stream inside a callback.
//  - write() copies; the caller's buffers are free when it returns. Memory is
//    the caller's to bound: it watches queued_bytes() against the high-water
//    mark and waits for on_stream_drain before producing more.
//  - The writes of one loop turn leave together, at the start of the next
//    turn and before the loop can block: a response head, its body and its
//    end cost one system write, and nothing waits on a timer.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::net {

class Stream;

class StreamHandler {
 public:
  // Bytes from the peer; `data` is valid only during the call.
  virtual void on_stream_read(Stream& s, std::string_view data) noexcept = 0;
  // The stream is over: `why.ok()` for an orderly end (peer FIN, TLS
  // close_notify), otherwise the failure (reset, timeout, TLS alert, pin
  // mismatch...). Fires at most once; nothing fires after it. Writes fail after.
  virtual void on_stream_end(Stream& s, const Status& why) noexcept = 0;
  // The write queue fell to the low-water mark after passing the high-water
  // mark (see set_write_watermarks).
  virtual void on_stream_drain(Stream& s) noexcept { (void)s; }

 protected:
  virtual ~StreamHandler() = default;
};

// What TLS learned about the peer; absent on plain TCP.
struct TlsInfo {
  std::string alpn;       // negotiated protocol, empty if none
  std::string sni;        // server name the client asked for (server side)
  std::string peer_pin;   // "sha256/<base64>" of the peer certificate's SPKI, empty if none
  std::string version;    // "TLSv1.2", "TLSv1.3"
};

class Stream {
 public:
  virtual ~Stream() = default;

  // Sets who receives callbacks; reading starts once a handler is set and
  // reading is not paused. May be changed later (a protocol upgrade hands the
  // stream to a new owner): nullptr stops delivery; bytes already received are
  // kept and delivered, from the loop, once a handler is set again.
  virtual void set_handler(StreamHandler* handler) noexcept = 0;

  // Queues bytes for the peer (copied). Returns an error at once if the stream
  // has ended or is shutting down; I/O failures arrive via on_stream_end.
  virtual Status write(std::string_view data) = 0;
  // Queues several buffers with one system write where possible.
  virtual Status writev(const std::string_view* parts, size_t count) = 0;
  // Turns the gathering of one turn's writes off (a layer that gathers its
  // own, as TLS does, writes through at once) or back on. On by default.
  virtual void set_write_batching(bool on) noexcept { (void)on; }
  // Bytes accepted by write() that the kernel has not taken yet.
  virtual size_t queued_bytes() const noexcept = 0;
  // on_stream_drain fires when queued_bytes() drops to `low` after having
  // exceeded `high`. Defaults: 256 KiB / 64 KiB.
  virtual void set_write_watermarks(size_t high, size_t low) noexcept = 0;
  bool write_blocked() const noexcept { return queued_bytes() > high_water(); }
  virtual size_t high_water() const noexcept = 0;

  // Flow control: stop / restart delivering on_stream_read.
  virtual void pause_reading() noexcept = 0;
  virtual void resume_reading() noexcept = 0;

  // Orderly end: flush the queue, then send FIN (TLS: close_notify then FIN).
  // Reading goes on until the peer ends too (on_stream_end with ok).
  virtual void shutdown() noexcept = 0;
  // Abort now: queued bytes are dropped, no further callbacks.
  virtual void close() noexcept = 0;

  // "ip:port" of the peer, for logs.
  virtual const std::string& peer_address() const noexcept = 0;
  // TLS details after the handshake; nullptr on plain TCP.
  virtual const TlsInfo* tls() const noexcept { return nullptr; }
};

using StreamPtr = std::unique_ptr<Stream>;

}  // namespace tg::net
