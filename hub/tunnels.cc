#include "hub/tunnels.h"

#include <algorithm>
#include <utility>

namespace tg::hub {

HubTunnel* Tunnels::add(const std::string& pubkey, const std::string& owner,
                        const std::string& addr, HubTunnel* tunnel) {
  HubTunnel* replaced = nullptr;
  auto it = by_key_.find(pubkey);
  if (it != by_key_.end()) {
    replaced = it->second->tunnel;
    unlink_models(it->second.get());
    by_key_.erase(it);
  }
  auto e = std::make_unique<Entry>();
  e->pubkey = pubkey;
  e->owner = owner;
  e->addr = addr;
  e->tunnel = tunnel;
  by_key_.emplace(pubkey, std::move(e));
  return replaced;
}

bool Tunnels::remove(const std::string& pubkey, const HubTunnel* tunnel) {
  auto it = by_key_.find(pubkey);
  if (it == by_key_.end() || it->second->tunnel != tunnel) return false;
  unlink_models(it->second.get());
  by_key_.erase(it);
  return true;
}

size_t Tunnels::set_models(const std::string& pubkey, const std::vector<std::string>& models,
                           uint32_t max_parallel) {
  auto it = by_key_.find(pubkey);
  if (it == by_key_.end()) return 0;
  Entry* e = it->second.get();
  unlink_models(e);
  e->models = models;
  e->max_parallel = max_parallel;
  e->registered = true;
  for (const auto& m : e->models) by_model_[m].push_back(e);
  return e->models.size();
}

bool Tunnels::online(std::string_view pubkey) const { return find(pubkey) != nullptr; }

Tunnels::Entry* Tunnels::find(std::string_view pubkey) {
  auto it = by_key_.find(std::string(pubkey));
  return it == by_key_.end() ? nullptr : it->second.get();
}

const Tunnels::Entry* Tunnels::find(std::string_view pubkey) const {
  auto it = by_key_.find(std::string(pubkey));
  return it == by_key_.end() ? nullptr : it->second.get();
}

std::vector<Tunnels::Entry*> Tunnels::tunnels_for(std::string_view model) const {
  auto it = by_model_.find(std::string(model));
  if (it == by_model_.end()) return {};
  return it->second;
}

std::vector<Tunnels::Entry*> Tunnels::all() const {
  std::vector<Entry*> out;
  out.reserve(by_key_.size());
  for (const auto& kv : by_key_) out.push_back(kv.second.get());
  return out;
}

void Tunnels::unlink_models(Entry* e) {
  for (const auto& m : e->models) {
    auto it = by_model_.find(m);
    if (it == by_model_.end()) continue;
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), e), list.end());
    if (list.empty()) by_model_.erase(it);
  }
}

void Tunnels::set_busy(const std::string& pubkey, const std::vector<std::string>& models,
                       uint64_t until_ms, uint32_t rpm) {
  Entry* e = find(pubkey);
  if (!e) return;
  for (const std::string& m : models) {
    if (until_ms == 0) {
      e->busy_until.erase(m);
    } else if (e->busy_until.size() < kMaxBusyModels || e->busy_until.count(m)) {
      e->busy_until[m] = until_ms;
    }
  }
  e->reported_rpm = rpm;
}

}  // namespace tg::hub
