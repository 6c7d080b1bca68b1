#include "shared/tunnel/session.h"

#include <algorithm>
#include <utility>

#include "shared/core/log.h"
#include "shared/tunnel/frame.h"

namespace tg::tunnel {
namespace {

constexpr size_t kMaxCloseReason = 120;  // a close frame's reason is at most 123 bytes

// The channel id a stream-bound message names, 0 for others.
uint32_t channel_id_of(const Message& m) {
  return std::visit(
      [](const auto& v) -> uint32_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Call> || std::is_same_v<T, Response> ||
                      std::is_same_v<T, Finish> || std::is_same_v<T, Error> ||
                      std::is_same_v<T, Abort> || std::is_same_v<T, Credit>) {
          return v.id;
        } else {
          return 0;
        }
      },
      m);
}

void set_channel_id(Message& m, uint32_t id) {
  std::visit(
      [id](auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Response> || std::is_same_v<T, Finish> ||
                      std::is_same_v<T, Error>) {
          v.id = id;
        }
      },
      m);
}

const char* side_name(Side s) { return s == Side::hub ? "hub" : "agent"; }

}  // namespace

// ---- Channel ----

size_t Channel::send_capacity() const noexcept {
  if (session_->closing_ || local_fin_ || lingering_) return 0;
  size_t n = session_->write_blocked() ? 0 : send_.available();
  if (n == 0) wants_write_ = true;
  return n;
}

Status Channel::send_data(std::string_view data, bool fin) {
  if (session_->closing_) return error(Errc::closed, "tunnel is closing");
  if (lingering_) return error(Errc::closed, "channel " + std::to_string(id_) + " was aborted");
  if (local_fin_) return error(Errc::invalid_argument, "channel " + std::to_string(id_) + ": data after fin");
  if (data.size() > send_.available()) {
    return error(Errc::invalid_argument, "channel " + std::to_string(id_) + ": " +
                                             std::to_string(data.size()) + " bytes over a window of " +
                                             std::to_string(send_.available()));
  }
  TG_TRY(session_->write_data(id_, data, fin));
  TG_TRY(send_.on_sent(data.size()));
  if (fin) local_fin_ = true;
  return Status();
}

Status Channel::send(Message m) {
  const Type t = type_of(m);
  if (t != Type::response && t != Type::finish && t != Type::error) {
    return error(Errc::invalid_argument, std::string("not a stream-bound message: ") + type_name(t));
  }
  if (lingering_) return error(Errc::closed, "channel " + std::to_string(id_) + " was aborted");
  set_channel_id(m, id_);
  TG_TRY(session_->send(m));
  if (t == Type::finish || t == Type::error) ended_ = true;
  return Status();
}

void Channel::consumed(size_t n) {
  if (lingering_) return;  // the aborted stream gets no credit: the peer stopped sending
  auto credit = recv_.consumed(n);
  if (!credit.ok()) {
    TG_ERROR("tunnel", "channel %u: %s", id_, credit.status().message().c_str());
    return;
  }
  if (*credit == 0 || remote_fin_ || session_->closing_) return;
  Status s = session_->send(Credit{id_, *credit});
  if (!s.ok()) TG_DEBUG("tunnel", "channel %u: credit not sent: %s", id_, s.message().c_str());
}

void Channel::close(std::string_view reason) {
  if (!lingering_) send_abort(reason);
  session_->drop_channel(id_, Status(), false);
}

void Channel::abort_linger(std::string_view reason) {
  if (lingering_) return;
  send_abort(reason);
  lingering_ = true;
}

void Channel::send_abort(std::string_view reason) {
  if (ended_ || (local_fin_ && remote_fin_) || session_->closing_) return;
  Status s = session_->send(Abort{id_, std::string(reason)});
  if (!s.ok()) TG_DEBUG("tunnel", "channel %u: abort not sent: %s", id_, s.message().c_str());
}

// ---- Session ----

