#include "agent/passthrough.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstring>

#include "agent/vendors.h"
#include "shared/core/log.h"
#include "shared/http/client.h"
#include "shared/net/tcp.h"
#include "shared/tls/connector.h"

namespace tg::agent {
namespace {

constexpr const char* kLog = "passthrough";

std::string address_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    sockaddr_in a;
    std::memcpy(&a, sa, sizeof a);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    sockaddr_in6 a;
    std::memcpy(&a, sa, sizeof a);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
  }
  return buf;
}

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* refusal_text(Refusal r) {
  switch (r) {
    case Refusal::paused: return "paused after a vendor 429";
    case Refusal::tokens: return "tokens per minute used up";
    case Refusal::requests: return "requests per minute used up";
    case Refusal::none: break;
  }
  return "available";
}

uint16_t port_of(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    sockaddr_in a;
    std::memcpy(&a, sa, sizeof a);
    return ntohs(a.sin_port);
  }
  sockaddr_in6 a;
  std::memcpy(&a, sa, sizeof a);
  return ntohs(a.sin6_port);
}

}  // namespace

// One call: the channel to the hub on one side, the vendor connection on the
// other. Ends exactly once through end(); after that no source of callbacks
// is left and the owner destroys it from the loop.
class Passthrough::Call final : public tunnel::ChannelHandler, public http::ClientHandler {
 public:
  // resolving (local names only) -> connecting -> requesting (head sent,
  // waiting for the response head) -> responding -> done; a failure before
  // the response head may go to backoff (waiting to dial again) or, for a
  // reused connection the vendor closed, straight back to dialling.
  enum class State { idle, resolving, connecting, requesting, responding, backoff, done };

  Call(Passthrough& owner, tunnel::Channel& ch, const tunnel::Call& call, size_t provider,
       VendorRequest req)
      : owner_(owner),
        ch_(&ch),
        id_(call.id),
        request_id_(call.request_id),
        model_(call.model),
        ticket_(call.ticket),
        meter_(billing::api_for_path(call.path), call.stream),
        provider_(provider),
        req_(std::move(req)),
        deadline_ms_(call.deadline_ms),
        deadline_(owner.loop_),
        backoff_(owner.loop_),
        started_ms_(uv_now(owner.loop_)) {
    if (id_ == 0) id_ = ch.id();
  }

  ~Call() override {
    if (resolve_) resolve_->owner = nullptr;  // its callback frees it
    wipe_auth(req_.head);
  }

  // Starts from on_call; may end the call at once (then the channel is
  // answered and closed before on_call returns, as CallHandler allows).
  void start() {
    deadline_.start(deadline_ms_, 0, [this] {
      fail(tunnel::stream_error::deadline_exceeded,
           "no complete vendor answer within the deadline of " + std::to_string(deadline_ms_) + " ms");
    });
    if (auto idle = owner_.take_idle(provider_)) {
      conn_ = std::move(idle);
      reused_ = true;
      ++owner_.stats_.reused;
      transition(State::connecting);
      begin_request();
      return;
    }
    dial();
  }

  State state() const noexcept { return state_; }

  // ---- tunnel::ChannelHandler ----

  void on_channel_message(tunnel::Channel&, const tunnel::Message& m) noexcept override {
    // Only `error` can reach the agent here; the channel is gone after it.
    ch_ = nullptr;
    std::string why = "message";
    if (auto* e = std::get_if<tunnel::Error>(&m)) why = "error " + e->code;
    end(Outcome::aborted, "the hub ended the stream with " + why);
  }

  void on_channel_data(tunnel::Channel&, std::string_view data, bool fin) noexcept override {
    if (state_ == State::done) return;
    meter_.request_body(data.size());
    if (state_ == State::requesting || state_ == State::responding) {
      send_request_bytes(data, fin);
      return;
    }
    // Not connected yet: hold the bytes (the hub cannot send more than one
    // window without our credit, so this is bounded).
    req_pending_.append(data);
    req_fin_ = req_fin_ || fin;
    note_held(req_pending_.size());
  }

  void on_channel_writable(tunnel::Channel&) noexcept override {
    if (state_ != State::responding) return;
    flush_response();
  }

  void on_channel_closed(tunnel::Channel&, const Status& why) noexcept override {
    ch_ = nullptr;
    end(Outcome::aborted, "aborted by the hub (" + why.message() + ")");
  }

  // ---- http::ClientHandler ----

