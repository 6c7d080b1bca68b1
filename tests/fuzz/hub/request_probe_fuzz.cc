// Fuzzes the hub's request-body probe (hub/request_probe.h): any bytes must
// give a result or an error, never a crash, a hang or deep recursion.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hub/request_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = tg::hub::probe_request(std::string_view(reinterpret_cast<const char*>(data), size));
  if (r.ok() && r->model.size() > tg::hub::kMaxProbeModel) __builtin_trap();
  return 0;
}
