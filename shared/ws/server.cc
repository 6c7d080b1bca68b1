#include "shared/ws/server.h"

#include <memory>
#include <string>
#include <utility>

#include "shared/core/log.h"

namespace tg::ws {
namespace {

// A request body before the switch would be read as WebSocket frames.
bool has_request_body(const http::RequestHead& req) {
  if (req.headers.has("Transfer-Encoding")) return true;
  const std::string_view length = req.headers.get("Content-Length");
  return !length.empty() && length.find_first_not_of('0') != std::string_view::npos;
}

// Answers the refusal through the exchange: `head` plus `why` as the body.
Status refuse(http::Exchange& exchange, http::ResponseHead head, const std::string& why) {
  TG_INFO("ws", "%s: refusing upgrade of %s with %d: %s", exchange.peer_address().c_str(),
          exchange.request().target.c_str(), head.status, why.c_str());
  const Status result = error(Errc::protocol, "ws upgrade from " + exchange.peer_address() +
                                                  " refused with " +
                                                  std::to_string(head.status) + ": " + why);
  const std::string body = why + "\n";
  head.headers.remove("Connection");  // the HTTP server owns it (adds close)
  head.headers.set("Content-Type", "text/plain; charset=utf-8");
  head.headers.set("Content-Length", std::to_string(body.size()));
  Status s = exchange.respond(std::move(head));
  if (s.ok()) s = exchange.write(body);
  if (s.ok()) s = exchange.finish();
  if (!s.ok()) {
    TG_DEBUG("ws", "%s: refusal not sent: %s", exchange.peer_address().c_str(),
             s.to_string().c_str());
  }
  return result;
}

}  // namespace

Result<ConnectionPtr> accept_upgrade(uv_loop_t* loop, http::Exchange& exchange,
                                     const ServerHandshakeConfig& config,
                                     const Options& options) {
  const http::RequestHead& req = exchange.request();
  if (has_request_body(req)) {
    http::ResponseHead head;
    head.status = 400;
    return refuse(exchange, std::move(head), "websocket upgrade request must not have a body");
  }
  UpgradeDecision d = check_upgrade_request(req, config);
  if (!d.accepted) return refuse(exchange, std::move(d.response), d.error);
  Result<http::Upgraded> up = exchange.upgrade(d.response);
  if (!up.ok()) {
    // Not sent (the client left, or the caller had already answered).
    Status why = error(up.status().code(), "ws upgrade from " + exchange.peer_address() + ": " +
                                               up.status().message());
    if (!exchange.responded()) (void)exchange.reply(500, "websocket upgrade failed\n");
    return why;
  }
  http::Upgraded u = std::move(up.value());
  return std::make_unique<Connection>(loop, std::move(u.stream), std::move(u.leftover),
                                      Role::server, options, std::move(d.subprotocol));
}

}  // namespace tg::ws
