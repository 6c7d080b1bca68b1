// Internal helpers shared by the shared/tls sources: the libsodium-backed RNG
// callback handed to mbedTLS, one-time library setup, and error formatting.
// Not part of the public API; includes mbedTLS headers (via mbedtls_compat.h).
#pragma once

#include <cstddef>
#include <string>

#include "shared/core/status.h"

namespace tg::tls::detail {

// f_rng for every mbedTLS call: libsodium's randombytes_buf. Always returns 0.
int rng(void* ctx, unsigned char* out, size_t len) noexcept;

// Initialises libsodium and (3.x) PSA once. Fails only if PSA cannot start.
Status init_once();

// Reads a whole file of at most `max_bytes`; errors name the path. The caller
// wipes the result when it holds a key.
Result<std::string> read_file(const std::string& path, size_t max_bytes);

// "<what>: <mbedTLS description> (-0xNNNN)".
std::string mbedtls_error(int rc, const char* what);

}  // namespace tg::tls::detail
