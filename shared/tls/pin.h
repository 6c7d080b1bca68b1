// Public-key pins: "sha256/" + base64(SHA-256(DER SubjectPublicKeyInfo)) of a
// certificate, the HPKP / curl --pinnedpubkey format. Pure functions over
// certificate bytes and files; no network, no mbedTLS types in the interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/core/status.h"

namespace tg::tls {

constexpr std::string_view kPinPrefix = "sha256/";
// A certificate file we read for its pin is never larger than this.
constexpr size_t kMaxCertFileBytes = 1024 * 1024;

// Pin of a DER SubjectPublicKeyInfo.
std::string pin_of_spki(const uint8_t* der, size_t len);
// Pin of the first certificate in `pem` (PEM text; DER is accepted too).
Result<std::string> pin_of_cert_pem(std::string_view pem);
// Pin of the first certificate in the file at `path`.
Result<std::string> pin_of_cert_file(const std::string& path);
// Checks that `pin` is "sha256/" followed by the base64 of 32 bytes; the
// error names the bad value.
Status check_pin(std::string_view pin);

}  // namespace tg::tls
