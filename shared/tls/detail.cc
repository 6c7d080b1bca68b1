#include "shared/tls/detail.h"

#include <mbedtls/error.h>
#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "shared/crypto/hash.h"
#include "shared/tls/mbedtls_compat.h"

namespace tg::tls::detail {

int rng(void* ctx, unsigned char* out, size_t len) noexcept {
  (void)ctx;
  randombytes_buf(out, len);
  return 0;
}

Status init_once() {
  static std::once_flag once;
  static int psa_rc = 0;
  std::call_once(once, [] {
    crypto::init();
    psa_rc = compat::crypto_init();
  });
  if (psa_rc != 0) {
    return Status(Errc::internal, "psa_crypto_init failed: " + std::to_string(psa_rc));
  }
  return Status();
}

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    return Status(errno == ENOENT ? Errc::not_found : Errc::io,
                  "open " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (out.size() + n > max_bytes) {
      std::fclose(f);
      sodium_memzero(buf, sizeof buf);
      sodium_memzero(out.data(), out.size());
      return Status(Errc::limit, path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  sodium_memzero(buf, sizeof buf);
  if (failed) {
    sodium_memzero(out.data(), out.size());
    return Status(Errc::io, "read " + path + " failed");
  }
  return out;
}

std::string mbedtls_error(int rc, const char* what) {
  char buf[160];
  mbedtls_strerror(rc, buf, sizeof buf);
  char code[16];
  std::snprintf(code, sizeof code, "-0x%04X", static_cast<unsigned>(-rc));
  return std::string(what) + ": " + buf + " (" + code + ")";
}

}  // namespace tg::tls::detail