  void on_response_head(http::ClientConnection&, const http::ResponseHead& head) noexcept override {
    if (state_ != State::requesting) return;
    if (head.status == 429) {
      vendor_429(head);
      return;
    }
    if (head.status >= 500 &&
        retry_later("vendor " + req_.host + " answered " + std::to_string(head.status))) {
      return;
    }
    transition(State::responding);
    wipe_auth(req_.head);  // no retry from here on
    drop_replay();
    status_ = head.status;
    meter_.response_status(head.status);
    tunnel::Response r;
    r.status = static_cast<uint32_t>(head.status);
    r.headers = response_headers(head.headers);
    Status s = ch_->send(std::move(r));
    if (!s.ok()) fail(tunnel::stream_error::internal, "response head not sent: " + s.message());
  }

  void on_response_body(http::ClientConnection&, std::string_view piece) noexcept override {
    if (state_ != State::responding) return;
    body_bytes_ += piece.size();
    if (!resp_pending_.empty()) {  // cannot happen while paused; keep the order anyway
      resp_pending_.append(piece);
      note_held(resp_pending_.size());
      conn_->pause_response();
      return;
    }
    const size_t n = std::min(ch_->send_capacity(), piece.size());
    if (n > 0) {
      Status s = ch_->send_data(piece.substr(0, n), false);
      if (!s.ok()) {
        fail(tunnel::stream_error::internal, "response body not sent: " + s.message());
        return;
      }
      meter_.response_body(piece.substr(0, n));  // what the hub will read, byte for byte
    }
    if (n < piece.size()) resp_pending_.assign(piece.substr(n));
    note_held(resp_pending_.size());
    // A 0 answer arms on_channel_writable, which resumes the vendor.
    if (ch_->send_capacity() == 0) conn_->pause_response();
  }

  void on_response_end(http::ClientConnection&) noexcept override {
    if (state_ != State::responding) return;
    resp_end_ = true;
    if (resp_pending_.empty()) complete();
  }

  void on_error(http::ClientConnection&, const Status& why) noexcept override {
    if (state_ == State::done) return;
    const bool before_head = state_ == State::requesting;
    const bool lost = why.code() == Errc::closed || why.code() == Errc::io;
    if (before_head && reused_ && replayable_ && !keepalive_retried_ && lost) {
      retry_now(why);
      return;
    }
    std::string_view code = tunnel::stream_error::upstream_error;
    if (before_head) {
      if (why.code() == Errc::timeout) {
        code = tunnel::stream_error::upstream_timeout;
      } else if (why.code() != Errc::parse && why.code() != Errc::limit &&
                 why.code() != Errc::protocol) {
        code = tunnel::stream_error::upstream_unreachable;
      }
    }
    const std::string what = "vendor " + req_.host + ": " + why.message();
    if (before_head && (lost || why.code() == Errc::tls) && retry_later(what)) return;
    fail(code, what);
  }

  void on_request_drain(http::ClientConnection&) noexcept override {
    if (owed_ > 0 && ch_) {
      ch_->consumed(owed_);
      owed_ = 0;
    }
  }

 private:
  enum class Outcome { finished, failed, aborted };

  // Resolves a local provider's name; every address must be local.
  struct Resolve {
    uv_getaddrinfo_t req{};
    Call* owner = nullptr;
  };

  static bool legal(State from, State to) {
    switch (to) {
      case State::idle: return false;
      case State::resolving:
      case State::connecting:
        // Dialling: first, after the resolve, after a back-off, or at once
        // when a reused connection ended before the answer.
        return from == State::idle || from == State::backoff || from == State::requesting ||
               (to == State::connecting && from == State::resolving);
      case State::requesting: return from == State::connecting;
      case State::responding: return from == State::requesting;
      case State::backoff:
        return from == State::resolving || from == State::connecting || from == State::requesting;
      case State::done: return from != State::done;
    }
    return false;
  }

  void transition(State to) {
    if (!legal(state_, to)) {
      TG_ERROR(kLog, "call %u: illegal transition %d -> %d", id_, static_cast<int>(state_),
               static_cast<int>(to));
    }
    state_ = to;
  }

  // Opens a new vendor connection (resolving a local name first).
  void dial() {
    if (req_.local_only && !is_ip_literal(req_.host)) {
      resolve();
    } else {
      connect(req_.host, req_.port);
    }
  }

