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

// a is less loaded than b: in_flight/max_parallel compared without division.
bool less_loaded(const Tunnels::Entry* a, const Tunnels::Entry* b) {
  return static_cast<uint64_t>(a->in_flight) * b->max_parallel <
         static_cast<uint64_t>(b->in_flight) * a->max_parallel;
}

}  // namespace

Router::Router(uv_loop_t* loop, Tunnels& tunnels) : tunnels_(tunnels), sweep_timer_(loop) {}

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

Result<Route> Router::open(const tunnel::Call& call, tunnel::ChannelHandler* handler,
                           const CallHooks& hooks) {
  std::vector<Tunnels::Entry*> all = tunnels_.tunnels_for(call.model);
  if (!all.empty()) remember(call.model);
  std::vector<Tunnels::Entry*> ready;
  ready.reserve(all.size());
  for (Tunnels::Entry* e : all) {
    if (usable(e)) ready.push_back(e);
  }
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
  std::stable_sort(ready.begin(), ready.end(), less_loaded);
  Status last = error(Errc::limit, "no agent for model '" + call.model + "' has a free slot now");
  for (Tunnels::Entry* e : ready) {
    if (hooks.before) {
      Status s = hooks.before(e->pubkey);
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
    Route r;
    r.channel = *ch;
    r.pubkey = e->pubkey;
    r.tunnel = e->tunnel;
    return r;
  }
  if (last.code() == Errc::closed) return last;
  return error(Errc::limit, last.message());
}

void Router::release(const Route& route) noexcept {
  Tunnels::Entry* e = tunnels_.find(route.pubkey);
  if (!e || e->tunnel != route.tunnel) return;
  if (e->in_flight > 0) --e->in_flight;
}

}  // namespace tg::hub
