// WebSocket server side: accept_upgrade() turns a request received by the
// HTTP server (shared/http/server.h) into a server-role ws::Connection, or
// answers it with a 400/426 refusal. Reading the request, its limits and
// timeouts are the HTTP server's; this file never touches a raw stream.
#pragma once

#include <uv.h>

#include "shared/core/status.h"
#include "shared/http/server.h"
#include "shared/ws/connection.h"
#include "shared/ws/handshake.h"

namespace tg::ws {

// Call from http::ServerHandler::on_request (or later, before the exchange
// is answered). Checks exchange.request() against `config`:
// - acceptable: answers 101 through exchange.upgrade() and returns the open
//   server Connection (not started: call start(); bytes the client sent after
//   the request are delivered first).
// - refused: answers the exchange itself with 400, or 426 carrying
//   Sec-WebSocket-Version: 13 (a request without a body is required too), with
//   a one-line text body, and returns Errc::protocol naming the status and the
//   reason. The HTTP server closes the connection after it when the request
//   asked to upgrade.
// - upgrade() failing (the client is gone): its error is returned.
// Either way the exchange is finished and must not be used after the call.
// Never fires a callback.
Result<ConnectionPtr> accept_upgrade(uv_loop_t* loop, http::Exchange& exchange,
                                     const ServerHandshakeConfig& config,
                                     const Options& options = {});

}  // namespace tg::ws
