// Billing on the hub: prices every request, settles it exactly once into the
// agent's chain, and keeps the agent's mirror in step.
//
// Life of an attempt (one `call` to one agent, key = its request id):
//   open()        the Ticket meters the bytes the hub receives; its token (a
//                 sealed call ticket, hub/call_ticket.h) goes out in the call.
//                 Nothing is written: a claim the hub cannot match in memory
//                 is billed from the ticket it carries back.
//   stream end    ended() (finish/error received: the hub saw every byte the
//                 agent sent), linger() (the user left or the deadline hit:
//                 abort sent, the bytes that crossed it are still metered
//                 until the agent's claim), or lost() (the tunnel died).
//   claim         the agent's own reading. With a complete stream the two
//                 readings must agree (same bytes, same meter); the hub's
//                 is settled, a difference is logged and the agent disputes.
//                 A lost stream keeps the hub's reading in a pending row; a
//                 claim after reconnect settles the agent's reading (it saw
//                 at least as much), else after claim_grace the hub's. A call
//                 the agent refused leaves a cancelled row, so its ticket can
//                 never be claimed.
//   settle        batched: one transaction per loop turn (LedgerStore::
//                 settle), then `settle` messages to the agent; signed
//                 checkpoints every checkpoint_every entries or interval.
// Replayed claims of settled requests get their entry again (idempotent).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hub/call_ticket.h"
#include "hub/config.h"
#include "hub/ledger_store.h"
#include "shared/billing/prices.h"
#include "shared/billing/usage.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/tunnel/messages.h"
#include "shared/tunnel/session.h"

namespace tg::hub {

// Entries sent per `sync` answer; the agent syncs again when it sees a gap.
constexpr size_t kSyncBatch = 1024;
// Pending rows looked at per sweep.
constexpr size_t kSweepBatch = 256;
constexpr uint64_t kSweepMs = 1000;
// Tier ratios are cached this long (they change only by operator command).
constexpr uint64_t kTierCacheMs = 5000;
// Claims kept per agent while its ledger is blocked (Billing::on_sync).
constexpr size_t kMaxHeldClaims = 1024;

class Billing;

// One attempt being metered. Owned by Billing; the request that opened it
// may use it until it calls ended(), linger() or lost().
class Ticket final : public tunnel::ChannelHandler {
 public:
  billing::UsageMeter& meter() noexcept { return meter_; }
  const std::string& request_id() const noexcept { return pending_.request_id; }
  // The call ticket for this attempt: send it in the call.
  const std::string& token() const noexcept { return token_; }

 private:
  friend class Billing;
  enum class State { streaming, lingering, ended };
  Ticket(Billing* b, PendingRequest p, std::string token, billing::Api api, bool stream)
      : billing_(b), pending_(std::move(p)), token_(std::move(token)), meter_(api, stream) {}

  void on_channel_message(tunnel::Channel& ch, const tunnel::Message& m) noexcept override;
  void on_channel_data(tunnel::Channel& ch, std::string_view data, bool fin) noexcept override;
  void on_channel_closed(tunnel::Channel& ch, const Status& why) noexcept override;

  Billing* billing_;
  PendingRequest pending_;
  std::string token_;
  billing::UsageMeter meter_;
  State state_ = State::streaming;
  tunnel::Channel* channel_ = nullptr;  // while lingering
  uint64_t deadline_ms_ = 0;            // loop time: linger or claim wait ends
  std::optional<tunnel::Claim> claim_;  // arrived before the stream ended
};

class Billing {
 public:
  // Sends a message to the agent's live tunnel; false when it is offline.
  using SendFn = std::function<bool(const std::string& agent, const tunnel::Message& m)>;
  // The agent's tier ratio (parts per million).
  using TierFn = std::function<Result<uint32_t>(const std::string& agent)>;

  Billing(uv_loop_t* loop, const BillingSettings& settings, LedgerStore* store,
          billing::PriceTable prices, const crypto::KeyPair* ledger_key, SendFn send, TierFn tier);
  ~Billing();
  Billing(const Billing&) = delete;
  Billing& operator=(const Billing&) = delete;

  // Records the price version and starts the timers.
  Status start();
  // Settles what is queued (shutdown); the timers stop.
  void stop();

  const billing::PriceTable& prices() const noexcept { return prices_; }
  // SIGHUP: a new price table for requests from now on (settled and
  // pending ones keep the version they started with). The table is recorded
  // first: a version that changes meaning is refused and nothing changes.
  // `online` agents get the new table at once.
  Status reload_prices(billing::PriceTable table, const std::vector<std::string>& online);
  const BillingSettings& settings() const noexcept { return settings_; }

  // Whether `user_id` may start a request: balance >= min_balance.
  // Errc::limit with the balance in the message when not.
  Status check_balance(int64_t user_id);
  // Whether `model` has a price (exact or "*").
  bool priced(std::string_view model) const;
  // Starts metering an attempt and returns its ticket (Errc::not_found: no
  // price). Writes nothing.
  Result<Ticket*> open(const std::string& request_id, const std::string& agent, int64_t user_id,
                       const std::string& model, billing::Api api, bool stream,
                       size_t request_bytes);
  // The call for `t` was never sent (routing moved on): forgets it.
  void unsent(Ticket* t);
  // The agent refused the call before calling a vendor: nothing is owed.
  // A cancelled row is kept for claim_window, so the call's ticket cannot
  // be claimed later (a hostile agent, or after a hub restart).
  void cancel(Ticket* t);
  // The request saw the stream's end (finish or error from the agent).
  void ended(Ticket* t);
  // The request aborted `ch` (abort_linger already sent): meter what crossed.
  void linger(Ticket* t, tunnel::Channel* ch);
  // The stream died without an end (tunnel lost, request destroyed).
  void lost(Ticket* t);

