// libFuzzer target: the HTTP request parser, fed at fuzz-chosen split points.
#include "tests/fuzz/http/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::http::fuzz::drive(tg::http::Parser::Mode::request, data, size);
  return 0;
}
