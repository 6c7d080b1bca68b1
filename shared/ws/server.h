// WebSocket server side: accept_upgrade() turns an HTTP server exchange into
// a Connection (the HTTP layer parsed the request), and ServerHandshake does
// the whole upgrade on a freshly accepted stream for listeners that speak
// nothing but WebSocket. Both answer 101 or a 400/426 refusal and hand back a
// server-role Connection; neither serves ordinary HTTP requests.
#pragma once

#include <uv.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/http/parser.h"
#include "shared/net/stream.h"
#include "shared/ws/connection.h"
#include "shared/ws/handshake.h"

namespace tg::ws {

struct AcceptConfig {
  ServerHandshakeConfig handshake;
  Options options;            // for the resulting Connection
  uint64_t timeout_ms = 10000;  // whole handshake, refusal included
};

// One server handshake. `done` fires exactly once from the loop with the
// open Connection (not started: call start()) or the failure: Errc::protocol
// after a refusal (sent to the peer as 400/426 with a text body; `done` fires
// once the peer has gone or after a short linger), Errc::timeout, Errc::closed.
// request() is valid inside `done`. Destroying the handshake first cancels it.
class ServerHandshake final : private net::StreamHandler {
 public:
  using DoneFn = std::function<void(Result<ConnectionPtr>)>;

  ServerHandshake(uv_loop_t* loop, net::StreamPtr stream, AcceptConfig config, DoneFn done);
  ~ServerHandshake() override;
  ServerHandshake(const ServerHandshake&) = delete;
  ServerHandshake& operator=(const ServerHandshake&) = delete;

  // Starts reading the request. Call once.
  void start();
  const http::RequestHead& request() const noexcept { return parser_.request_head(); }

 private:
  enum class State { idle, reading, refusing, finished };
  void on_stream_read(net::Stream& s, std::string_view data) noexcept override;
  void on_stream_end(net::Stream& s, const Status& why) noexcept override;
  void refuse(http::ResponseHead head, const std::string& why);
  void complete(Result<ConnectionPtr> result);

  uv_loop_t* loop_;
  net::StreamPtr stream_;
  AcceptConfig config_;
  DoneFn done_;
  State state_ = State::idle;
  UpgradeDecision decision_;
  Status refusal_;
  http::Parser parser_;
  Timer timer_;
};

// For the HTTP server: checks `req`; if acceptable, calls
// `exchange.upgrade(<101 head>)` (the shared/http contract: Result<Upgraded>
// upgrade(const ResponseHead&)) and returns the server Connection, not started.
// If refused, the exchange is untouched, *refusal holds the response to send
// through it (400 or 426, with `error` as a text body) and the result is
// Errc::protocol. An error from upgrade() itself is returned as is.
template <typename Exchange>
Result<ConnectionPtr> accept_upgrade(uv_loop_t* loop, Exchange& exchange,
                                     const http::RequestHead& req,
                                     const ServerHandshakeConfig& config, const Options& options,
                                     UpgradeDecision* refusal) {
  UpgradeDecision d = check_upgrade_request(req, config);
  if (!d.accepted) {
    Status why(Errc::protocol, "ws upgrade refused with " + std::to_string(d.response.status) +
                                   ": " + d.error);
    if (refusal) *refusal = std::move(d);
    return why;
  }
  Result<http::Upgraded> up = exchange.upgrade(d.response);
  if (!up.ok()) return up.status();
  http::Upgraded u = std::move(up.value());
  return std::make_unique<Connection>(loop, std::move(u.stream), std::move(u.leftover),
                                      Role::server, options, std::move(d.subprotocol));
}

}  // namespace tg::ws