Session::Session(uv_loop_t* loop, ws::ConnectionPtr ws, Side side, SessionHandler* handler,
                 SessionOptions options)
    : loop_(loop), ws_(std::move(ws)), side_(side), handler_(handler), options_(options),
      heartbeat_(loop), reaper_(loop) {}

Session::~Session() {
  *alive_ = false;
  channels_.clear();
  graveyard_.clear();
}

void Session::apply_watermarks() {
  // The transport wakes us (on_ws_drain -> notify_writable) at our own mark,
  // not at its default one: a mark below the transport's would never fire.
  const size_t high = std::max<size_t>(options_.write_high_water, 1);
  ws_->set_write_watermarks(high, high / 4);
}

size_t Session::max_queued() const noexcept {
  return options_.write_high_water + static_cast<size_t>(options_.max_streams) * options_.window +
         kControlBacklog;
}

// Checked whenever the peer sends something, before we answer it.
bool Session::over_queue_limit() {
  if (closing_ || ws_->queued_bytes() <= max_queued()) return false;
  fail(close_code::policy, "the peer left " + std::to_string(ws_->queued_bytes()) +
                               " bytes unread (limit " + std::to_string(max_queued()) + ")");
  return true;
}

void Session::start() {
  last_rx_ms_ = uv_now(loop_);
  apply_watermarks();
  ws_->start(this);
  heartbeat_.start(options_.heartbeat_ms, options_.heartbeat_ms, [this] { on_heartbeat(); });
}

void Session::authenticated(const SessionOptions& options) {
  options_ = options;
  apply_watermarks();
  phase_ = Phase::session;
  last_rx_ms_ = uv_now(loop_);
  heartbeat_.start(options_.heartbeat_ms, options_.heartbeat_ms, [this] { on_heartbeat(); });
}

size_t Session::queued_bytes() const noexcept { return ws_->queued_bytes(); }

bool Session::write_blocked() const noexcept {
  return ws_->queued_bytes() > options_.write_high_water;
}

Status Session::send(const Message& m) {
  if (closed_) return error(Errc::closed, "tunnel is closed");
  auto text = encode_checked(m, phase_);
  if (!text.ok()) return text.status();
  return ws_->send_text(*text);
}

Result<Channel*> Session::open_channel(Call call, ChannelHandler* handler) {
  if (side_ != Side::hub) return error(Errc::invalid_argument, "only the hub opens channels");
  if (phase_ != Phase::session) return error(Errc::invalid_argument, "tunnel not authenticated");
  if (closing_) return error(Errc::closed, "tunnel is closing");
  if (channels_.size() >= options_.max_streams) {
    return error(Errc::limit, "tunnel has " + std::to_string(channels_.size()) + " of " +
                                  std::to_string(options_.max_streams) + " streams open");
  }
  if (highest_id_ == UINT32_MAX) return error(Errc::limit, "stream ids exhausted");
  call.id = highest_id_ + 1;
  auto text = encode_checked(call, Phase::session);
  if (!text.ok()) return text.status();
  TG_TRY(ws_->send_text(*text));
  highest_id_ = call.id;
  auto ch = std::unique_ptr<Channel>(new Channel(this, call.id, options_.window));
  ch->handler_ = handler;
  Channel* raw = ch.get();
  channels_.emplace(call.id, std::move(ch));
  return raw;
}

void Session::close(uint16_t code, const std::string& why, const Refused* refusal) {
  if (closing_ || closed_) return;
  if (refusal) {
    Status s = send(*refusal);
    if (!s.ok()) TG_DEBUG("tunnel", "refusal not sent: %s", s.message().c_str());
  }
  closing_ = true;
  close_why_ = why;
  close_code_ = code;
  heartbeat_.stop();
  auto alive = alive_;
  while (!channels_.empty() && *alive) {
    drop_channel(channels_.begin()->first, error(Errc::closed, "tunnel closing: " + why), true);
  }
  if (!*alive) return;
  Status s = ws_->close(code, why.substr(0, kMaxCloseReason));
  if (!s.ok()) TG_DEBUG("tunnel", "close: %s", s.message().c_str());
}

