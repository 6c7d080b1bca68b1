// The agent's half of billing: every call that reached a vendor ends in the
// outbox (LedgerMirror) and is claimed from the hub with the usage the agent
// read itself; each `settle` the hub sends is verified against that reading
// and the price table before it joins the mirrored chain, and acknowledged
// (`ok` or `dispute`). After every (re)connect the agent syncs its chain head
// and claims its whole outbox again; the hub settles by request id, so a
// claim is never paid twice.
//
// A finished call is written to the outbox and committed before
// call_finished returns, and claimed after that commit: after a kill -9 of
// both hub and agent the agent's row is the only reading left, so it must
// not wait (DESIGN.md: kill -9 at any moment loses no settlement). Settles
// from the hub are grouped: they wait up to `commit_delay_ms` for others
// (or for the next finished call's commit) and are appended in one SQLite
// transaction, in arrival order, each in its own savepoint so one refused
// entry does not undo the others; their acks go out after the commit. A
// settle lost in a crash comes again after the next sync. Grouping settles
// halves the agent's commits per request.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "agent/ledger_mirror.h"
#include "agent/passthrough.h"
#include "agent/tunnel_client.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/tunnel/messages.h"

namespace tg::agent {

// Claims sent per reconnect; the rest follow on the next one.
constexpr size_t kMaxReplayClaims = 4096;
// A gap in the chain triggers at most one sync per this interval.
constexpr uint64_t kSyncIntervalMs = 1000;
// Queued settles committed at once, at most.
constexpr size_t kMaxBatch = 1024;

struct SettlementStats {
  uint64_t recorded = 0;    // calls written to the outbox
  uint64_t claims = 0;      // claims sent (live and replayed)
  uint64_t appended = 0;    // entries kept
  uint64_t disputed = 0;    // of which disputed
  uint64_t unobserved = 0;  // of which the agent had no record
  uint64_t rejected = 0;    // entries refused (bad hash, prev, conflict)
  uint64_t refused_claims = 0;
  uint64_t checkpoints = 0;
  uint64_t commits = 0;     // batch transactions committed
};

class Settlement final : public CallReporter, public LedgerLink {
 public:
  // Sends a control message on the live tunnel (Errc::closed when there is none).
  using SendFn = std::function<Status(const tunnel::Message& m)>;

  // commit_delay_ms: how long the first queued settle may wait for others
  // (0: committed at the start of the next loop turn).
  Settlement(uv_loop_t* loop, LedgerMirror* mirror, SendFn send, uint64_t commit_delay_ms);
  // Commits the settles still queued (nothing is sent: the tunnel is gone).
  ~Settlement() override;
  Settlement(const Settlement&) = delete;
  Settlement& operator=(const Settlement&) = delete;

  void call_finished(const FinishedCall& f) noexcept override;
  void on_welcome(const tunnel::Welcome& w) noexcept override;
  void on_ready() noexcept override;
  void on_ledger_message(const tunnel::Message& m) noexcept override;

  const SettlementStats& stats() const noexcept { return stats_; }

 private:
  using Queued = std::variant<OutboxItem, tunnel::Settle>;

  enum class When {
    this_turn,    // later in this loop turn (outbox rows)
    after_delay,  // within commit_delay_ms, gathering company (settles)
  };

  // Queues `q` for the next commit, scheduled by `when` unless an earlier
  // one is already due; a full batch (kMaxBatch) is committed at once.
  void queue(Queued q, When when);
  // Commits the queue in one transaction, then sends its claims and acks
  // (unless `send` is false).
  void flush(bool send);
  // Each returns the message to send once the batch is committed, if any.
  std::optional<tunnel::Message> record(const OutboxItem& item);
  std::optional<tunnel::Message> settle(const tunnel::Settle& s, LedgerMirror::Run* run);
  void send_claim(const OutboxItem& item);
  void send_sync();
  void on_checkpoint(const tunnel::Checkpoint& c);
  void on_prices(const tunnel::Prices& p);
  void on_claim_rejected(const tunnel::ClaimRejected& r);

  uv_loop_t* loop_;
  LedgerMirror* mirror_;
  SendFn send_;
  uint64_t commit_delay_ms_;
  std::vector<Queued> queue_;
  Timer commit_timer_;     // settles: wait up to commit_delay_ms for company
  Deferred commit_now_;    // outbox rows: committed later in the same loop turn
  uint64_t last_sync_ms_ = 0;
  bool synced_once_ = false;
  bool sync_wanted_ = false;  // a gap was seen: sync once the batch is committed
  SettlementStats stats_;
};

}  // namespace tg::agent
