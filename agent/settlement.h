// The agent's half of billing: every call that reached a vendor ends in the
// outbox (LedgerMirror) and is claimed from the hub with the usage the agent
// read itself; each `settle` the hub sends is verified against that reading
// and the price table before it joins the mirrored chain, and acknowledged
// (`ok` or `dispute`). After every (re)connect the agent syncs its chain head
// and claims its whole outbox again; the hub settles by request id, so a
// claim is never paid twice.
//
// Writes are grouped: finished calls and settles are queued and committed
// together, in arrival order, in one SQLite transaction at most
// `commit_delay_ms` after the first of them (each step in its own savepoint,
// so one refused entry does not undo the others). Claims and acks go out only
// after that commit, so the hub never hears of a row that is not on disk; a
// crash inside the window loses no more than a crash just before the row was
// written (the hub keeps its own reading; settles are sent again after the
// next sync). One commit per batch instead of two per request is what keeps
// the agent's CPU and the device's flash writes per request low.
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
// Queued finished calls and settles committed at once, at most.
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

  // commit_delay_ms: how long the first queued write may wait for others
  // (0: committed at the start of the next loop turn).
  Settlement(uv_loop_t* loop, LedgerMirror* mirror, SendFn send, uint64_t commit_delay_ms);
  // Commits what is still queued (nothing is sent: the tunnel is gone).
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

  void queue(Queued q);
  // Commits the queue in one transaction, then sends its claims and acks
  // (unless `send` is false).
  void flush(bool send);
  // Each returns the message to send once the batch is committed, if any.
  std::optional<tunnel::Message> record(const OutboxItem& item);
  std::optional<tunnel::Message> settle(const tunnel::Settle& s);
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
  Timer commit_timer_;
  uint64_t last_sync_ms_ = 0;
  bool synced_once_ = false;
  bool sync_wanted_ = false;  // a gap was seen: sync once the batch is committed
  SettlementStats stats_;
};

}  // namespace tg::agent
