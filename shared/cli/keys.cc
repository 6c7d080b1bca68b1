#include "shared/cli/keys.h"

#include <sys/stat.h>

#include <cstdio>

#include "shared/crypto/ed25519.h"

namespace tg::cli {

Command keygen_command(const char* summary) {
  return {"keygen", summary, {{"out", true}, {"force", false}}};
}

Command pubkey_command() {
  return {"pubkey", "print the public key of an identity key file", {{"key", true}}};
}

int run_keygen(const Parsed& args, const std::string& default_path) {
  const std::string path = args.get("out", default_path);
  struct stat st;
  if (!args.has("force") && ::stat(path.c_str(), &st) == 0) {
    std::fprintf(stderr, "keygen: %s already exists; refusing to replace an identity key "
                         "(use --force to replace it)\n", path.c_str());
    return 1;
  }
  crypto::KeyPair key = crypto::KeyPair::generate();
  Status s = key.save(path);
  if (!s.ok()) {
    std::fprintf(stderr, "keygen: %s\n", s.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s (mode 0600)\n", path.c_str());
  std::printf("%s\n", key.public_base64().c_str());
  return 0;
}

int run_pubkey(const Parsed& args, const std::string& default_path) {
  const std::string path = args.get("key", default_path);
  auto key = crypto::KeyPair::load(path);
  if (!key.ok()) {
    std::fprintf(stderr, "pubkey: %s\n", key.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", key->public_base64().c_str());
  return 0;
}

}  // namespace tg::cli
