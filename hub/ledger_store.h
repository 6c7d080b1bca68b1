// The hub's money storage behind one narrow interface: dispatched attempts
// waiting for settlement, the per-agent settlement chains (shared/ledger),
// signed checkpoints, the price-table versions in force, and user balances.
// Billing (billing.h) and the operator commands speak only this interface, so
// a networked database can replace the SQLite implementation
// (ledger_sqlite.h) for a multi-hub deployment. Every method is synchronous
// and either completes or changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/billing/prices.h"
#include "shared/billing/usage.h"
#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/ledger/checkpoint.h"
#include "shared/ledger/entry.h"

namespace tg::hub {

// One attempt sent to an agent and not settled yet. Written before the call
// goes out, so that a claim after a hub crash finds it, and so that an agent
// can only claim what it was sent.
struct PendingRequest {
  std::string request_id;
  std::string agent;  // canonical base64 key of the agent it was sent to
  int64_t user_id = 0;
  std::string model;
  uint64_t price_version = 0;
  int64_t created_ms = 0;
  // The hub's own reading, stored when the stream was lost before the
  // agent's claim arrived (tunnel or agent died, linger timed out).
  std::optional<billing::Usage> observed;
  int64_t observed_ms = 0;
  // The agent refused the call before calling a vendor: nothing is owed,
  // and a claim for it is refused.
  bool cancelled = false;
};

// One settlement to append: everything but the chain position, which the
// store assigns inside its transaction (seq = head + 1, prev = head hash).
struct SettleOrder {
  std::string request_id;
  std::string agent;
  std::optional<int64_t> user_id;  // debited by `cost`; none for imported entries
  std::string model;
  billing::Usage usage;
  uint64_t price_version = 0;
  int64_t cost = 0;
  uint32_t tier_ppm = 0;
  int64_t credit = 0;
  int64_t time_ms = 0;
};

struct Settled {
  ledger::Entry entry;
  ledger::Hash hash{};
  std::string agent;              // canonical base64
  bool created = false;           // false: the request was settled before (idempotent replay)
};

// The head of one agent's chain and its running totals.
struct ChainInfo {
  std::string agent;
  uint64_t seq = 0;               // entries 1..seq; 0 = empty chain
  ledger::Hash head{};            // hash of entry `seq` (zeros when empty)
  int64_t total_cost = 0;
  int64_t total_credit = 0;
};

struct StoredCheckpoint {
  ledger::Checkpoint checkpoint;
  crypto::Signature sig{};
};

struct UserBalance {
  int64_t user_id = 0;
  std::string name;
  int64_t balance = 0;            // micro-units; may be negative after a long stream
  int64_t credited = 0;           // sum of operator credits
  int64_t spent = 0;              // sum of settled costs
  uint64_t requests = 0;          // settled entries
};

struct BalancesVersion {
  int64_t data_version = -1;
  uint64_t credits = 0;
  bool operator==(const BalancesVersion& o) const noexcept {
    return data_version == o.data_version && credits == o.credits;
  }
  bool operator!=(const BalancesVersion& o) const noexcept { return !(*this == o); }
};

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  // Records the table as version table.version(). The same version with
  // other prices is refused (Errc::invalid_argument): a version, once used,
  // never changes meaning.
  virtual Status record_prices(const billing::PriceTable& table, int64_t now_ms) = 0;
  virtual Result<std::optional<billing::PriceTable>> prices(uint64_t version) = 0;

  // Writes `r`'s row, replacing any row of the same request id: an attempt
  // the hub must remember beyond its memory (a lost stream's reading, a
  // refused call). Attempts in flight have no row (hub/call_ticket.h).
  virtual Status put_pending(const PendingRequest& r) = 0;
  virtual Result<std::optional<PendingRequest>> pending(std::string_view request_id) = 0;
  // Pending attempts that waited long enough: observed before
  // `observed_before_ms`, or never observed and created before
  // `created_before_ms`. Oldest first, at most `limit`.
  virtual Result<std::vector<PendingRequest>> pending_due(int64_t observed_before_ms,
                                                          int64_t created_before_ms,
                                                          size_t limit) = 0;
  // Forgets a pending attempt that will never be settled (nothing owed).
  virtual Status drop_pending(std::string_view request_id) = 0;

  // Appends the orders in one transaction, in order. An order whose request
  // is settled already yields that entry (created=false) and changes
  // nothing. A created entry debits its user, ends the pending attempt and
  // moves the chain head.
  virtual Result<std::vector<Settled>> settle(const std::vector<SettleOrder>& orders) = 0;
  virtual Result<std::optional<Settled>> settled(std::string_view request_id) = 0;
  // Entries of `agent`'s chain with seq > after_seq, in order, at most `limit`.
  virtual Result<std::vector<ledger::Entry>> entries(std::string_view agent, uint64_t after_seq,
                                                     size_t limit) = 0;
  virtual Result<ChainInfo> chain(std::string_view agent) = 0;
  virtual Result<std::vector<ChainInfo>> chains() = 0;

  virtual Status add_checkpoint(const StoredCheckpoint& cp) = 0;
  virtual Result<std::optional<StoredCheckpoint>> last_checkpoint(std::string_view agent) = 0;
  virtual Result<std::vector<StoredCheckpoint>> checkpoints(std::string_view agent) = 0;

  // Adds `amount` (may be negative) to the user's balance, with an audit row.
  virtual Result<UserBalance> credit_user(std::string_view user, int64_t amount,
                                          int64_t now_ms) = 0;
  virtual Result<std::optional<UserBalance>> user_balance(std::string_view user) = 0;
  // Balance by id (the request path); Errc::not_found for an unknown id.
  virtual Result<int64_t> balance_of(int64_t user_id) = 0;
  // Changes whenever a balance may have changed other than by this store's
  // settle(): a commit by another process (seen once per `tick` at most,
  // sqlite::Db::data_version) or a credit_user() through this store.
  virtual Result<BalancesVersion> balances_version(uint64_t tick) = 0;
  virtual Result<std::vector<UserBalance>> balances() = 0;
};

}  // namespace tg::hub
