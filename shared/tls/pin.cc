#include "shared/tls/pin.h"

#include "shared/crypto/hash.h"
#include "shared/tls/detail.h"
#include "shared/tls/mbedtls_compat.h"

namespace tg::tls {

std::string pin_of_spki(const uint8_t* der, size_t len) {
  crypto::Sha256 h =
      crypto::sha256(std::string_view(reinterpret_cast<const char*>(der), len));
  return std::string(kPinPrefix) + crypto::base64_encode(crypto::as_view(h));
}

Result<std::string> pin_of_cert_pem(std::string_view pem) {
  if (pem.empty()) return Status(Errc::invalid_argument, "empty certificate");
  if (pem.size() > kMaxCertFileBytes) {
    return Status(Errc::limit, "certificate of " + std::to_string(pem.size()) +
                                   " bytes exceeds " + std::to_string(kMaxCertFileBytes));
  }
  const std::string text(pem);  // PEM parsing needs a terminating NUL
  mbedtls_x509_crt crt;
  mbedtls_x509_crt_init(&crt);
  int rc = mbedtls_x509_crt_parse(&crt, reinterpret_cast<const unsigned char*>(text.c_str()),
                                  text.size() + 1);
  if (rc < 0) {  // rc > 0 counts certificates of a bundle that failed to parse
    mbedtls_x509_crt_free(&crt);
    return Status(Errc::parse, detail::mbedtls_error(rc, "parse certificate"));
  }
  size_t len = 0;
  const unsigned char* spki = compat::crt_spki(&crt, &len);
  if (spki == nullptr || len == 0) {
    mbedtls_x509_crt_free(&crt);
    return Status(Errc::parse, "no parsable certificate in the PEM text");
  }
  std::string pin = pin_of_spki(spki, len);
  mbedtls_x509_crt_free(&crt);
  return pin;
}

Result<std::string> pin_of_cert_file(const std::string& path) {
  Result<std::string> text = detail::read_file(path, kMaxCertFileBytes);
  if (!text.ok()) return text.status();
  Result<std::string> pin = pin_of_cert_pem(text.value());
  if (!pin.ok()) return Status(pin.status().code(), path + ": " + pin.status().message());
  return pin;
}

Status check_pin(std::string_view pin) {
  if (pin.substr(0, kPinPrefix.size()) != kPinPrefix) {
    return Status(Errc::invalid_argument,
                  "pin '" + std::string(pin) + "' does not start with 'sha256/'");
  }
  Result<std::string> raw = crypto::base64_decode(pin.substr(kPinPrefix.size()));
  if (!raw.ok() || raw->size() != 32) {
    return Status(Errc::invalid_argument,
                  "pin '" + std::string(pin) + "' is not sha256/ followed by the base64 of 32 bytes");
  }
  return Status();
}

}  // namespace tg::tls
