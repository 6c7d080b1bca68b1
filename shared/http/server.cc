#include "shared/http/server.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "shared/core/log.h"
#include "shared/crypto/wipe.h"
#include "shared/http/wire.h"

namespace tg::http {

// One accepted stream. Owned by the Server and destroyed only from the
// Server's reap timer, never inside one of its own callbacks.
class Connection final : public net::StreamHandler {
 public:
  enum class State {
    reading_head,  // waiting for / reading a request head (header timeout)
    idle,          // keep-alive between requests (idle timeout)
    reading_body,  // head delivered, request body still arriving
    responding,    // request complete, response in progress
    closing,       // final answer queued, stream shut down, discarding input
    upgraded,      // stream handed over by upgrade(); terminal
    dead,          // stream ended or closed; terminal
  };
  enum class Response { none, streaming, done };
  enum class Framing { none, length, chunked, close_delimited };

  Connection(Server* server, net::StreamPtr stream)
      : server_(server),
        stream_(std::move(stream)),
        parser_(Parser::Mode::request, server->options_.limits),
        timer_(server->loop_),
        defer_(server->loop_),
        exchange_(this) {}

  ~Connection() override {
    if (stream_) stream_->close();
    crypto::wipe(&in_);  // request heads carry users' tokens
  }

  void start() {
    stream_->set_handler(this);
    arm_timer();
  }

  void reject(int status) { answer_error(status, error(Errc::limit, "too many connections")); }

  void drain() {
    if (state_ == State::idle) {
      close_now();
    } else if (state_ == State::reading_head && in_off_ == in_.size() && in_.empty()) {
      close_now();
    }
    // Busy connections see server_->draining_ when their exchange completes.
  }

  // --- net::StreamHandler ---

  void on_stream_read(net::Stream&, std::string_view data) noexcept override {
    if (state_ == State::closing || state_ == State::upgraded || state_ == State::dead) return;
    const size_t unparsed = in_.size() - in_off_;
    if (unparsed + data.size() > max_buffered_input()) {
      TG_WARN("http", "%s: more than %zu unparsed input bytes, closing", peer().c_str(),
              max_buffered_input());
      abort_exchange(error(Errc::limit, "unparsed input over limit"));
      close_now();
      return;
    }
    if (in_off_ > 0) {
      in_.erase(0, in_off_);
      in_off_ = 0;
    }
    crypto::append_wiped(&in_, data);  // what it held may be a token
    if (state_ == State::idle) transition(State::reading_head);
    if (state_ == State::reading_body && !body_paused_) arm_timer();
    process();
  }

  void on_stream_end(net::Stream&, const Status& why) noexcept override {
    if (state_ == State::upgraded || state_ == State::dead) return;
    abort_exchange(why.ok() ? error(Errc::closed, "client " + peer() + " closed the connection")
                            : why);
    transition(State::dead);
  }

  void on_stream_drain(net::Stream&) noexcept override {
    if (ex_active_ && resp_ == Response::streaming && handler_) {
      handler_->on_response_drain(exchange_);
    }
  }

  // --- Exchange implementation ---

  const RequestHead& request() const noexcept { return parser_.request_head(); }
  const std::string& peer() const noexcept { return peer_cache(); }
  const net::TlsInfo* tls() const noexcept { return stream_ ? stream_->tls() : nullptr; }
  void set_handler(ExchangeHandler* h) noexcept {
    if (ex_active_) handler_ = h;
  }
  bool request_complete() const noexcept { return req_done_; }
  bool responded() const noexcept { return resp_ != Response::none; }
  bool write_blocked() const noexcept { return stream_ && stream_->write_blocked(); }

  void pause_body() noexcept {
    if (!ex_active_ || state_ != State::reading_body || body_paused_) return;
    body_paused_ = true;
    arm_timer();
    update_reading();
  }

  void resume_body() noexcept {
    if (!ex_active_ || !body_paused_) return;
    body_paused_ = false;
    if (state_ != State::reading_body) return;
    if (continue_pending_ && resp_ == Response::none) send_continue();
    arm_timer();
    update_reading();
    schedule_process();
  }