  // The reused connection closed before any answer: send the request again,
  // once and at once, on a new connection (its body bytes so far are in
  // replay_). A stale pooled connection is not the vendor failing, so this
  // does not count against kMaxVendorRetries.
  void retry_now(const Status& why) {
    TG_DEBUG(kLog, "call %u: reused vendor connection ended before the response (%s); retrying",
             id_, why.message().c_str());
    ++owner_.stats_.retried;
    keepalive_retried_ = true;
    reset_for_retry();
    dial();
  }

  // A 5xx or a failed connection before any response byte went to the hub:
  // dials again after a jittered back-off if a retry is left, the whole body
  // so far is in replay_ and the deadline allows it; false (nothing done)
  // otherwise.
  bool retry_later(const std::string& what) {
    if (vendor_retries_ >= kMaxVendorRetries || !replayable_ || !ch_) return false;
    const RetryBackoff& b = kVendorRetryBackoff[vendor_retries_];
    const uint64_t delay =
        b.min_ms + randombytes_uniform(static_cast<uint32_t>(b.max_ms - b.min_ms + 1));
    if (delay >= remaining_ms()) return false;
    ++vendor_retries_;
    ++owner_.stats_.vendor_retries;
    TG_INFO(kLog, "call %u %s via %s: %s; retry %d of %d in %llu ms on a new connection", id_,
            model_.c_str(), provider_name().c_str(), what.c_str(), vendor_retries_,
            kMaxVendorRetries, static_cast<unsigned long long>(delay));
    reset_for_retry();
    transition(State::backoff);
    backoff_.start(delay, 0, [this] { dial(); });
    return true;
  }

  // Drops the vendor side of the attempt that failed (allowed inside its
  // callbacks); the request starts over on the next connection.
  void reset_for_retry() {
    reused_ = false;
    conn_.reset();
    tls_.reset();
    tcp_.reset();
    if (owed_ > 0 && ch_) {  // those bytes are safe in replay_
      ch_->consumed(owed_);
      owed_ = 0;
    }
    request_done_ = false;
  }

  // The vendor answered 429 before anything went to the hub: not forwarded.
  // The provider's rate goes down and the hub hears `upstream_rate_limited`,
  // so it routes the request elsewhere.
  void vendor_429(const http::ResponseHead& head) {
    status_ = head.status;
    meter_.response_status(head.status);
    std::optional<uint64_t> retry_after;
    if (head.headers.has("retry-after")) {
      auto parsed = parse_retry_after(head.headers.get("retry-after"), unix_now_ms());
      if (parsed.ok()) {
        retry_after = *parsed;
      } else {
        TG_DEBUG(kLog, "call %u: %s; using the back-off", id_, parsed.status().message().c_str());
      }
    }
    ++owner_.stats_.vendor_429;
    const uint64_t ready = owner_.vendor_throttled(provider_, started_ms_, retry_after);
    // This attempt reached the vendor: it is claimed (zero usage).
    fail(tunnel::stream_error::upstream_rate_limited,
         "retry in " + std::to_string(ready) + " ms; vendor answered 429 (" + req_.host +
             ", provider " + provider_name() + ", now " +
             std::to_string(owner_.limiter_.effective_rpm(provider_)) + " requests per minute)");
  }

  void drop_replay() {
    replayable_ = false;
    std::string().swap(replay_);
  }

