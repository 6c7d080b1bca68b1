// HTTP/1.1 server over accepted net::Streams (plain TCP or TLS alike): one
// state machine per connection, streaming request and response bodies with
// backpressure both ways, keep-alive, pipelining (one request at a time),
// Expect: 100-continue and protocol upgrade. It never holds a whole body:
// per-connection memory is bounded by the parser limits plus one read, and
// the connection count by max_connections overall and per client address.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/http/message.h"
#include "shared/http/parser.h"
#include "shared/net/stream.h"

namespace tg::http {

struct ServerOptions {
  static constexpr uint64_t kDefaultRequestBodyBytes = 16 * 1024 * 1024;
  static constexpr uint64_t kDefaultHeaderTimeoutMs = 10 * 1000;
  static constexpr uint64_t kDefaultIdleTimeoutMs = 60 * 1000;
  static constexpr uint64_t kDefaultBodyTimeoutMs = 60 * 1000;
  static constexpr uint64_t kDefaultLingerMs = 5 * 1000;
  static constexpr size_t kDefaultMaxConnections = 4096;
  static constexpr size_t kDefaultMaxConnectionsPerAddress = 512;

  // Request limits; body_bytes 0 means unlimited.
  ParserLimits limits{ParserLimits::kDefaultHeadBytes, ParserLimits::kDefaultHeaderCount,
                      ParserLimits::kDefaultUrlBytes, kDefaultRequestBodyBytes};
  // From connection start (or the first byte after keep-alive idle) to a
  // complete request head; expiry answers 408 and closes.
  uint64_t header_timeout_ms = kDefaultHeaderTimeoutMs;
  // Keep-alive idle with no byte of a next request: closes silently.
  uint64_t idle_timeout_ms = kDefaultIdleTimeoutMs;
  // No request body byte for this long while the body is wanted (not
  // paused): the exchange is aborted (408 if no response started).
  uint64_t body_timeout_ms = kDefaultBodyTimeoutMs;
  // After a final answer with Connection: close, how long to wait for the
  // peer's end (discarding its bytes) before dropping the connection.
  uint64_t linger_ms = kDefaultLingerMs;
  // Connections over this number get 503 and are closed.
  size_t max_connections = kDefaultMaxConnections;
  // Connections from one client address (see address_key) over this number
  // get 503 and are closed; 0 = no per-address limit. Only admitted
  // connections count: one refused by either limit never takes a slot of its
  // address. A connection leaves the count when it ends or is upgraded.
  size_t max_connections_per_address = kDefaultMaxConnectionsPerAddress;
};

// What the per-address limit counts by, from a peer address "ip:port" or
// "[ipv6]:port": the IPv4 address; for IPv6 its /64 prefix ("2001:db8:1:2::/64",
// one host's usual allocation); an IPv4-mapped IPv6 address counts as its IPv4
// address. Anything else is returned whole.
std::string address_key(std::string_view peer_address);

class Exchange;
class Connection;

// Per-request observer, attached with Exchange::set_handler. Every callback
// fires from the loop; none fires after finish()/upgrade() returned or after
// on_abort.
class ExchangeHandler {
 public:
  // A piece of the decoded request body; valid only during the call.
  virtual void on_request_body(Exchange& ex, std::string_view piece) noexcept {
    (void)ex;
    (void)piece;
  }
  // The request body is complete (fires at once for a request without body).
  virtual void on_request_end(Exchange& ex) noexcept { (void)ex; }
  // The response write queue drained below the low-water mark.
  virtual void on_response_drain(Exchange& ex) noexcept { (void)ex; }
  // The exchange failed before finish(): the client went away (Errc::closed
  // or the stream's error), the request broke a limit mid-body, or a timeout.
  // The Exchange is invalid once this returns.
  virtual void on_abort(Exchange& ex, const Status& why) noexcept {
    (void)ex;
    (void)why;
  }

