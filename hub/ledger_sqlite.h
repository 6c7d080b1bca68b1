// LedgerStore over the hub's SQLite file (WAL, synchronous=NORMAL: a commit
// survives kill -9 of the hub; a power cut may lose the last commits, which
// the agents still hold and `ledger import` restores). Tables: hub/schema.cc
// migration 3. The hot statements (settle) are prepared once;
// settle() runs a whole batch in one IMMEDIATE transaction.
#pragma once

#include <memory>
#include <string>

#include "hub/ledger_store.h"
#include "shared/sqlite/db.h"

namespace tg::hub {

class SqliteLedgerStore final : public LedgerStore {
 public:
  // Opens or creates the hub database at `path` and migrates it. With
  // create=false a missing file is Errc::not_found.
  static Result<std::unique_ptr<SqliteLedgerStore>> open(const std::string& path,
                                                         bool create = true);
  // The same on a connection the daemon already holds (sqlite::Db::share()).
  static Result<std::unique_ptr<SqliteLedgerStore>> open(sqlite::Db db);
  ~SqliteLedgerStore() override;

  Status record_prices(const billing::PriceTable& table, int64_t now_ms) override;
  Result<std::optional<billing::PriceTable>> prices(uint64_t version) override;

  Status put_pending(const PendingRequest& r) override;
  Result<std::optional<PendingRequest>> pending(std::string_view request_id) override;
  Result<std::vector<PendingRequest>> pending_due(int64_t observed_before_ms,
                                                  int64_t created_before_ms,
                                                  size_t limit) override;
  Status drop_pending(std::string_view request_id) override;

  Result<std::vector<Settled>> settle(const std::vector<SettleOrder>& orders) override;
  Result<std::optional<Settled>> settled(std::string_view request_id) override;
  Result<std::vector<ledger::Entry>> entries(std::string_view agent, uint64_t after_seq,
                                             size_t limit) override;
  Result<ChainInfo> chain(std::string_view agent) override;
  Result<std::vector<ChainInfo>> chains() override;

  Status add_checkpoint(const StoredCheckpoint& cp) override;
  Result<std::optional<StoredCheckpoint>> last_checkpoint(std::string_view agent) override;
  Result<std::vector<StoredCheckpoint>> checkpoints(std::string_view agent) override;

  Result<UserBalance> credit_user(std::string_view user, int64_t amount, int64_t now_ms) override;
  Result<std::optional<UserBalance>> user_balance(std::string_view user) override;
  Result<int64_t> balance_of(int64_t user_id) override;
  Result<BalancesVersion> balances_version(uint64_t tick) override;
  Result<std::vector<UserBalance>> balances() override;

  sqlite::Db& db() noexcept { return db_; }

 private:
  explicit SqliteLedgerStore(sqlite::Db db);
  Result<ChainInfo> chain_in_tx(const std::string& agent);

  sqlite::Db db_;  // hot statements live in its prepare_cached() cache
  uint64_t credits_ = 0;  // credit_user() calls, for balances_version()
};

// The canonical text of a price table, as stored per version (one line per
// model: name, input, cached_input, output, tab-separated, sorted).
std::string price_table_text(const billing::PriceTable& table);

}  // namespace tg::hub