  void resolve() {
    transition(State::resolving);
    auto* op = new Resolve;
    op->owner = this;
    op->req.data = op;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    const std::string service = std::to_string(req_.port);
    int rc = uv_getaddrinfo(owner_.loop_, &op->req, &Call::on_resolved, req_.host.c_str(),
                            service.c_str(), &hints);
    if (rc != 0) {
      delete op;
      const std::string what = uv_status(rc, ("resolve " + req_.host).c_str()).message();
      if (!retry_later(what)) fail(tunnel::stream_error::upstream_unreachable, what);
      return;
    }
    resolve_ = op;
  }

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
    auto* op = static_cast<Resolve*>(req->data);
    Call* self = op->owner;
    delete op;
    if (!self) {
      if (res) uv_freeaddrinfo(res);
      return;
    }
    self->resolve_ = nullptr;
    self->on_addresses(status, res);
    if (res) uv_freeaddrinfo(res);
  }

  void on_addresses(int status, const addrinfo* res) {
    if (status < 0 || !res) {
      const std::string what =
          uv_status(status < 0 ? status : UV_EAI_NONAME, ("resolve " + req_.host).c_str()).message();
      if (!retry_later(what)) fail(tunnel::stream_error::upstream_unreachable, what);
      return;
    }
    for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
      if (!is_local_sockaddr(ai->ai_addr)) {
        const std::string addr = address_text(ai->ai_addr);
        TG_WARN(kLog, "call %u: local provider %s: %s resolves to %s, which is not a loopback or "
                "private address: refused", id_, provider_name().c_str(), req_.host.c_str(),
                addr.c_str());
        fail(tunnel::stream_error::upstream_unreachable,
             "local provider " + provider_name() + ": " + req_.host + " resolves to " + addr +
                 ", not a loopback or private address");
        return;
      }
    }
    // Dial the address we checked, not the name again.
    connect(address_text(res->ai_addr), port_of(res->ai_addr));
  }

  void connect(const std::string& host, uint16_t port) {
    transition(State::connecting);
    const uint64_t timeout = std::max<uint64_t>(1, std::min(owner_.options_.connect_timeout_ms,
                                                            remaining_ms()));
    auto done = [this](Result<net::StreamPtr> r) { on_connected(std::move(r)); };
    Status s;
    if (req_.tls) {
      auto ctx = owner_.vendor_tls();
      if (!ctx.ok()) {  // the bundle parsed at start-up: changed or gone since
        fail(tunnel::stream_error::upstream_unreachable, ctx.status().message());
        return;
      }
      tls_ = std::make_unique<tls::Connector>(owner_.loop_, std::move(ctx.value()));
      s = tls_->connect(host, port, timeout, done, req_.server_name);
    } else {
      tcp_ = std::make_unique<net::TcpConnector>(owner_.loop_);
      s = tcp_->connect(host, port, timeout, done);
    }
    if (!s.ok()) fail(tunnel::stream_error::upstream_unreachable, s.message());
  }

  void on_connected(Result<net::StreamPtr> r) {
    if (state_ != State::connecting) return;
    if (!r.ok()) {
      const Errc code = r.status().code();
      const std::string what = "vendor " + req_.host + ": " + r.status().message();
      if (code == Errc::timeout) {
        fail(tunnel::stream_error::upstream_timeout, what);
      } else if (code == Errc::permission || !retry_later(what)) {
        fail(tunnel::stream_error::upstream_unreachable, what);  // a certificate refusal is final
      }
      return;
    }
    http::ClientOptions o;
    o.response_timeout_ms = owner_.options_.response_timeout_ms;
    o.body_idle_timeout_ms = owner_.options_.body_idle_timeout_ms;
    ++owner_.stats_.connections;
    conn_ = std::make_unique<http::ClientConnection>(owner_.loop_, std::move(r.value()), o);
    begin_request();
  }

  // Sends the head on conn_, then the body bytes held so far: first those
  // already credited to the hub (a retry), then those that arrived since.
  void begin_request() {
    Status s = conn_->request(req_.head, this);
    if (!s.ok()) {
      fail(tunnel::stream_error::internal, "vendor request not sent: " + s.message());
      return;
    }
    transition(State::requesting);
    if (!replay_.empty()) {  // a retry: what the earlier attempt sent
      Status w = conn_->write(replay_);
      if (!w.ok()) TG_DEBUG(kLog, "call %u: request body not written: %s", id_, w.message().c_str());
    }
    std::string held = std::move(req_pending_);
    req_pending_.clear();
    send_request_bytes(held, req_fin_);
  }

  // Hands request body bytes to the vendor socket; credit goes back to the
  // hub now, or once the socket drains if it is write-blocked.
  void send_request_bytes(std::string_view data, bool fin) {
    req_fin_ = req_fin_ || fin;
    if (!data.empty() && replayable_) {  // kept even if this connection cannot take it
      if (replay_.size() + data.size() <= kMaxReplayBytes) {
        replay_.append(data);
        note_held(replay_.size());
      } else {
        drop_replay();
      }
    }
    if (request_done_) {  // this connection can take no more; drop the rest
      if (ch_ && !data.empty()) ch_->consumed(data.size());
      return;
    }
    if (!data.empty()) {
      Status s = conn_->write(data);
      if (!s.ok()) {
        // The vendor side is over; its on_error or end decides the outcome.
        TG_DEBUG(kLog, "call %u: request body not written: %s", id_, s.message().c_str());
        request_done_ = true;
      }
      if (conn_->write_blocked()) {
        owed_ += data.size();
      } else if (ch_) {
        ch_->consumed(owed_ + data.size());
        owed_ = 0;
      }
    }
    if (fin && !request_done_) {
      request_done_ = true;
      Status s = conn_->finish();
      if (!s.ok()) TG_DEBUG(kLog, "call %u: request body not ended: %s", id_, s.message().c_str());
    }
  }

  // Sends held response bytes as the window allows; resumes the vendor when
  // none are left.
  void flush_response() {
    if (!resp_pending_.empty()) {
      const size_t n = std::min(ch_->send_capacity(), resp_pending_.size());
      if (n == 0) return;
      Status s = ch_->send_data(std::string_view(resp_pending_).substr(0, n), false);
      if (!s.ok()) {
        fail(tunnel::stream_error::internal, "response body not sent: " + s.message());
        return;
      }
      meter_.response_body(std::string_view(resp_pending_).substr(0, n));
      resp_pending_.erase(0, n);
      if (!resp_pending_.empty()) {
        (void)ch_->send_capacity();  // arms on_channel_writable
        return;
      }
    }
    if (resp_end_) {
      complete();
    } else if (ch_->send_capacity() > 0 && conn_) {
      conn_->resume_response();
    }
  }

  void complete() {
    Status s = ch_->send_data("", true);
    if (s.ok()) {
      tunnel::Finish f;
      f.upstream_status = static_cast<uint32_t>(status_);
      s = ch_->send(std::move(f));
    }
    if (!s.ok()) {
      fail(tunnel::stream_error::internal, "finish not sent: " + s.message());
      return;
    }
    ch_->close(tunnel::abort_reason::shutdown);  // finish went out: no abort is sent
    ch_ = nullptr;
    if (conn_ && conn_->reusable()) owner_.give_back(provider_, std::move(conn_));
    end(Outcome::finished, "");
  }

  // Ends the stream with error{code} (if the channel is still ours).
  void fail(std::string_view code, const std::string& message) {
    if (state_ == State::done) return;
    if (ch_) {
      tunnel::Error e;
      e.code = std::string(code);
      e.message = message.substr(0, tunnel::kMaxText);
      Status s = ch_->send(std::move(e));
      if (!s.ok()) TG_DEBUG(kLog, "call %u: error not sent: %s", id_, s.message().c_str());
      ch_->close(tunnel::abort_reason::shutdown);
      ch_ = nullptr;
    }
    end(Outcome::failed, std::string(code) + ": " + message);
  }

  // The one exit: drops every source of callbacks, frees the provider slot,
  // logs one line and hands this object to the owner's reaper.
  void end(Outcome outcome, const std::string& what) {
    if (state_ == State::done) return;
    const bool responded = state_ == State::responding;
    transition(State::done);
    deadline_.stop();
    backoff_.stop();
    conn_.reset();  // closes the vendor connection now (allowed inside its callbacks)
    tls_.reset();
    tcp_.reset();
    if (resolve_) {
      resolve_->owner = nullptr;
      uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_->req));
      resolve_ = nullptr;
    }
    req_pending_.clear();
    resp_pending_.clear();
    drop_replay();
    wipe_auth(req_.head);
    const auto ms = static_cast<unsigned long long>(uv_now(owner_.loop_) - started_ms_);
    const auto bytes = static_cast<unsigned long long>(body_bytes_);
    PassthroughStats& st = owner_.stats_;
    // Every call that was taken ends in the ledger's outbox, and its claim
    // follows its last byte on the tunnel (finish, error or our stop after
    // an abort): the hub has read the same bytes when the claim arrives.
    const billing::Usage usage = meter_.result();
    if (owner_.reporter_) {
      FinishedCall f;
      f.request_id = request_id_;
      f.model = model_;
      f.ticket = ticket_;
      f.usage = usage;
      f.status = status_;
      owner_.reporter_->call_finished(f);
    }
    owner_.call_ended(provider_, status_, usage);
    switch (outcome) {
      case Outcome::finished:
        ++st.finished;
        TG_INFO(kLog, "call %u %s via %s: %d, %llu bytes in %llu ms", id_, model_.c_str(),
                provider_name().c_str(), status_, bytes, ms);
        break;
      case Outcome::failed:
        ++st.failed;
        TG_WARN(kLog, "call %u %s via %s: failed %s: %s after %llu ms", id_, model_.c_str(),
                provider_name().c_str(), responded ? "after the response head" : "before a response",
                what.c_str(), ms);
        break;
      case Outcome::aborted:
        ++st.aborted;
        TG_INFO(kLog, "call %u %s via %s: %s; vendor connection closed after %llu ms", id_,
                model_.c_str(), provider_name().c_str(), what.c_str(), ms);
        break;
    }
    owner_.retire(this);
  }

  void note_held(size_t n) {
    owner_.stats_.max_held_bytes = std::max(owner_.stats_.max_held_bytes, n);
  }

  uint64_t remaining_ms() const {
    const uint64_t elapsed = uv_now(owner_.loop_) - started_ms_;
    return elapsed >= deadline_ms_ ? 1 : deadline_ms_ - elapsed;
  }

  const std::string& provider_name() const { return owner_.config_.providers[provider_].name; }

 public:
  size_t provider() const noexcept { return provider_; }

 private:
  Passthrough& owner_;
  tunnel::Channel* ch_;  // nullptr once the channel is closed or gone
  uint32_t id_;
  std::string request_id_;
  std::string model_;
  std::string ticket_;  // the hub's call ticket, returned with the claim
  billing::UsageMeter meter_;  // over the bytes exactly as they went into the tunnel
  size_t provider_;
  VendorRequest req_;
  uint64_t deadline_ms_;
  State state_ = State::idle;
  Timer deadline_;
  Timer backoff_;              // the wait before a retry's dial
  uint64_t started_ms_;        // also when the limiter admitted the call
  Resolve* resolve_ = nullptr;
  std::unique_ptr<tls::Connector> tls_;
  std::unique_ptr<net::TcpConnector> tcp_;
  std::unique_ptr<http::ClientConnection> conn_;
  std::string req_pending_;    // request bytes that arrived before the connection
  bool req_fin_ = false;
  bool request_done_ = false;  // the request body ended (or can no longer be sent)
  size_t owed_ = 0;            // credit held back while the vendor socket is write-blocked
  bool reused_ = false;        // conn_ came from the idle pool
  bool replayable_ = true;     // replay_ holds every body byte received so far
  bool keepalive_retried_ = false;  // the one immediate retry after a reused conn_ ended was used
  int vendor_retries_ = 0;     // retries after a 5xx or failed connection (kMaxVendorRetries)
  std::string replay_;         // see kMaxReplayBytes; dropped once an answer is accepted
  std::string resp_pending_;   // response bytes that did not fit the window
  bool resp_end_ = false;
  int status_ = 0;
  uint64_t body_bytes_ = 0;
};

