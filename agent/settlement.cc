#include "agent/settlement.h"

#include <algorithm>
#include <utility>

#include "shared/core/log.h"

namespace tg::agent {
namespace {

constexpr const char* kLog = "ledger";

}  // namespace

namespace {

void drop_acks(std::vector<tunnel::Message>* out) {
  out->erase(std::remove_if(out->begin(), out->end(),
                            [](const tunnel::Message& m) { return std::holds_alternative<tunnel::Ack>(m); }),
             out->end());
}

tunnel::Claim claim_of(const OutboxItem& item) {
  tunnel::Claim c;
  c.request_id = item.request_id;
  c.model = item.model;
  c.input = item.usage.input;
  c.cached = item.usage.cached;
  c.output = item.usage.output;
  c.estimated = item.usage.estimated;
  c.ticket = item.ticket;
  return c;
}

}  // namespace

Settlement::Settlement(uv_loop_t* loop, LedgerMirror* mirror, SendFn send, uint64_t commit_delay_ms)
    : loop_(loop),
      mirror_(mirror),
      send_(std::move(send)),
      commit_delay_ms_(commit_delay_ms),
      commit_timer_(loop),
      commit_now_(loop) {}

Settlement::~Settlement() { flush(false); }

void Settlement::call_finished(const FinishedCall& f) noexcept {
  OutboxItem item;
  item.request_id = f.request_id;
  item.model = f.model;
  item.ticket = f.ticket;
  item.usage = f.usage;
  item.status = f.status;
  item.finished_ms = unix_now_ms();
  // The outbox row first, committed in this loop turn (with the settles
  // queued so far and the rows of the other calls that finish in the same
  // turn: one commit for all of them under load), the claim after it: a
  // crash after it loses nothing (the claim is sent again after the next
  // connect). Not held for the commit delay: if the hub dies too, this row
  // is the only reading of the call. Nothing of the call has left yet
  // either: its last frames wait in the tunnel's batch for the next turn.
  queue(std::move(item), When::this_turn);
}

void Settlement::queue(Queued q, When when) {
  queue_.push_back(std::move(q));
  if (queue_.size() >= kMaxBatch) {
    flush(true);
  } else if (when == When::this_turn) {
    if (!commit_now_.pending()) commit_now_.post([this] { flush(true); });
  } else if (!commit_timer_.active()) {
    commit_timer_.start(commit_delay_ms_, 0, [this] { flush(true); });
  }
}

void Settlement::flush(bool send) {
  commit_timer_.stop();
  commit_now_.cancel();
  if (queue_.empty()) return;
  std::vector<Queued> batch;
  batch.swap(queue_);
  std::vector<tunnel::Message> out;
  out.reserve(batch.size());
  auto tx = sqlite::Tx::begin(mirror_->db());
  if (!tx.ok()) {
    TG_ERROR(kLog, "ledger: %s", tx.status().to_string().c_str());
  }
  // The batch's settles form one run of the chain: its head is read at the
  // first and written once, after the last.
  std::optional<LedgerMirror::Run> run;
  bool run_failed = false;
  for (const Queued& q : batch) {
    std::optional<tunnel::Message> m;
    if (std::holds_alternative<OutboxItem>(q)) {
      m = record(std::get<OutboxItem>(q));
    } else {
      if (!run && !run_failed) {
        auto r = mirror_->begin_run();
        if (r.ok()) {
          run.emplace(std::move(*r));
        } else {
          run_failed = true;
          TG_ERROR(kLog, "ledger: %s", r.status().to_string().c_str());
        }
      }
      if (run) m = settle(std::get<tunnel::Settle>(q), &*run);
    }
    if (m) out.push_back(std::move(*m));
  }
  if (run) {
    Status s = run->finish();
    run.reset();
    if (!s.ok()) {
      // The run's writes are undone with the whole batch's transaction, as
      // when its commit fails (below): no ack, the claims still go out.
      TG_ERROR(kLog, "ledger: %zu writes not kept: %s", batch.size(), s.to_string().c_str());
      drop_acks(&out);
      if (tx.ok()) tx->rollback();
    }
  }
  if (tx.ok() && tx->active()) {
    Status s = tx->commit();
    if (!s.ok()) {
      // Nothing of the batch is on disk: no ack (the settles come again after
      // the next sync); the claims still go out (the hub settles on them, and
      // the entries arrive as `unobserved`).
      TG_ERROR(kLog, "ledger: %zu writes not committed: %s", batch.size(), s.to_string().c_str());
      drop_acks(&out);
    } else {
      ++stats_.commits;
    }
  }
  if (!send) return;
  for (const tunnel::Message& m : out) {
    const bool claim = std::holds_alternative<tunnel::Claim>(m);
    if (send_(m).ok() && claim) ++stats_.claims;
  }
  if (std::exchange(sync_wanted_, false)) send_sync();
}

std::optional<tunnel::Message> Settlement::record(const OutboxItem& item) {
  Status s = mirror_->record_finished(item);
  if (!s.ok()) {
    TG_ERROR(kLog, "%s: not written to the outbox: %s", item.request_id.c_str(), s.to_string().c_str());
  } else {
    ++stats_.recorded;
  }
  return tunnel::Message(claim_of(item));
}

void Settlement::send_claim(const OutboxItem& item) {
  if (send_(claim_of(item)).ok()) ++stats_.claims;
}

void Settlement::on_welcome(const tunnel::Welcome& w) noexcept {
  Status s = mirror_->remember_hub_key(w.ledger_key);
  if (!s.ok()) TG_WARN(kLog, "%s", s.message().c_str());
}

void Settlement::send_sync() {
  auto head = mirror_->head();
  if (!head.ok()) {
    TG_ERROR(kLog, "ledger head: %s", head.status().to_string().c_str());
    return;
  }
  tunnel::Sync m;
  m.seq = head->seq;
  m.head = head->head;
  last_sync_ms_ = uv_now(loop_);
  synced_once_ = true;
  (void)send_(m);
}

void Settlement::on_ready() noexcept {
  flush(true);  // what is queued is claimed once, below or by its own flush
  send_sync();
  auto items = mirror_->outbox(kMaxReplayClaims);
  if (!items.ok()) {
    TG_ERROR(kLog, "outbox: %s", items.status().to_string().c_str());
    return;
  }
  for (const OutboxItem& item : *items) send_claim(item);
  if (!items->empty()) TG_INFO(kLog, "claimed %zu unsettled requests from the outbox", items->size());
}

void Settlement::on_ledger_message(const tunnel::Message& m) noexcept {
  switch (tunnel::type_of(m)) {
    case tunnel::Type::prices: on_prices(std::get<tunnel::Prices>(m)); return;
    case tunnel::Type::settle: queue(std::get<tunnel::Settle>(m), When::after_delay); return;
    case tunnel::Type::checkpoint: on_checkpoint(std::get<tunnel::Checkpoint>(m)); return;
    case tunnel::Type::claim_rejected: on_claim_rejected(std::get<tunnel::ClaimRejected>(m)); return;
    default: return;
  }
}

void Settlement::on_prices(const tunnel::Prices& p) {
  std::vector<std::pair<std::string, billing::ModelPrice>> entries;
  for (const tunnel::PriceEntry& e : p.models) {
    entries.emplace_back(e.model, billing::ModelPrice{e.input, e.cached_input, e.output});
  }
  auto table = billing::PriceTable::make(p.version, std::move(entries));
  if (!table.ok()) {
    TG_ERROR(kLog, "price version %llu from the hub refused: %s",
             static_cast<unsigned long long>(p.version), table.status().message().c_str());
    return;
  }
  Status s = mirror_->store_prices(*table);
  if (!s.ok()) {
    TG_ERROR(kLog, "%s", s.message().c_str());
    return;
  }
  TG_DEBUG(kLog, "price version %llu stored (%zu models)", static_cast<unsigned long long>(p.version),
           p.models.size());
}

std::optional<tunnel::Message> Settlement::settle(const tunnel::Settle& s, LedgerMirror::Run* run) {
  ledger::Entry e;
  e.agent = mirror_->self();
  e.seq = s.seq;
  e.request_id = s.request_id;
  e.model = s.model;
  e.input = s.input;
  e.cached = s.cached;
  e.output = s.output;
  e.estimated = s.estimated;
  e.price_version = s.price_version;
  e.cost = s.cost;
  e.tier_ppm = s.tier_ppm;
  e.credit = s.credit;
  e.time_ms = s.time_ms;
  e.prev = s.prev;
  auto v = run->apply(e, s.hash, unix_now_ms());
  if (!v.ok()) {
    // Storage trouble: nothing kept, no ack; the next sync sends it again.
    TG_ERROR(kLog, "entry %llu not kept: %s", static_cast<unsigned long long>(s.seq),
             v.status().to_string().c_str());
    return std::nullopt;
  }
  tunnel::Ack ack;
  ack.seq = s.seq;
  ack.hash = s.hash;
  ack.result = "ok";
  switch (v->kind) {
    case Verdict::Kind::appended:
      ++stats_.appended;
      if (v->status == EntryStatus::disputed) {
        ++stats_.disputed;
        ack.result = "dispute";
        ack.message = v->message.substr(0, tunnel::kMaxText);
        TG_WARN(kLog, "entry %llu (%s) disputed: %s", static_cast<unsigned long long>(s.seq),
                s.request_id.c_str(), v->message.c_str());
      } else if (v->status == EntryStatus::unobserved) {
        ++stats_.unobserved;
        TG_INFO(kLog, "entry %llu (%s) kept without our own reading (the call was lost here)",
                static_cast<unsigned long long>(s.seq), s.request_id.c_str());
      }
      break;
    case Verdict::Kind::duplicate:
      break;
    case Verdict::Kind::gap:
      if (!synced_once_ || uv_now(loop_) - last_sync_ms_ >= kSyncIntervalMs) sync_wanted_ = true;
      return std::nullopt;  // no ack: the entry comes again after the sync
    case Verdict::Kind::rejected:
      ++stats_.rejected;
      ack.result = "dispute";
      ack.message = v->message.substr(0, tunnel::kMaxText);
      TG_ERROR(kLog, "entry %llu refused: %s", static_cast<unsigned long long>(s.seq),
               v->message.c_str());
      break;
  }
  return tunnel::Message(std::move(ack));
}

void Settlement::on_checkpoint(const tunnel::Checkpoint& c) {
  ledger::Checkpoint cp;
  cp.agent = mirror_->self();
  cp.seq = c.seq;
  cp.head = c.head;
  cp.total_cost = c.total_cost;
  cp.total_credit = c.total_credit;
  cp.time_ms = c.time_ms;
  Status s = mirror_->store_checkpoint(cp, c.sig);
  if (!s.ok()) {
    TG_WARN(kLog, "checkpoint %llu not kept: %s", static_cast<unsigned long long>(c.seq),
            s.message().c_str());
    return;
  }
  ++stats_.checkpoints;
  TG_DEBUG(kLog, "checkpoint %llu kept", static_cast<unsigned long long>(c.seq));
}

void Settlement::on_claim_rejected(const tunnel::ClaimRejected& r) {
  ++stats_.refused_claims;
  TG_WARN(kLog, "the hub refused the claim for %s (%s): %s", r.request_id.c_str(), r.code.c_str(),
          r.message.c_str());
  Status s = mirror_->claim_rejected(RejectedClaim{r.request_id, r.code, r.message, unix_now_ms()});
  if (!s.ok()) TG_ERROR(kLog, "%s", s.to_string().c_str());
}

}  // namespace tg::agent