  Status respond(ResponseHead head) {
    if (!ex_active_) return error(Errc::invalid_argument, "respond() on a finished exchange");
    if (resp_ != Response::none) return error(Errc::invalid_argument, "respond() called twice");
    if (head.status < 200 || head.status > 999) {
      return error(Errc::invalid_argument,
                   "respond() status " + std::to_string(head.status) +
                       " outside 200..999 (use upgrade() for 101)");
    }
    if (head.headers.has("Transfer-Encoding") || head.headers.has("Connection")) {
      return error(Errc::invalid_argument,
                   "respond(): Transfer-Encoding and Connection are set by the server");
    }
    const bool no_body = head_request_ || head.status == 204 || head.status == 304;
    bool has_length = false;
    uint64_t length = 0;
    if (head.headers.has("Content-Length")) {
      auto n = parse_content_length(head.headers.get("Content-Length"));
      if (!n.ok()) return n.status();
      has_length = true;
      length = *n;
    }
    bool close_after = close_after_ || !keep_alive_ || server_->draining_ || req_upgrade_ ||
                       (!req_done_ && parser_.has_body());
    Framing framing = Framing::none;
    if (!no_body) {
      if (has_length) {
        framing = Framing::length;
      } else if (request().version_minor >= 1) {
        framing = Framing::chunked;
        head.headers.add("Transfer-Encoding", "chunked");
      } else {
        framing = Framing::close_delimited;
        close_after = true;
      }
    }
    if (close_after) {
      head.headers.add("Connection", "close");
    } else if (request().version_minor == 0) {
      head.headers.add("Connection", "keep-alive");
    }
    auto bytes = serialize(head);
    if (!bytes.ok()) return bytes.status();
    TG_TRY(stream_->write(*bytes));
    close_after_ = close_after;
    framing_ = framing;
    remaining_ = length;
    resp_ = Response::streaming;
    continue_pending_ = false;
    return Status();
  }

  Status write(std::string_view piece) {
    if (!ex_active_ || resp_ != Response::streaming) {
      return error(Errc::invalid_argument, "write() outside a started response");
    }
    if (piece.empty()) return Status();
    switch (framing_) {
      case Framing::none:
        return Status();  // HEAD, 204, 304: the body is not sent
      case Framing::length:
        if (piece.size() > remaining_) {
          return error(Errc::invalid_argument,
                       "write() of " + std::to_string(piece.size()) +
                           " bytes exceeds the remaining Content-Length " +
                           std::to_string(remaining_));
        }
        remaining_ -= piece.size();
        return stream_->write(piece);
      case Framing::chunked: {
        const std::string size_line = chunk_size_line(piece.size());
        const std::string_view parts[3] = {size_line, piece, "\r\n"};
        return stream_->writev(parts, 3);
      }
      case Framing::close_delimited:
        return stream_->write(piece);
    }
    return Status();
  }

  Status finish() {
    if (!ex_active_ || resp_ != Response::streaming) {
      return error(Errc::invalid_argument, "finish() without a started response");
    }
    Status result;
    if (framing_ == Framing::chunked) {
      result = stream_->write("0\r\n\r\n");
    } else if (framing_ == Framing::length && remaining_ > 0) {
      result = error(Errc::invalid_argument, "finish() with " + std::to_string(remaining_) +
                                                 " bytes of Content-Length not written");
    }
    resp_ = Response::done;
    ex_active_ = false;
    handler_ = nullptr;
    if (!result.ok()) {
      close_now();
      return result;
    }
    if (close_after_) {
      begin_close();
    } else if (req_done_) {
      complete_exchange();
    }
    // Otherwise the request has no body left and message_end completes it.
    return result;
  }

  void abort_exchange() {
    if (!ex_active_) return;
    resp_ = Response::done;
    ex_active_ = false;
    handler_ = nullptr;
    close_now();
  }

  Result<Upgraded> upgrade(const ResponseHead& head) {
    if (!ex_active_ || resp_ != Response::none) {
      return error(Errc::invalid_argument, "upgrade() after the response started");
    }
    if (parser_.has_body()) {
      return error(Errc::invalid_argument, "upgrade() on a request with a body");
    }
    if (head.status != 101) {
      return error(Errc::invalid_argument,
                   "upgrade() needs status 101, got " + std::to_string(head.status));
    }
    auto bytes = serialize(head);
    if (!bytes.ok()) return bytes.status();
    TG_TRY(stream_->write(*bytes));
    Upgraded out;
    out.leftover = in_.substr(in_off_);
    in_.clear();
    in_off_ = 0;
    stream_->set_handler(nullptr);
    stream_->resume_reading();
    out.stream = std::move(stream_);
    ex_active_ = false;
    handler_ = nullptr;
    transition(State::upgraded);
    return out;
  }

 private:
  // A peer that ignores pause_reading cannot grow the input past this.
  static constexpr size_t kExtraInput = 256 * 1024;
  size_t max_buffered_input() const {
    return server_->options_.limits.head_bytes + kExtraInput;
  }

  const std::string& peer_cache() const noexcept {
    static const std::string gone = "(detached)";
    return stream_ ? stream_->peer_address() : gone;
  }

