#include "hub/billing.h"

#include <algorithm>
#include <utility>

#include "hub/agent_store.h"
#include "shared/core/log.h"
#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"

namespace tg::hub {
namespace {

constexpr const char* kLog = "billing";

std::string usage_text(const billing::Usage& u) {
  return "in=" + std::to_string(u.input) + " cached=" + std::to_string(u.cached) +
         " out=" + std::to_string(u.output) + (u.estimated ? " (estimated)" : "");
}

billing::Usage usage_of(const tunnel::Claim& c) {
  billing::Usage u;
  u.input = c.input;
  u.cached = c.cached;
  u.output = c.output;
  u.estimated = c.estimated;
  return u;
}

tunnel::Settle settle_message(const ledger::Entry& e, const ledger::Hash& h) {
  tunnel::Settle m;
  m.seq = e.seq;
  m.request_id = e.request_id;
  m.model = e.model;
  m.input = e.input;
  m.cached = e.cached;
  m.output = e.output;
  m.estimated = e.estimated;
  m.price_version = e.price_version;
  m.cost = e.cost;
  m.tier_ppm = e.tier_ppm;
  m.credit = e.credit;
  m.time_ms = e.time_ms;
  m.prev = e.prev;
  m.hash = h;
  return m;
}

}  // namespace

// ---- Ticket: the channel handler while an aborted stream lingers ----

void Ticket::on_channel_message(tunnel::Channel&, const tunnel::Message& m) noexcept {
  // A finish or error that crossed our abort: every byte is in. The channel
  // is gone once this returns.
  if (tunnel::type_of(m) == tunnel::Type::finish || tunnel::type_of(m) == tunnel::Type::error) {
    channel_ = nullptr;
    billing_->stream_done(this);
  }
}

void Ticket::on_channel_data(tunnel::Channel&, std::string_view data, bool) noexcept {
  meter_.response_body(data);
}

void Ticket::on_channel_closed(tunnel::Channel&, const Status&) noexcept {
  channel_ = nullptr;
  billing_->lost(this);
}

// ---- Billing ----

Billing::Billing(uv_loop_t* loop, const BillingSettings& settings, LedgerStore* store,
                 billing::PriceTable prices, const crypto::KeyPair* ledger_key, SendFn send,
                 TierFn tier)
    : loop_(loop),
      settings_(settings),
      store_(store),
      prices_(std::move(prices)),
      ledger_key_(ledger_key),
      call_tickets_(*ledger_key),
      send_(std::move(send)),
      tier_(std::move(tier)),
      flush_timer_(loop),
      reaper_(loop),
      sweep_timer_(loop) {}

Billing::~Billing() {
  flush_timer_.stop();
  reaper_.cancel();
  sweep_timer_.stop();
  for (auto& [id, t] : tickets_) {
    if (t->channel_) {
      t->channel_->set_handler(nullptr);
      t->channel_->close(tunnel::abort_reason::shutdown);
      t->channel_ = nullptr;
    }
  }
}

Status Billing::start() {
  TG_TRY(store_->record_prices(prices_, unix_now_ms()));
  sweep_timer_.start(kSweepMs, kSweepMs, [this] { on_sweep(); });
  TG_INFO(kLog, "prices version %llu (%zu models), minimum balance %s",
          static_cast<unsigned long long>(prices_.version()), prices_.entries().size(),
          billing::format_amount(settings_.min_balance).c_str());
  return Status::success();
}

void Billing::stop() {
  if (stopped_) return;
  // Streams still metered are lost to us: keep what we saw for the claims.
  std::vector<Ticket*> open;
  for (auto& [id, t] : tickets_) open.push_back(t.get());
  for (Ticket* t : open) {
    if (t->channel_) {
      t->channel_->set_handler(nullptr);
      t->channel_->close(tunnel::abort_reason::shutdown);
      t->channel_ = nullptr;
    }
    store_observation(t);
    drop_ticket(t);
  }
  flush();
  stopped_ = true;
  flush_timer_.stop();
  sweep_timer_.stop();
}

Status Billing::reload_prices(billing::PriceTable table, const std::vector<std::string>& online) {
  if (table == prices_) return Status::success();
  TG_TRY(store_->record_prices(table, unix_now_ms()));
  TG_INFO(kLog, "prices version %llu (%zu models) replace version %llu for new requests",
          static_cast<unsigned long long>(table.version()), table.entries().size(),
          static_cast<unsigned long long>(prices_.version()));
  prices_ = std::move(table);
  for (const std::string& agent : online) send_prices_if_needed(agent, prices_.version());
  return Status::success();
}

Result<int64_t> Billing::balance(int64_t user_id) {
  // The cache holds what was last read. A credit (from the CLI, another
  // process, or through the store) changes balances_version and empties it;
  // the settlements' debits evict their users in flush().
  auto v = store_->balances_version(uv_now(loop_));
  if (!v.ok()) return v.status();
  if (*v != balances_version_) {
    balances_.clear();
    balances_version_ = *v;
  }
  if (auto it = balances_.find(user_id); it != balances_.end()) return it->second;
  auto b = store_->balance_of(user_id);
  if (!b.ok()) return b.status();
  if (balances_.size() >= kMaxCachedBalances) balances_.clear();
  balances_.emplace(user_id, *b);
  return *b;
}

Status Billing::check_balance(int64_t user_id) {
  auto b = balance(user_id);
  if (!b.ok()) return b.status();
  if (*b < settings_.min_balance) {
    return error(Errc::limit, "the balance is " + billing::format_amount(*b) +
                                  ", under the minimum of " +
                                  billing::format_amount(settings_.min_balance) +
                                  " needed to start a request");
  }
  return Status::success();
}

bool Billing::priced(std::string_view model) const { return prices_.find(model) != nullptr; }

Result<Ticket*> Billing::open(const std::string& request_id, const std::string& agent,
                              int64_t user_id, const std::string& model, billing::Api api,
                              bool stream, size_t request_bytes) {
  if (!priced(model)) return error(Errc::not_found, "model '" + model + "' has no price");
  PendingRequest p;
  p.request_id = request_id;
  p.agent = agent;
  p.user_id = user_id;
  p.model = model;
  p.price_version = prices_.version();
  p.created_ms = unix_now_ms();
  std::string token = call_tickets_.issue(p);
  auto t = std::unique_ptr<Ticket>(new Ticket(this, std::move(p), std::move(token), api, stream));
  t->meter_.request_body(request_bytes);
  Ticket* raw = t.get();
  tickets_[request_id] = std::move(t);
  return raw;
}

void Billing::unsent(Ticket* t) { drop_ticket(t); }

void Billing::cancel(Ticket* t) {
  PendingRequest p = t->pending_;
  p.cancelled = true;
  Status s = store_->put_pending(p);
  if (!s.ok()) {
    TG_WARN(kLog, "%s: could not record the refused call: %s", p.request_id.c_str(),
            s.to_string().c_str());
  }
  drop_ticket(t);
}

void Billing::ended(Ticket* t) { stream_done(t); }

void Billing::linger(Ticket* t, tunnel::Channel* ch) {
  t->state_ = Ticket::State::lingering;
  t->channel_ = ch;
  t->deadline_ms_ = uv_now(loop_) + settings_.linger_ms;
  ch->set_handler(t);
  if (t->claim_) {
    // Cannot happen on an ordered tunnel (the claim follows the stream's
    // bytes), but a claim in hand ends the linger.
    tunnel::Channel* c = t->channel_;
    t->channel_ = nullptr;
    c->close(tunnel::abort_reason::client_gone);
    stream_done(t);
  }
}

void Billing::stream_done(Ticket* t) {
  t->state_ = Ticket::State::ended;
  t->deadline_ms_ = uv_now(loop_) + settings_.claim_wait_ms;
  if (t->claim_) {
    const tunnel::Claim c = *t->claim_;
    settle_ticket(t, c);
  }
}

void Billing::lost(Ticket* t) {
  if (t->channel_) {
    tunnel::Channel* c = t->channel_;
    t->channel_ = nullptr;
    c->set_handler(nullptr);
    c->close(tunnel::abort_reason::shutdown);
  }
  if (t->claim_) {
    // The agent's reading arrived: it covers every byte it sent.
    const tunnel::Claim c = *t->claim_;
    settle_ticket(t, c);
    return;
  }
  store_observation(t);
  drop_ticket(t);
}

void Billing::store_observation(Ticket* t) {
  PendingRequest p = t->pending_;
  p.observed = t->meter_.result();
  p.observed_ms = unix_now_ms();
  Status s = store_->put_pending(p);
  if (!s.ok()) {
    TG_ERROR(kLog, "%s: could not keep the hub's reading (%s): %s", p.request_id.c_str(),
             usage_text(*p.observed).c_str(), s.to_string().c_str());
  } else {
    TG_DEBUG(kLog, "%s: stream lost; kept the hub's reading %s until the agent claims",
             p.request_id.c_str(), usage_text(*p.observed).c_str());
  }
}

void Billing::drop_ticket(Ticket* t) {
  auto it = tickets_.find(t->pending_.request_id);
  if (it == tickets_.end()) return;
  dead_.push_back(std::move(it->second));
  tickets_.erase(it);
  // Not the flush timer: starting that at 0 settled each request alone,
  // defeating the settle_delay group commit (one commit of ~6 pages per
  // request at c=1, docs/BENCH.md "One settle commit per batch again").
  if (!reaper_.pending()) reaper_.post([this] { dead_.clear(); });
}

void Billing::reject(const std::string& agent, const std::string& request_id,
                     std::string_view code, const std::string& message) {
  // At most one warning per agent and second: a hostile agent must not be
  // able to fill the log with refusals.
  const uint64_t now = uv_now(loop_);
  AgentBook& book = books_[agent];
  if (now - book.last_reject_log_ms >= 1000 || book.last_reject_log_ms == 0) {
    TG_WARN(kLog, "claim %s from agent %s refused: %s%s", request_id.c_str(),
            agent.substr(0, 12).c_str(), message.c_str(),
            book.rejects_unlogged ? (" (and " + std::to_string(book.rejects_unlogged) +
                                     " more refused claims in the last second)").c_str()
                                  : "");
    book.last_reject_log_ms = std::max<uint64_t>(now, 1);
    book.rejects_unlogged = 0;
  } else {
    ++book.rejects_unlogged;
  }
  tunnel::ClaimRejected r;
  r.request_id = request_id;
  r.code = std::string(code);
  r.message = message.substr(0, tunnel::kMaxText);
  (void)send_(agent, r);
}

void Billing::on_claim(const std::string& agent, const tunnel::Claim& c) {
  if (blocked(agent)) {
    // No answer yet: kept until the chains agree (the claim also stays in
    // the agent's outbox, which it sends again after a reconnect).
    std::vector<tunnel::Claim>& held = books_[agent].held_claims;
    bool known = false;
    for (const tunnel::Claim& h : held) known = known || h.request_id == c.request_id;
    if (!known && held.size() < kMaxHeldClaims) held.push_back(c);
    TG_DEBUG(kLog, "claim %s: agent %s's chain disagrees with the hub's; held",
             c.request_id.c_str(), agent.substr(0, 12).c_str());
    return;
  }
  auto it = tickets_.find(c.request_id);
  if (it != tickets_.end()) {
    Ticket* t = it->second.get();
    if (t->pending_.agent != agent) {
      reject(agent, c.request_id, "not_yours", "request " + c.request_id + " was sent to another agent");
      return;
    }
    switch (t->state_) {
      case Ticket::State::streaming:
        t->claim_ = c;  // settled when the request sees the end
        return;
      case Ticket::State::lingering: {
        // The claim follows every byte the agent sent: the linger is over.
        tunnel::Channel* ch = t->channel_;
        t->channel_ = nullptr;
        if (ch) {
          ch->set_handler(nullptr);
          ch->close(tunnel::abort_reason::client_gone);
        }
        t->state_ = Ticket::State::ended;
        settle_ticket(t, c);
        return;
      }
      case Ticket::State::ended:
        settle_ticket(t, c);
        return;
    }
    return;
  }
  // Not in memory: the stream was lost, or the hub restarted since.
  auto p = store_->pending(c.request_id);
  if (!p.ok()) {
    TG_ERROR(kLog, "claim %s: %s", c.request_id.c_str(), p.status().to_string().c_str());
    return;  // the agent claims again after its next reconnect
  }
  if (*p) {
    if ((*p)->agent != agent) {
      reject(agent, c.request_id, "not_yours", "request " + c.request_id + " was sent to another agent");
      return;
    }
    if ((*p)->cancelled) {
      reject(agent, c.request_id, tunnel::claim_rejection::unknown_request,
             "request " + c.request_id + " was refused by the agent: nothing is owed");
      return;
    }
    billing::Usage u = usage_of(c);
    if ((*p)->observed && (*p)->observed->output > u.output) {
      // The agent sent at least what we received; it claims less. Bill what
      // we saw (the agent will dispute and say why).
      TG_WARN(kLog, "%s: agent claims %s, less than the hub received (%s)", c.request_id.c_str(),
              usage_text(u).c_str(), usage_text(*(*p)->observed).c_str());
      ++mismatches_;
      u = *(*p)->observed;
    }
    auto o = order_for(**p, u);
    if (!o.ok()) {
      TG_ERROR(kLog, "claim %s: %s", c.request_id.c_str(), o.status().to_string().c_str());
      return;
    }
    enqueue(std::move(*o));
    return;
  }
  // Settled before: send the entry again (the agent lost our settle).
  auto s = store_->settled(c.request_id);
  if (!s.ok()) {
    TG_ERROR(kLog, "claim %s: %s", c.request_id.c_str(), s.status().to_string().c_str());
    return;
  }
  if (*s) {
    if ((*s)->agent != agent) {
      reject(agent, c.request_id, "not_yours", "request " + c.request_id + " was sent to another agent");
      return;
    }
    deliver(**s);
    return;
  }
  claim_by_ticket(agent, c);
}

void Billing::claim_by_ticket(const std::string& agent, const tunnel::Claim& c) {
  if (c.ticket.empty()) {
    reject(agent, c.request_id, tunnel::claim_rejection::unknown_request,
           "request " + c.request_id + " was never sent to this agent or expired unclaimed");
    return;
  }
  for (const SettleOrder& o : queue_) {
    if (o.request_id == c.request_id) return;  // settled at the next flush; its settle follows
  }
  auto p = call_tickets_.check(c.ticket, c.request_id, agent, c.model);
  if (!p.ok()) {
    reject(agent, c.request_id, tunnel::claim_rejection::bad_ticket, p.status().message());
    return;
  }
  const int64_t now = unix_now_ms();
  if (p->created_ms < now - static_cast<int64_t>(settings_.claim_window_ms)) {
    reject(agent, c.request_id, tunnel::claim_rejection::expired,
           "request " + c.request_id + " is older than the claim window");
    return;
  }
  if (p->created_ms > now + static_cast<int64_t>(settings_.claim_grace_ms)) {
    // Only this hub's clock made the ticket: one from the future means the
    // clock went back a long way. Billing it would be right, but say so.
    TG_WARN(kLog, "claim %s: its ticket is from %lld ms in the future; the clock went back?",
            c.request_id.c_str(), static_cast<long long>(p->created_ms - now));
  }
  // One line per such claim: they come only after a hub restart or a lost
  // row, and say the attempt was billed from what the agent returned.
  TG_INFO(kLog, "claim %s: not held here (the hub restarted since?); billed from its ticket",
          c.request_id.c_str());
  auto o = order_for(*p, usage_of(c));
  if (!o.ok()) {
    TG_ERROR(kLog, "claim %s: %s", c.request_id.c_str(), o.status().to_string().c_str());
    return;
  }
  enqueue(std::move(*o));
}

void Billing::settle_ticket(Ticket* t, const tunnel::Claim& c) {
  billing::Usage hub = t->meter_.result();
  const billing::Usage agent = usage_of(c);
  if (hub != agent || c.model != t->pending_.model) {
    ++mismatches_;
    TG_WARN(kLog, "%s: usage mismatch: the hub read %s, agent %s claims %s%s",
            t->pending_.request_id.c_str(), usage_text(hub).c_str(),
            t->pending_.agent.substr(0, 12).c_str(), usage_text(agent).c_str(),
            c.model != t->pending_.model ? " for another model" : "");
    if (t->state_ != Ticket::State::ended) {
      // Lost stream: the agent's reading covers bytes we never received.
      if (agent.output >= hub.output) hub = agent;
    }
  }
  auto o = order_for(t->pending_, hub);
  drop_ticket(t);
  if (!o.ok()) {
    TG_ERROR(kLog, "settle: %s", o.status().to_string().c_str());
    return;
  }
  enqueue(std::move(*o));
}

Result<SettleOrder> Billing::order_for(const PendingRequest& p, const billing::Usage& u) {
  SettleOrder o;
  o.request_id = p.request_id;
  o.agent = p.agent;
  o.user_id = p.user_id;
  o.model = p.model;
  o.usage = u;
  o.price_version = p.price_version;
  o.time_ms = unix_now_ms();
  std::optional<billing::PriceTable> older;
  const billing::PriceTable* table = &prices_;
  if (p.price_version != prices_.version()) {
    auto t = store_->prices(p.price_version);
    if (!t.ok()) return t.status();
    if (!*t) return error(Errc::not_found, "price version " + std::to_string(p.price_version) + " is unknown");
    older = std::move(*t);
    table = &*older;
  }
  const billing::ModelPrice* price = table->find(p.model);
  if (!price) return error(Errc::not_found, "model '" + p.model + "' has no price in version " +
                                                std::to_string(p.price_version));
  auto cost = billing::cost(u, *price);
  if (!cost.ok()) return cost.status();
  auto tier = tier_of(p.agent);
  if (!tier.ok()) return tier.status();
  o.cost = *cost;
  o.tier_ppm = *tier;
  o.credit = billing::credit(o.cost, o.tier_ppm);
  return o;
}

void Billing::enqueue(SettleOrder o) {
  queue_.push_back(std::move(o));
  if (queue_.size() >= settings_.settle_batch) {
    flush();
    return;
  }
  schedule_flush();
}

void Billing::schedule_flush() {
  if (!flush_timer_.active()) {
    flush_timer_.start(settings_.settle_delay_ms, 0, [this] { on_flush_timer(); });
  }
}

void Billing::on_flush_timer() {
  dead_.clear();  // tickets dropped inside callbacks die here, outside them
  flush();
}

void Billing::flush() {
  if (queue_.empty()) return;
  std::vector<SettleOrder> batch;
  batch.swap(queue_);
  // Orders for an agent whose chain disagrees wait (calls routed in the
  // moment between its register and its sync).
  auto held = std::stable_partition(batch.begin(), batch.end(),
                                    [this](const SettleOrder& o) { return !blocked(o.agent); });
  for (auto it = held; it != batch.end(); ++it) queue_.push_back(std::move(*it));
  batch.erase(held, batch.end());
  if (batch.empty()) return;
  // The debits below change these balances (whether or not they commit,
  // the next check reads them again).
  for (const SettleOrder& o : batch) {
    if (o.user_id) balances_.erase(*o.user_id);
  }
  auto done = store_->settle(batch);
  if (!done.ok()) {
    // One bad order must not hold the others back: settle them one by one,
    // and keep (and retry later) only those that failed for a storage reason.
    TG_WARN(kLog, "settling %zu requests failed (%s); retrying one by one", batch.size(),
            done.status().to_string().c_str());
    std::vector<SettleOrder> retry;
    for (SettleOrder& o : batch) {
      auto one = store_->settle({o});
      if (one.ok()) {
        for (const Settled& s : *one) deliver(s);
        continue;
      }
      if (one.status().code() == Errc::io || one.status().code() == Errc::timeout) {
        retry.push_back(std::move(o));
      } else {
        TG_ERROR(kLog, "request %s cannot be settled: %s", o.request_id.c_str(),
                 one.status().to_string().c_str());
      }
    }
    for (SettleOrder& o : retry) queue_.push_back(std::move(o));
    if (!queue_.empty() && !stopped_) flush_timer_.start(1000, 0, [this] { on_flush_timer(); });
    return;
  }
  for (const Settled& s : *done) deliver(s);
}

void Billing::deliver(const Settled& s) {
  AgentBook& book = books_[s.agent];
  if (s.created) {
    ++settled_total_;
    book.head_seq = std::max(book.head_seq, s.entry.seq);
    TG_DEBUG(kLog, "%s settled: agent %s #%llu %s cost %s credit %s", s.entry.request_id.c_str(),
             s.agent.substr(0, 12).c_str(), static_cast<unsigned long long>(s.entry.seq),
             s.entry.model.c_str(), billing::format_amount(s.entry.cost).c_str(),
             billing::format_amount(s.entry.credit).c_str());
  }
  send_prices_if_needed(s.agent, s.entry.price_version);
  (void)send_(s.agent, settle_message(s.entry, s.hash));
  if (s.created) maybe_checkpoint(s.agent, false);
}

void Billing::send_prices_if_needed(const std::string& agent, uint64_t version) {
  AgentBook& book = books_[agent];
  if (book.prices_sent.count(version)) return;
  std::optional<billing::PriceTable> older;
  const billing::PriceTable* table = &prices_;
  if (version != prices_.version()) {
    auto t = store_->prices(version);
    if (!t.ok() || !*t) return;
    older = std::move(*t);
    table = &*older;
  }
  tunnel::Prices m;
  m.version = table->version();
  for (const auto& [model, p] : table->entries()) {
    m.models.push_back(tunnel::PriceEntry{model, p.input, p.cached_input, p.output});
  }
  if (send_(agent, m)) book.prices_sent.insert(version);
}

void Billing::maybe_checkpoint(const std::string& agent, bool force) {
  AgentBook& book = books_[agent];
  if (!book.checkpoint_loaded) {
    auto last = store_->last_checkpoint(agent);
    if (!last.ok()) return;
    book.checkpoint_seq = *last ? (*last)->checkpoint.seq : 0;
    book.checkpoint_loaded = true;
  }
  if (!force && book.head_seq < book.checkpoint_seq + settings_.checkpoint_every) return;
  auto chain = store_->chain(agent);
  if (!chain.ok() || chain->seq == 0 || chain->seq <= book.checkpoint_seq) return;
  auto key = crypto::parse_public_key(agent);
  if (!key.ok()) return;
  StoredCheckpoint cp;
  cp.checkpoint.agent = *key;
  cp.checkpoint.seq = chain->seq;
  cp.checkpoint.head = chain->head;
  cp.checkpoint.total_cost = chain->total_cost;
  cp.checkpoint.total_credit = chain->total_credit;
  cp.checkpoint.time_ms = unix_now_ms();
  cp.sig = ledger::sign(*ledger_key_, cp.checkpoint);
  Status s = store_->add_checkpoint(cp);
  if (!s.ok()) {
    TG_ERROR(kLog, "checkpoint of %s: %s", agent.substr(0, 12).c_str(), s.to_string().c_str());
    return;
  }
  book.checkpoint_seq = cp.checkpoint.seq;
  book.head_seq = std::max(book.head_seq, cp.checkpoint.seq);
  tunnel::Checkpoint m;
  m.seq = cp.checkpoint.seq;
  m.head = cp.checkpoint.head;
  m.total_cost = cp.checkpoint.total_cost;
  m.total_credit = cp.checkpoint.total_credit;
  m.time_ms = cp.checkpoint.time_ms;
  m.sig = cp.sig;
  (void)send_(agent, m);
}

Result<std::string> Billing::chain_conflict(const std::string& agent, const tunnel::Sync& s) {
  auto chain = store_->chain(agent);
  if (!chain.ok()) return chain.status();
  if (s.seq > chain->seq) {
    return "it holds " + std::to_string(s.seq) + " ledger entries, the hub only " +
           std::to_string(chain->seq) +
           ": the hub lost settlements; restore them with 'tokengo-hub ledger import' from the "
           "agent's 'ledger export'";
  }
  if (s.seq > 0) {
    auto at = store_->entries(agent, s.seq - 1, 1);
    if (!at.ok()) return at.status();
    if (at->empty() || ledger::hash(at->front()) != s.head) {
      return "its ledger entry " + std::to_string(s.seq) +
             " differs from the hub's: the chains diverged (compare 'tokengo-agent ledger export' "
             "with the hub's entries)";
    }
  }
  return std::string();
}

bool Billing::blocked(const std::string& agent) const {
  auto it = books_.find(agent);
  return it != books_.end() && it->second.ledger_blocked;
}

bool Billing::takes_calls(const std::string& agent) const { return !blocked(agent); }

void Billing::on_sync(const std::string& agent, const tunnel::Sync& s) {
  auto conflict = chain_conflict(agent, s);
  if (!conflict.ok()) {
    TG_ERROR(kLog, "sync from %s: %s", agent.substr(0, 12).c_str(),
             conflict.status().to_string().c_str());
    return;
  }
  AgentBook& book = books_[agent];
  book.synced = s;
  if (!conflict->empty()) {
    if (!book.ledger_blocked) {
      TG_ERROR(kLog, "agent %s: %s; it gets no calls and nothing is settled for it until the "
               "chains agree", agent.substr(0, 12).c_str(), conflict->c_str());
    }
    book.ledger_blocked = true;
    return;
  }
  if (book.ledger_blocked) {
    TG_INFO(kLog, "agent %s: its ledger agrees with the hub's again; it takes calls",
            agent.substr(0, 12).c_str());
    book.ledger_blocked = false;
    // Orders held for it (flush) go with the next batch, and the claims
    // that came meanwhile are answered now.
    if (!queue_.empty()) schedule_flush();
    std::vector<tunnel::Claim> held;
    held.swap(book.held_claims);
    for (const tunnel::Claim& c : held) on_claim(agent, c);
  }
  auto missing = store_->entries(agent, s.seq, kSyncBatch);
  if (!missing.ok()) {
    TG_ERROR(kLog, "sync from %s: %s", agent.substr(0, 12).c_str(), missing.status().to_string().c_str());
    return;
  }
  for (const ledger::Entry& e : *missing) {
    Settled st;
    st.entry = e;
    st.hash = ledger::hash(e);
    st.agent = agent;
    deliver(st);
  }
  auto last = store_->last_checkpoint(agent);
  if (last.ok() && *last && (*last)->checkpoint.seq > s.seq) {
    tunnel::Checkpoint m;
    m.seq = (*last)->checkpoint.seq;
    m.head = (*last)->checkpoint.head;
    m.total_cost = (*last)->checkpoint.total_cost;
    m.total_credit = (*last)->checkpoint.total_credit;
    m.time_ms = (*last)->checkpoint.time_ms;
    m.sig = (*last)->sig;
    (void)send_(agent, m);
  }
  if (!missing->empty()) {
    TG_INFO(kLog, "agent %s was %zu ledger entries behind; sent them", agent.substr(0, 12).c_str(),
            missing->size());
  }
}

void Billing::on_ack(const std::string& agent, const tunnel::Ack& a) {
  if (a.result == "ok") return;
  ++mismatches_;
  TG_WARN(kLog, "agent %s disputes ledger entry %llu: %s", agent.substr(0, 12).c_str(),
          static_cast<unsigned long long>(a.seq), a.message.c_str());
}

void Billing::agent_online(const std::string& agent) {
  AgentBook& book = books_[agent];
  book.prices_sent.clear();  // a new tunnel knows nothing we sent before
  send_prices_if_needed(agent, prices_.version());
}

Result<uint32_t> Billing::tier_of(const std::string& agent) {
  const uint64_t now = uv_now(loop_);
  auto it = tiers_.find(agent);
  if (it != tiers_.end() && now - it->second.at_ms < kTierCacheMs) return it->second.tier_ppm;
  auto t = tier_(agent);
  if (!t.ok()) return t.status();
  tiers_[agent] = TierCache{*t, now};
  return *t;
}

void Billing::on_sweep() {
  const uint64_t now = uv_now(loop_);
  // Blocked agents: compare again (a 'ledger import' by another process
  // may have restored what the hub lacked).
  std::vector<std::string> recheck;
  for (const auto& [agent, book] : books_) {
    if (book.ledger_blocked) recheck.push_back(agent);
  }
  for (const std::string& agent : recheck) on_sync(agent, books_[agent].synced);
  // Tickets whose linger or claim wait ran out.
  std::vector<Ticket*> due;
  for (auto& [id, t] : tickets_) {
    if (t->state_ != Ticket::State::streaming && now >= t->deadline_ms_) due.push_back(t.get());
  }
  for (Ticket* t : due) {
    TG_DEBUG(kLog, "%s: no claim from the agent in time; keeping the hub's reading",
             t->pending_.request_id.c_str());
    lost(t);
  }
  // Pending rows that waited long enough for a claim.
  if (now - last_pending_sweep_ms_ >= std::min<uint64_t>(settings_.claim_grace_ms, 5000)) {
    last_pending_sweep_ms_ = now;
    const int64_t wall = unix_now_ms();
    auto rows = store_->pending_due(wall - static_cast<int64_t>(settings_.claim_grace_ms),
                                    wall - static_cast<int64_t>(settings_.claim_window_ms),
                                    kSweepBatch);
    if (!rows.ok()) {
      TG_ERROR(kLog, "pending sweep: %s", rows.status().to_string().c_str());
    } else {
      for (const PendingRequest& p : *rows) {
        if (tickets_.count(p.request_id)) continue;  // still metered here
        if (blocked(p.agent)) continue;               // kept until the chains agree
        bool queued = false;
        for (const SettleOrder& o : queue_) queued = queued || o.request_id == p.request_id;
        if (queued) continue;
        if (!p.observed) {
          // Nothing observed (a refused call, a lost stream found to owe
          // nothing, a row from before call tickets): kept until the claim
          // window ended, so a ticket for it can no longer be claimed.
          Status s = store_->drop_pending(p.request_id);
          if (!s.ok()) TG_ERROR(kLog, "%s: %s", p.request_id.c_str(), s.to_string().c_str());
          continue;
        }
        if (billing::is_zero(*p.observed)) {
          TG_DEBUG(kLog, "%s: nothing delivered and never claimed; nothing owed", p.request_id.c_str());
          // The decision stands: the row stays, cancelled, until the claim
          // window ends, so the agent's ticket cannot reopen it.
          PendingRequest q = p;
          q.observed.reset();
          q.cancelled = true;
          Status s = store_->put_pending(q);
          if (!s.ok()) TG_ERROR(kLog, "%s: %s", p.request_id.c_str(), s.to_string().c_str());
          continue;
        }
        TG_INFO(kLog, "%s: never claimed by agent %s; settling the hub's reading %s",
                p.request_id.c_str(), p.agent.substr(0, 12).c_str(), usage_text(*p.observed).c_str());
        auto o = order_for(p, *p.observed);
        if (o.ok()) {
          enqueue(std::move(*o));
        } else {
          TG_ERROR(kLog, "%s: %s", p.request_id.c_str(), o.status().to_string().c_str());
        }
      }
    }
  }
  // Checkpoints on time for chains that moved.
  if (now - last_checkpoint_sweep_ms_ >= settings_.checkpoint_interval_ms) {
    last_checkpoint_sweep_ms_ = now;
    std::vector<std::string> agents;
    for (auto& [agent, book] : books_) {
      if (book.head_seq > book.checkpoint_seq || !book.checkpoint_loaded) agents.push_back(agent);
    }
    for (const std::string& a : agents) maybe_checkpoint(a, true);
  }
}

}  // namespace tg::hub
