// Fuzzes the hub's call-ticket check (hub/call_ticket.h), which reads text
// an agent sends back in its claims. Any bytes: an error or an attempt,
// never a crash, and the same answer twice. And from the input's first
// bytes, a real ticket is issued: it checks to the same fields, and any
// one-byte change of it does not.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "hub/call_ticket.h"
#include "shared/tunnel/messages.h"

namespace {

const tg::hub::CallTickets& tickets() {
  static const tg::crypto::KeyPair key =
      std::move(tg::crypto::KeyPair::from_seed(std::string(32, '\x42'))).value();
  static const tg::hub::CallTickets t(key);
  return t;
}

uint64_t take(const uint8_t*& data, size_t& size) {
  uint64_t v = 0;
  const size_t n = size < 8 ? size : 8;
  std::memcpy(&v, data, n);
  data += n;
  size -= n;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string agent = "agent-key";
  const std::string id = "req";
  const std::string model = "m";
  const tg::hub::CallTickets& t = tickets();

  // 1. The input as a ticket.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = t.check(text, id, agent, model);
  auto again = t.check(text, id, agent, model);
  if (r.ok() != again.ok()) __builtin_trap();
  if (r.ok() && (r->request_id != id || r->agent != agent || r->user_id != again->user_id)) {
    __builtin_trap();
  }

  // 2. A real ticket from the input's numbers, and one byte of it changed.
  tg::hub::PendingRequest p;
  p.request_id = id;
  p.agent = agent;
  p.model = model;
  p.user_id = static_cast<int64_t>(take(data, size) % 9007199254740991u) + 1;
  p.price_version = take(data, size) % 9007199254740991u + 1;
  p.created_ms = static_cast<int64_t>(take(data, size) % 9007199254740992u);
  const std::string good = t.issue(p);
  if (good.size() > tg::tunnel::kMaxTicket) __builtin_trap();
  auto back = t.check(good, id, agent, model);
  if (!back.ok() || back->user_id != p.user_id || back->price_version != p.price_version ||
      back->created_ms != p.created_ms) {
    __builtin_trap();
  }
  if (size >= 2) {
    std::string changed = good;
    const size_t at = data[0] % changed.size();
    const char c = static_cast<char>(data[1]);
    if (changed[at] != c) {
      changed[at] = c;
      if (t.check(changed, id, agent, model).ok()) __builtin_trap();
    }
  }
  return 0;
}