  static bool legal(State from, State to) {
    if (to == State::dead) return from != State::upgraded && from != State::dead;
    switch (from) {
      case State::reading_head:
        return to == State::reading_body || to == State::closing;
      case State::idle:
        return to == State::reading_head || to == State::closing;
      case State::reading_body:
        return to == State::responding || to == State::idle || to == State::reading_head ||
               to == State::closing || to == State::upgraded;
      case State::responding:
        return to == State::idle || to == State::reading_head || to == State::closing ||
               to == State::upgraded;
      case State::closing:
      case State::upgraded:
      case State::dead:
        return false;
    }
    return false;
  }

  // The one place the state changes: checks the edge, re-arms the timer and
  // hands terminal connections to the server for deferred destruction.
  void transition(State to) {
    if (!legal(state_, to)) {
      TG_ERROR("http", "illegal connection transition %d -> %d", static_cast<int>(state_),
               static_cast<int>(to));
      to = State::dead;
    }
    state_ = to;
    arm_timer();
    if (to == State::dead || to == State::upgraded) {
      defer_.stop();
      server_->reap_later(this);
    }
  }

  void arm_timer() {
    const ServerOptions& o = server_->options_;
    switch (state_) {
      case State::reading_head:
        if (timer_.active()) return;  // one deadline for the whole head
        start_timer(o.header_timeout_ms);
        return;
      case State::idle:
        start_timer(o.idle_timeout_ms);
        return;
      case State::reading_body:
        if (body_paused_ || req_done_) {
          timer_.stop();
        } else {
          start_timer(o.body_timeout_ms);
        }
        return;
      case State::closing:
        start_timer(o.linger_ms);
        return;
      case State::responding:
      case State::upgraded:
      case State::dead:
        timer_.stop();
        return;
    }
  }

  void start_timer(uint64_t ms) {
    if (ms == 0) {
      timer_.stop();
      return;
    }
    timer_.start(ms, 0, [this] { on_timeout(); });
  }

  void on_timeout() noexcept {
    switch (state_) {
      case State::reading_head:
        TG_DEBUG("http", "%s: request head timeout", peer().c_str());
        answer_error(408, error(Errc::timeout, "request head not complete in time"));
        return;
      case State::reading_body:
        abort_exchange(error(Errc::timeout, "request body stalled"));
        if (resp_ == Response::none) {
          answer_error(408, Status());
        } else {
          close_now();
        }
        return;
      case State::idle:
      case State::closing:
        close_now();
        return;
      case State::responding:
      case State::upgraded:
      case State::dead:
        return;
    }
  }

  bool can_parse() const {
    switch (state_) {
      case State::reading_head:
      case State::idle:
        return true;
      case State::reading_body:
        return !body_paused_;
      default:
        return false;
    }
  }

  void schedule_process() {
    if (processing_) return;  // the running loop picks the work up
    defer_.start(0, 0, [this] { process(); });
  }

  void process() noexcept {
    processing_ = true;
    while (can_parse()) {
      auto r = parser_.step(std::string_view(in_).substr(in_off_));
      if (!r.ok()) {
        processing_ = false;
        on_parse_error(r.status());
        return;
      }
      in_off_ += r->consumed;
      if (state_ == State::idle && r->consumed > 0) transition(State::reading_head);
      if (r->event == ParseEvent::need_more) break;
      if (r->event == ParseEvent::head) {
        on_head();
      } else if (r->event == ParseEvent::body) {
        if (ex_active_ && handler_) handler_->on_request_body(exchange_, r->body);
      } else {
        on_message_end();
      }
    }
    processing_ = false;
    update_reading();
  }

  void on_head() {
    const RequestHead& req = parser_.request_head();
    ex_active_ = true;
    handler_ = nullptr;
    req_done_ = false;
    body_paused_ = false;
    resp_ = Response::none;
    framing_ = Framing::none;
    remaining_ = 0;
    close_after_ = false;
    keep_alive_ = parser_.keep_alive();
    head_request_ = req.method == "HEAD";
    req_upgrade_ = req.method == "CONNECT" ||
                   (req.headers.has("Upgrade") && req.headers.has_token("Connection", "upgrade"));
    continue_pending_ = parser_.has_body() && req.version_minor >= 1 &&
                        req.headers.has_token("Expect", "100-continue");
    timer_.stop();
    transition(State::reading_body);
    server_->handler_->on_request(exchange_);
    if (state_ == State::reading_body && continue_pending_ && resp_ == Response::none &&
        !body_paused_) {
      send_continue();
    }
  }

