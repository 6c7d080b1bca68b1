// Fuzzes the control-message decoder in both phases: it must never crash, and
// every message it accepts must pass validate(), re-encode deterministically
// and decode again to an equal message. (A re-encoding may exceed the phase's
// size limit, because 1e5 prints as 100000; such inputs skip the second
// decode, and encode_checked() must then report Errc::limit.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/tunnel/messages.h"

namespace {

void check(std::string_view text, tg::tunnel::Phase phase) {
  using namespace tg::tunnel;
  tg::Result<Message> first = decode(text, phase);
  if (!first.ok()) {
    const uint16_t code = close_code_for(first.status());
    if (code != 1009 && code != 4000) std::abort();
    return;
  }
  if (!allowed_in(type_of(*first), phase)) std::abort();
  if (!validate(*first).ok()) std::abort();
  const std::string again = encode(*first);
  tg::Result<std::string> checked = encode_checked(*first, phase);
  if (again.size() > max_message_size(phase)) {
    if (checked.ok() || checked.status().code() != tg::Errc::limit) std::abort();
    return;
  }
  if (!checked.ok() || *checked != again) std::abort();
  tg::Result<Message> second = decode(again, phase);
  if (!second.ok()) std::abort();
  if (!(*second == *first)) std::abort();
  if (encode(*second) != again) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(text, tg::tunnel::Phase::pre_auth);
  check(text, tg::tunnel::Phase::session);
  return 0;
}
