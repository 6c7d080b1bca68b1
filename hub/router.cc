#include "hub/router.h"

#include <algorithm>
#include <set>

#include "hub/tunnel_server.h"
#include "shared/crypto/hash.h"

namespace tg::hub {
namespace {

bool usable(const Tunnels::Entry* e) {
  return e->registered && e->tunnel && e->tunnel->state() == HubTunnel::State::ready &&
         !e->tunnel->session().closing() && e->in_flight < e->max_parallel;
}

}  // namespace

bool Router::available(const Tunnels::Entry* e) const {
  return usable(e) && (!admit_ || admit_(e->pubkey));
}

const Router::Health& Router::health_of(const std::string& agent) const {
  static const Health kFresh;
  auto it = health_.find(agent);
  return it == health_.end() ? kFresh : it->second;
}

bool Router::probe_due(const std::string& agent, uint64_t now) const {
  const Health& h = health_of(agent);
  return h.penalty_until_ms != 0 && now >= h.penalty_until_ms && !h.probing;
}

// Healthy enough for a new request now: not penalised, or its penalty is
// over and no probe is in flight yet; and the model not out of capacity.
bool Router::healthy(const Tunnels::Entry* e, std::string_view model, uint64_t now) const {
  const Health& h = health_of(e->pubkey);
  if (h.penalty_until_ms != 0 && (now < h.penalty_until_ms || h.probing)) return false;
  auto it = e->busy_until.find(std::string(model));
  return it == e->busy_until.end() || now >= it->second;
}

Router::Router(uv_loop_t* loop, Tunnels& tunnels, uint64_t penalty_ms)
    : loop_(loop), tunnels_(tunnels), penalty_ms_(penalty_ms), sweep_timer_(loop) {}

void Router::start() {
  sweep();
  sweep_timer_.start(kModelSweepMs, kModelSweepMs, [this] { sweep(); });
}

void Router::stop() noexcept { sweep_timer_.stop(); }

void Router::remember(std::string_view model) {
  if (known_.size() >= kMaxKnownModels) return;
  known_.emplace(model);
}

void Router::sweep() {
  for (const Tunnels::Entry* e : tunnels_.all()) {
    if (!e->registered) continue;
    for (const auto& m : e->models) remember(m);
  }
}

bool Router::known(std::string_view model) const { return known_.count(std::string(model)) > 0; }

bool Router::serves_now(std::string_view model) const {
  for (const Tunnels::Entry* e : tunnels_.tunnels_for(model)) {
    if (e->registered) return true;
  }
  return false;
}

std::vector<std::string> Router::online_models() {
  std::set<std::string> names;
  for (const Tunnels::Entry* e : tunnels_.all()) {
    if (!e->registered) continue;
    for (const auto& m : e->models) names.insert(m);
  }
  for (const auto& m : names) remember(m);
  return std::vector<std::string>(names.begin(), names.end());
}

Result<Route> Router::open(tunnel::Call& call, tunnel::ChannelHandler* handler,
                           const CallHooks& hooks, const std::vector<std::string>& exclude) {
  std::vector<Tunnels::Entry*> all = tunnels_.tunnels_for(call.model);
  if (!all.empty()) remember(call.model);
  const uint64_t now = uv_now(loop_);
  std::vector<Tunnels::Entry*> ready;
  ready.reserve(all.size());
  std::vector<Tunnels::Entry*> penalised;
  for (Tunnels::Entry* e : all) {
    if (!available(e)) continue;
    if (std::find(exclude.begin(), exclude.end(), e->pubkey) != exclude.end()) continue;
    (healthy(e, call.model, now) ? ready : penalised).push_back(e);
  }
  // Penalised or busy agents only when nothing else could take the request:
  // a degraded answer beats none.
  if (ready.empty()) ready.swap(penalised);
  if (ready.empty()) {
    if (all.empty() && !known(call.model)) {
      return error(Errc::not_found, "no agent serves model '" + call.model + "'");
    }
    return error(Errc::limit, "no agent for model '" + call.model + "' has a free slot now");
  }
  // Random order first, then a stable sort by load: ties stay random.
  for (size_t i = ready.size(); i > 1; --i) {
    uint32_t r = 0;
    crypto::random_bytes(&r, sizeof r);
    std::swap(ready[i - 1], ready[r % i]);
  }
  // A due probe first; then less loaded (in_flight/max_parallel without
  // division), then a clearly better success rate, then a lower latency.
  auto better = [this, now](const Tunnels::Entry* a, const Tunnels::Entry* b) {
    // An agent whose penalty just ended gets its one test request first.
    const bool pa = probe_due(a->pubkey, now);
    const bool pb = probe_due(b->pubkey, now);
    if (pa != pb) return pa;
    const uint64_t la = static_cast<uint64_t>(a->in_flight) * b->max_parallel;
    const uint64_t lb = static_cast<uint64_t>(b->in_flight) * a->max_parallel;
    if (la != lb) return la < lb;
    const Health& ha = health_of(a->pubkey);
    const Health& hb = health_of(b->pubkey);
    if (ha.success > hb.success + 0.05 || hb.success > ha.success + 0.05) return ha.success > hb.success;
    return ha.latency_ms < hb.latency_ms;
  };
  std::stable_sort(ready.begin(), ready.end(), better);
  Status last = error(Errc::limit, "no agent for model '" + call.model + "' has a free slot now");
  for (Tunnels::Entry* e : ready) {
    if (hooks.before) {
      Status s = hooks.before(e->pubkey, call);
      if (!s.ok()) return s;
    }
    auto ch = e->tunnel->session().open_channel(call, handler);
    if (!ch.ok()) {
      if (hooks.undo) hooks.undo(e->pubkey);
      last = ch.status();
      if (last.code() == Errc::protocol || last.code() == Errc::invalid_argument) return last;
      continue;  // this tunnel is full (max_streams) or closing: try the next
    }
    ++e->in_flight;
    if (health_of(e->pubkey).penalty_until_ms != 0) health_[e->pubkey].probing = true;  // the test request
    Route r;
    r.channel = *ch;
    r.pubkey = e->pubkey;
    r.tunnel = e->tunnel;
    return r;
  }
  if (last.code() == Errc::closed) return last;
  return error(Errc::limit, last.message());
}

void Router::report(const Route& route, Outcome outcome, uint64_t latency_ms) noexcept {
  const uint64_t now = uv_now(loop_);
  if (health_.size() >= kMaxHealthEntries && !health_.count(route.pubkey)) {
    for (auto it = health_.begin(); it != health_.end();) {
      it = it->second.penalty_until_ms == 0 ? health_.erase(it) : std::next(it);
    }
    if (health_.size() >= kMaxHealthEntries) return;
  }
  Health& h = health_[route.pubkey];
  switch (outcome) {
    case Outcome::answered:
      h.success += kHealthWeight * (1.0 - h.success);
      h.latency_ms += kHealthWeight * (static_cast<double>(latency_ms) - h.latency_ms);
      if (h.probing || (h.penalty_until_ms != 0 && now >= h.penalty_until_ms)) {
        h.penalty_until_ms = 0;  // the probe went through: back in rotation
      }
      h.probing = false;
      return;
    case Outcome::failed:
      h.success += kHealthWeight * (0.0 - h.success);
      h.penalty_until_ms = std::max<uint64_t>(now + penalty_ms_, 1);
      h.probing = false;
      return;
    case Outcome::no_capacity:
    case Outcome::abandoned:
      h.probing = false;  // no verdict: the next request may probe again
      return;
  }
}

bool Router::has_candidate(std::string_view model, const std::vector<std::string>& exclude) const {
  const uint64_t now = uv_now(loop_);
  bool any = false;
  for (const Tunnels::Entry* e : tunnels_.tunnels_for(model)) {
    if (!available(e)) continue;
    if (std::find(exclude.begin(), exclude.end(), e->pubkey) != exclude.end()) continue;
    if (healthy(e, model, now)) return true;
    any = true;
  }
  return any;  // only penalised ones left: still better than nothing
}

void Router::release(const Route& route) noexcept {
  Tunnels::Entry* e = tunnels_.find(route.pubkey);
  if (!e || e->tunnel != route.tunnel) return;
  if (e->in_flight > 0) --e->in_flight;
}

}  // namespace tg::hub
