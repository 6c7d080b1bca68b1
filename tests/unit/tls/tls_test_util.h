// Helpers for the shared/tls tests: a temporary directory and a test PKI
// (CA, leaf for localhost/127.0.0.1, self-signed hub certificate) made with
// our own generator.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "shared/tls/certgen.h"
#include "tests/unit/temp_dir.h"

namespace tg::tls::test {

using tg::test::TempDir;

struct KeyCert {
  std::string key;
  std::string cert;
};

inline std::string must(Result<std::string> r) {
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : std::string();
}

inline KeyCert make_ca(const std::string& cn) {
  KeyCert ca;
  ca.key = must(generate_key());
  CertRequest req;
  req.common_name = cn;
  req.is_ca = true;
  req.days = 30;
  req.key_pem = ca.key;
  ca.cert = must(issue_cert(req));
  return ca;
}

inline KeyCert make_leaf(const KeyCert& ca, const std::string& cn) {
  KeyCert leaf;
  leaf.key = must(generate_key());
  CertRequest req;
  req.common_name = cn;
  req.dns_names = {"localhost"};
  req.ip_addresses = {"127.0.0.1"};
  req.days = 30;
  req.key_pem = leaf.key;
  req.issuer_cert_pem = ca.cert;
  req.issuer_key_pem = ca.key;
  leaf.cert = must(issue_cert(req));
  return leaf;
}

inline KeyCert make_self_signed(const std::string& cn) {
  KeyCert kc;
  kc.key = must(generate_key());
  CertRequest req;
  req.common_name = cn;
  req.dns_names = {"localhost"};
  req.days = 30;
  req.key_pem = kc.key;
  kc.cert = must(issue_cert(req));
  return kc;
}

}  // namespace tg::tls::test
