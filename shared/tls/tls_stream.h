// TlsStream: a net::Stream that runs TLS (mbedTLS) over an inner net::Stream
// (TCP), client or server role. mbedTLS never touches a socket: its BIO
// callbacks move records between memory buffers and the inner stream.
// Internal to shared/tls; everyone else gets a net::StreamPtr from
// tls::Connector or tls::accept and never sees this header.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shared/core/loop.h"
#include "shared/net/stream.h"
#include "shared/tls/context.h"
#include "shared/tls/mbedtls_compat.h"

namespace tg::tls {

// One record's plaintext: mbedtls_ssl_read delivers at most this per call.
constexpr size_t kRecordPlaintextBytes = 16 * 1024;
// Ciphertext read from the inner stream but not yet decrypted: reading from
// the inner stream pauses above kCipherInPauseBytes; past kCipherInMaxBytes
// (the inner stream ignored the pause) the stream fails with Errc::limit.
constexpr size_t kCipherInPauseBytes = 64 * 1024;
constexpr size_t kCipherInMaxBytes = 4 * kCipherInPauseBytes;
// Plaintext written before the handshake completes.
constexpr size_t kPendingPlaintextBytes = 1024 * 1024;
// A plaintext batch buffer up to this capacity is kept for the next turn.
constexpr size_t kKeptPlaintextBuffer = 4 * 1024;
// A new batch buffer is reserved as large as the last batch, up to this
// (below glibc's mmap threshold, so it comes from the heap).
constexpr size_t kBatchReserveBytes = 64 * 1024;

class TlsStream final : public net::Stream, private net::StreamHandler {
 public:
  // Fires once when the handshake completes (ok) or fails (the error); after
  // a failure the handler's on_stream_end is not called. Used by Connector.
  using HandshakeFn = std::function<void(const Status&)>;

  // Starts the handshake at once over `inner`. `handshake_timeout_ms` 0 = none.
  static std::unique_ptr<TlsStream> server(uv_loop_t* loop, net::StreamPtr inner,
                                           std::shared_ptr<ServerContext> ctx,
                                           uint64_t handshake_timeout_ms);
  static std::unique_ptr<TlsStream> client(uv_loop_t* loop, net::StreamPtr inner,
                                           std::shared_ptr<ClientContext> ctx,
                                           const std::string& server_name,
                                           uint64_t handshake_timeout_ms);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  void set_handshake_callback(HandshakeFn fn) { on_handshake_ = std::move(fn); }

  // net::Stream
  void set_handler(net::StreamHandler* handler) noexcept override;
  Status write(std::string_view data) override;
  Status writev(const std::string_view* parts, size_t count) override;
  size_t queued_bytes() const noexcept override;
  void set_write_watermarks(size_t high, size_t low) noexcept override;
  size_t high_water() const noexcept override { return high_; }
  void pause_reading() noexcept override;
  void resume_reading() noexcept override;
  void shutdown() noexcept override;
  void close() noexcept override;
  const std::string& peer_address() const noexcept override { return inner_->peer_address(); }
  const net::TlsInfo* tls() const noexcept override { return &info_; }

  // Called from the SNI and verify callbacks of mbedTLS.
  void record_sni(std::string name) { info_.sni = std::move(name); }
  int on_verify(mbedtls_x509_crt* crt, int depth, uint32_t* flags) noexcept;

 private:
  enum class Role { client, server };
  enum class State {
    handshaking,  // records flow, application data is buffered
    open,         // application data both ways
    closing,      // we sent close_notify; reading until the peer ends
    ended,        // final status known (maybe not yet delivered)
    closed,       // close() or destroyed: nothing fires any more
  };

  TlsStream(uv_loop_t* loop, net::StreamPtr inner, Role role);
  Status setup(mbedtls_ssl_config* conf, const std::string& server_name, uint64_t timeout_ms);

  // The one transition point; checks the edge.
  void transition(State next);
  // Drives the handshake, delivers records and the end; loop context only.
  void pump();
  // Returns false when `this` may be gone or nothing more can happen now.
  bool advance_handshake();
  bool deliver_records();
  bool handshake_done();
  // Records the final status; delivery happens in pump().
  void finish(Status why);
  void deliver_end();
  void schedule_pump();
  void update_inner_reading();
  void shut_inner();
  Status encrypt(std::string_view data);
  // Appends `total` bytes in `parts` to pending_plain_ (see the .cc on growth).
  void queue_plain(const std::string_view* parts, size_t count, size_t total);
  // Encrypts the pending plaintext and writes the ciphertext in one go.
  // Errors end the stream (reported from the loop) and are returned.
  Status flush_pending();
  void note_queued();
  bool maybe_drain();
  Status handshake_error(int rc) const;
  std::string who() const;

  // net::StreamHandler for the inner stream.
  void on_stream_read(net::Stream& s, std::string_view data) noexcept override;
  void on_stream_end(net::Stream& s, const Status& why) noexcept override;
  void on_stream_drain(net::Stream& s) noexcept override;

  static int bio_send(void* ctx, const unsigned char* buf, size_t len) noexcept;
  static int bio_recv(void* ctx, unsigned char* buf, size_t len) noexcept;

  const Role role_;
  State state_ = State::handshaking;
  net::StreamPtr inner_;
  std::shared_ptr<ServerContext> server_ctx_;  // keep the config alive
  std::shared_ptr<ClientContext> client_ctx_;
  mbedtls_ssl_context ssl_;
  net::StreamHandler* handler_ = nullptr;
  HandshakeFn on_handshake_;
  net::TlsInfo info_;
  std::string server_name_;

  std::string cipher_in_;       // ciphertext from the inner stream
  size_t cipher_off_ = 0;       // consumed prefix of cipher_in_
  // Plaintext not encrypted yet: written before the handshake completed, or
  // written during this loop iteration (flushed by flush_timer_ as one batch:
  // one record and one socket write for all the small writes of a turn).
  std::string pending_plain_;
  std::string* batch_ = nullptr;  // during a flush: bio_send appends ciphertext here
  size_t last_batch_bytes_ = 0;   // plaintext of the last flush: the next batch's reserve
  std::unique_ptr<char[]> read_buf_;  // one record of plaintext

  bool paused_ = false;
  bool inner_reading_ = true;   // the inner stream starts reading on set_handler
  bool inner_ended_ = false;    // the inner stream reported its end
  Status inner_end_;
  bool inner_shut_ = false;
  bool shutdown_requested_ = false;
  bool end_pending_ = false;    // end_status_ not yet delivered
  Status end_status_;
  bool above_high_ = false;
  size_t high_;
  size_t low_;
  bool pin_matched_ = false;
  std::string pin_mismatch_;    // message when the pin check refused the peer

  Timer defer_;
  Timer flush_timer_;
  Timer handshake_timer_;
  std::shared_ptr<bool> alive_;  // false once destroyed: checked after callbacks
};

}  // namespace tg::tls