  void on_message_end() {
    req_done_ = true;
    if (ex_active_ && handler_) handler_->on_request_end(exchange_);
    if (state_ != State::reading_body) return;  // finished, upgraded or closed meanwhile
    if (resp_ == Response::done) {
      complete_exchange();
    } else {
      transition(State::responding);
    }
  }

  // Both directions are done; keep the connection or close it.
  void complete_exchange() {
    if (close_after_ || server_->draining_ || parser_.upgrade()) {
      begin_close();
      return;
    }
    transition(in_off_ < in_.size() ? State::reading_head : State::idle);
    update_reading();
    if (in_off_ < in_.size()) schedule_process();
  }

  void send_continue() {
    continue_pending_ = false;
    (void)stream_->write("HTTP/1.1 100 Continue\r\n\r\n");
  }

  void on_parse_error(const Status& why) {
    const int status = parser_.error_http_status() ? parser_.error_http_status() : 400;
    TG_DEBUG("http", "%s: %d: %s", peer().c_str(), status, why.to_string().c_str());
    abort_exchange(why);
    answer_error(status, why);
  }

  // Tells the application its exchange is over (from the loop only).
  void abort_exchange(const Status& why) {
    if (!ex_active_) return;
    ex_active_ = false;
    ExchangeHandler* h = handler_;
    handler_ = nullptr;
    if (h) h->on_abort(exchange_, why);
  }

  // Writes a final error answer with Connection: close, then closes. If a
  // response already started there is nothing left to say: close at once.
  void answer_error(int status, const Status& why) {
    (void)why;
    if (state_ == State::closing || state_ == State::dead || state_ == State::upgraded) return;
    if (resp_ == Response::streaming) {
      close_now();
      return;
    }
    const std::string reason = reason_phrase(status);
    const std::string msg = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                            "\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(reason.size() + 1) +
                            "\r\nConnection: close\r\n\r\n" + reason + "\n";
    resp_ = Response::done;
    (void)stream_->write(msg);
    begin_close();
  }

  void begin_close() {
    if (state_ == State::closing || state_ == State::dead || state_ == State::upgraded) return;
    stream_->resume_reading();  // read and discard until the peer ends
    stream_->shutdown();
    transition(State::closing);
  }

  void close_now() {
    if (state_ == State::dead || state_ == State::upgraded) return;
    stream_->close();
    transition(State::dead);
  }

  void update_reading() {
    if (!stream_) return;
    bool want = true;
    switch (state_) {
      case State::reading_body:
        want = !body_paused_;
        break;
      case State::responding:
        // Keep reading so a disconnect is seen at once; buffer a pipelined
        // request only up to the head limit.
        want = in_.size() - in_off_ <= server_->options_.limits.head_bytes;
        break;
      case State::upgraded:
      case State::dead:
        return;
      default:
        break;
    }
    if (want) {
      stream_->resume_reading();
    } else {
      stream_->pause_reading();
    }
  }

