#include "shared/net/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "shared/core/log.h"
#include "shared/core/loop.h"

namespace tg::net {
namespace {

constexpr size_t kReadBufferSize = 64 * 1024;

// One read buffer for every stream of the thread: libuv never runs two read
// callbacks at once, and a handler's view of the data ends with its call,
// so an idle connection costs no read memory (10,000 tunnels would
// otherwise hold 640 MiB of buffers).
char* read_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[kReadBufferSize]);
  return buf.get();
}
constexpr size_t kDefaultHighWater = 256 * 1024;
constexpr size_t kDefaultLowWater = 64 * 1024;
// Writes of one loop turn are gathered up to this many bytes; a write that
// would pass it sends the batch and itself at once, uncopied.
constexpr size_t kBatchBytes = 16 * 1024;
// A batch buffer up to this size is kept for the next turn; larger ones are
// freed, so an idle connection holds no more than this.
constexpr size_t kKeptBatchBuffer = 2 * 1024;

std::string format_address(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    return std::string(ip) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    return "[" + std::string(ip) + "]:" + std::to_string(port);
  }
  return "?";
}

std::string peer_of(uv_tcp_t* tcp) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return format_address(ss);
}

// One queued write: the uv request followed by its own copy of the bytes.
struct WriteReq {
  uv_write_t req;
  size_t size;
  char* data() { return reinterpret_cast<char*>(this + 1); }

  static WriteReq* make(size_t size) {
    void* mem = std::malloc(sizeof(WriteReq) + size);
    if (!mem) std::abort();
    auto* w = static_cast<WriteReq*>(mem);
    w->size = size;
    return w;
  }
  // The bytes may be a request head with a vendor key: wiped before freeing.
  static void destroy(WriteReq* w) {
    sodium_memzero(w->data(), w->size);
    std::free(w);
  }
};

class TcpStream final : public Stream {
 public:
  explicit TcpStream(uv_tcp_t* tcp) : tcp_(tcp), peer_(peer_of(tcp)) {
    tcp_->data = this;
    deferred_ = std::make_unique<Timer>(tcp_->loop);
  }

  ~TcpStream() override { close(); }

  void set_handler(StreamHandler* handler) noexcept override {
    handler_ = handler;
    update_reading();
  }

  Status write(std::string_view data) override { return writev(&data, 1); }

  Status writev(const std::string_view* parts, size_t count) override {
    if (state_ != State::open) {
      return Status(Errc::closed, "write on a " + std::string(state_name()) + " stream to " + peer_);
    }
    size_t total = 0;
    for (size_t i = 0; i < count; ++i) total += parts[i].size();
    if (total == 0) return Status();
    if (!batching_) {
      send(parts, count, total);
      return Status();
    }
    if (batch_.size() + total > kBatchBytes) {
      // Too much to copy: the batch, then these bytes, in one system write.
      std::string_view all[kMaxParts];
      if (!batch_.empty() && count < kMaxParts) {
        all[0] = batch_;
        for (size_t i = 0; i < count; ++i) all[i + 1] = parts[i];
        send(all, count + 1, batch_.size() + total);
        clear_batch();
      } else {
        flush_batch();
        if (state_ == State::open) send(parts, count, total);
      }
      return Status();
    }
    // Gather: everything written during this turn of the loop goes out in one
    // write at the start of the next turn, before the loop can block.
    for (size_t i = 0; i < count; ++i) batch_.append(parts[i]);
    if (queued_bytes() > high_) above_high_ = true;
    if (!flush_) flush_ = std::make_unique<Timer>(tcp_->loop);
    if (!flush_->active()) {
      flush_->start(0, 0, [this] {
        flush_batch();
        maybe_drain();
      });
    }
    return Status();
  }

  void set_write_batching(bool on) noexcept override {
    if (!on) flush_batch();
    batching_ = on;
  }

  size_t queued_bytes() const noexcept override { return queued_ + batch_.size(); }
  size_t high_water() const noexcept override { return high_; }
  void set_write_watermarks(size_t high, size_t low) noexcept override {
    high_ = high;
    low_ = low < high ? low : high;
  }

