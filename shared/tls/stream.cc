#include <mbedtls/net_sockets.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "shared/core/log.h"
#include "shared/crypto/wipe.h"
#include "shared/tls/context_impl.h"
#include "shared/tls/detail.h"
#include "shared/tls/pin.h"
#include "shared/tls/tls_stream.h"

namespace tg::tls {
namespace {

constexpr size_t kDefaultHighWater = 256 * 1024;
constexpr size_t kDefaultLowWater = 64 * 1024;
constexpr size_t kMaxSniBytes = 255;

int verify_trampoline(void* ctx, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
  return static_cast<TlsStream*>(ctx)->on_verify(crt, depth, flags);
}

std::string join_pins(const std::vector<std::string>& pins) {
  if (pins.size() == 1) return pins[0];
  std::string out = "one of ";
  for (size_t i = 0; i < pins.size(); ++i) {
    if (i) out += ", ";
    out += pins[i];
  }
  return out;
}

// mbedtls_x509_crt_verify_info writes one line per problem; join them.
std::string verify_text(uint32_t flags) {
  char buf[1024];
  int n = mbedtls_x509_crt_verify_info(buf, sizeof buf, "", flags);
  if (n <= 0) return "unknown reason (flags 0x" + std::to_string(flags) + ")";
  std::string out;
  for (const char* p = buf; *p; ++p) {
    if (*p == '\n') {
      if (p[1]) out += "; ";
    } else {
      out += *p;
    }
  }
  return out;
}

}  // namespace

int on_server_sni(void* unused, mbedtls_ssl_context* ssl, const unsigned char* name,
                  size_t len) noexcept {
  (void)unused;
  auto* stream = static_cast<TlsStream*>(compat::ssl_get_user(ssl));
  if (stream && len <= kMaxSniBytes) {
    stream->record_sni(std::string(reinterpret_cast<const char*>(name), len));
  }
  return 0;  // one certificate for every name
}

// ---- construction ----

TlsStream::TlsStream(uv_loop_t* loop, net::StreamPtr inner, Role role)
    : role_(role),
      inner_(std::move(inner)),
      read_buf_(new char[kRecordPlaintextBytes]),
      high_(kDefaultHighWater),
      low_(kDefaultLowWater),
      defer_(loop),
      flush_timer_(loop),
      handshake_timer_(loop),
      alive_(std::make_shared<bool>(true)) {
  mbedtls_ssl_init(&ssl_);
}

TlsStream::~TlsStream() {
  close();
  *alive_ = false;
  mbedtls_ssl_free(&ssl_);
  // Plaintext that may hold credentials (a vendor key, a user's token).
  crypto::wipe(&pending_plain_);
  sodium_memzero(read_buf_.get(), kRecordPlaintextBytes);
}

std::unique_ptr<TlsStream> TlsStream::server(uv_loop_t* loop, net::StreamPtr inner,
                                             std::shared_ptr<ServerContext> ctx,
                                             uint64_t handshake_timeout_ms) {
  std::unique_ptr<TlsStream> s(new TlsStream(loop, std::move(inner), Role::server));
  s->server_ctx_ = std::move(ctx);
  Status st = s->setup(&s->server_ctx_->impl().conf, std::string(), handshake_timeout_ms);
  if (!st.ok()) s->finish(st);
  return s;
}

std::unique_ptr<TlsStream> TlsStream::client(uv_loop_t* loop, net::StreamPtr inner,
                                             std::shared_ptr<ClientContext> ctx,
                                             const std::string& server_name,
                                             uint64_t handshake_timeout_ms) {
  std::unique_ptr<TlsStream> s(new TlsStream(loop, std::move(inner), Role::client));
  s->client_ctx_ = std::move(ctx);
  s->server_name_ = server_name;
  Status st = s->setup(&s->client_ctx_->impl().conf, server_name, handshake_timeout_ms);
  if (!st.ok()) s->finish(st);
  return s;
}

Status TlsStream::setup(mbedtls_ssl_config* conf, const std::string& server_name,
                        uint64_t timeout_ms) {
  inner_->set_write_watermarks(low_, low_);
  inner_->set_write_batching(false);  // flush_pending() already sends a turn's records at once
  inner_->set_handler(this);
  schedule_pump();  // the client's hello, or a failure below, goes out from the loop
  int rc = mbedtls_ssl_setup(&ssl_, conf);
  if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "TLS session setup"));
  compat::ssl_set_user(&ssl_, this);
  mbedtls_ssl_set_bio(&ssl_, this, &TlsStream::bio_send, &TlsStream::bio_recv, nullptr);
  if (role_ == Role::client) {
    const bool pinned = !client_ctx_->config().pins.empty();
    if (!pinned && server_name.empty()) {
      return Status(Errc::invalid_argument,
                    "TLS to " + inner_->peer_address() +
                        ": a server name is required to verify the certificate (or give pins)");
    }
    // Always set (3.6 refuses to verify without it); also the SNI we send.
    rc = mbedtls_ssl_set_hostname(&ssl_, server_name.empty() ? nullptr : server_name.c_str());
    if (rc != 0) {
      return Status(Errc::invalid_argument,
                    detail::mbedtls_error(rc, ("server name '" + server_name + "'").c_str()));
    }
    mbedtls_ssl_set_verify(&ssl_, &verify_trampoline, this);
  }
  if (timeout_ms > 0) {
    handshake_timer_.start(timeout_ms, 0, [this, timeout_ms] {
      finish(Status(Errc::timeout, "TLS handshake with " + who() + " did not complete within " +
                                       std::to_string(timeout_ms) + " ms"));
      pump();
    });
  }
  return Status();
}

