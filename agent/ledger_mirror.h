// The agent's own ledger, in its SQLite file (WAL; its location is the
// `ledger` setting, so a router can keep it off its flash): the outbox of
// finished requests not yet settled, the price tables the hub pushed, the
// mirror of this agent's settlement chain, disputes, refused claims and the
// hub's signed checkpoints. apply() is the verification: an entry is
// recomputed from what the agent saw itself before it is kept.
//
// Per request the file is written twice: the outbox row when the call ends,
// and the chain row (which deletes the outbox row) when the hub settles it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <map>
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
#include "shared/sqlite/db.h"

namespace tg::agent {

// The page size of a new ledger file. Rows are small (an outbox row about
// 100 bytes, a chain row about 200) and every commit appends each page it
// touched to the WAL whole, checksummed: 1 KiB pages write a quarter of
// what 4 KiB pages would per settled request, on flash too.
constexpr int kLedgerPageSize = 1024;

// Price versions kept parsed in memory (the oldest is dropped first).
constexpr size_t kCachedPriceVersions = 8;

// A finished call as the agent saw it, kept until the hub settles it.
struct OutboxItem {
  std::string request_id;
  std::string model;
  std::string ticket;       // the call's ticket, returned in the claim (empty: none)
  billing::Usage usage;
  int status = 0;           // upstream status (0: no answer)
  int64_t finished_ms = 0;
};

// How an entry compares with what the agent saw.
enum class EntryStatus {
  agreed,      // usage, cost and credit recomputed and equal
  disputed,    // kept in the chain (it is the hub's statement) with a dispute row
  unobserved,  // the agent has no record of the request (it crashed mid-call)
};
const char* entry_status_name(EntryStatus s) noexcept;

struct Verdict {
  enum class Kind {
    appended,    // new entry kept (see status)
    duplicate,   // already held, identical
    gap,         // seq beyond head + 1: sync needed, nothing kept
    rejected,    // not a valid next entry (bad hash, prev, agent, or conflicts): nothing kept
  };
  Kind kind = Kind::rejected;
  EntryStatus status = EntryStatus::agreed;
  std::string message;  // why disputed or rejected
};

struct MirrorHead {
  uint64_t seq = 0;
  ledger::Hash head{};
  int64_t total_cost = 0;
  int64_t total_credit = 0;
};

struct StoredEntry {
  ledger::Entry entry;
  ledger::Hash hash{};
  EntryStatus status = EntryStatus::agreed;
  int64_t received_ms = 0;
};

struct Dispute {
  uint64_t seq = 0;
  std::string request_id;
  std::string reason;
  int64_t at_ms = 0;
};

struct RejectedClaim {
  std::string request_id;
  std::string code;
  std::string message;
  int64_t at_ms = 0;
};

struct MirrorCheckpoint {
  ledger::Checkpoint checkpoint;
  crypto::Signature sig{};
  crypto::PublicKey hub_key{};
};

class LedgerMirror {
 public:
  // Opens or creates the ledger at `path` for the agent whose key is
  // `self`. A file made for another agent key is refused.
  static Result<std::unique_ptr<LedgerMirror>> open(const std::string& path,
                                                    const crypto::PublicKey& self,
                                                    bool create = true);
  // For the commands: opens an existing ledger whatever its agent key.
  static Result<std::unique_ptr<LedgerMirror>> open_existing(const std::string& path);

  const crypto::PublicKey& self() const noexcept { return self_; }

  // ---- outbox ----
  Status record_finished(const OutboxItem& item);
  // Oldest first.
  Result<std::vector<OutboxItem>> outbox(size_t limit);
  Result<uint64_t> outbox_count();
  // The hub refused the claim: the item leaves the outbox, the refusal is kept.
  Status claim_rejected(const RejectedClaim& r);
  Result<std::vector<RejectedClaim>> rejected_claims();

  // ---- prices ----
  Status store_prices(const billing::PriceTable& table);
  Result<std::optional<billing::PriceTable>> prices(uint64_t version);

  // ---- chain ----
  Result<MirrorHead> head();

  // A run of the hub's entries verified and kept one after another, as the
  // settlement batch of one loop turn applies them. The chain head is read
  // once when the run begins and written once by finish(), not per entry.
  //
  // Begun outside a transaction, the run is one and finish() commits it.
  // Begun inside the caller's, it opens none of its own (a savepoint held
  // across the run would keep every page each entry touched in SQLite's
  // sub-journal until the run ends, which spills to a temporary file after
  // 64 KiB): then an error from finish() means the caller must roll its
  // transaction back, and the caller commits only after finish() succeeded.
  //
  // An entry's writes need no savepoint either: the chain row is its first
  // write, and the only one that can fail for a reason of the entry's own
  // (a repeated request id: the entry is refused, nothing was written).
  // Any other failure is storage trouble: apply() returns it and finish()
  // then refuses the whole run.
  class Run {
   public:
    Run(Run&&) noexcept = default;
    Run& operator=(Run&&) = delete;
    // Verifies `e` (agent = self) with hash `claimed` as the next entry and
    // keeps it: see Verdict.
    Result<Verdict> apply(const ledger::Entry& e, const ledger::Hash& claimed, int64_t now_ms);
    // Writes the head the run reached (and commits the run's own
    // transaction, if it has one). Fails if any apply() failed.
    Status finish();
    const MirrorHead& head() const noexcept { return head_; }

   private:
    friend class LedgerMirror;
    Run(LedgerMirror* mirror, std::optional<sqlite::Tx> tx, const MirrorHead& head) noexcept
        : mirror_(mirror), tx_(std::move(tx)), head_(head) {}
    Result<Verdict> append(const ledger::Entry& e, const ledger::Hash& h, int64_t now_ms);
    LedgerMirror* mirror_;
    std::optional<sqlite::Tx> tx_;  // set: the run's own transaction
    MirrorHead head_;
    bool advanced_ = false;  // an entry was appended: the head needs writing
    Status failed_;          // the first storage error of an apply()
  };
  Result<Run> begin_run();
  // One entry as a run of its own: its own transaction when none is open;
  // inside the caller's, an error means the caller must roll that back.
  Result<Verdict> apply(const ledger::Entry& e, const ledger::Hash& claimed, int64_t now_ms);
  Result<std::vector<StoredEntry>> entries(uint64_t after_seq, size_t limit);
  Result<std::vector<Dispute>> disputes();

  // ---- checkpoints ----
  // The hub's checkpoint key, remembered from the first welcome; a changed
  // key is kept and reported (Errc::permission) so the operator sees it.
  Status remember_hub_key(const crypto::PublicKey& key);
  Result<std::optional<crypto::PublicKey>> hub_key();
  // Verifies the signature under the remembered hub key and that `head`
  // matches our entry at `seq` (when we hold it), then keeps it.
  Status store_checkpoint(const ledger::Checkpoint& c, const crypto::Signature& sig);
  Result<std::vector<MirrorCheckpoint>> checkpoints();

  sqlite::Db& db() noexcept { return db_; }

 private:
  LedgerMirror(sqlite::Db db, const crypto::PublicKey& self) : db_(std::move(db)), self_(self) {}
  Result<std::optional<OutboxItem>> outbox_item(std::string_view request_id);
  Status drop_outbox_item(std::string_view request_id);
  Result<std::optional<StoredEntry>> entry_at(uint64_t seq);

  sqlite::Db db_;
  crypto::PublicKey self_{};
  // Price tables read so far (a version never changes once stored), so
  // verifying an entry does not read its table from the file every time.
  std::map<uint64_t, billing::PriceTable> price_cache_;
};

}  // namespace tg::agent