  void pause_reading() noexcept override {
    paused_ = true;
    update_reading();
  }
  void resume_reading() noexcept override {
    paused_ = false;
    update_reading();
  }

  void shutdown() noexcept override {
    if (state_ != State::open) return;
    flush_batch();
    if (state_ != State::open) return;
    state_ = State::shutting_down;
    auto* req = new uv_shutdown_t;
    int rc = uv_shutdown(req, stream(), [](uv_shutdown_t* r, int status) {
      auto* self = static_cast<TcpStream*>(r->handle->data);
      delete r;
      if (self && status < 0 && status != UV_ECANCELED) self->end(uv_status(status, "shutdown"));
    });
    if (rc != 0) {
      delete req;
      fail_later(uv_status(rc, "shutdown"));
    }
  }

  void close() noexcept override {
    if (!tcp_) return;
    offer_batch();
    state_ = State::ended;
    handler_ = nullptr;
    deferred_.reset();
    flush_.reset();
    uv_read_stop(stream());
    detail::close_and_free(tcp_);  // pending writes complete with ECANCELED
    tcp_ = nullptr;
  }

  const std::string& peer_address() const noexcept override { return peer_; }

 private:
  enum class State { open, shutting_down, ended };

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(tcp_); }

  const char* state_name() const {
    switch (state_) {
      case State::open: return "open";
      case State::shutting_down: return "shutting down";
      case State::ended: return "closed";
    }
    return "?";
  }

  void update_reading() {
    if (!tcp_) return;
    bool want = handler_ && !paused_ && state_ != State::ended;
    if (want == reading_) return;
    reading_ = want;
    if (want) {
      uv_read_start(stream(), &TcpStream::on_alloc, &TcpStream::on_read);
    } else {
      uv_read_stop(stream());
    }
  }

  // Reports a failure from the loop, never from inside the caller's call.
  void fail_later(Status why) {
    if (state_ == State::ended || pending_failure_) return;
    pending_failure_ = true;
    deferred_->start(0, 0, [this, why = std::move(why)] { end(why); });
  }

  void end(const Status& why) {
    if (state_ == State::ended) return;
    offer_batch();
    state_ = State::ended;
    if (tcp_) uv_read_stop(stream());
    reading_ = false;
    StreamHandler* h = handler_;
    handler_ = nullptr;
    if (h) h->on_stream_end(*this, why);
  }

  static void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    *buf = uv_buf_init(read_buffer(), kReadBufferSize);
  }

  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<TcpStream*>(s->data);
    if (!self || nread == 0) return;
    if (nread < 0) {
      if (nread == UV_EOF) self->end(Status());
      else self->end(uv_status(static_cast<int>(nread), "read"));
      return;
    }
    if (self->handler_) {
      self->handler_->on_stream_read(*self,
                                     std::string_view(buf->base, static_cast<size_t>(nread)));
    }
  }

  static void on_write(uv_write_t* req, int status) noexcept {
    auto* w = reinterpret_cast<WriteReq*>(req);
    size_t size = w->size;
    auto* self = static_cast<TcpStream*>(req->handle->data);
    WriteReq::destroy(w);
    if (!self) return;  // closed: the write was cancelled
    self->queued_ -= size;
    if (status < 0) {
      self->end(uv_status(status, "write"));
      return;
    }
    self->maybe_drain();
  }

  void maybe_drain() {
    if (above_high_ && queued_bytes() <= low_) {
      above_high_ = false;
      if (handler_) handler_->on_stream_drain(*this);
    }
  }

  // Hands bytes to the kernel, or copies what it does not take into a
  // queued uv write. Failures arrive from the loop.
  void send(const std::string_view* parts, size_t count, size_t total) {
    size_t skip = 0;
    if (queued_ == 0 && count <= kMaxParts) {
      uv_buf_t bufs[kMaxParts];
      for (size_t i = 0; i < count; ++i) {
        bufs[i] = uv_buf_init(const_cast<char*>(parts[i].data()),
                              static_cast<unsigned>(parts[i].size()));
      }
      int n = uv_try_write(stream(), bufs, static_cast<unsigned>(count));
      if (n > 0) skip = static_cast<size_t>(n);
      else if (n != UV_EAGAIN && n != UV_ENOSYS) {
        fail_later(uv_status(n, "write"));
        return;
      }
    }
    if (skip == total) return;

    WriteReq* w = WriteReq::make(total - skip);
    size_t off = 0;
    for (size_t i = 0; i < count; ++i) {
      std::string_view p = parts[i];
      if (skip >= p.size()) {
        skip -= p.size();
        continue;
      }
      p.remove_prefix(skip);
      skip = 0;
      std::memcpy(w->data() + off, p.data(), p.size());
      off += p.size();
    }
    uv_buf_t buf = uv_buf_init(w->data(), static_cast<unsigned>(w->size));
    int rc = uv_write(&w->req, stream(), &buf, 1, &TcpStream::on_write);
    if (rc != 0) {
      WriteReq::destroy(w);
      fail_later(uv_status(rc, "write"));
      return;
    }
    queued_ += w->size;
    if (queued_bytes() > high_) above_high_ = true;
  }

  void flush_batch() {
    if (flush_) flush_->stop();
    if (batch_.empty()) return;
    if (state_ == State::open) {
      std::string_view all(batch_);
      send(&all, 1, all.size());
    }
    clear_batch();
  }

  // The stream is ending: what the kernel takes at once still goes out (as
  // it did before batching, when every write tried the kernel first).
  void offer_batch() {
    if (batch_.empty()) return;
    if (tcp_ && queued_ == 0 && state_ == State::open) {
      uv_buf_t buf = uv_buf_init(batch_.data(), static_cast<unsigned>(batch_.size()));
      (void)uv_try_write(stream(), &buf, 1);
    }
    clear_batch();
  }

  // The batch may hold a request head with a vendor key: wiped, then kept
  // for the next turn only when small.
  void clear_batch() {
    sodium_memzero(batch_.data(), batch_.size());
    if (batch_.capacity() > kKeptBatchBuffer) {
      std::string().swap(batch_);
    } else {
      batch_.clear();
    }
  }

  static constexpr size_t kMaxParts = 16;

  uv_tcp_t* tcp_;
  StreamHandler* handler_ = nullptr;
  State state_ = State::open;
  bool paused_ = false;
  bool reading_ = false;
  bool above_high_ = false;
  bool pending_failure_ = false;
  bool batching_ = true;
  size_t queued_ = 0;  // bytes in uv writes; batch_ is counted apart
  size_t high_ = kDefaultHighWater;
  size_t low_ = kDefaultLowWater;
  std::string peer_;
  std::unique_ptr<Timer> deferred_;
  std::string batch_;             // this turn's writes, not yet sent
  std::unique_ptr<Timer> flush_;  // sends batch_ at the start of the next turn
};

