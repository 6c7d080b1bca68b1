#include "shared/crypto/hash.h"

#include <mbedtls/version.h>
#include <mbedtls/sha1.h>
#include <pthread.h>

#include <cstdlib>
#include <cstring>

namespace tg::crypto {

namespace {

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Small requests (request ids, nonces, jitter) are served from a per-thread
// pool of the kernel's randomness, refilled kPoolBytes at a time: a request
// through the hub then costs no getrandom call of its own. Every byte is
// wiped from the pool as it is handed out, the pool is wiped when its thread
// ends, and a forked child starts with an empty one (it must never repeat
// the parent's bytes). Larger requests (keys) go to the kernel directly.
constexpr size_t kPoolBytes = 256;
constexpr size_t kPooledMax = 32;

struct RandomPool {
  unsigned char bytes[kPoolBytes];
  size_t used = kPoolBytes;  // bytes[used..] are not handed out yet
  ~RandomPool() { sodium_memzero(bytes, sizeof bytes); }
};

thread_local RandomPool t_pool;

void forget_pool_in_child() {
  sodium_memzero(t_pool.bytes, sizeof t_pool.bytes);
  t_pool.used = kPoolBytes;
}

}  // namespace

void init() {
  // sodium_init is idempotent; the static makes later calls a plain load.
  static const bool ok =
      sodium_init() >= 0 && pthread_atfork(nullptr, nullptr, &forget_pool_in_child) == 0;
  if (!ok) std::abort();
}

Sha256 sha256(std::string_view data) {
  init();
  Sha256 out;
  crypto_hash_sha256(out.data(), bytes_of(data), data.size());
  return out;
}

Sha256Stream::Sha256Stream() {
  init();
  crypto_hash_sha256_init(&state_);
}

void Sha256Stream::update(std::string_view data) {
  crypto_hash_sha256_update(&state_, bytes_of(data), data.size());
}

Sha256 Sha256Stream::finish() {
  Sha256 out;
  crypto_hash_sha256_final(&state_, out.data());
  crypto_hash_sha256_init(&state_);
  return out;
}

std::array<uint8_t, 20> sha1(std::string_view data) {
  std::array<uint8_t, 20> out{};
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  int rc = mbedtls_sha1(bytes_of(data), data.size(), out.data());
#else
  int rc = mbedtls_sha1_ret(bytes_of(data), data.size(), out.data());
#endif
  // Only fails on hardware-accelerator errors; software SHA-1 cannot.
  if (rc != 0) std::abort();
  return out;
}

std::string base64_encode(std::string_view bytes) {
  init();
  const size_t len = sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(len, '\0');  // len counts the terminating NUL
  sodium_bin2base64(out.data(), len, bytes_of(bytes), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(len - 1);
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  init();
  if (text.size() % 4 != 0) {
    return error(Errc::parse, "base64: length " + std::to_string(text.size()) +
                                  " is not a multiple of 4");
  }
  std::string out(text.size() / 4 * 3, '\0');
  size_t out_len = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                             text.data(), text.size(), nullptr, &out_len, &end,
                             sodium_base64_VARIANT_ORIGINAL);
  if (rc != 0 || end != text.data() + text.size()) {
    size_t at = end ? static_cast<size_t>(end - text.data()) : 0;
    return error(Errc::parse, "base64: invalid character or padding at offset " +
                                  std::to_string(at));
  }
  out.resize(out_len);
  return out;
}

std::string hex_encode(std::string_view bytes) {
  init();
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes_of(bytes), bytes.size());
  out.resize(bytes.size() * 2);
  return out;
}

Result<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) {
    return error(Errc::parse, "hex: odd length " + std::to_string(text.size()));
  }
  std::string out(text.size() / 2, '\0');
  TG_TRY(hex_decode_to(text, reinterpret_cast<uint8_t*>(out.data()), out.size()));
  return out;
}

Status hex_decode_to(std::string_view text, uint8_t* out, size_t size) {
  init();
  if (text.size() != 2 * size) {
    return error(Errc::parse, "hex: " + std::to_string(text.size()) + " digits for " +
                                  std::to_string(size) + " bytes");
  }
  size_t out_len = 0;
  const char* end = nullptr;
  int rc = sodium_hex2bin(out, size, text.data(), text.size(), nullptr, &out_len, &end);
  if (rc != 0 || end != text.data() + text.size() || out_len != size) {
    size_t at = end ? static_cast<size_t>(end - text.data()) : 0;
    return error(Errc::parse, "hex: invalid digit at offset " + std::to_string(at));
  }
  return Status();
}

size_t lower_hex_span(std::string_view text) noexcept {
  size_t i = 0;
  while (i < text.size() &&
         ((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))) {
    ++i;
  }
  return i;
}

void random_bytes(void* out, size_t n) {
  init();
  if (n > kPooledMax) {
    randombytes_buf(out, n);
    return;
  }
  RandomPool& pool = t_pool;
  if (kPoolBytes - pool.used < n) {
    randombytes_buf(pool.bytes, kPoolBytes);
    pool.used = 0;
  }
  std::memcpy(out, pool.bytes + pool.used, n);
  sodium_memzero(pool.bytes + pool.used, n);
  pool.used += n;
}

std::string random_id() {
  uint8_t raw[16];
  random_bytes(raw, sizeof raw);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

std::string request_id(int64_t unix_ms) {
  uint8_t raw[16];
  const uint64_t ms = static_cast<uint64_t>(unix_ms < 0 ? 0 : unix_ms) & 0xffffffffffffULL;
  for (int i = 0; i < 6; ++i) raw[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  random_bytes(raw + 6, sizeof raw - 6);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

}  // namespace tg::crypto
