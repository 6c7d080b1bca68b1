// Call tickets: what the hub needs to bill an attempt it no longer holds.
//
// A claim can reach the hub after the hub forgot the attempt: the hub
// restarted in between, or the claim came on a later tunnel. To bill it to
// the right user at the right price, the hub once committed a pending row
// (user, price version, time) before every call went out: one synchronous
// SQLite commit per request. Instead, each call now carries a ticket: those
// fields sealed (XChaCha20-Poly1305, crypto/aead.h) under a key derived from
// the hub's ledger key, so it survives restarts and needs no key file of its
// own, with the request id, the agent's key and the model as associated
// data. The agent keeps the ticket with the call's outbox row and returns it
// in its claim; the hub opens it and bills from it. The agent cannot read
// it (it learns no user id), alter it, or move it to another request, agent
// or model.
//
// Text form (at most tunnel::kMaxTicket characters):
//   "1." + 128 lowercase hex digits (nonce, sealed fields, tag: 64 bytes)
#pragma once

#include <string>
#include <string_view>

#include "hub/ledger_store.h"
#include "shared/core/secret.h"
#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"

namespace tg::hub {

class CallTickets {
 public:
  explicit CallTickets(const crypto::KeyPair& ledger_key);

  // The ticket for attempt `p` (request id, agent, user, model, price
  // version and creation time; `observed` is not part of it). Each call
  // gives another text (the nonce is random).
  std::string issue(const PendingRequest& p) const;
  // The attempt `ticket` stands for, if this hub issued it for `request_id`
  // to `agent` for `model`; else Errc::invalid_argument saying why.
  Result<PendingRequest> check(std::string_view ticket, const std::string& request_id,
                               const std::string& agent, const std::string& model) const;

 private:
  Secret key_;
};

}  // namespace tg::hub
