#include "shared/ledger/checkpoint.h"

namespace tg::ledger {

namespace {

void put_u64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

template <size_t N>
void put_bytes(std::string* out, const std::array<uint8_t, N>& a) {
  out->append(reinterpret_cast<const char*>(a.data()), N);
}

bool all_zero(const Hash& h) {
  for (uint8_t b : h) {
    if (b != 0) return false;
  }
  return true;
}

Status invalid(const char* field, const std::string& what) {
  return error(Errc::invalid_argument, std::string("checkpoint.") + field + ": " + what);
}

Status check_int(const char* field, int64_t v, int64_t max) {
  if (v < 0 || v > max) {
    return invalid(field, "must be 0.." + std::to_string(max) + ", got " + std::to_string(v));
  }
  return Status();
}

}  // namespace

bool operator==(const Checkpoint& a, const Checkpoint& b) {
  return a.agent == b.agent && a.seq == b.seq && a.head == b.head &&
         a.total_cost == b.total_cost && a.total_credit == b.total_credit &&
         a.time_ms == b.time_ms;
}

bool operator!=(const Checkpoint& a, const Checkpoint& b) { return !(a == b); }

Status validate(const Checkpoint& c) {
  if (c.seq > kMaxSeq) {
    return invalid("seq", "must be 0.." + std::to_string(kMaxSeq) + ", got " + std::to_string(c.seq));
  }
  if (c.seq == 0 && !all_zero(c.head)) {
    return invalid("head", "must be all zero for seq 0, got " + to_hex(c.head));
  }
  if (c.seq > 0 && all_zero(c.head)) {
    return invalid("head", "must be the hash of entry " + std::to_string(c.seq) + ", got all zero");
  }
  TG_TRY(check_int("total_cost", c.total_cost, kMaxTotal));
  if (c.total_credit < 0 || c.total_credit > c.total_cost) {
    return invalid("total_credit", "must be 0..total_cost (" + std::to_string(c.total_cost) +
                                       "), got " + std::to_string(c.total_credit));
  }
  return check_int("time_ms", c.time_ms, kMaxTimeMs);
}

Checkpoint checkpoint_of(const ChainWalker& walker, int64_t time_ms) {
  Checkpoint c;
  c.agent = walker.agent();
  c.seq = walker.seq();
  c.head = walker.head();
  c.total_cost = walker.total_cost();
  c.total_credit = walker.total_credit();
  c.time_ms = time_ms;
  return c;
}

std::string canonical(const Checkpoint& c) {
  std::string out;
  out.reserve(kCheckpointSize);
  out.append(kCheckpointLabel);
  put_bytes(&out, c.agent);
  put_u64(&out, c.seq);
  put_bytes(&out, c.head);
  put_u64(&out, static_cast<uint64_t>(c.total_cost));
  put_u64(&out, static_cast<uint64_t>(c.total_credit));
  put_u64(&out, static_cast<uint64_t>(c.time_ms));
  return out;
}

crypto::Signature sign(const crypto::KeyPair& hub_key, const Checkpoint& c) {
  return hub_key.sign(canonical(c));
}

bool verify(const crypto::PublicKey& hub_key, const Checkpoint& c, const crypto::Signature& sig) {
  return crypto::verify(hub_key, canonical(c), sig);
}

}  // namespace tg::ledger