Status parse_ip(const std::string& host, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) == 0) return Status();
  if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) == 0) return Status();
  return Status(Errc::invalid_argument, "not a numeric IP address: '" + host + "'");
}

}  // namespace

Status apply_tcp_options(uv_tcp_t* tcp, const TcpOptions& opts) {
  TG_TRY(uv_status(uv_tcp_nodelay(tcp, 1), "TCP_NODELAY"));
  if (opts.keepalive_idle_s > 0) {
    TG_TRY(uv_status(uv_tcp_keepalive(tcp, 1, opts.keepalive_idle_s), "SO_KEEPALIVE"));
  }
#ifdef TCP_USER_TIMEOUT
  if (opts.user_timeout_ms > 0) {
    uv_os_fd_t fd;
    TG_TRY(uv_status(uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd), "uv_fileno"));
    unsigned int ms = opts.user_timeout_ms;
    if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) != 0) {
      return uv_status(uv_translate_sys_error(errno), "TCP_USER_TIMEOUT");
    }
  }
#endif
  return Status();
}

// ---- TcpListener ----

TcpListener::TcpListener(uv_loop_t* loop) : loop_(loop) {}

TcpListener::~TcpListener() { close(); }

void TcpListener::close() noexcept {
  detail::close_and_free(handle_);
  handle_ = nullptr;
}