// ---- state ----

void TlsStream::transition(State next) {
  bool legal = false;
  switch (state_) {
    case State::handshaking:
      legal = next == State::open || next == State::ended || next == State::closed;
      break;
    case State::open:
      legal = next == State::closing || next == State::ended || next == State::closed;
      break;
    case State::closing:
      legal = next == State::ended || next == State::closed;
      break;
    case State::ended:
      legal = next == State::closed;
      break;
    case State::closed:
      break;
  }
  if (!legal) {
    TG_ERROR("tls", "illegal state change %d -> %d on %s", static_cast<int>(state_),
             static_cast<int>(next), who().c_str());
    std::abort();
  }
  state_ = next;
}

std::string TlsStream::who() const {
  if (server_name_.empty()) return inner_->peer_address();
  return server_name_ + " (" + inner_->peer_address() + ")";
}

void TlsStream::schedule_pump() {
  if (state_ == State::closed) return;
  defer_.start(0, 0, [this] { pump(); });
}

void TlsStream::pump() {
  if (state_ == State::handshaking && !advance_handshake()) return;
  if ((state_ == State::open || state_ == State::closing) && !deliver_records()) return;
  if (state_ == State::ended && end_pending_) {
    deliver_end();
    return;  // `this` may be gone
  }
  update_inner_reading();
}

bool TlsStream::advance_handshake() {
  int rc;
  do {
    rc = mbedtls_ssl_handshake(&ssl_);
  } while (compat::ssl_retry_now(rc));
  if (rc == 0) return handshake_done();
  if (compat::ssl_want_io(rc)) {
    if (inner_ended_ && cipher_off_ == cipher_in_.size()) {
      std::string why = "TLS handshake with " + who() + " failed: the peer closed the connection";
      if (!inner_end_.ok()) why += " (" + inner_end_.message() + ")";
      finish(Status(Errc::tls, why));
    }
    return true;
  }
  finish(handshake_error(rc));
  return true;
}

Status TlsStream::handshake_error(int rc) const {
  if (!pin_mismatch_.empty()) return Status(Errc::permission, pin_mismatch_);
  if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    return Status(Errc::permission, "certificate verification failed for " + who() + ": " +
                                        verify_text(mbedtls_ssl_get_verify_result(&ssl_)));
  }
  return Status(Errc::tls, detail::mbedtls_error(rc, ("TLS handshake with " + who() + " failed").c_str()));
}

int TlsStream::on_verify(mbedtls_x509_crt* crt, int depth, uint32_t* flags) noexcept {
  const std::vector<std::string>& pins = client_ctx_->config().pins;
  if (depth != 0) {
    if (!pins.empty()) *flags = 0;  // trust by pin alone: the chain above does not matter
    return 0;
  }
  size_t len = 0;
  const unsigned char* spki = compat::crt_spki(crt, &len);
  info_.peer_pin = pin_of_spki(spki, len);
  if (pins.empty()) return 0;  // CA + hostname verification decides
  for (const std::string& p : pins) {
    if (p == info_.peer_pin) {
      pin_matched_ = true;
      *flags = 0;
      return 0;
    }
  }
  pin_mismatch_ = "public key pin mismatch for " + who() + ": expected " + join_pins(pins) +
                  ", got " + info_.peer_pin;
  return MBEDTLS_ERR_X509_FATAL_ERROR;  // aborts the handshake even in optional mode
}

