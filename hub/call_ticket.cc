#include "hub/call_ticket.h"

#include <cstdint>

#include "shared/crypto/aead.h"
#include "shared/crypto/hash.h"

namespace tg::hub {
namespace {

constexpr std::string_view kPrefix = "1.";
// crypto_kdf context and subkey id of the ticket key.
constexpr std::string_view kKdfContext = "tgticket";
constexpr uint64_t kKdfId = 2;
// Sealed: user id, price version, creation time; 8 bytes each, little-endian.
constexpr size_t kFieldsBytes = 24;
constexpr size_t kSealedBytes =
    crypto::kAeadNonceBytes + kFieldsBytes + crypto::kAeadTagBytes;  // 64
constexpr uint64_t kMaxField = 9007199254740991;  // 2^53 - 1: what the ledger can carry

// The associated data: the attempt's identity (request id, agent, model:
// visible ASCII or base64, so NUL separates them unambiguously).
std::string associated(const std::string& request_id, const std::string& agent,
                       const std::string& model) {
  std::string ad = "tokengo call ticket 1";
  ad += '\0';
  ad += request_id;
  ad += '\0';
  ad += agent;
  ad += '\0';
  ad += model;
  return ad;
}

void put_u64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t get_u64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  return v;
}

Status bad(const std::string& why) { return error(Errc::invalid_argument, why); }

}  // namespace

CallTickets::CallTickets(const crypto::KeyPair& ledger_key)
    : key_(ledger_key.derive_key(kKdfContext, kKdfId)) {}

std::string CallTickets::issue(const PendingRequest& p) const {
  std::string fields;
  put_u64(&fields, static_cast<uint64_t>(p.user_id));
  put_u64(&fields, p.price_version);
  put_u64(&fields, static_cast<uint64_t>(p.created_ms));
  const std::string sealed =
      crypto::aead_seal(key_.reveal(), fields, associated(p.request_id, p.agent, p.model));
  return std::string(kPrefix) + crypto::hex_encode(sealed);
}

Result<PendingRequest> CallTickets::check(std::string_view ticket, const std::string& request_id,
                                          const std::string& agent,
                                          const std::string& model) const {
  if (ticket.substr(0, kPrefix.size()) != kPrefix) return bad("unknown ticket version");
  const std::string_view hex = ticket.substr(kPrefix.size());
  // Lowercase only, as issued: one ticket has one text.
  bool ok = hex.size() == 2 * kSealedBytes;
  for (char ch : hex) ok = ok && ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
  if (!ok) return bad("the ticket is not \"1.\" and " + std::to_string(2 * kSealedBytes) +
                      " lowercase hex digits");
  auto sealed = crypto::hex_decode(hex);
  if (!sealed.ok()) return bad("the ticket is not hex");
  auto fields = crypto::aead_open(key_.reveal(), *sealed, associated(request_id, agent, model));
  if (!fields.ok() || fields->size() != kFieldsBytes) {
    return bad("the ticket was not issued by this hub for this request, agent and model");
  }
  const uint64_t user = get_u64(std::string_view(*fields).substr(0, 8));
  const uint64_t version = get_u64(std::string_view(*fields).substr(8, 8));
  const uint64_t created = get_u64(std::string_view(*fields).substr(16, 8));
  // Sealed by this hub, so in range unless the key leaked: checked anyway.
  if (user == 0 || user > kMaxField || version == 0 || version > kMaxField ||
      created > kMaxField) {
    return bad("the ticket's user, price version or time is out of range");
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
