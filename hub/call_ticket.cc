#include "hub/call_ticket.h"

#include <cstdint>

#include "shared/crypto/hash.h"

namespace tg::hub {
namespace {

constexpr std::string_view kVersion = "1";
// crypto_kdf context and subkey id of the ticket key.
constexpr std::string_view kKdfContext = "tgticket";
constexpr uint64_t kKdfId = 1;
constexpr size_t kMacHex = 64;
// Bounds of the numeric fields: JSON-safe integers (ids and times stay far below).
constexpr uint64_t kMaxField = 9007199254740991;  // 2^53 - 1

// The MAC covers the version, the attempt's identity (request id, agent,
// model: visible ASCII or base64, so NUL separates them unambiguously) and
// the fields the ticket carries in clear.
std::string mac_input(const std::string& request_id, const std::string& agent,
                      const std::string& model, std::string_view fields) {
  std::string m = "tokengo call ticket ";
  m += kVersion;
  m += '\0';
  m += request_id;
  m += '\0';
  m += agent;
  m += '\0';
  m += model;
  m += '\0';
  m += fields;
  return m;
}

// A decimal 0..kMaxField without sign, leading zeros or other characters.
bool parse_field(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > kMaxField) return false;
  *out = v;
  return true;
}

Status bad(const std::string& why) { return error(Errc::invalid_argument, why); }

}  // namespace

CallTickets::CallTickets(const crypto::KeyPair& ledger_key)
    : key_(ledger_key.derive_key(kKdfContext, kKdfId)) {}

std::string CallTickets::issue(const PendingRequest& p) const {
  const std::string fields = std::to_string(p.user_id) + "." + std::to_string(p.price_version) +
                             "." + std::to_string(p.created_ms);
  const crypto::Sha256 mac =
      crypto::hmac_sha256(key_.reveal(), mac_input(p.request_id, p.agent, p.model, fields));
  return std::string(kVersion) + "." + fields + "." + crypto::hex_encode(crypto::as_view(mac));
}

Result<PendingRequest> CallTickets::check(std::string_view ticket, const std::string& request_id,
                                          const std::string& agent,
                                          const std::string& model) const {
  // version . user . price version . created . mac
  std::string_view parts[5];
  size_t at[5] = {};
  size_t n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= ticket.size(); ++i) {
    if (i == ticket.size() || ticket[i] == '.') {
      if (n == 5) return bad("the ticket has more than 5 parts");
      at[n] = start;
      parts[n++] = ticket.substr(start, i - start);
      start = i + 1;
    }
  }
  if (n != 5) return bad("the ticket has " + std::to_string(n) + " parts, not 5");
  if (parts[0] != kVersion) return bad("unknown ticket version");
  uint64_t user = 0;
  uint64_t version = 0;
  uint64_t created = 0;
  if (!parse_field(parts[1], &user) || user == 0 || !parse_field(parts[2], &version) ||
      version == 0 || !parse_field(parts[3], &created)) {
    return bad("the ticket's user, price version or time is not a valid number");
  }
  // Lowercase only, as issued: one attempt has exactly one ticket text.
  bool hex = parts[4].size() == kMacHex;
  for (char ch : parts[4]) hex = hex && ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
  if (!hex) return bad("the ticket's MAC is not 64 lowercase hex digits");
  auto raw = crypto::hex_decode(parts[4]);
  crypto::Sha256 mac{};
  if (!raw.ok() || !crypto::copy_exact(*raw, &mac)) {
    return bad("the ticket's MAC is not 64 lowercase hex digits");
  }
  // "<user>.<price version>.<created>", as the MAC covers it.
  const std::string_view fields = ticket.substr(at[1], at[3] + parts[3].size() - at[1]);
  if (!crypto::hmac_sha256_verify(key_.reveal(), mac_input(request_id, agent, model, fields),
                                  mac)) {
    return bad("the ticket was not issued by this hub for this request, agent and model");
  }
  PendingRequest p;
  p.request_id = request_id;
  p.agent = agent;
  p.user_id = static_cast<int64_t>(user);
  p.model = model;
  p.price_version = version;
  p.created_ms = static_cast<int64_t>(created);
  return p;
}

}  // namespace tg::hub