bool TlsStream::handshake_done() {
  if (role_ == Role::client && !client_ctx_->config().pins.empty() && !pin_matched_) {
    finish(Status(Errc::permission,
                  "peer " + who() + " presented no certificate matching the configured pins"));
    return true;
  }
  if (const char* alpn = mbedtls_ssl_get_alpn_protocol(&ssl_)) info_.alpn = alpn;
  info_.version = mbedtls_ssl_get_version(&ssl_);
  handshake_timer_.stop();
  transition(State::open);
  TG_DEBUG("tls", "handshake with %s done: %s alpn=%s", who().c_str(), info_.version.c_str(),
           info_.alpn.c_str());
  if (!pending_plain_.empty()) {
    std::string data;
    data.swap(pending_plain_);
    Status st = encrypt(data);
    crypto::wipe(&data);
    if (!st.ok()) {
      finish(st);
      return true;
    }
  }
  if (shutdown_requested_) {
    mbedtls_ssl_close_notify(&ssl_);
    transition(State::closing);
    shut_inner();
  }
  if (on_handshake_) {
    HandshakeFn cb = std::move(on_handshake_);
    on_handshake_ = nullptr;
    auto alive = alive_;
    cb(Status());
    if (!*alive) return false;
  }
  return maybe_drain();
}

bool TlsStream::deliver_records() {
  while ((state_ == State::open || state_ == State::closing) && handler_ && !paused_) {
    int rc = mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(read_buf_.get()),
                              kRecordPlaintextBytes);
    if (rc > 0) {
      auto alive = alive_;
      handler_->on_stream_read(*this, std::string_view(read_buf_.get(), static_cast<size_t>(rc)));
      if (!*alive) return false;
      continue;
    }
    if (compat::ssl_retry_now(rc)) continue;
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      if (state_ == State::open) mbedtls_ssl_close_notify(&ssl_);  // answer in kind
      shut_inner();
      finish(Status());
      break;
    }
    if (compat::ssl_want_io(rc)) {
      if (inner_ended_ && cipher_off_ == cipher_in_.size()) {
        if (state_ == State::closing) {
          finish(Status());  // we asked to close; the peer's FIN ends it
        } else {
          finish(Status(Errc::closed,
                        "peer " + who() + " closed the connection without TLS close_notify"));
        }
      }
      break;
    }
    finish(Status(Errc::tls, detail::mbedtls_error(rc, ("TLS record from " + who()).c_str())));
    break;
  }
  return true;
}

void TlsStream::finish(Status why) {
  if (state_ == State::ended || state_ == State::closed) return;
  transition(State::ended);
  end_status_ = std::move(why);
  end_pending_ = true;
  handshake_timer_.stop();
  crypto::wipe(&pending_plain_);
  if (!end_status_.ok()) {
    TG_DEBUG("tls", "stream with %s ended: %s", who().c_str(), end_status_.to_string().c_str());
  }
  shut_inner();  // flushes an alert mbedTLS may have queued, then FIN
  update_inner_reading();
}

void TlsStream::deliver_end() {
  Status why = end_status_;
  if (on_handshake_) {
    HandshakeFn cb = std::move(on_handshake_);
    on_handshake_ = nullptr;
    end_pending_ = false;
    cb(why);
    return;
  }
  if (!handler_) return;  // kept until a handler is set
  end_pending_ = false;
  handler_->on_stream_end(*this, why);
}

void TlsStream::update_inner_reading() {
  if (!inner_ || inner_ended_) return;
  const size_t buffered = cipher_in_.size() - cipher_off_;
  bool want = false;
  switch (state_) {
    case State::handshaking:
      want = buffered < kCipherInPauseBytes;
      break;
    case State::open:
    case State::closing:
      want = handler_ != nullptr && !paused_ && buffered < kCipherInPauseBytes;
      break;
    case State::ended:
    case State::closed:
      want = false;
      break;
  }
  if (want == inner_reading_) return;
  inner_reading_ = want;
  if (want) {
    inner_->resume_reading();
  } else {
    inner_->pause_reading();
  }
}

void TlsStream::shut_inner() {
  if (inner_shut_) return;
  inner_shut_ = true;
  inner_->shutdown();
}

// ---- writing ----

