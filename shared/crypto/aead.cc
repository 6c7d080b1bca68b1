#include "shared/crypto/aead.h"

#include <sodium.h>

#include <cassert>

#include "shared/crypto/hash.h"

namespace tg::crypto {
namespace {

static_assert(kAeadKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
static_assert(kAeadNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
static_assert(kAeadTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string aead_seal(std::string_view key, std::string_view plaintext, std::string_view ad) {
  init();
  assert(key.size() == kAeadKeyBytes);
  std::string out(kAeadNonceBytes + plaintext.size() + kAeadTagBytes, '\0');
  auto* p = reinterpret_cast<unsigned char*>(&out[0]);
  random_bytes(p, kAeadNonceBytes);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(p + kAeadNonceBytes, &len, bytes(plaintext),
                                             plaintext.size(), bytes(ad), ad.size(), nullptr, p,
                                             bytes(key));
  return out;
}

Result<std::string> aead_open(std::string_view key, std::string_view sealed, std::string_view ad) {
  init();
  assert(key.size() == kAeadKeyBytes);
  if (sealed.size() < kAeadNonceBytes + kAeadTagBytes) {
    return error(Errc::invalid_argument, "sealed record too short");
  }
  std::string out(sealed.size() - kAeadNonceBytes - kAeadTagBytes, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(&out[0]), &len, nullptr, bytes(sealed) + kAeadNonceBytes,
          sealed.size() - kAeadNonceBytes, bytes(ad), ad.size(), bytes(sealed), bytes(key)) != 0) {
    return error(Errc::invalid_argument, "sealed record altered, or sealed under another key or data");
  }
  out.resize(static_cast<size_t>(len));
  return out;
}

}  // namespace tg::crypto