namespace {

// The vendor TLS context: the CA bundle config.ca_file, full chain and host
// name verification, HTTP/1.1 by ALPN.
Result<std::shared_ptr<tls::ClientContext>> load_vendor_tls(const AgentConfig& config) {
  tls::ClientConfig cc;
  cc.ca_file = config.ca_file;
  cc.alpn = {"http/1.1"};
  auto made = tls::ClientContext::create(cc);
  if (!made.ok()) {
    return Status(made.status().code(), "vendor CA bundle " + config.ca_file + ": " +
                                            made.status().message());
  }
  return made;
}

// Gives the heap freed with the CA bundle back to the system: glibc keeps
// freed memory in its heap otherwise, and the bundle's blocks usually sit
// below later allocations, so the heap's top does not shrink. malloc_trim
// returns the whole free pages inside the heap too; the few blocks glibc
// keeps in its per-thread cache stay. musl has no malloc_trim.
void return_freed_heap() noexcept {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

Result<std::unique_ptr<Passthrough>> Passthrough::create(uv_loop_t* loop, const AgentConfig& config,
                                                         PassthroughOptions options) {
  bool need_tls = false;
  for (const auto& p : config.providers) {
    if (p.type != "local" || (p.url && p.url->tls())) need_tls = true;
  }
  if (need_tls) {
    // A bad ca_file is reported now, not at the first call; the parsed
    // bundle is not kept (vendor_tls() parses it again when needed).
    const uint64_t t0 = uv_hrtime();
    auto checked = load_vendor_tls(config);
    if (!checked.ok()) return checked.status();
    const size_t count = (*checked)->ca_count();
    checked.value().reset();
    return_freed_heap();
    TG_INFO(kLog, "vendor CA bundle %s: %zu certificates, parsed and freed in %llu us (checked; "
            "parsed again for the first vendor TLS connection)", config.ca_file.c_str(), count,
            static_cast<unsigned long long>((uv_hrtime() - t0) / 1000));
  }
  return std::unique_ptr<Passthrough>(new Passthrough(loop, config, options));
}

namespace {

std::vector<ProviderLimits> limits_of(const AgentConfig& config) {
  std::vector<ProviderLimits> out;
  for (const auto& p : config.providers) out.push_back(ProviderLimits{p.rpm, p.tpm});
  return out;
}

}  // namespace

Passthrough::Passthrough(uv_loop_t* loop, const AgentConfig& config, PassthroughOptions options)
    : loop_(loop),
      config_(config),
      options_(options),
      ca_timer_(loop),
      busy_(config.providers.size(), 0),
      idle_(config.providers.size()),
      reaper_(loop),
      sweeper_(loop),
      limiter_(limits_of(config)),
      capacity_timer_(loop) {
  capacity_timer_.unref();  // a pending "available again" report must not delay an exit
  ca_timer_.unref();
}

Passthrough::~Passthrough() = default;

size_t Passthrough::idle_connections() const noexcept {
  size_t n = 0;
  for (const auto& list : idle_) {
    for (const auto& i : list) n += i.conn->reusable() ? 1u : 0u;
  }
  return n;
}

std::unique_ptr<http::ClientConnection> Passthrough::take_idle(size_t provider) {
  auto& list = idle_[provider];
  const uint64_t now = uv_now(loop_);
  while (!list.empty()) {
    Idle it = std::move(list.back());
    list.pop_back();
    if (it.conn->reusable() && now - it.since_ms < options_.idle_ms) return std::move(it.conn);
    // Closed by the vendor or too old: destroying it closes it.
  }
  return nullptr;
}

void Passthrough::give_back(size_t provider, std::unique_ptr<http::ClientConnection> conn) {
  if (options_.idle_ms == 0) return;  // destroyed here: closed
  auto& list = idle_[provider];
  const auto cap = static_cast<size_t>(std::max(config_.providers[provider].max_parallel, 1));
  if (list.size() >= cap) list.erase(list.begin());
  list.push_back(Idle{std::move(conn), uv_now(loop_)});
  if (!sweeper_.active()) {
    sweeper_.start(options_.idle_ms, options_.idle_ms, [this] { sweep_idle(); });
  }
}

Result<std::shared_ptr<tls::ClientContext>> Passthrough::vendor_tls() {
  if (tls_) return tls_;
  const uint64_t t0 = uv_hrtime();
  auto made = load_vendor_tls(config_);
  if (!made.ok()) {
    TG_ERROR(kLog, "%s", made.status().message().c_str());
    return made.status();
  }
  tls_ = std::move(made.value());
  ++stats_.ca_loads;
  stats_.ca_certificates = tls_->ca_count();
  TG_DEBUG(kLog, "vendor CA bundle %s: %zu certificates, parsed in %llu us", config_.ca_file.c_str(),
           stats_.ca_certificates, static_cast<unsigned long long>((uv_hrtime() - t0) / 1000));
  linger_vendor_tls();  // in case the connection never gets far enough to report its end
  return tls_;
}

void Passthrough::linger_vendor_tls() {
  if (tls_) ca_timer_.start(options_.ca_linger_ms, 0, [this] { on_ca_linger(); });
}

void Passthrough::on_ca_linger() {
  // Every vendor TLS connection (a call's connector or connection, a kept-
  // alive one, a retired call not yet destroyed) holds a reference; until
  // they are all gone, look again one linger later.
  if (tls_.use_count() > 1) {
    linger_vendor_tls();
    return;
  }
  tls_.reset();  // the only reference
  return_freed_heap();
  ++stats_.ca_releases;
  TG_DEBUG(kLog, "vendor CA bundle freed: no vendor TLS connection for %llu ms",
           static_cast<unsigned long long>(options_.ca_linger_ms));
}

void Passthrough::sweep_idle() {
  const uint64_t now = uv_now(loop_);
  bool any = false;
  for (auto& list : idle_) {
    list.erase(std::remove_if(list.begin(), list.end(), [&](const Idle& i) {
                 return !i.conn->reusable() || now - i.since_ms >= options_.idle_ms;
               }),
               list.end());
    any = any || !list.empty();
  }
  if (!any) {
    sweeper_.stop();
    linger_vendor_tls();
  }
}

void Passthrough::on_call(tunnel::Channel& ch, const tunnel::Call& call) noexcept {
  auto refuse = [&](std::string_view code, std::string message) {
    ++stats_.refused;
    TG_INFO(kLog, "call %u %s: refused %.*s: %s", ch.id(), call.model.c_str(),
            static_cast<int>(code.size()), code.data(), message.c_str());
    tunnel::Error e;
    e.code = std::string(code);
    e.message = message.substr(0, tunnel::kMaxText);
    Status s = ch.send(std::move(e));
    if (!s.ok()) TG_DEBUG(kLog, "call %u: error not sent: %s", ch.id(), s.message().c_str());
    ch.close(tunnel::abort_reason::shutdown);
  };
  size_t index = config_.providers.size();
  for (size_t i = 0; i < config_.providers.size() && index == config_.providers.size(); ++i) {
    const auto& models = config_.providers[i].models;
    if (std::find(models.begin(), models.end(), call.model) != models.end()) index = i;
  }
  if (index == config_.providers.size()) {
    refuse(tunnel::stream_error::unknown_model, "no provider for model " + call.model);
    return;
  }
  const ProviderConfig& p = config_.providers[index];
  auto req = vendor_request(p, call);
  if (!req.ok()) {
    refuse(tunnel::stream_error::bad_request, req.status().message());
    return;
  }
  if (busy_[index] >= p.max_parallel) {
    wipe_auth(req->head);
    refuse(tunnel::stream_error::busy, "provider " + p.name + " is at max_parallel " +
                                           std::to_string(p.max_parallel));
    return;
  }
  const Admission admission = limiter_.admit(index, uv_now(loop_));
  if (!admission.admitted) {
    wipe_auth(req->head);
    ++stats_.rate_limited;
    const uint32_t rpm = limiter_.effective_rpm(index);
    refuse(tunnel::stream_error::rate_limited,
           "retry in " + std::to_string(admission.wait_ms) + " ms; provider " + p.name + ": " +
               refusal_text(admission.refusal) +
               (rpm > 0 ? " (" + std::to_string(rpm) + " requests per minute)" : std::string()));
    flush_capacity();
    return;
  }
  ++stats_.calls;
  ++busy_[index];
  calls_.push_back(std::make_unique<Call>(*this, ch, call, index, std::move(req.value())));
  Call* c = calls_.back().get();
  ch.set_handler(c);
  TG_DEBUG(kLog, "call %u %s: via %s (%s)", ch.id(), call.model.c_str(), p.name.c_str(),
           p.type.c_str());
  c->start();
  flush_capacity();  // the admission may have emptied the request bucket
}

uint64_t Passthrough::vendor_throttled(size_t provider, uint64_t admitted_ms,
                                       std::optional<uint64_t> retry_after_ms) {
  const uint64_t ready = limiter_.throttled(provider, uv_now(loop_), admitted_ms, retry_after_ms);
  flush_capacity();
  return ready;
}

void Passthrough::call_ended(size_t provider, int status, const billing::Usage& usage) {
  limiter_.finished(provider, uv_now(loop_), status, usage.input + usage.cached + usage.output);
  flush_capacity();
}

void Passthrough::on_tunnel_ready() noexcept {
  limiter_.reset_reports(uv_now(loop_));
  flush_capacity();
}

void Passthrough::flush_capacity() {
  const uint64_t now = uv_now(loop_);
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < limiter_.size(); ++i) {
    if (auto r = limiter_.poll_report(i, now)) {
      const ProviderConfig& p = config_.providers[i];
      tunnel::Capacity m;
      m.models = p.models;
      m.ready_in_ms = static_cast<uint32_t>(r->ready_in_ms);
      m.rpm = r->rpm;
      Status s = send_ ? send_(m) : error(Errc::closed, "no tunnel");
      if (s.ok()) {
        ++stats_.capacity_reports;
        TG_DEBUG(kLog, "provider %s: capacity sent: ready in %llu ms, %u requests per minute",
                 p.name.c_str(), static_cast<unsigned long long>(r->ready_in_ms), r->rpm);
      } else {
        TG_DEBUG(kLog, "provider %s: capacity not sent: %s", p.name.c_str(), s.message().c_str());
      }
    }
    if (auto at = limiter_.next_report_ms(i, now)) next = std::min(next, *at);
  }
  if (next == UINT64_MAX) {
    capacity_timer_.stop();
    return;
  }
  capacity_timer_.start(next > now ? next - now : 1, 0, [this] { flush_capacity(); });
}

void Passthrough::retire(Call* c) {
  --busy_[c->provider()];
  auto it = std::find_if(calls_.begin(), calls_.end(), [c](const auto& p) { return p.get() == c; });
  if (it == calls_.end()) return;
  graveyard_.push_back(std::move(*it));
  calls_.erase(it);
  if (!reaper_.pending()) reaper_.post([this] { graveyard_.clear(); });
  linger_vendor_tls();
}

}  // namespace tg::agent
