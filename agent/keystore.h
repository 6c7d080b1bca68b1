// Vendor keys at rest: the Keyring that opens and makes the sealed form of
// api_key (`sealed:v1:...`, shared/crypto/seal.h) from the seal settings of
// agent.conf, the byte-exact rewrite of api_key lines, and the
// `tokengo-agent keys set|list|seal-all` command. Keys are read from stdin,
// never from argv; no message, log line or output here holds key bytes.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "shared/cli/args.h"
#include "shared/core/secret.h"
#include "shared/core/status.h"
#include "shared/crypto/seal.h"

namespace tg::agent {

inline constexpr size_t kMaxApiKeyBytes = crypto::kMaxSealedSecretBytes;
inline constexpr const char* kPassphraseEnv = "TOKENGO_PASSPHRASE";

// What a provider's key is sealed for: "[provider NAME] type TYPE". A sealed
// value copied to another section, or kept across a type change, does not open.
std::string seal_context(std::string_view provider, std::string_view type);

// A vendor key as `keys set` accepts it: 1..kMaxApiKeyBytes bytes of
// printable ASCII without spaces. The message names a position, never a byte.
Status check_api_key(std::string_view key);

// Opens and seals api_key values with the key sources of one SealSettings.
// Reads the key file and the passphrase at most once each and stretches each
// Argon2id salt at most once, so opening many values costs one key load.
class Keyring {
 public:
  explicit Keyring(SealSettings settings);

  // Opens a `sealed:...` value for `context`. Errors name the seal key file
  // or the passphrase source and say what to do.
  Result<Secret> open(std::string_view sealed_text, std::string_view context);
  // Seals with `settings.with`. keyfile: creates the key file (32 random
  // bytes, mode 0600, owned as set_new_file_owner says) when it is missing.
  // passphrase: every seal of this Keyring uses one salt: `reuse_salt`'s if
  // given, else a fresh one.
  Result<std::string> seal(std::string_view context, std::string_view secret);
  // Checks, before a key is asked for, that seal() can get its key: an
  // existing key file loads (a missing one is fine: seal() creates it), or
  // the passphrase can be read.
  Status check_seal_source();

  // Owner for a key file seal() creates (only applied when running as root).
  void set_new_file_owner(uid_t uid, gid_t gid) noexcept;
  // Salt of a value already in the file, so one Argon2id run opens them all.
  void reuse_salt(std::string salt) { seal_salt_ = std::move(salt); }
  bool created_key_file() const noexcept { return created_key_file_; }
  const SealSettings& settings() const noexcept { return settings_; }

 private:
  Result<const crypto::SealKey*> file_key(bool create);
  Result<const crypto::SealKey*> passphrase_key(const std::string& salt);

  SealSettings settings_;
  std::optional<crypto::SealKey> file_key_;
  std::optional<Status> file_key_error_;
  Secret passphrase_;
  std::optional<Status> passphrase_error_;
  std::vector<crypto::SealKey> derived_;  // one per Argon2id salt seen
  std::string seal_salt_;
  std::optional<std::pair<uid_t, gid_t>> new_file_owner_;
  bool created_key_file_ = false;
};

// One api_key line to set: the value is written unquoted.
struct ApiKeyEdit {
  std::string provider;  // [provider NAME]
  std::string value;
};
// `text` with the api_key line of each edit's [provider NAME] section set to
// its value (everything up to '=' and the line ending are kept), or a line
// "api_key = VALUE" inserted right after the header of a section without
// one. Every other byte is kept. Sections are found as the config parser
// finds them; a missing one is an error. The result holds whatever secrets
// `text` holds: the caller wipes it.
Result<std::string> rewrite_api_keys(std::string_view text, const std::vector<ApiKeyEdit>& edits);

// Reads one key from `fd`: a terminal gets `prompt` on stderr and no echo,
// and the line up to Enter; anything else is read to its end and must be one
// line (a final "\n" or "\r\n" is dropped). Checked with check_api_key().
Result<Secret> read_api_key(int fd, const std::string& prompt);

cli::Command keys_command();
// `keys set PROVIDER`, `keys list`, `keys seal-all` on `config_path`.
// Exit codes: 0 ok, 1 runtime error, 2 usage error.
int run_keys(const cli::Parsed& args, const std::string& config_path);

}  // namespace tg::agent