Status TcpListener::listen(const std::string& host, uint16_t port, AcceptFn on_accept,
                           const TcpOptions& opts, int backlog) {
  if (handle_) return Status(Errc::invalid_argument, "listener already open");
  sockaddr_storage addr;
  TG_TRY(parse_ip(host, port, &addr));
  handle_ = new uv_tcp_t;
  uv_tcp_init(loop_, handle_);
  handle_->data = this;
  const std::string where = host + ":" + std::to_string(port);
  int rc = uv_tcp_bind(handle_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle_), backlog, &on_connection);
  if (rc != 0) {
    close();
    return uv_status(rc, ("listen on " + where).c_str());
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(handle_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6
                    ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  on_accept_ = std::move(on_accept);
  opts_ = opts;
  return Status();
}

void TcpListener::on_connection(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<TcpListener*>(server->data);
  if (!self) return;
  if (status < 0) {
    TG_WARN("tcp", "accept failed: %s", uv_strerror(status));
    return;
  }
  auto* client = new uv_tcp_t;
  uv_tcp_init(self->loop_, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    detail::close_and_free(client);
    return;
  }
  Status s = apply_tcp_options(client, self->opts_);
  if (!s.ok()) TG_WARN("tcp", "socket options on accepted connection: %s", s.message().c_str());
  StreamPtr stream(new TcpStream(client));
  detail::run_guarded("TcpListener accept callback",
                      [&] { self->on_accept_(std::move(stream)); });
}

// ---- TcpConnector ----

// One connect attempt. It outlives its connector when cancelled while libuv
// still holds requests or handles of it, and frees itself when the last one
// comes back.
struct TcpConnector::Op {
  TcpConnector* owner;
  uv_loop_t* loop;
  DoneFn done;
  TcpOptions opts;
  std::string host;
  uint16_t port;
  uv_getaddrinfo_t gai{};
  addrinfo* addrs = nullptr;
  addrinfo* next = nullptr;
  uv_tcp_t* tcp = nullptr;
  uv_connect_t conn{};
  uv_timer_t* timer = nullptr;
  int outstanding = 0;  // libuv requests and handles still referring to us
  bool finished = false;
  Status last_error{Errc::not_found, "no address"};

  void maybe_free() {
    if (finished && outstanding == 0) {
      if (addrs) uv_freeaddrinfo(addrs);
      delete this;
    }
  }

  void close_tcp() {
    if (!tcp) return;
    tcp->data = this;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) {
      auto* op = static_cast<Op*>(h->data);
      delete static_cast<uv_tcp_t*>(static_cast<void*>(h));
      op->outstanding--;
      op->maybe_free();
    });
    tcp = nullptr;
  }

  void stop() {
    finished = true;
    if (timer) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) {
        auto* op = static_cast<Op*>(h->data);
        delete static_cast<uv_timer_t*>(static_cast<void*>(h));
        op->outstanding--;
        op->maybe_free();
      });
      timer = nullptr;
    }
    uv_cancel(reinterpret_cast<uv_req_t*>(&gai));  // no-op unless still resolving
    close_tcp();
  }

  // Ends the attempt and reports (unless cancelled). May free this.
  void finish(Result<StreamPtr> result) {
    if (finished) return;
    stop();
    TcpConnector* o = owner;
    if (o) o->op_ = nullptr;
    DoneFn cb = std::move(done);
    outstanding++;  // keep ourselves alive across the callback
    if (o && cb) {
      detail::run_guarded("TcpConnector callback", [&] { cb(std::move(result)); });
    }
    outstanding--;
    maybe_free();
  }

  void try_next() {
    while (next) {
      addrinfo* ai = next;
      next = next->ai_next;
      tcp = new uv_tcp_t;
      uv_tcp_init(loop, tcp);
      outstanding++;  // the handle
      tcp->data = this;
      conn.data = this;
      int rc = 0;
      if (!opts.bind_address.empty()) {
        sockaddr_storage src;
        Status s = parse_ip(opts.bind_address, 0, &src);
        if (!s.ok() || src.ss_family != ai->ai_family) {
          last_error = s.ok() ? Status(Errc::invalid_argument, "source address " + opts.bind_address +
                                                                   " does not match the family of " + host)
                              : s;
          close_tcp();
          continue;
        }
        rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&src), 0);
      }
      if (rc == 0) rc = uv_tcp_connect(&conn, tcp, ai->ai_addr, &Op::on_connected);
      if (rc == 0) {
        outstanding++;  // the connect request
        return;
      }
      last_error = uv_status(rc, ("connect to " + host).c_str());
      close_tcp();
    }
    finish(last_error);
  }

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
    auto* op = static_cast<Op*>(req->data);
    op->outstanding--;
    if (op->finished) {
      if (res) uv_freeaddrinfo(res);
      op->maybe_free();
      return;
    }
    if (status < 0) {
      op->finish(uv_status(status, ("resolve " + op->host).c_str()));
      return;
    }
    op->addrs = res;
    op->next = res;
    op->try_next();
  }

  static void on_connected(uv_connect_t* req, int status) noexcept {
    auto* op = static_cast<Op*>(req->data);
    op->outstanding--;
    if (op->finished) {
      op->maybe_free();
      return;
    }
    if (status < 0) {
      op->last_error = uv_status(status, ("connect to " + op->host + ":" +
                                          std::to_string(op->port)).c_str());
      op->close_tcp();
      op->try_next();
      return;
    }
    uv_tcp_t* tcp = op->tcp;
    op->tcp = nullptr;
    op->outstanding--;  // the handle now belongs to the stream
    Status s = apply_tcp_options(tcp, op->opts);
    if (!s.ok()) TG_WARN("tcp", "socket options for %s: %s", op->host.c_str(), s.message().c_str());
    op->finish(StreamPtr(new TcpStream(tcp)));
  }

  static void on_timeout(uv_timer_t* t) noexcept {
    auto* op = static_cast<Op*>(t->data);
    op->finish(Status(Errc::timeout, "connect to " + op->host + ":" + std::to_string(op->port) +
                                         " timed out"));
  }
};

