// WebSocket client handshake over an already-connected net::Stream (plain TCP
// or TLS: the caller dials): sends the upgrade request, validates the 101 with
// the HTTP parser, and hands back a client-role Connection. Owns the stream
// until it succeeds or fails; never dials, resolves or retries.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/http/parser.h"
#include "shared/net/stream.h"
#include "shared/ws/connection.h"

namespace tg::ws {

struct ConnectRequest {
  std::string host;                       // Host header value ("hub.example:8443")
  std::string path = "/";                 // request target, starts with '/'
  std::vector<std::string> subprotocols;  // offered in order; one must be chosen if any
  Options options;                        // for the resulting Connection
  uint64_t timeout_ms = 10000;            // whole handshake
};

// One client handshake. `done` fires exactly once from the loop: the open
// Connection (not started: call start()) or the failure (Errc::protocol for a
// bad or non-101 answer, Errc::timeout, Errc::closed...). Destroying the
// handshake first cancels it (closing the stream); `done` never fires then.
class ClientHandshake final : private net::StreamHandler {
 public:
  using DoneFn = std::function<void(Result<ConnectionPtr>)>;

  ClientHandshake(uv_loop_t* loop, net::StreamPtr stream, ConnectRequest req, DoneFn done);
  ~ClientHandshake() override;
  ClientHandshake(const ClientHandshake&) = delete;
  ClientHandshake& operator=(const ClientHandshake&) = delete;

  // Sends the request. Argument errors return at once (and `done` never fires).
  Status start();
  // The response head once received (for logging a refusal's status).
  const http::ResponseHead& response() const noexcept { return parser_.response_head(); }

 private:
  enum class State { idle, waiting, finished };
  void on_stream_read(net::Stream& s, std::string_view data) noexcept override;
  void on_stream_end(net::Stream& s, const Status& why) noexcept override;
  void complete(Result<ConnectionPtr> result);

  uv_loop_t* loop_;
  net::StreamPtr stream_;
  ConnectRequest req_;
  DoneFn done_;
  State state_ = State::idle;
  std::string key_;
  std::string subprotocol_;
  http::Parser parser_;
  Timer timer_;
};

// Convenience: builds and starts a ClientHandshake. The caller keeps the
// returned object alive until `done` fires (or destroys it to cancel).
Result<std::unique_ptr<ClientHandshake>> connect(uv_loop_t* loop, net::StreamPtr stream,
                                                 ConnectRequest req,
                                                 ClientHandshake::DoneFn done);

}  // namespace tg::ws
