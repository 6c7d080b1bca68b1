// Opening TLS connections: tls::Connector dials TCP (net::TcpConnector) and
// completes the client handshake before handing out the stream; tls::accept
// wraps an accepted TCP stream in a server-side TLS stream. Both return plain
// net::StreamPtr: callers never see an mbedTLS type.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/net/stream.h"
#include "shared/net/tcp.h"
#include "shared/tls/context.h"

namespace tg::tls {

class TlsStream;

constexpr uint64_t kDefaultHandshakeTimeoutMs = 10000;

// Server side: starts the handshake on `tcp` at once and returns the TLS
// stream. Reads reach the handler only after the handshake; a failed or
// timed-out handshake ends the stream (on_stream_end with Errc::tls /
// Errc::timeout). Writes made before the handshake completes are buffered.
net::StreamPtr accept(uv_loop_t* loop, net::StreamPtr tcp, std::shared_ptr<ServerContext> ctx,
                      uint64_t handshake_timeout_ms = kDefaultHandshakeTimeoutMs);

// Client side: resolve, connect, handshake. `done` fires exactly once from
// the loop with a stream whose handshake has completed (no handler set yet;
// tls() filled in) or with the failure: Errc::permission for a pin or
// certificate refusal, Errc::tls for a handshake failure, Errc::timeout when
// connect+handshake exceed the timeout. Destroying the Connector or cancel()
// stops everything; `done` never fires afterwards.
class Connector {
 public:
  using DoneFn = std::function<void(Result<net::StreamPtr>)>;

  Connector(uv_loop_t* loop, std::shared_ptr<ClientContext> ctx);
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // `server_name` is the SNI and the name the certificate must carry; empty
  // means the context's server_name, or `host` when that is empty too. Fails
  // at once only for bad arguments or a connect already in progress.
  Status connect(const std::string& host, uint16_t port, uint64_t timeout_ms, DoneFn done,
                 const std::string& server_name = std::string(),
                 const net::TcpOptions& opts = {});
  void cancel() noexcept;
  bool busy() const noexcept { return state_ != State::idle; }

 private:
  enum class State { idle, connecting, handshaking };

  void on_tcp(Result<net::StreamPtr> result);
  void on_handshake(const Status& status);
  void complete(Result<net::StreamPtr> result);

  uv_loop_t* loop_;
  std::shared_ptr<ClientContext> ctx_;
  State state_ = State::idle;
  net::TcpConnector tcp_;
  Timer timer_;
  std::unique_ptr<TlsStream> stream_;
  DoneFn done_;
  std::string target_;       // "host:port", for messages
  std::string server_name_;
};

}  // namespace tg::tls