Status TlsStream::encrypt(std::string_view data) {
  while (!data.empty()) {
    const size_t n = std::min(data.size(), kRecordPlaintextBytes);
    int rc = mbedtls_ssl_write(&ssl_, reinterpret_cast<const unsigned char*>(data.data()), n);
    if (rc > 0) {
      data.remove_prefix(static_cast<size_t>(rc));
      continue;
    }
    if (compat::ssl_retry_now(rc)) continue;
    return Status(Errc::tls, detail::mbedtls_error(rc, ("TLS write to " + who()).c_str()));
  }
  return Status();
}

Status TlsStream::write(std::string_view data) { return writev(&data, 1); }

Status TlsStream::writev(const std::string_view* parts, size_t count) {
  if (state_ == State::ended || state_ == State::closed) {
    return Status(Errc::closed, "write on an ended TLS stream to " + who());
  }
  if (shutdown_requested_ || state_ == State::closing) {
    return Status(Errc::closed, "write on a TLS stream to " + who() + " that is shutting down");
  }
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += parts[i].size();
  if (total == 0) return Status();
  if (state_ == State::handshaking) {
    if (pending_plain_.size() + total > kPendingPlaintextBytes) {
      return Status(Errc::limit, "more than " + std::to_string(kPendingPlaintextBytes) +
                                     " bytes written before the TLS handshake with " + who() +
                                     " completed");
    }
    queue_plain(parts, count, total);
    note_queued();
    return Status();
  }
  // Batch: everything written during this turn of the loop goes out at the
  // start of the next one (before the loop can block, so nothing waits),
  // in as few records and socket writes as possible.
  if (pending_plain_.size() + total > kPendingPlaintextBytes) {
    Status st = flush_pending();
    if (!st.ok()) return st;
  }
  queue_plain(parts, count, total);
  note_queued();
  if (!flush_timer_.active()) {
    flush_timer_.start(0, 0, [this] {
      // From the loop: the batch may have gone straight into the kernel,
      // so our own watermark (not the TCP stream's) decides the drain.
      if (flush_pending().ok()) (void)maybe_drain();
    });
  }
  return Status();
}

void TlsStream::queue_plain(const std::string_view* parts, size_t count, size_t total) {
  const size_t need = pending_plain_.size() + total;
  if (need > pending_plain_.capacity()) {
    // The smaller buffer is wiped before it is freed. Sized for a batch like
    // the last one at once: one allocation per turn rather than one per
    // doubling.
    crypto::reserve_wiped(&pending_plain_,
                          std::max({need, 2 * pending_plain_.capacity(),
                                    std::min(last_batch_bytes_, kBatchReserveBytes)}));
  }
  for (size_t i = 0; i < count; ++i) pending_plain_.append(parts[i]);
}

Status TlsStream::flush_pending() {
  flush_timer_.stop();
  if (pending_plain_.empty() || (state_ != State::open && state_ != State::closing)) {
    return Status();
  }
  std::string data;
  data.swap(pending_plain_);
  last_batch_bytes_ = data.size();
  std::string cipher;  // freed after the write: idle streams keep no batch memory
  cipher.reserve(data.size() + 64 * (data.size() / kRecordPlaintextBytes + 1));
  batch_ = &cipher;
  Status st = encrypt(data);
  batch_ = nullptr;
  if (st.ok() && !cipher.empty()) st = inner_->write(cipher);
  // The plaintext may hold credentials (a vendor request head with its key,
  // a user's token): wipe it whether the buffer is kept or freed. What lies
  // past size() was wiped by the flush that last used those bytes, or never
  // held any.
  sodium_memzero(data.data(), data.size());
  data.clear();
  if (data.capacity() <= kKeptPlaintextBuffer) pending_plain_.swap(data);  // reused next turn
  if (!st.ok()) {
    finish(st);
    schedule_pump();
  }
  return st;
}

size_t TlsStream::queued_bytes() const noexcept {
  return inner_->queued_bytes() + pending_plain_.size();
}

void TlsStream::set_write_watermarks(size_t high, size_t low) noexcept {
  high_ = high;
  low_ = std::min(low, high);
  // The inner stream reports every fall to `low`; we decide whether it matters.
  inner_->set_write_watermarks(low_, low_);
}

void TlsStream::note_queued() {
  if (queued_bytes() > high_) above_high_ = true;
}

