// Chain verification: ChainWalker checks entries of one agent's chain in
// order (agent, seq, prev link, ranges) and keeps the head and running totals.
// Pure code over in-memory entries; loading them from SQLite or a file is the
// caller's job.
#pragma once

#include <cstdint>

#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/ledger/entry.h"

namespace tg::ledger {

// Sums of cost and of credit over the entries a walker accepts stay within
// this (the same bound as one amount, so totals are exact in JSON too).
constexpr int64_t kMaxTotal = kMaxAmount;

class ChainWalker {
 public:
  // A walker of `agent`'s chain. From the start: start_seq 0 and a zero
  // start_head; the first entry must be seq 1 with a zero prev. Resuming from
  // a known head: start_seq is the last entry already verified (<= kMaxSeq)
  // and start_head its hash; the first entry must be start_seq + 1 with prev
  // == start_head. Totals and counts cover only entries passed to add().
  explicit ChainWalker(const crypto::PublicKey& agent, uint64_t start_seq = 0,
                       Hash start_head = {});

  // Accepts `e` as the next entry or says why not, leaving the walker as it
  // was. Errc::protocol, message opening with "seq N: ":
  //   another agent's entry ("agent <b64> is not the chain's agent <b64>");
  //   validate() failing;
  //   a seq other than seq() + 1 (missing, duplicated or reordered entries);
  //   prev != head() ("expected prev <hex>, got <hex>"), which is how an
  //   altered or substituted earlier entry shows.
  // Errc::limit when total_cost() would pass kMaxTotal.
  // An altered *last* entry cannot show here; compare head() with the hash
  // stored beside it (from_json() does) or with a signed checkpoint.
  Status add(const Entry& e);

  uint64_t seq() const noexcept { return seq_; }        // last seq accepted (start_seq if none)
  const Hash& head() const noexcept { return head_; }   // its hash (start_head if none)
  const crypto::PublicKey& agent() const noexcept { return agent_; }
  int64_t total_cost() const noexcept { return total_cost_; }
  int64_t total_credit() const noexcept { return total_credit_; }
  uint64_t count() const noexcept { return count_; }
  uint64_t estimated_count() const noexcept { return estimated_count_; }

 private:
  crypto::PublicKey agent_;
  uint64_t seq_;
  Hash head_;
  int64_t total_cost_ = 0;
  int64_t total_credit_ = 0;
  uint64_t count_ = 0;
  uint64_t estimated_count_ = 0;
};

// The skeleton of the entry after (head_seq, head): agent, seq = head_seq + 1
// and prev = head filled in, every other field at its default. head_seq 0
// with a zero head starts a chain.
Entry next_entry(const crypto::PublicKey& agent, uint64_t head_seq, const Hash& head);

}  // namespace tg::ledger
