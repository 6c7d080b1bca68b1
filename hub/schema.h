// The hub database schema: the single ordered list of migrations for the one
// SQLite file that AgentStore and UserStore share (one PRAGMA user_version).
// Every store opens the file through migrate(), so whichever opens it first
// brings all tables up to date. No queries here.
#pragma once

#include <string_view>
#include <vector>

#include "shared/core/status.h"
#include "shared/sqlite/db.h"

namespace tg::hub {

// migrations()[i] takes the schema from version i to i + 1. Never edit a
// released entry; append a new one.
//   1: agents, enroll_tokens, agent_events, sessions (agent_store.h)
//   2: users, user_tokens (user_store.h)
//   3: balances, user_credits, price_versions, pending_requests, chains,
//      ledger, checkpoints (ledger_sqlite.h)
//   4: users.rpm, users.tpm: rate limit overrides (user_store.h)
//   5: drops the pending_requests index (ledger_sqlite.h)
//   6: pending_requests.cancelled: refused calls (hub/call_ticket.h)
const std::vector<std::string_view>& migrations();

// Brings `db` up to the newest version (sqlite::migrate over migrations()).
Status migrate(sqlite::Db& db);

}  // namespace tg::hub
