// Certificate and key generator over mbedTLS (x509write, pk, ecp): ECDSA P-256
// keys, self-signed or CA-issued X.509 v3 certificates with DNS/IP subject
// alternative names, and the hub's first-start self-signed pair on disk.
// Owns no state; the RNG is libsodium. Never talks to the network.
#pragma once

#include <string>
#include <vector>

#include "shared/core/status.h"

namespace tg::tls {

constexpr unsigned kMaxCertDays = 7300;      // 20 years
constexpr size_t kMaxCommonNameBytes = 64;   // X.509 ub-common-name
constexpr size_t kMaxSanEntries = 64;
constexpr size_t kMaxDnsNameBytes = 253;
constexpr size_t kMaxKeyPemBytes = 64 * 1024;

struct CertRequest {
  std::string common_name;                // subject CN; no ',', '=', '+', '\\', '"' or controls
  std::vector<std::string> dns_names;     // subjectAltName dNSName entries
  std::vector<std::string> ip_addresses;  // subjectAltName iPAddress entries ("127.0.0.1", "::1")
  unsigned days = 825;                    // validity from one hour ago, 1..kMaxCertDays
  bool is_ca = false;                     // basicConstraints CA and keyCertSign usage
  std::string key_pem;                    // the subject's private key (PEM); its public half is certified
  std::string issuer_cert_pem;            // empty: self-signed with key_pem
  std::string issuer_key_pem;             // the issuer's private key (PEM), with issuer_cert_pem
};

// A fresh ECDSA P-256 private key, PEM ("-----BEGIN EC PRIVATE KEY-----").
Result<std::string> generate_key();

// Issues a certificate (PEM) for `req`. Errors name the bad field.
Result<std::string> issue_cert(const CertRequest& req);

// First-start helper: if neither file exists, generates a key and a
// self-signed certificate (CN common_name, SAN dns_names, 10 years) and writes
// both atomically, the key with mode 0600. Existing files are left alone: if
// only the key exists a certificate is issued for it (its pin stays the same);
// a certificate without its key is an error. Returns ok when both exist after.
Status ensure_self_signed(const std::string& cert_path, const std::string& key_path,
                          const std::string& common_name,
                          const std::vector<std::string>& dns_names);

}  // namespace tg::tls
