#include "shared/http/client.h"

#include "shared/core/log.h"
#include "shared/crypto/wipe.h"
#include "shared/http/wire.h"

namespace tg::http {
namespace {

// Notices when the object that owns `*slot` is destroyed during a callback.
struct DispatchGuard {
  explicit DispatchGuard(bool** slot) : slot_(slot), prev_(*slot) { *slot_ = &dead; }
  ~DispatchGuard() {
    if (!dead) {
      *slot_ = prev_;
    } else if (prev_) {
      *prev_ = true;
    }
  }
  DispatchGuard(const DispatchGuard&) = delete;
  DispatchGuard& operator=(const DispatchGuard&) = delete;
  bool dead = false;

 private:
  bool** slot_;
  bool* prev_;
};

}  // namespace

ClientConnection::ClientConnection(uv_loop_t* loop, net::StreamPtr stream,
                                   const ClientOptions& options)
    : stream_(std::move(stream)),
      options_(options),
      parser_(Parser::Mode::response, options.limits),
      timer_(loop),
      defer_(loop) {
  if (stream_) {
    stream_->set_handler(this);
  } else {
    state_ = State::closed;
  }
}

ClientConnection::~ClientConnection() {
  if (destroyed_) *destroyed_ = true;
  if (stream_) stream_->close();
}

const std::string& ClientConnection::peer_address() const noexcept {
  static const std::string gone = "(detached)";
  return stream_ ? stream_->peer_address() : gone;
}

void ClientConnection::transition(State to) {
  // Legal edges: idle <-> active, active -> upgraded, any live state -> closed.
  const bool ok = (state_ == State::idle && (to == State::active || to == State::closed)) ||
                  (state_ == State::active &&
                   (to == State::idle || to == State::upgraded || to == State::closed));
  if (!ok) {
    TG_ERROR("http", "illegal client transition %d -> %d", static_cast<int>(state_),
             static_cast<int>(to));
  }
  state_ = to;
  if (to != State::active) {
    timer_.stop();
    defer_.stop();
  }
  if (to == State::closed && stream_) stream_->close();
}

Status ClientConnection::request(const RequestHead& head, ClientHandler* handler) {
  if (state_ == State::closed) {
    return error(Errc::closed, "HTTP connection to " + peer_address() + " is closed");
  }
  if (state_ != State::idle) {
    return error(Errc::invalid_argument, "request() while another request is in progress");
  }
  if (!handler) return error(Errc::invalid_argument, "request() without a handler");
  Framing framing = Framing::none;
  uint64_t length = 0;
  if (head.headers.has("Content-Length")) {
    auto n = parse_content_length(head.headers.get("Content-Length"));
    if (!n.ok()) return n.status();
    length = *n;
    framing = Framing::length;
  }
  if (head.headers.has("Transfer-Encoding")) {
    if (framing != Framing::none || !iequals(head.headers.get("Transfer-Encoding"), "chunked")) {
      return error(Errc::invalid_argument,
                   "request(): Transfer-Encoding must be exactly \"chunked\" and without "
                   "Content-Length");
    }
    framing = Framing::chunked;
  }
  auto bytes = serialize(head);
  if (!bytes.ok()) return bytes.status();
  // The head may carry the vendor key: the stream copied it, our copy goes.
  Status written = stream_->write(*bytes);
  crypto::wipe(&*bytes);
  TG_TRY(written);

  handler_ = handler;
  framing_ = framing;
  remaining_ = length;
  request_done_ = framing == Framing::none || (framing == Framing::length && length == 0);
  request_close_ = head.headers.has_token("Connection", "close") ||
                   (head.version_minor == 0 && !head.headers.has_token("Connection", "keep-alive"));
  head_seen_ = false;
  paused_ = false;
  if (head.method == "HEAD") parser_.expect_no_body();
  transition(State::active);
  arm_response_timer();
  if (in_off_ < in_.size()) defer_.start(0, 0, [this] { process(); });
  return Status();
}

Status ClientConnection::write(std::string_view piece) {
  if (state_ == State::closed) return error(Errc::closed, "write() on a closed HTTP connection");
  if (state_ != State::active || request_done_ || framing_ == Framing::none) {
    return error(Errc::invalid_argument, "write() without a request body in progress");
  }
  if (piece.empty()) return Status();
  arm_response_timer();
  if (framing_ == Framing::length) {
    if (piece.size() > remaining_) {
      return error(Errc::invalid_argument, "write() of " + std::to_string(piece.size()) +
                                               " bytes exceeds the remaining Content-Length " +
                                               std::to_string(remaining_));
    }
    remaining_ -= piece.size();
    if (remaining_ == 0) request_done_ = true;
    return stream_->write(piece);
  }
  const std::string size_line = chunk_size_line(piece.size());
  const std::string_view parts[3] = {size_line, piece, "\r\n"};
  return stream_->writev(parts, 3);
}

Status ClientConnection::finish() {
  if (state_ == State::closed) return error(Errc::closed, "finish() on a closed HTTP connection");
  if (state_ != State::active) {
    return error(Errc::invalid_argument, "finish() without a request in progress");
  }
  if (framing_ == Framing::length && remaining_ > 0) {
    return error(Errc::invalid_argument, "finish() with " + std::to_string(remaining_) +
                                             " bytes of Content-Length not written");
  }
  arm_response_timer();
  if (framing_ == Framing::chunked && !request_done_) {
    request_done_ = true;
    return stream_->write("0\r\n\r\n");
  }
  request_done_ = true;
  return Status();
}

void ClientConnection::pause_response() noexcept {
  if (state_ != State::active || paused_) return;
  paused_ = true;
  if (head_seen_) timer_.stop();  // our own backpressure is not the peer's silence
  stream_->pause_reading();
}

void ClientConnection::resume_response() noexcept {
  if (state_ != State::active || !paused_) return;
  paused_ = false;
  arm_body_timer();
  stream_->resume_reading();
  defer_.start(0, 0, [this] { process(); });
}

void ClientConnection::arm_body_timer() {
  if (!head_seen_ || paused_ || state_ != State::active || options_.body_idle_timeout_ms == 0) return;
  timer_.start(options_.body_idle_timeout_ms, 0, [this] {
    (void)fail(error(Errc::timeout, "no response body byte from " + peer_address() + " for " +
                                        std::to_string(options_.body_idle_timeout_ms) + " ms"));
  });
}

void ClientConnection::arm_response_timer() {
  if (head_seen_ || options_.response_timeout_ms == 0) return;
  timer_.start(options_.response_timeout_ms, 0, [this] {
    (void)fail(error(Errc::timeout, "no response head from " + peer_address() + " within " +
                                        std::to_string(options_.response_timeout_ms) + " ms"));
  });
}

bool ClientConnection::fail(const Status& why) {
  if (state_ == State::closed || state_ == State::upgraded) return true;
  transition(State::closed);
  ClientHandler* h = handler_;
  handler_ = nullptr;
  if (!h) return true;
  DispatchGuard guard(&destroyed_);
  h->on_error(*this, why);
  return !guard.dead;
}

void ClientConnection::on_stream_read(net::Stream&, std::string_view data) noexcept {
  if (state_ == State::idle) {
    TG_DEBUG("http", "%s: %zu unsolicited bytes on an idle connection, closing",
             peer_address().c_str(), data.size());
    transition(State::closed);
    return;
  }
  if (state_ != State::active) return;
  if (in_off_ > 0) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
  in_.append(data);
  arm_body_timer();  // the peer is alive: the silence starts over
  process();
}

void ClientConnection::process() noexcept {
  DispatchGuard guard(&destroyed_);
  while (state_ == State::active && !paused_) {
    auto r = parser_.step(std::string_view(in_).substr(in_off_));
    if (!r.ok()) {
      (void)fail(r.status());
      return;
    }
    in_off_ += r->consumed;
    if (r->event == ParseEvent::need_more) break;
    const ResponseHead& rh = parser_.response_head();
    if (r->event == ParseEvent::head) {
      if (rh.status == 101) {
        ResponseHead head = rh;
        Upgraded up;
        up.leftover = in_.substr(in_off_);
        in_.clear();
        in_off_ = 0;
        stream_->set_handler(nullptr);
        stream_->resume_reading();
        up.stream = std::move(stream_);
        transition(State::upgraded);
        ClientHandler* h = handler_;
        handler_ = nullptr;
        h->on_upgrade(*this, head, std::move(up));
        return;
      }
      if (rh.status < 200) continue;  // interim answer; its message_end is skipped too
      head_seen_ = true;
      timer_.stop();
      arm_body_timer();
      ResponseHead head = rh;
      handler_->on_response_head(*this, head);
      if (guard.dead) return;
    } else if (r->event == ParseEvent::body) {
      handler_->on_response_body(*this, r->body);
      if (guard.dead) return;
    } else {
      if (rh.status < 200) continue;
      const bool reuse = parser_.keep_alive() && request_done_ && !request_close_ &&
                         in_off_ == in_.size() && !parser_.upgrade();
      ClientHandler* h = handler_;
      handler_ = nullptr;
      timer_.stop();
      transition(reuse ? State::idle : State::closed);
      h->on_response_end(*this);
      if (guard.dead) return;
    }
  }
}

void ClientConnection::on_stream_end(net::Stream&, const Status& why) noexcept {
  if (state_ == State::idle) {
    transition(State::closed);
    return;
  }
  if (state_ != State::active) return;
  if (!why.ok()) {
    (void)fail(why);
    return;
  }
  auto r = parser_.finish();
  if (r.ok() && r->event == ParseEvent::message_end && head_seen_) {
    ClientHandler* h = handler_;
    handler_ = nullptr;
    transition(State::closed);
    h->on_response_end(*this);
    return;
  }
  (void)fail(error(Errc::closed, peer_address() + " closed the connection before the response " +
                                     (head_seen_ ? "body ended" : "head")));
}

void ClientConnection::on_stream_drain(net::Stream&) noexcept {
  if (state_ == State::active && handler_) handler_->on_request_drain(*this);
}

}  // namespace tg::http
