// The hub's TLS identity commands: `cert` creates the self-signed certificate
// and key if absent (key mode 0600) and prints the public-key pin agents
// configure; `pin` prints the pin of an existing certificate.
#pragma once

#include "shared/cli/args.h"

namespace tg::hub {

constexpr const char* kDefaultCertFile = "hub.crt";
constexpr const char* kDefaultTlsKeyFile = "hub-tls.key";

cli::Command cert_command();
cli::Command pin_command();
int run_cert(const cli::Parsed& args);
int run_pin(const cli::Parsed& args);

}  // namespace tg::hub
