#include "shared/ledger/chain.h"

#include <string>

#include "shared/crypto/hash.h"

namespace tg::ledger {

namespace {

std::string key_b64(const crypto::PublicKey& k) {
  return crypto::base64_encode(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

Status chain_error(Errc code, uint64_t seq, const std::string& what) {
  return error(code, "seq " + std::to_string(seq) + ": " + what);
}

}  // namespace

ChainWalker::ChainWalker(const crypto::PublicKey& agent, uint64_t start_seq, Hash start_head)
    : agent_(agent), seq_(start_seq), head_(start_head) {}

Status ChainWalker::add(const Entry& e) {
  if (e.agent != agent_) {
    return chain_error(Errc::protocol, e.seq,
                       "agent " + key_b64(e.agent) + " is not the chain's agent " + key_b64(agent_));
  }
  const Status valid = validate(e);
  if (!valid.ok()) return chain_error(Errc::protocol, e.seq, valid.message());
  if (e.seq != seq_ + 1) {
    return chain_error(Errc::protocol, e.seq,
                       "expected seq " + std::to_string(seq_ + 1) +
                           (e.seq <= seq_ ? "; a duplicated or replayed entry"
                                          : "; an entry is missing or out of order"));
  }
  if (e.prev != head_) {
    return chain_error(Errc::protocol, e.seq,
                       "expected prev " + to_hex(head_) + ", got " + to_hex(e.prev));
  }
  // validate() bounds both amounts by kMaxAmount and credit by cost, so the
  // checks below cannot overflow and total_credit <= total_cost <= kMaxTotal.
  if (e.cost > kMaxTotal - total_cost_) {
    return chain_error(Errc::limit, e.seq,
                       "total cost " + std::to_string(total_cost_) + " + " +
                           std::to_string(e.cost) + " would pass the limit of " +
                           std::to_string(kMaxTotal));
  }
  total_cost_ += e.cost;
  total_credit_ += e.credit;
  seq_ = e.seq;
  head_ = hash(e);
  ++count_;
  if (e.estimated) ++estimated_count_;
  return Status();
}

Entry next_entry(const crypto::PublicKey& agent, uint64_t head_seq, const Hash& head) {
  Entry e;
  e.agent = agent;
  e.seq = head_seq + 1;
  e.prev = head;
  return e;
}

}  // namespace tg::ledger
