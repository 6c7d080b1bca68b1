// The live tunnel registry: which agent keys have an authenticated tunnel now,
// and the model table (model -> tunnels serving it, with each tunnel's
// max_parallel and in-flight count). It is what request routing reads; it
// holds no routing policy, owns no tunnel and does no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tg::hub {

class HubTunnel;

// Models per agent whose capacity report is remembered.
constexpr size_t kMaxBusyModels = 256;

class Tunnels {
 public:
  // One authenticated tunnel. Valid from add() until remove()/replacement;
  // routing code may keep a pointer only for the duration of a loop callback.
  struct Entry {
    std::string pubkey;     // canonical base64 of the agent's key
    std::string owner;
    std::string addr;       // peer "ip:port"
    HubTunnel* tunnel = nullptr;  // not owned
    bool registered = false;      // a `register` arrived
    std::vector<std::string> models;
    uint32_t max_parallel = 0;
    uint32_t in_flight = 0;       // streams running on it (kept by the router)
    // Capacity reports (`capacity`): model -> loop time it may take calls again.
    std::unordered_map<std::string, uint64_t> busy_until;
    uint32_t reported_rpm = 0;       // the agent's last effective vendor rpm (0: no limit)
  };

  // Records `tunnel` as the live tunnel of `pubkey`. Returns the tunnel it
  // replaces (nullptr if none); that one is forgotten at once (no longer
  // online, out of the model table): the caller closes it.
  HubTunnel* add(const std::string& pubkey, const std::string& owner, const std::string& addr,
                 HubTunnel* tunnel);
  // Forgets `pubkey` if its live tunnel is `tunnel`; false otherwise (it was
  // already replaced or removed).
  bool remove(const std::string& pubkey, const HubTunnel* tunnel);
  // Replaces the model list and max_parallel of `pubkey`'s live tunnel.
  // Returns how many models were accepted (all of them: no policy yet), or 0
  // when the key has no live tunnel.
  size_t set_models(const std::string& pubkey, const std::vector<std::string>& models,
                    uint32_t max_parallel);

  // A `capacity` report of `pubkey`'s live tunnel: `models` take no call
  // before loop time `until_ms` (0: available again now).
  void set_busy(const std::string& pubkey, const std::vector<std::string>& models,
                uint64_t until_ms, uint32_t rpm);

  bool online(std::string_view pubkey) const;
  size_t count() const noexcept { return by_key_.size(); }
  // The live tunnel of `pubkey`, or nullptr.
  Entry* find(std::string_view pubkey);
  const Entry* find(std::string_view pubkey) const;
  // Registered tunnels serving `model`, in registration order. The pointers
  // are valid until the registry changes.
  std::vector<Entry*> tunnels_for(std::string_view model) const;
  // Every live tunnel, in no particular order (shutdown, diagnostics).
  std::vector<Entry*> all() const;

 private:
  void unlink_models(Entry* e);

  std::unordered_map<std::string, std::unique_ptr<Entry>> by_key_;
  std::unordered_map<std::string, std::vector<Entry*>> by_model_;
};

}  // namespace tg::hub
