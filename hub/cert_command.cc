#include "hub/cert_command.h"

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include "shared/tls/certgen.h"
#include "shared/tls/pin.h"

namespace tg::hub {
namespace {

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "tokengo-hub";
  return buf;
}

}  // namespace

cli::Command cert_command() {
  return {"cert",
          "create the TLS certificate and key if absent (defaults hub.crt, hub-tls.key; name: "
          "this host) and print the pin agents need",
          {{"cert", true}, {"key", true}, {"name", true}, {"dns", true, true}}};
}

cli::Command pin_command() {
  return {"pin", "print the public-key pin (sha256/...) of a certificate", {{"cert", true}}};
}

int run_cert(const cli::Parsed& args) {
  const std::string cert = args.get("cert", kDefaultCertFile);
  const std::string key = args.get("key", kDefaultTlsKeyFile);
  const std::string name = args.get("name", host_name());
  std::vector<std::string> dns = args.all("dns");
  if (dns.empty()) dns.push_back(name);
  Status s = tls::ensure_self_signed(cert, key, name, dns);
  if (!s.ok()) {
    std::fprintf(stderr, "cert: %s\n", s.message().c_str());
    return 1;
  }
  return run_pin(args);
}

int run_pin(const cli::Parsed& args) {
  const std::string cert = args.get("cert", kDefaultCertFile);
  auto pin = tls::pin_of_cert_file(cert);
  if (!pin.ok()) {
    std::fprintf(stderr, "pin: %s\n", pin.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", pin->c_str());
  return 0;
}

}  // namespace tg::hub