bool TlsStream::maybe_drain() {
  if (!above_high_ || queued_bytes() > low_) return true;
  if (state_ != State::open && state_ != State::closing) return true;
  above_high_ = false;
  if (!handler_) return true;
  auto alive = alive_;
  handler_->on_stream_drain(*this);
  return *alive;
}

// ---- reading and flow control ----

void TlsStream::set_handler(net::StreamHandler* handler) noexcept {
  handler_ = handler;
  if (state_ == State::closed) return;
  update_inner_reading();
  if (handler_) schedule_pump();  // buffered bytes or a kept end go out from the loop
}

void TlsStream::pause_reading() noexcept {
  paused_ = true;
  update_inner_reading();
}

void TlsStream::resume_reading() noexcept {
  paused_ = false;
  if (state_ == State::closed) return;
  update_inner_reading();
  schedule_pump();
}

void TlsStream::shutdown() noexcept {
  if (state_ == State::ended || state_ == State::closed || shutdown_requested_) return;
  shutdown_requested_ = true;
  if (state_ == State::open) {
    (void)flush_pending();  // what was written goes out before close_notify
    if (state_ != State::open) return;
    mbedtls_ssl_close_notify(&ssl_);
    transition(State::closing);
    shut_inner();
  }
  // While handshaking: done once the handshake completes and pending writes are out.
}

void TlsStream::close() noexcept {
  if (state_ == State::closed) return;
  transition(State::closed);
  handler_ = nullptr;
  on_handshake_ = nullptr;
  end_pending_ = false;
  crypto::wipe(&pending_plain_);
  defer_.stop();
  flush_timer_.stop();
  handshake_timer_.stop();
  inner_->close();
}

// ---- the inner stream ----

void TlsStream::on_stream_read(net::Stream& s, std::string_view data) noexcept {
  (void)s;
  if (state_ == State::ended || state_ == State::closed) return;
  const size_t buffered = cipher_in_.size() - cipher_off_;
  if (buffered + data.size() > kCipherInMaxBytes) {
    finish(Status(Errc::limit, "more than " + std::to_string(kCipherInMaxBytes) +
                                   " undecrypted bytes buffered from " + who()));
    pump();
    return;
  }
  if (cipher_off_ == cipher_in_.size()) {
    cipher_in_.clear();
    cipher_off_ = 0;
  } else if (cipher_off_ >= kCipherInPauseBytes) {
    cipher_in_.erase(0, cipher_off_);
    cipher_off_ = 0;
  }
  cipher_in_.append(data);
  pump();
}

void TlsStream::on_stream_end(net::Stream& s, const Status& why) noexcept {
  (void)s;
  inner_ended_ = true;
  inner_end_ = why;
  inner_reading_ = false;
  if (state_ == State::ended || state_ == State::closed) return;
  if (!why.ok()) {
    if (state_ == State::handshaking) {
      finish(Status(Errc::tls, "TLS handshake with " + who() + " failed: " + why.message()));
    } else {
      finish(why);  // reset or write failure: buffered input is dropped
    }
  }
  pump();
}

void TlsStream::on_stream_drain(net::Stream& s) noexcept {
  (void)s;
  maybe_drain();
}

int TlsStream::bio_send(void* ctx, const unsigned char* buf, size_t len) noexcept {
  auto* self = static_cast<TlsStream*>(ctx);
  if (self->state_ == State::closed || self->inner_ended_) return MBEDTLS_ERR_NET_SEND_FAILED;
  const size_t n = std::min(len, kCipherInMaxBytes);  // a record is far smaller
  if (self->batch_) {
    self->batch_->append(reinterpret_cast<const char*>(buf), n);
    return static_cast<int>(n);
  }
  Status st = self->inner_->write(std::string_view(reinterpret_cast<const char*>(buf), n));
  if (!st.ok()) return MBEDTLS_ERR_NET_SEND_FAILED;
  return static_cast<int>(n);
}

int TlsStream::bio_recv(void* ctx, unsigned char* buf, size_t len) noexcept {
  auto* self = static_cast<TlsStream*>(ctx);
  const size_t avail = self->cipher_in_.size() - self->cipher_off_;
  if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  const size_t n = std::min(len, avail);
  std::memcpy(buf, self->cipher_in_.data() + self->cipher_off_, n);
  self->cipher_off_ += n;
  if (self->cipher_off_ == self->cipher_in_.size()) {
    self->cipher_in_.clear();
    self->cipher_off_ = 0;
  }
  return static_cast<int>(n);
}

}  // namespace tg::tls