  // From the agent's tunnel.
  void on_claim(const std::string& agent, const tunnel::Claim& c);
  // Compares the agent's chain head with the hub's. An agent that holds
  // entries the hub lacks (the hub lost settlements: restored from an older
  // backup) or whose entry at its head differs gets no more calls, and
  // nothing more is settled into its chain: its claims wait in its outbox
  // and its pending rows stay. Settling on would fork the chain, which
  // `tokengo-hub ledger import` could then no longer mend. Every sweep
  // compares again, so the import (by another process) lifts the block;
  // the claims that came meanwhile (up to kMaxHeldClaims) are then answered.
  void on_sync(const std::string& agent, const tunnel::Sync& s);
  void on_ack(const std::string& agent, const tunnel::Ack& a);
  // The agent registered: sends it the current prices.
  void agent_online(const std::string& agent);
  const crypto::PublicKey& ledger_public_key() const noexcept { return ledger_key_->public_key(); }
  // Whether calls may be routed to `agent`: false while its chain disagrees
  // with the hub's (on_sync).
  bool takes_calls(const std::string& agent) const;

  // Counters for tests and logs.
  uint64_t settled_count() const noexcept { return settled_total_; }
  uint64_t mismatch_count() const noexcept { return mismatches_; }
  size_t open_tickets() const noexcept { return tickets_.size(); }
  size_t queued() const noexcept { return queue_.size(); }

 private:
  friend class Ticket;
  void stream_done(Ticket* t);  // lingering/streaming -> ended
  void settle_ticket(Ticket* t, const tunnel::Claim& c);
  void store_observation(Ticket* t);
  void drop_ticket(Ticket* t);
  void reject(const std::string& agent, const std::string& request_id, std::string_view code,
              const std::string& message);
  void enqueue(SettleOrder o);
  Result<SettleOrder> order_for(const PendingRequest& p, const billing::Usage& u);
  // A claim for an attempt neither in memory nor in a row: billed from its
  // ticket, if it has a valid one that is not too old.
  void claim_by_ticket(const std::string& agent, const tunnel::Claim& c);
  void flush();
  // Starts the settle_delay timer unless a flush is already due.
  void schedule_flush();
  void on_flush_timer();
  Result<int64_t> balance(int64_t user_id);
  void deliver(const Settled& s);
  void send_prices_if_needed(const std::string& agent, uint64_t version);
  void maybe_checkpoint(const std::string& agent, bool force);
  void on_sweep();
  // The block of on_sync: why the agent's chain (head `s`) disagrees with
  // the hub's (empty: it agrees), or a storage error.
  Result<std::string> chain_conflict(const std::string& agent, const tunnel::Sync& s);
  bool blocked(const std::string& agent) const;
  Result<uint32_t> tier_of(const std::string& agent);

  uv_loop_t* loop_;
  BillingSettings settings_;
  LedgerStore* store_;
  billing::PriceTable prices_;
  const crypto::KeyPair* ledger_key_;
  CallTickets call_tickets_;
  SendFn send_;
  TierFn tier_;
  std::unordered_map<std::string, std::unique_ptr<Ticket>> tickets_;  // by request id
  std::vector<std::unique_ptr<Ticket>> dead_;
  std::vector<SettleOrder> queue_;
  // Balances by user id, as read at data_version balances_version_.
  static constexpr size_t kMaxCachedBalances = 4096;
  std::unordered_map<int64_t, int64_t> balances_;
  BalancesVersion balances_version_;
  Timer flush_timer_;
  Deferred reaper_;  // frees dead_ later in the loop's turn
  Timer sweep_timer_;
  uint64_t last_pending_sweep_ms_ = 0;
  uint64_t last_checkpoint_sweep_ms_ = 0;
  struct AgentBook {
    std::unordered_set<uint64_t> prices_sent;  // versions sent on the current tunnel
    uint64_t checkpoint_seq = 0;               // last checkpointed seq (loaded lazily)
    bool checkpoint_loaded = false;
    uint64_t head_seq = 0;                     // last settled seq seen here
    uint64_t last_reject_log_ms = 0;           // claim refusals are logged once a second
    uint64_t rejects_unlogged = 0;
    bool ledger_blocked = false;               // the agent's chain disagrees (on_sync)
    tunnel::Sync synced;                       // the agent's last reported head
    // Claims that came while blocked, answered when the block lifts (the
    // agent re-sends its whole outbox only after a reconnect); at most
    // kMaxHeldClaims, the rest wait for that reconnect.
    std::vector<tunnel::Claim> held_claims;
  };
  std::unordered_map<std::string, AgentBook> books_;
  struct TierCache {
    uint32_t tier_ppm = 0;
    uint64_t at_ms = 0;
  };
  std::unordered_map<std::string, TierCache> tiers_;
  uint64_t settled_total_ = 0;
  uint64_t mismatches_ = 0;
  bool stopped_ = false;
};

}  // namespace tg::hub
