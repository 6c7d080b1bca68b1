// Request routing: picks the tunnel that carries a user request for a model
// and opens the stream on it. Candidates: registered agents serving the
// model with a free slot, not penalised, not reporting the model out of
// capacity, not already tried for this request. Order: the lowest
// in_flight / max_parallel, then the best recent success rate, then the
// lowest recent latency, ties at random. Keeps Tunnels::Entry::in_flight and
// the health the request reports back (report()): a failed agent gets no new
// request for the penalty, then exactly one probe. Remembers which models
// were ever served, to tell "unknown model" (404) from "no agent for it now"
// (503). Owns no tunnel.
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hub/tunnels.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/tunnel/session.h"

namespace tg::hub {

// Model names remembered as "served once" (beyond: no longer remembered).
constexpr size_t kMaxKnownModels = 65536;
// How often the registry is swept for newly registered models.
constexpr uint64_t kModelSweepMs = 1000;

// One routed request: the stream and whose tunnel it runs on. Pass it back to
// Router::release() exactly once, while the channel is still open or from its
// final callback (the tunnel is alive then).
struct Route {
  tunnel::Channel* channel = nullptr;
  std::string pubkey;
  const HubTunnel* tunnel = nullptr;
};

// Called around the call of Router::open: `before` with the chosen agent
// right before its call is sent (an error stops routing and is returned;
// it may complete the call: billing stamps its ticket), `undo` when that
// call could not be sent after all and the next agent is tried.
struct CallHooks {
  std::function<Status(const std::string& agent, tunnel::Call& call)> before;
  std::function<void(const std::string& agent)> undo;
};

// How an attempt ended, for the agent's health.
enum class Outcome {
  answered,   // a response head arrived (2xx..4xx but 429)
  failed,     // connect error, 5xx, broken tunnel: penalised
  no_capacity,  // busy, rate_limited, 429: routed elsewhere, not penalised
  abandoned,  // given up by the user or the hub before a verdict: no change
};

// Agents whose health is remembered; beyond, those without a penalty are forgotten.
constexpr size_t kMaxHealthEntries = 100000;
// Moving averages: the weight of the newest attempt.
constexpr double kHealthWeight = 0.2;

class Router {
 public:
  Router(uv_loop_t* loop, Tunnels& tunnels, uint64_t penalty_ms = 60000);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Agents for which `admit` answers false get no call (Billing::takes_calls).
  void set_admit(std::function<bool(const std::string& agent)> admit) { admit_ = std::move(admit); }
  // Starts the periodic sweep that learns registered models.
  void start();
  void stop() noexcept;

  // Opens a stream for `call.model` on the best tunnel and counts it in
  // in_flight. Errors: Errc::not_found (no agent ever served the model),
  // Errc::limit (agents serve it but none is online with a free slot),
  // Errc::closed (the chosen tunnels are closing).
  // `exclude`: agents already tried for this request.
  Result<Route> open(tunnel::Call& call, tunnel::ChannelHandler* handler,
                     const CallHooks& hooks = {}, const std::vector<std::string>& exclude = {});
  // The attempt on `route` ended this way after `latency_ms` (answered: the
  // time to its response head). A no-op if the tunnel left the registry.
  void report(const Route& route, Outcome outcome, uint64_t latency_ms) noexcept;
  // Whether open() would find an agent for `model` other than `exclude`.
  bool has_candidate(std::string_view model, const std::vector<std::string>& exclude) const;
  // Ends the in_flight count of `route` (a no-op if its tunnel left the
  // registry meanwhile). Does not close the channel.
  void release(const Route& route) noexcept;

  // Models served by registered tunnels now, sorted; remembers them.
  std::vector<std::string> online_models();
  bool serves_now(std::string_view model) const;
  bool known(std::string_view model) const;

 private:
  void remember(std::string_view model);
  void sweep();

  // Health per agent key: it outlives a tunnel, so a failed agent that
  // reconnects at once is still penalised.
  struct Health {
    double success = 1.0;           // moving average of attempt outcomes (1 ok, 0 failed)
    double latency_ms = 0;          // moving average of the time to the response head
    uint64_t penalty_until_ms = 0;  // loop time: no new request before (0: none)
    bool probing = false;           // the one request after a penalty is in flight
  };
  // usable (registered, ready, a free slot) and admitted by admit_.
  bool available(const Tunnels::Entry* e) const;
  bool healthy(const Tunnels::Entry* e, std::string_view model, uint64_t now) const;
  const Health& health_of(const std::string& agent) const;
  bool probe_due(const std::string& agent, uint64_t now) const;

  uv_loop_t* loop_;
  Tunnels& tunnels_;
  uint64_t penalty_ms_;
  std::function<bool(const std::string& agent)> admit_;
  std::unordered_map<std::string, Health> health_;
  Timer sweep_timer_;
  std::unordered_set<std::string> known_;
};

}  // namespace tg::hub