void Session::fail(uint16_t code, const std::string& why) {
  TG_WARN("tunnel", "%s side, peer %s: closing with %u: %s", side_name(side_),
          ws_->peer_address().c_str(), code, why.c_str());
  // Before authentication the hub says why in a `refused` the agent can log
  // (PROTOCOL.md section 9); afterwards the close reason carries it.
  if (side_ == Side::hub && phase_ == Phase::pre_auth && code != close_code::heartbeat_timeout) {
    Refused r{std::string(refusal::protocol), why.substr(0, kMaxText)};
    close(code, why, &r);
    return;
  }
  close(code, why);
}

void Session::drop_channel(uint32_t id, const Status& why, bool notify) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  std::unique_ptr<Channel> ch = std::move(it->second);
  channels_.erase(it);
  ChannelHandler* h = ch->handler_;
  Channel* raw = ch.get();
  // Destroyed from the loop: the caller may be inside this channel's callback.
  graveyard_.push_back(std::move(ch));
  if (!reaper_.pending()) reaper_.post([this] { graveyard_.clear(); });
  if (notify && h) h->on_channel_closed(*raw, why);
}

void Session::notify_writable() {
  auto alive = alive_;
  std::vector<uint32_t> ids;
  for (auto& [id, ch] : channels_) {
    if (ch->wants_write_ && ch->send_capacity() > 0) ids.push_back(id);
  }
  for (uint32_t id : ids) {
    if (!*alive) return;
    auto it = channels_.find(id);
    if (it == channels_.end()) continue;
    Channel& ch = *it->second;
    if (ch.send_capacity() == 0) continue;
    ch.wants_write_ = false;
    if (ch.handler_) ch.handler_->on_channel_writable(ch);
  }
}

Status Session::write_data(uint32_t id, std::string_view data, bool fin) {
  std::string frame;
  do {
    size_t n = std::min(data.size(), kMaxFramePayload);
    bool last = n == data.size();
    auto header = encode_frame_header(id, fin && last, n);
    if (!header.ok()) return header.status();
    frame.assign(reinterpret_cast<const char*>(header->data()), header->size());
    frame.append(data.substr(0, n));
    TG_TRY(ws_->send_binary(frame));
    data.remove_prefix(n);
  } while (!data.empty());
  return Status();
}

void Session::on_heartbeat() {
  const uint64_t now = uv_now(loop_);
  const uint64_t silent = now - last_rx_ms_;
  if (silent >= options_.heartbeat_ms * options_.dead_after) {
    fail(close_code::heartbeat_timeout,
         "no frame from the peer for " + std::to_string(silent) + " ms");
    return;
  }
  Status s = ws_->ping();
  if (!s.ok()) TG_DEBUG("tunnel", "ping: %s", s.message().c_str());
}

void Session::on_ws_message(ws::Connection&, ws::Opcode type, std::string_view payload) noexcept {
  last_rx_ms_ = uv_now(loop_);
  if (closing_) return;
  // A peer that asks for more while leaving our answers unread is cut off
  // before it can grow our queue without bound.
  if (over_queue_limit()) return;
  if (type == ws::Opcode::text) on_text(payload);
  else on_binary(payload);
}

void Session::on_ws_pong(ws::Connection&, std::string_view) noexcept { last_rx_ms_ = uv_now(loop_); }

void Session::on_ws_drain(ws::Connection&) noexcept { notify_writable(); }

void Session::on_ws_close(ws::Connection&, uint16_t code, std::string_view reason,
                          bool clean) noexcept {
  (void)clean;
  closed_ = true;
  closing_ = true;
  heartbeat_.stop();
  // Our own code and reason when we started the close; the peer's otherwise.
  const std::string why = close_code_ ? close_why_ : std::string(reason);
  if (close_code_) code = close_code_;
  auto alive = alive_;
  while (!channels_.empty() && *alive) {
    drop_channel(channels_.begin()->first, error(Errc::closed, "tunnel closed: " + why), true);
  }
  if (!*alive) return;
  handler_->on_closed(*this, code, why);
}