 protected:
  virtual ~ExchangeHandler() = default;
};

// One request and its response on a connection. Owned by the connection; the
// application may use it from ServerHandler::on_request until it calls
// finish() or upgrade(), or until on_abort fires.
class Exchange {
 public:
  const RequestHead& request() const noexcept;
  const std::string& peer_address() const noexcept;
  const net::TlsInfo* tls() const noexcept;
  // Attaches the observer for body/end/drain/abort; nullptr detaches.
  void set_handler(ExchangeHandler* handler) noexcept;

  // Request body flow control: no on_request_body fires while paused and
  // the socket is not read. resume delivers pending bytes from the loop.
  void pause_request_body() noexcept;
  void resume_request_body() noexcept;
  bool request_complete() const noexcept;

  // Sends the response head. Framing is the server's: with Content-Length set
  // by the caller, exactly that many body bytes must follow; otherwise
  // chunked (HTTP/1.1) or close-delimited (HTTP/1.0). The caller must not set
  // Transfer-Encoding or Connection; the server adds Connection: close or
  // keep-alive as needed. HEAD requests and 1xx/204/304 answers carry no body.
  // Errc::invalid_argument for a bad head or a second call.
  Status respond(ResponseHead head);
  // Queues a piece of the response body (copied). Errc::invalid_argument
  // past Content-Length or before respond(); Errc::closed if the client left.
  Status write(std::string_view piece);
  // Ends the response. Errc::invalid_argument if Content-Length bytes are
  // missing (the connection is then closed). The Exchange is invalid after.
  Status finish();
  // Drops the connection at once, whatever was sent: for a response that
  // failed after its head went out, so the client sees a truncated body
  // instead of a complete-looking one. The Exchange is invalid after; no
  // callback fires (no on_abort either).
  void abort() noexcept;
  // respond() with an empty-bodied answer then finish(): for quick errors.
  Status reply(int status, std::string_view body = {}, std::string_view content_type = "text/plain");
  // True when the response queue is above the high-water mark: wait for
  // on_response_drain before writing more.
  bool write_blocked() const noexcept;
  bool responded() const noexcept;

  // Switches protocols: writes `head` as given (status 101 expected; nothing
  // added), detaches the stream (handler nullptr) and hands it over with the
  // bytes read past the request head. Only once the head is complete, before
  // respond(), and for a request without body. The Exchange is invalid after.
  Result<Upgraded> upgrade(const ResponseHead& head);

 private:
  friend class Connection;
  explicit Exchange(Connection* c) : conn_(c) {}
  Connection* conn_;
};

// The application: receives each request head. The Exchange stays valid
// after the call returns (see Exchange); answer now or later from the loop.
class ServerHandler {
 public:
  virtual void on_request(Exchange& ex) noexcept = 0;

 protected:
  virtual ~ServerHandler() = default;
};

class Server {
 public:
  // `handler` must outlive the Server.
  Server(uv_loop_t* loop, ServerHandler* handler, const ServerOptions& options = {});
  // Closes every connection at once; no callback fires (no on_abort either).
  // Must not be called from inside a callback of this server.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Takes an accepted stream (TcpListener or tls::accept output) and serves
  // HTTP on it until either side ends it.
  void accept(net::StreamPtr stream);
  // Graceful stop: idle keep-alive connections close now; busy ones close
  // after their current exchange.
  void drain() noexcept;
  size_t connection_count() const noexcept { return conns_.size(); }
  // Admitted connections that share the address key of `peer_address`.
  size_t connections_from(std::string_view peer_address) const;
  const ServerOptions& options() const noexcept { return options_; }

 private:
  friend class Connection;
  static constexpr uint64_t kRefusalWarnIntervalMs = 1000;
  void reap_later(Connection* c);
  void on_reap() noexcept;
  void note_address_refusal(const std::string& key);

  uv_loop_t* loop_;
  ServerHandler* handler_;
  ServerOptions options_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;
  std::vector<Connection*> dead_;
  // Admitted connections per address key (entries with a count are kept).
  std::unordered_map<std::string, size_t> per_address_;
  Deferred reaper_;
  bool draining_ = false;
  // Per-address refusals are logged at most once a second, with a count.
  uint64_t refusal_warned_ms_ = 0;
  uint64_t refused_since_warn_ = 0;
  bool refusal_warned_ = false;
};

}  // namespace tg::http
