// Identity-key commands shared by both programs: `keygen` creates an Ed25519
// key file (mode 0600, never overwriting one unless --force) and prints its
// public key; `pubkey` prints the public key of an existing file.
#pragma once

#include <string>

#include "shared/cli/args.h"

namespace tg::cli {

// The option set both commands accept.
Command keygen_command(const char* summary);
Command pubkey_command();

// Run the command; returns the process exit code and prints to stdout/stderr.
int run_keygen(const Parsed& args, const std::string& default_path);
int run_pubkey(const Parsed& args, const std::string& default_path);

}  // namespace tg::cli