void Session::on_text(std::string_view text) {
  auto decoded = decode(text, phase_);
  if (!decoded.ok()) {
    fail(close_code_for(decoded.status()), decoded.status().message());
    return;
  }
  Message& m = decoded.value();
  const Type t = type_of(m);
  const bool allowed = side_ == Side::hub ? sent_by_agent(t) : sent_by_hub(t);
  if (!allowed) {
    fail(close_code::bad_message, std::string("'") + type_name(t) + "' may not be sent by the " +
                                      (side_ == Side::hub ? "agent" : "hub"));
    return;
  }
  const uint32_t id = channel_id_of(m);
  if (id == 0) {
    handler_->on_message(*this, m);
    return;
  }

  if (t == Type::call) {
    if (id <= highest_id_) {
      fail(close_code::bad_message, "call.id " + std::to_string(id) + " not above " +
                                        std::to_string(highest_id_));
      return;
    }
    if (channels_.size() >= options_.max_streams) {
      fail(close_code::bad_message, "more than " + std::to_string(options_.max_streams) +
                                        " streams open");
      return;
    }
    highest_id_ = id;
    auto ch = std::unique_ptr<Channel>(new Channel(this, id, options_.window));
    Channel* raw = ch.get();
    channels_.emplace(id, std::move(ch));
    handler_->on_call(*this, *raw, std::get<Call>(m));
    return;
  }

  auto it = channels_.find(id);
  if (it == channels_.end()) {
    // A message racing our close/abort of a stream is fine; an id never
    // used is a protocol error.
    if (!seen_before(id)) {
      fail(close_code::bad_message, std::string(type_name(t)) + " for stream " +
                                        std::to_string(id) + " that was never opened");
    }
    return;
  }
  Channel& ch = *it->second;
  switch (t) {
    case Type::credit: {
      Status s = ch.send_.on_credit(std::get<Credit>(m).bytes);
      if (!s.ok()) {
        fail(close_code::bad_message, "stream " + std::to_string(id) + ": " + s.message());
        return;
      }
      if (ch.wants_write_ && ch.send_capacity() > 0) {
        ch.wants_write_ = false;
        if (ch.handler_) ch.handler_->on_channel_writable(ch);
      }
      return;
    }
    case Type::abort:
      drop_channel(id, error(Errc::closed, "aborted by peer: " + std::get<Abort>(m).reason), true);
      return;
    case Type::finish:
    case Type::error: {
      ch.ended_ = true;
      ChannelHandler* h = ch.handler_;
      drop_channel(id, Status(), false);
      if (h) h->on_channel_message(*graveyard_.back(), m);
      return;
    }
    default:
      if (ch.handler_) ch.handler_->on_channel_message(ch, m);
      return;
  }
}

void Session::on_binary(std::string_view bytes) {
  if (phase_ != Phase::session) {
    fail(close_code::bad_message, "data frame before authentication");
    return;
  }
  auto frame = decode_frame(bytes);
  if (!frame.ok()) {
    fail(close_code::bad_message, frame.status().message());
    return;
  }
  const uint32_t id = frame->id;
  auto it = channels_.find(id);
  if (it == channels_.end()) {
    if (!seen_before(id)) {
      fail(close_code::bad_message, "data for stream " + std::to_string(id) + " that was never opened");
    }
    return;
  }
  Channel& ch = *it->second;
  if (ch.remote_fin_) {
    fail(close_code::bad_message, "data for stream " + std::to_string(id) + " after fin");
    return;
  }
  Status s = ch.recv_.on_received(frame->payload.size());
  if (!s.ok()) {
    fail(close_code::bad_message, "stream " + std::to_string(id) + ": " + s.message());
    return;
  }
  if (frame->fin) ch.remote_fin_ = true;
  if (ch.handler_) {
    ch.handler_->on_channel_data(ch, frame->payload, frame->fin);
  } else {
    ch.consumed(frame->payload.size());
  }
}

}  // namespace tg::tunnel
