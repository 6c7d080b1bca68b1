#include "shared/ws/connection.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "shared/core/log.h"
#include "shared/crypto/hash.h"

namespace tg::ws {
namespace {

// A reassembly buffer larger than this is released after its message.
constexpr size_t kKeepMessageCapacity = 64 * 1024;

const char* state_name(Connection::State s) {
  switch (s) {
    case Connection::State::idle: return "idle";
    case Connection::State::open: return "open";
    case Connection::State::closing: return "closing";
    case Connection::State::draining: return "draining";
    case Connection::State::finished: return "finished";
  }
  return "?";
}

bool legal_edge(Connection::State from, Connection::State to) {
  using S = Connection::State;
  switch (from) {
    case S::idle: return to == S::open;
    case S::open: return to == S::closing || to == S::draining || to == S::finished;
    case S::closing: return to == S::draining || to == S::finished;
    case S::draining: return to == S::finished;
    case S::finished: return false;
  }
  return false;
}

// A close reason we may put on the wire: at most 123 bytes of UTF-8.
std::string wire_reason(const std::string& why) {
  std::string r = why.substr(0, kMaxControlPayload - 2);
  while (!r.empty() && !is_valid_utf8(r)) r.pop_back();
  return r;
}

}  // namespace

Connection::Connection(uv_loop_t* loop, net::StreamPtr stream, std::string leftover, Role role,
                       Options opts, std::string subprotocol)
    : stream_(std::move(stream)),
      role_(role),
      opts_(opts),
      subprotocol_(std::move(subprotocol)),
      decoder_(std::min(opts.max_frame_payload, kAbsoluteMaxPayload)),
      loop_(loop),
      close_timer_(loop),
      defer_timer_(loop) {
  opts_.max_frame_payload = std::min(opts_.max_frame_payload, kAbsoluteMaxPayload);
  opts_.max_message_size = std::min(opts_.max_message_size, kAbsoluteMaxPayload);
  pending_in_ = std::move(leftover);
}

Connection::~Connection() {
  alive_.reset();
  if (stream_) stream_->set_handler(nullptr);
}

void Connection::transition(State next) {
  if (!legal_edge(state_, next)) {
    TG_ERROR("ws", "illegal state change %s -> %s", state_name(state_), state_name(next));
    std::abort();
  }
  TG_DEBUG("ws", "%s: %s -> %s", stream_->peer_address().c_str(), state_name(state_),
           state_name(next));
  state_ = next;
}

void Connection::start(Handler* handler) {
  if (state_ != State::idle || handler == nullptr) {
    TG_ERROR("ws", "Connection::start called twice or without a handler");
    std::abort();
  }
  handler_ = handler;
  transition(State::open);
  defer_timer_.start(0, 0, [this] { process_pending(); });
}

// ---- reading ----

void Connection::process_pending() {
  if (state_ == State::finished) return;
  std::string data = std::move(pending_in_);
  pending_in_.clear();
  if (!data.empty() && !process(data)) return;  // destroyed
  if (state_ == State::finished) return;
  if (!attached_) {
    attached_ = true;
    stream_->set_handler(this);
  }
  if (!paused_ || state_ == State::draining) stream_->resume_reading();
}

void Connection::on_stream_read(net::Stream& s, std::string_view data) noexcept {
  (void)s;
  process(data);
}

bool Connection::process(std::string_view data) {
  std::weak_ptr<char> guard = alive_;
  while (state_ == State::open || state_ == State::closing) {
    if (paused_) {
      pending_in_.append(data.data(), data.size());
      return true;
    }
    const size_t before = sink_ ? sink_->size() : 0;
    auto step = decoder_.next(data, sink_);
    if (!step.ok()) {
      fail(step.status().code() == Errc::limit ? close_code::message_too_big
                                               : close_code::protocol_error,
           step.status().message());
      return true;
    }
    bool go = true;
    switch (*step) {
      case FrameDecoder::Step::need_more:
        on_payload(before);
        return true;  // on_payload never calls the handler
      case FrameDecoder::Step::header_ready:
        go = on_header();
        break;
      case FrameDecoder::Step::frame_done:
        go = on_payload(before) && on_frame_done();
        break;
    }
    if (guard.expired()) return false;
    if (!go) return true;
  }
  return true;
}

bool Connection::on_header() {
  const FrameHeader& h = decoder_.header();
  const bool want_masked = role_ == Role::server;
  if (h.masked != want_masked) {
    fail(close_code::protocol_error,
         want_masked ? "unmasked frame from client" : "masked frame from server");
    return false;
  }
  if (is_control(h.opcode)) {
    control_.clear();
    sink_ = &control_;
    return true;
  }
  if (h.opcode == Opcode::continuation) {
    if (!in_message_) {
      fail(close_code::protocol_error, "continuation frame with no message in progress");
      return false;
    }
  } else {
    if (in_message_) {
      fail(close_code::protocol_error,
           std::string("new ") + opcode_name(h.opcode) +
               " frame while a fragmented message is in progress");
      return false;
    }
    in_message_ = true;
    msg_type_ = h.opcode;
    msg_.clear();
    msg_utf8_.reset();
  }
  if (h.payload_len > opts_.max_message_size - msg_.size()) {
    fail(close_code::message_too_big,
         "message of more than " + std::to_string(opts_.max_message_size) + " bytes");
    return false;
  }
  sink_ = &msg_;
  return true;
}

bool Connection::on_payload(size_t before) {
  if (sink_ != &msg_ || msg_type_ != Opcode::text || msg_.size() <= before) return true;
  if (!msg_utf8_.feed(std::string_view(msg_).substr(before))) {
    fail(close_code::invalid_payload, "text message is not valid UTF-8");
    return false;
  }
  return true;
}

bool Connection::on_frame_done() {
  const FrameHeader& h = decoder_.header();
  sink_ = nullptr;
  if (is_control(h.opcode)) return on_control_frame(h.opcode);
  if (!h.fin) return true;
  in_message_ = false;
  if (msg_type_ == Opcode::text && !msg_utf8_.complete()) {
    fail(close_code::invalid_payload, "text message is not valid UTF-8");
    return false;
  }
  std::weak_ptr<char> guard = alive_;
  handler_->on_ws_message(*this, msg_type_, msg_);
  if (guard.expired()) return false;
  if (msg_.capacity() > kKeepMessageCapacity) {
    std::string().swap(msg_);
  } else {
    msg_.clear();
  }
  return true;
}

bool Connection::on_control_frame(Opcode op) {
  if (op == Opcode::ping) {
    if (opts_.max_pings_per_minute > 0) {
      const uint64_t now = uv_now(loop_);
      if (now - ping_window_start_ms_ >= 60000) {
        ping_window_start_ms_ = now;
        pings_in_window_ = 0;
      }
      if (++pings_in_window_ > opts_.max_pings_per_minute) {
        fail(close_code::policy_violation,
             "ping flood: more than " + std::to_string(opts_.max_pings_per_minute) +
                 " pings in a minute");
        return false;
      }
    }
    if (state_ == State::open) send_pong(control_);
    return true;
  }
  if (op == Opcode::pong) {
    std::weak_ptr<char> guard = alive_;
    handler_->on_ws_pong(*this, control_);
    return !guard.expired();
  }
  // Opcode::close
  auto info = parse_close_payload(control_);
  if (!info.ok()) {
    fail(close_code::protocol_error, info.status().message());
    return false;
  }
  close_received_ = true;
  report_code_ = info->code;
  report_reason_ = std::move(info->reason);
  if (!close_sent_) {
    // Echo the peer's code (RFC 6455 section 5.5.1); no reason.
    (void)send_close_frame(info->code, {});
  }
  start_draining();
  return false;
}

// ---- closing ----

void Connection::fail(uint16_t code, const std::string& why) {
  if (state_ != State::open && state_ != State::closing) return;
  TG_INFO("ws", "%s: failing connection with %u: %s", stream_->peer_address().c_str(),
          static_cast<unsigned>(code), why.c_str());
  const std::string reason = wire_reason(why);
  if (!close_sent_) (void)send_close_frame(code, reason);
  if (!close_received_) {
    report_code_ = code;
    report_reason_ = reason;
  }
  start_draining();
}

void Connection::start_draining() {
  transition(State::draining);
  pong_pending_ = false;
  pending_pong_.clear();
  pending_in_.clear();
  std::string().swap(msg_);
  stream_->shutdown();
  // Watch for the transport's end even if the user paused reading.
  if (attached_) stream_->resume_reading();
  close_timer_.start(opts_.close_timeout_ms, 0, [this] { on_close_timeout(); });
}

void Connection::on_close_timeout() {
  if (state_ == State::closing || state_ == State::draining) {
    TG_DEBUG("ws", "%s: close timed out in state %s", stream_->peer_address().c_str(),
             state_name(state_));
    finish();
  }
}

void Connection::on_stream_end(net::Stream& s, const Status& why) noexcept {
  (void)s;
  if (state_ == State::finished || state_ == State::idle) return;
  if (!why.ok() && state_ != State::draining) {
    TG_INFO("ws", "%s: transport ended: %s", stream_->peer_address().c_str(),
            why.to_string().c_str());
  }
  finish();
}

bool Connection::finish() {
  if (state_ == State::finished) return true;
  transition(State::finished);
  close_timer_.stop();
  defer_timer_.stop();
  stream_->close();
  const bool clean = close_sent_ && close_received_;
  const uint16_t code = report_code_;
  const std::string reason = std::move(report_reason_);
  std::weak_ptr<char> guard = alive_;
  handler_->on_ws_close(*this, code, reason, clean);
  return !guard.expired();
}

// ---- writing ----

MaskKey Connection::next_mask_key() {
  // Keys come from the system CSPRNG (RFC 6455 section 10.3 wants them
  // unpredictable), drawn 64 at a time: one getrandom per 64 frames
  // instead of one per frame.
  if (mask_pool_used_ + 4 > mask_pool_.size()) {
    crypto::random_bytes(mask_pool_.data(), mask_pool_.size());
    mask_pool_used_ = 0;
  }
  MaskKey key;
  std::memcpy(key.data(), mask_pool_.data() + mask_pool_used_, key.size());
  sodium_memzero(mask_pool_.data() + mask_pool_used_, key.size());
  mask_pool_used_ += key.size();
  return key;
}

Status Connection::write_frame(bool fin, Opcode op, std::string_view payload) {
  if (role_ == Role::client) {
    const MaskKey key = next_mask_key();
    std::string frame;
    frame.reserve(payload.size() + kMaxHeaderSize);
    encode_frame(frame, fin, op, payload, &key);
    return stream_->write(frame);
  }
  std::string header;
  encode_header(header, fin, op, payload.size(), nullptr);
  const std::string_view parts[2] = {header, payload};
  return stream_->writev(parts, payload.empty() ? 1 : 2);
}

Status Connection::send_close_frame(uint16_t code, std::string_view reason) {
  auto payload = make_close_payload(code, reason);
  if (!payload.ok()) return payload.status();
  close_sent_ = true;
  return write_frame(true, Opcode::close, *payload);
}

void Connection::send_pong(std::string_view payload) {
  if (stream_->write_blocked()) {
    // Coalesce: only the latest pong waits for the drain.
    pong_pending_ = true;
    pending_pong_.assign(payload.data(), payload.size());
    return;
  }
  (void)write_frame(true, Opcode::pong, payload);
}

void Connection::on_stream_drain(net::Stream& s) noexcept {
  (void)s;
  if (state_ != State::open && state_ != State::closing) return;
  if (pong_pending_ && state_ == State::open) {
    pong_pending_ = false;
    (void)write_frame(true, Opcode::pong, pending_pong_);
    pending_pong_.clear();
  }
  handler_->on_ws_drain(*this);
}

Status Connection::check_sendable() const {
  if (state_ == State::idle) {
    return error(Errc::invalid_argument, "ws: send before Connection::start");
  }
  if (state_ != State::open) {
    return error(Errc::closed, std::string("ws: cannot send, connection is ") +
                                   state_name(state_));
  }
  return Status();
}

Status Connection::send_text(std::string_view text) {
  TG_TRY(check_sendable());
  if (sending_fragmented_) {
    return error(Errc::invalid_argument, "ws: send_text while a fragmented send is in progress");
  }
  if (!is_valid_utf8(text)) {
    return error(Errc::invalid_argument, "ws: send_text payload is not valid UTF-8");
  }
  return write_frame(true, Opcode::text, text);
}

Status Connection::send_binary(std::string_view data) {
  TG_TRY(check_sendable());
  if (sending_fragmented_) {
    return error(Errc::invalid_argument,
                 "ws: send_binary while a fragmented send is in progress");
  }
  return write_frame(true, Opcode::binary, data);
}

Status Connection::send_fragment(Opcode type, std::string_view data, bool fin) {
  TG_TRY(check_sendable());
  if (type != Opcode::text && type != Opcode::binary) {
    return error(Errc::invalid_argument,
                 std::string("ws: send_fragment type must be text or binary, got ") +
                     opcode_name(type));
  }
  if (sending_fragmented_ && type != send_type_) {
    return error(Errc::invalid_argument,
                 std::string("ws: send_fragment type ") + opcode_name(type) +
                     " differs from the message in progress (" + opcode_name(send_type_) + ")");
  }
  Utf8Validator utf8 = sending_fragmented_ ? send_utf8_ : Utf8Validator();
  if (type == Opcode::text && (!utf8.feed(data) || (fin && !utf8.complete()))) {
    return error(Errc::invalid_argument, "ws: send_fragment text is not valid UTF-8");
  }
  TG_TRY(write_frame(fin, sending_fragmented_ ? Opcode::continuation : type, data));
  sending_fragmented_ = !fin;
  send_type_ = type;
  send_utf8_ = fin ? Utf8Validator() : utf8;
  return Status();
}

Status Connection::ping(std::string_view payload) {
  TG_TRY(check_sendable());
  if (payload.size() > kMaxControlPayload) {
    return error(Errc::invalid_argument, "ws: ping payload of " +
                                             std::to_string(payload.size()) +
                                             " bytes exceeds 125");
  }
  return write_frame(true, Opcode::ping, payload);
}

Status Connection::close(uint16_t code, std::string_view reason) {
  if (state_ == State::idle) {
    return error(Errc::invalid_argument, "ws: close before Connection::start");
  }
  if (state_ != State::open) return Status();
  auto payload = make_close_payload(code, reason);
  if (!payload.ok()) return payload.status();
  close_sent_ = true;
  (void)write_frame(true, Opcode::close, *payload);
  transition(State::closing);
  close_timer_.start(opts_.close_timeout_ms, 0, [this] { on_close_timeout(); });
  return Status();
}

// ---- flow control ----

void Connection::pause_reading() noexcept {
  if (paused_) return;
  paused_ = true;
  if (state_ == State::open || state_ == State::closing) stream_->pause_reading();
}

void Connection::resume_reading() noexcept {
  if (!paused_) return;
  paused_ = false;
  if (state_ != State::open && state_ != State::closing) return;
  if (!attached_ || !pending_in_.empty()) {
    defer_timer_.start(0, 0, [this] { process_pending(); });
  } else {
    stream_->resume_reading();
  }
}

}  // namespace tg::ws