TcpConnector::TcpConnector(uv_loop_t* loop) : loop_(loop) {}

TcpConnector::~TcpConnector() { cancel(); }

void TcpConnector::cancel() noexcept {
  if (!op_) return;
  Op* op = op_;
  op_ = nullptr;
  op->owner = nullptr;
  op->done = nullptr;
  op->stop();
  op->maybe_free();
}

Status TcpConnector::connect(const std::string& host, uint16_t port, uint64_t timeout_ms,
                             DoneFn done, const TcpOptions& opts) {
  if (op_) return Status(Errc::invalid_argument, "a connect is already in progress");
  if (host.empty()) return Status(Errc::invalid_argument, "empty host name");
  if (port == 0) return Status(Errc::invalid_argument, "port 0 for " + host);
  auto* op = new Op{};
  op->owner = this;
  op->loop = loop_;
  op->done = std::move(done);
  op->opts = opts;
  op->host = host;
  op->port = port;
  op->gai.data = op;
  op->conn.data = op;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  const std::string service = std::to_string(port);
  int rc = uv_getaddrinfo(loop_, &op->gai, &Op::on_resolved, host.c_str(), service.c_str(), &hints);
  if (rc != 0) {
    delete op;
    return uv_status(rc, ("resolve " + host).c_str());
  }
  op->outstanding++;
  op->timer = new uv_timer_t;
  uv_timer_init(loop_, op->timer);
  op->timer->data = op;
  op->outstanding++;
  uv_timer_start(op->timer, &Op::on_timeout, timeout_ms, 0);
  op_ = op;
  return Status();
}

}  // namespace tg::net
