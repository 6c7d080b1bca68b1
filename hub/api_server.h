// The user-facing API: an HTTP(S) server on user_listen with the OpenAI- and
// Anthropic-compatible endpoints (POST /v1/chat/completions, /v1/embeddings,
// /v1/messages; GET /v1/models, /v1/models/{id}). It authenticates the sk-tg-
// token and the balance, reads the whole (bounded) body to find model and
// stream, routes the request to an agent's tunnel (router.h) and relays the
// answer byte for byte with end-to-end flow control, metering the usage in
// the bytes as they pass (billing.h). Keeps no response body; drops only the
// usage-only SSE chunk it asked for on the user's behalf. Logs metadata only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub/api_errors.h"
#include "hub/config.h"
#include "hub/rate_limit.h"
#include "hub/router.h"
#include "hub/user_store.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/http/server.h"
#include "shared/net/tcp.h"
#include "shared/net/url.h"
#include "shared/tls/context.h"

namespace tg::hub {

class TunnelServer;
class Billing;

// Request head limits on the user port (431 above them).
constexpr size_t kApiHeadBytes = 32 * 1024;
constexpr size_t kApiHeaderCount = 100;
constexpr size_t kApiUrlBytes = 8 * 1024;
// A forwarded request header value longer than this is dropped (the call
// message must stay under the tunnel's 64 KiB control-message limit).
constexpr size_t kMaxForwardedHeaderValue = 2048;
// The SSE comment sent on an idle stream.
constexpr std::string_view kSseKeepalive = ": keep-alive\n\n";

class ApiServer final : private http::ServerHandler {
 public:
  // `tunnels` and `users` must outlive the server, and the server must be
  // destroyed before `tunnels` (requests hold its channels). `tls` null:
  // plain HTTP. `billing` (may be null: nothing is billed, tests) must
  // outlive the server.
  ApiServer(uv_loop_t* loop, const ApiSettings& settings, TunnelServer* tunnels, UserStore* users,
            std::shared_ptr<tls::ServerContext> tls, Billing* billing = nullptr,
            const LimitSettings& limits = {}, const RoutingSettings& routing = {});
  // Closes every connection and aborts every open stream (abort{shutdown});
  // no callback fires. Must not run inside a callback of this server.
  ~ApiServer() override;
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds `listen` and starts serving. Errors name the address.
  Status start(const net::HostPort& listen);
  uint16_t port() const noexcept { return listener_.port(); }
  // Planned stop: closes the listener, idle connections close, new requests
  // get 503; requests in flight continue (the tunnel drain bounds them).
  void shutdown() noexcept;

  // Requests being served (routed or reading their body).
  size_t active_requests() const noexcept { return requests_.size(); }
  size_t connection_count() const noexcept { return http_ ? http_->connection_count() : 0; }
  Router& router() noexcept { return router_; }
  bool tls() const noexcept { return tls_ != nullptr; }

 private:
  class Request;
  friend class Request;

  void on_request(http::Exchange& ex) noexcept override;
  void on_accept(net::StreamPtr tcp);
  void serve_models(http::Exchange& ex, const std::string& request_id, std::string_view model_id);
  void request_done(Request* r);
  void on_reap() noexcept;

  uv_loop_t* loop_;
  ApiSettings settings_;
  TunnelServer* tunnels_;
  UserStore* users_;
  Billing* billing_;
  std::shared_ptr<tls::ServerContext> tls_;
  Router router_;
  RoutingSettings routing_;
  Limits limits_;        // hub.conf [limits]; a user's own replace them
  RateLimiter limiter_;
  net::TcpListener listener_;
  std::unique_ptr<http::Server> http_;
  std::unordered_map<Request*, std::unique_ptr<Request>> requests_;
  std::vector<std::unique_ptr<Request>> dead_;
  Deferred reaper_;
  bool stopping_ = false;
  int64_t created_s_ = 0;  // "created" of every model in /v1/models
};

// Sends an error answer in `dialect`'s format with x-request-id. For quick
// refusals (401, 404, 413...).
void reply_api_error(http::Exchange& ex, Dialect dialect, int status, std::string_view message,
                     std::string_view code, const std::string& request_id,
                     const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

}  // namespace tg::hub