  Server* server_;
  net::StreamPtr stream_;
  Parser parser_;
  Timer timer_;
  Timer defer_;
  Exchange exchange_;
  ExchangeHandler* handler_ = nullptr;
  State state_ = State::reading_head;
  std::string in_;
  size_t in_off_ = 0;
  bool processing_ = false;
  // The current exchange.
  bool ex_active_ = false;
  bool req_done_ = false;
  bool body_paused_ = false;
  bool continue_pending_ = false;
  bool keep_alive_ = false;
  bool close_after_ = false;
  bool head_request_ = false;
  bool req_upgrade_ = false;
  Response resp_ = Response::none;
  Framing framing_ = Framing::none;
  uint64_t remaining_ = 0;
  bool reaped_ = false;
  // Admitted under the per-address limit: counted in Server::per_address_.
  bool counted_ = false;
  std::string addr_key_;
  friend class Server;
};

// --- Exchange forwarding ---

const RequestHead& Exchange::request() const noexcept { return conn_->request(); }
const std::string& Exchange::peer_address() const noexcept { return conn_->peer(); }
const net::TlsInfo* Exchange::tls() const noexcept { return conn_->tls(); }
void Exchange::set_handler(ExchangeHandler* handler) noexcept { conn_->set_handler(handler); }
void Exchange::pause_request_body() noexcept { conn_->pause_body(); }
void Exchange::resume_request_body() noexcept { conn_->resume_body(); }
bool Exchange::request_complete() const noexcept { return conn_->request_complete(); }
Status Exchange::respond(ResponseHead head) { return conn_->respond(std::move(head)); }
Status Exchange::write(std::string_view piece) { return conn_->write(piece); }
Status Exchange::finish() { return conn_->finish(); }
void Exchange::abort() noexcept { conn_->abort_exchange(); }
bool Exchange::write_blocked() const noexcept { return conn_->write_blocked(); }
bool Exchange::responded() const noexcept { return conn_->responded(); }
Result<Upgraded> Exchange::upgrade(const ResponseHead& head) { return conn_->upgrade(head); }

Status Exchange::reply(int status, std::string_view body, std::string_view content_type) {
  ResponseHead head;
  head.status = status;
  head.headers.add("Content-Length", std::to_string(body.size()));
  if (!body.empty()) head.headers.add("Content-Type", std::string(content_type));
  TG_TRY(respond(std::move(head)));
  TG_TRY(write(body));
  return finish();
}

// --- address_key ---

std::string address_key(std::string_view peer) {
  std::string_view host = peer;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return std::string(peer);
    host = host.substr(1, close - 1);
  } else if (const size_t colon = host.find(':');
             colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
    host = host.substr(0, colon);  // "a.b.c.d:port"
  }
  host = host.substr(0, host.find('%'));  // an IPv6 zone names no other host
  const std::string text(host);
  unsigned char raw[16] = {};
  char out[64] = {};
  if (uv_inet_pton(AF_INET, text.c_str(), raw) == 0) return text;
  if (uv_inet_pton(AF_INET6, text.c_str(), raw) != 0) return std::string(peer);
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(raw, raw + 12, kMapped)) {
    if (uv_inet_ntop(AF_INET, raw + 12, out, sizeof out) != 0) return std::string(peer);
    return out;
  }
  std::fill(raw + 8, raw + 16, static_cast<unsigned char>(0));
  if (uv_inet_ntop(AF_INET6, raw, out, sizeof out) != 0) return std::string(peer);
  return std::string(out) + "/64";
}

// --- Server ---

Server::Server(uv_loop_t* loop, ServerHandler* handler, const ServerOptions& options)
    : loop_(loop), handler_(handler), options_(options), reaper_(loop) {}

Server::~Server() { conns_.clear(); }

void Server::accept(net::StreamPtr stream) {
  if (!stream) return;
  std::string key = address_key(stream->peer_address());
  auto conn = std::make_unique<Connection>(this, std::move(stream));
  Connection* c = conn.get();
  const bool over = conns_.size() >= options_.max_connections;
  auto from = per_address_.find(key);
  const size_t from_here = from == per_address_.end() ? 0 : from->second;
  const bool over_address =
      options_.max_connections_per_address > 0 && from_here >= options_.max_connections_per_address;
  conns_.emplace(c, std::move(conn));
  c->start();
  if (over) {
    TG_WARN("http", "%s: over %zu connections, answering 503", c->peer().c_str(),
            options_.max_connections);
    c->reject(503);
  } else if (draining_) {
    c->reject(503);
  } else if (over_address) {
    note_address_refusal(key);
    c->reject(503);
  } else {
    ++per_address_[key];
    c->counted_ = true;
    c->addr_key_ = std::move(key);
  }
}

size_t Server::connections_from(std::string_view peer_address) const {
  auto it = per_address_.find(address_key(peer_address));
  return it == per_address_.end() ? 0 : it->second;
}

void Server::note_address_refusal(const std::string& key) {
  ++refused_since_warn_;
  TG_DEBUG("http", "%s: over %zu connections from this address, answering 503", key.c_str(),
           options_.max_connections_per_address);
  const uint64_t now = uv_now(loop_);
  if (refusal_warned_ && now - refusal_warned_ms_ < kRefusalWarnIntervalMs) return;
  TG_WARN("http", "%s: over %zu connections from this address, answering 503 (%llu refused "
          "in the last second)", key.c_str(), options_.max_connections_per_address,
          static_cast<unsigned long long>(refused_since_warn_));
  refusal_warned_ = true;
  refusal_warned_ms_ = now;
  refused_since_warn_ = 0;
}

void Server::drain() noexcept {
  draining_ = true;
  for (auto& entry : conns_) entry.second->drain();
}

void Server::reap_later(Connection* c) {
  if (c->reaped_) return;
  c->reaped_ = true;
  if (c->counted_) {
    c->counted_ = false;
    auto it = per_address_.find(c->addr_key_);
    if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
  }
  dead_.push_back(c);
  if (!reaper_.pending()) reaper_.post([this] { on_reap(); });
}

void Server::on_reap() noexcept {
  std::vector<Connection*> dead;
  dead.swap(dead_);
  for (Connection* c : dead) conns_.erase(c);
}

}  // namespace tg::http
