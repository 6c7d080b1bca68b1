// make_test_ca: writes a test CA and one leaf certificate it signed, for the
// fake vendor's TLS. Usage: make_test_ca DIR DNS_NAME...
// Creates DIR/ca.pem, DIR/ca.key, DIR/leaf.pem, DIR/leaf.key (the leaf
// carries every DNS_NAME and 127.0.0.1). Test-only; never used by the product.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "shared/tls/certgen.h"

namespace {

bool write_file(const std::string& path, const std::string& text, bool secret) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) {
    std::fprintf(stderr, "make_test_ca: cannot write %s\n", path.c_str());
    return false;
  }
  if (secret) ::chmod(path.c_str(), 0600);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: make_test_ca DIR DNS_NAME...\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<std::string> names(argv + 2, argv + argc);
  auto ca_key = tg::tls::generate_key();
  auto leaf_key = tg::tls::generate_key();
  if (!ca_key.ok() || !leaf_key.ok()) {
    std::fprintf(stderr, "make_test_ca: key generation failed\n");
    return 1;
  }
  tg::tls::CertRequest ca;
  ca.common_name = "TokenGo Test CA";
  ca.is_ca = true;
  ca.days = 30;
  ca.key_pem = *ca_key;
  auto ca_cert = tg::tls::issue_cert(ca);
  if (!ca_cert.ok()) {
    std::fprintf(stderr, "make_test_ca: CA: %s\n", ca_cert.status().message().c_str());
    return 1;
  }
  tg::tls::CertRequest leaf;
  leaf.common_name = names[0].substr(0, tg::tls::kMaxCommonNameBytes);
  leaf.dns_names = names;
  leaf.ip_addresses = {"127.0.0.1"};
  leaf.days = 30;
  leaf.key_pem = *leaf_key;
  leaf.issuer_cert_pem = *ca_cert;
  leaf.issuer_key_pem = *ca_key;
  auto leaf_cert = tg::tls::issue_cert(leaf);
  if (!leaf_cert.ok()) {
    std::fprintf(stderr, "make_test_ca: leaf: %s\n", leaf_cert.status().message().c_str());
    return 1;
  }
  if (!write_file(dir + "/ca.pem", *ca_cert, false) || !write_file(dir + "/ca.key", *ca_key, true) ||
      !write_file(dir + "/leaf.pem", *leaf_cert, false) ||
      !write_file(dir + "/leaf.key", *leaf_key, true)) {
    return 1;
  }
  return 0;
}
