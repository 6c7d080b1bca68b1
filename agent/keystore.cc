#include "agent/keystore.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shared/config/config.h"
#include "shared/crypto/hash.h"
#include "shared/crypto/wipe.h"

namespace tg::agent {

namespace {

constexpr const char* kProgram = "tokengo-agent";
constexpr const char* kSubcommands = "keys set PROVIDER | keys list | keys seal-all";

// Bytes in libsodium guarded memory (locked where the OS allows), wiped and
// freed on every path out.
class Guarded {
 public:
  explicit Guarded(size_t n) : size_(n) {
    crypto::init();
    data_ = static_cast<char*>(sodium_malloc(n == 0 ? 1 : n));
    if (!data_) std::abort();  // out of memory for secrets: nothing sane to do
  }
  ~Guarded() { sodium_free(data_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  char* data() noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

// A heap string that may hold secrets (the config text): capacity reserved
// up front so it never reallocates, wiped when it goes.
struct WipedString {
  std::string s;
  WipedString() = default;
  explicit WipedString(std::string v) : s(std::move(v)) {}
  ~WipedString() { wipe(); }
  WipedString(const WipedString&) = delete;
  WipedString& operator=(const WipedString&) = delete;
  void wipe() { crypto::wipe(&s); }
};

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string errno_text(int err) { return std::strerror(err); }

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// ---- the config file on disk -------------------------------------------------

// agent.conf as read: its bytes and what it was when read, so the rewrite
// keeps the mode and owner and notices a concurrent change.
struct ConfigFile {
  std::string path;  // as given
  std::string real;  // symlinks resolved: the file that is replaced
  struct stat st {};
  WipedString text;
};

Status read_config(const std::string& path, ConfigFile* f) {
  f->path = path;
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) {
    return error(errno == ENOENT ? Errc::not_found : Errc::io,
                 path + ": cannot open: " + errno_text(errno));
  }
  f->real = real;
  Fd fd(::open(f->real.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return error(Errc::io, path + ": cannot open: " + errno_text(errno));
  if (::fstat(fd.fd, &f->st) != 0) return error(Errc::io, path + ": stat failed: " + errno_text(errno));
  if (!S_ISREG(f->st.st_mode)) return error(Errc::invalid_argument, path + ": not a regular file");
  if (static_cast<uint64_t>(f->st.st_size) > config::kMaxFileBytes) {
    return error(Errc::limit, path + ": larger than " +
                                  std::to_string(config::kMaxFileBytes >> 20) + " MiB");
  }
  // One byte of room past the size read, so a file that grew is noticed.
  const size_t cap = static_cast<size_t>(f->st.st_size) + 1;
  f->text.s.reserve(cap);
  f->text.s.resize(cap);
  size_t len = 0;
  while (len < cap) {
    ssize_t n = ::read(fd.fd, &f->text.s[len], cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(Errc::io, path + ": read failed: " + errno_text(errno));
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  if (len != static_cast<size_t>(f->st.st_size)) {
    return error(Errc::io, path + ": changed while being read; run the command again");
  }
  f->text.s.resize(len);
  return Status::success();
}

// Replaces the file with `bytes`: a temporary file in the same directory
// with the old mode (and owner, when root), fsync, a check that nobody
// changed the file since it was read, rename, fsync of the directory.
Status replace_config(const ConfigFile& f, std::string_view bytes) {
  std::string tmpl = f.real + ".tmp-XXXXXX";
  Fd fd(::mkstemp(tmpl.data()));
  if (fd.fd < 0) {
    return error(errno == EACCES ? Errc::permission : Errc::io,
                 f.path + ": cannot create a temporary file next to it: " + errno_text(errno));
  }
  const std::string& tmp = tmpl;
  Status st = Status::success();
  if (::fchmod(fd.fd, f.st.st_mode & 07777) != 0) {
    st = error(Errc::io, tmp + ": chmod failed: " + errno_text(errno));
  }
  if (st.ok() && ::geteuid() == 0 && ::fchown(fd.fd, f.st.st_uid, f.st.st_gid) != 0) {
    st = error(Errc::io, tmp + ": chown failed: " + errno_text(errno));
  }
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (st.ok() && left > 0) {
    ssize_t n = ::write(fd.fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      st = error(Errc::io, tmp + ": write failed: " + errno_text(errno));
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (st.ok() && ::fsync(fd.fd) != 0) st = error(Errc::io, tmp + ": fsync failed: " + errno_text(errno));
  if (st.ok()) {
    int rc = ::close(fd.fd);
    fd.fd = -1;
    if (rc != 0) st = error(Errc::io, tmp + ": close failed: " + errno_text(errno));
  }
  if (st.ok()) {
    struct stat now {};
    if (::stat(f.real.c_str(), &now) != 0 || now.st_ino != f.st.st_ino ||
        now.st_size != f.st.st_size || now.st_mtim.tv_sec != f.st.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != f.st.st_mtim.tv_nsec) {
      st = error(Errc::io, f.path + ": changed while this command ran; nothing was written, "
                                    "run it again");
    }
  }
  if (st.ok() && ::rename(tmp.c_str(), f.real.c_str()) != 0) {
    st = error(Errc::io, f.path + ": cannot replace: " + errno_text(errno));
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  Fd dir(::open(dir_of(f.real).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd >= 0) ::fsync(dir.fd);  // best effort: some filesystems refuse it
  return Status::success();
}

// ---- output ----------------------------------------------------------------

int fail(const std::string& what, const std::string& message) {
  std::fprintf(stderr, "%s: %s: %s\n", kProgram, what.c_str(), message.c_str());
  return 1;
}

int usage_error(const std::string& what, const std::string& message) {
  std::fprintf(stderr, "%s: %s: %s\nrun '%s --help' for usage\n", kProgram, what.c_str(),
               message.c_str(), kProgram);
  return 2;
}

int report_errors(const std::string& what, const std::vector<config::Diagnostic>& errors) {
  for (const auto& d : errors) std::fprintf(stderr, "%s\n", d.to_string().c_str());
  std::fprintf(stderr, "%s: %s: %zu error%s in the config; fix %s first (nothing was changed)\n",
               kProgram, what.c_str(), errors.size(), errors.size() == 1 ? "" : "s",
               errors.size() == 1 ? "it" : "them");
  return 1;
}

// ---- the commands ----------------------------------------------------------

struct ProviderView {
  std::string name;
  std::string type;
  const Secret* api_key;
};

std::vector<ProviderView> providers_of(const config::Config& c) {
  std::vector<ProviderView> out;
  for (const config::Section* p : c.sections("provider")) {
    out.push_back({p->name(), std::string(p->str("type")), &p->secret("api_key")});
  }
  return out;
}

std::string provider_names(const std::vector<ProviderView>& ps) {
  std::string out;
  for (const auto& p : ps) out += (out.empty() ? "" : ", ") + p.name;
  return out.empty() ? "none" : out;
}

std::string source_text(const Keyring& k) {
  const SealSettings& s = k.settings();
  if (s.with == "passphrase") {
    return "passphrase from " + (s.passphrase_file.empty() ? std::string(kPassphraseEnv)
                                                           : s.passphrase_file) +
           ", argon2id";
  }
  return "seal key file " + s.key_file;
}

Keyring keyring_for(const config::Config& c, const ConfigFile& f) {
  Keyring k(seal_settings(c));
  k.set_new_file_owner(f.st.st_uid, f.st.st_gid);
  if (k.settings().with == "passphrase") {
    for (const ProviderView& p : providers_of(c)) {
      auto v = crypto::parse_sealed(p.api_key->reveal());
      if (v.ok() && v->kind == crypto::SealKind::argon2id) {
        k.reuse_salt(v->salt);
        break;
      }
    }
  }
  return k;
}

// Seals `edits` (values still plain) into the file: seals, rewrites, checks
// the new text parses and every new value opens to its key, then replaces
// the file. `plain` holds the keys, parallel to `edits`.
Status seal_into(ConfigFile& f, Keyring& keyring, const std::vector<ProviderView>& targets,
                 const std::vector<const Secret*>& plain) {
  std::vector<ApiKeyEdit> edits;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto token = keyring.seal(seal_context(targets[i].name, targets[i].type), plain[i]->reveal());
    if (!token.ok()) return token.status();
    edits.push_back({targets[i].name, std::move(*token)});
  }
  auto rewritten = rewrite_api_keys(f.text.s, edits);
  if (!rewritten.ok()) return rewritten.status();
  WipedString next(std::move(*rewritten));
  config::ParseResult check = config::parse(next.s, f.path, schema());
  if (!check.config) {
    return error(Errc::internal, "the rewritten config does not parse (" +
                                     check.errors.front().to_string() + "); nothing was written");
  }
  for (size_t i = 0; i < edits.size(); ++i) {
    const config::Section* s = check.config->section("provider", edits[i].provider);
    auto opened = keyring.open(edits[i].value, seal_context(targets[i].name, targets[i].type));
    if (!s || !s->secret("api_key").equals(edits[i].value) || !opened.ok() ||
        !opened->equals(plain[i]->reveal())) {
      return error(Errc::internal, "the sealed api_key of [provider " + edits[i].provider +
                                       "] did not read back; nothing was written");
    }
  }
  return replace_config(f, next.s);
}

int keys_set(ConfigFile& f, const config::Config& c, const std::string& name) {
  const std::string what = "keys set";
  std::vector<ProviderView> all = providers_of(c);
  const ProviderView* target = nullptr;
  for (const auto& p : all) {
    if (p.name == name) target = &p;
  }
  // The name is not echoed: a key typed in its place must not be printed.
  if (!target) {
    return fail(what, "no [provider] section of that name in " + f.path +
                          " (providers: " + provider_names(all) + ")");
  }
  Keyring keyring = keyring_for(c, f);
  if (Status s = keyring.check_seal_source(); !s.ok()) return fail(what, s.message());
  auto key = read_api_key(STDIN_FILENO, "api_key for [provider " + target->name +
                                            "] (input is not shown): ");
  if (!key.ok()) return fail(what, "stdin: " + key.status().message());
  if (Status s = seal_into(f, keyring, {*target}, {&*key}); !s.ok()) return fail(what, s.message());
  if (keyring.created_key_file()) {
    std::fprintf(stderr, "created seal key file %s (mode 0600); keep a copy of it: sealed keys "
                         "cannot be opened without it\n", keyring.settings().key_file.c_str());
  }
  std::printf("sealed api_key of [provider %s] into %s (%s)\n", target->name.c_str(),
              f.path.c_str(), source_text(keyring).c_str());
  return 0;
}

int keys_list(const config::Config& c) {
  std::vector<ProviderView> all = providers_of(c);
  size_t width = 8;  // "PROVIDER"
  for (const auto& p : all) width = std::max(width, p.name.size());
  std::printf("%-*s  %-9s  %s\n", static_cast<int>(width), "PROVIDER", "TYPE", "API_KEY");
  for (const auto& p : all) {
    std::string_view v = p.api_key->reveal();
    std::string state;
    if (v.empty()) {
      state = "missing";
    } else if (!crypto::is_sealed(v)) {
      state = "plain";
    } else {
      auto parsed = crypto::parse_sealed(v);
      state = parsed.ok() ? std::string("sealed (") + crypto::seal_kind_name(parsed->kind) + ")"
                          : "malformed sealed value";
    }
    std::printf("%-*s  %-9s  %s\n", static_cast<int>(width), p.name.c_str(), p.type.c_str(),
                state.c_str());
  }
  return 0;
}

int keys_seal_all(ConfigFile& f, const config::Config& c) {
  const std::string what = "keys seal-all";
  std::vector<ProviderView> targets;
  std::vector<const Secret*> plain;
  for (const ProviderView& p : providers_of(c)) {
    std::string_view v = p.api_key->reveal();
    if (v.empty() || crypto::is_sealed(v)) continue;
    if (Status s = check_api_key(v); !s.ok()) {
      return fail(what, "api_key of [provider " + p.name + "]: " + s.message() +
                            "; set it with 'tokengo-agent keys set " + p.name +
                            "' (nothing was changed)");
    }
    targets.push_back(p);
    plain.push_back(p.api_key);
  }
  if (targets.empty()) {
    std::printf("nothing to seal: no api_key in %s is in plain text\n", f.path.c_str());
    return 0;
  }
  Keyring keyring = keyring_for(c, f);
  if (Status s = keyring.check_seal_source(); !s.ok()) return fail(what, s.message());
  if (Status s = seal_into(f, keyring, targets, plain); !s.ok()) return fail(what, s.message());
  if (keyring.created_key_file()) {
    std::fprintf(stderr, "created seal key file %s (mode 0600); keep a copy of it: sealed keys "
                         "cannot be opened without it\n", keyring.settings().key_file.c_str());
  }
  for (const auto& p : targets) {
    std::printf("sealed api_key of [provider %s] into %s (%s)\n", p.name.c_str(),
                f.path.c_str(), source_text(keyring).c_str());
  }
  return 0;
}

}  // namespace

// ---- pieces ----------------------------------------------------------------

std::string seal_context(std::string_view provider, std::string_view type) {
  return "[provider " + std::string(provider) + "] type " + std::string(type);
}

Status check_api_key(std::string_view key) {
  if (key.empty()) return error(Errc::invalid_argument, "the key is empty");
  if (key.size() > kMaxApiKeyBytes) {
    return error(Errc::limit, "the key is longer than " + std::to_string(kMaxApiKeyBytes) +
                                  " bytes (" + std::to_string(key.size()) + ")");
  }
  for (size_t i = 0; i < key.size(); ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x21 || c > 0x7e) {
      return error(Errc::invalid_argument,
                   "the key has a space, control or non-ASCII byte at position " +
                       std::to_string(i + 1) + " (vendor keys are printable ASCII)");
    }
  }
  return Status::success();
}

Keyring::Keyring(SealSettings settings) : settings_(std::move(settings)) {}

void Keyring::set_new_file_owner(uid_t uid, gid_t gid) noexcept {
  new_file_owner_ = std::make_pair(uid, gid);
}

Result<const crypto::SealKey*> Keyring::file_key(bool create) {
  if (file_key_) return &*file_key_;
  const std::string& path = settings_.key_file;
  if (path.empty()) return error(Errc::invalid_argument, "seal_key_file is not set");
  if (file_key_error_ && !(create && file_key_error_->code() == Errc::not_found)) {
    return *file_key_error_;
  }
  auto loaded = crypto::SealKey::load_file(path);
  if (loaded.ok()) {
    file_key_ = std::move(*loaded);
    return &*file_key_;
  }
  if (loaded.status().code() == Errc::not_found && create) {
    crypto::SealKey fresh = crypto::SealKey::generate();
    TG_TRY(fresh.create_file(path));
    if (new_file_owner_ && ::geteuid() == 0 &&
        ::chown(path.c_str(), new_file_owner_->first, new_file_owner_->second) != 0) {
      return error(Errc::io, path + ": chown failed: " + errno_text(errno));
    }
    created_key_file_ = true;
    file_key_ = std::move(fresh);
    return &*file_key_;
  }
  file_key_error_ = loaded.status();
  return loaded.status();
}

Result<const crypto::SealKey*> Keyring::passphrase_key(const std::string& salt) {
  for (const crypto::SealKey& k : derived_) {
    if (k.salt() == salt) return &k;
  }
  if (passphrase_.empty()) {
    if (passphrase_error_) return *passphrase_error_;
    if (!settings_.passphrase_file.empty()) {
      auto p = crypto::read_passphrase_file(settings_.passphrase_file);
      if (!p.ok()) {
        passphrase_error_ = p.status();
        return p.status();
      }
      passphrase_ = std::move(*p);
    } else {
      const char* env = std::getenv(kPassphraseEnv);
      std::string_view text = env ? std::string_view(env) : std::string_view();
      if (text.empty()) {
        passphrase_error_ = error(Errc::not_found,
                                  std::string("no passphrase: set seal_passphrase_file in the "
                                              "config or the environment variable ") +
                                      kPassphraseEnv);
      } else if (text.size() > crypto::kMaxPassphraseBytes) {
        passphrase_error_ = error(Errc::limit, std::string(kPassphraseEnv) +
                                                   " is longer than " +
                                                   std::to_string(crypto::kMaxPassphraseBytes) +
                                                   " bytes");
      } else {
        passphrase_ = Secret(text);
      }
      if (passphrase_error_) return *passphrase_error_;
    }
  }
  auto k = crypto::SealKey::from_passphrase(passphrase_.reveal(), salt);
  if (!k.ok()) return k.status();
  derived_.push_back(std::move(*k));
  return &derived_.back();
}

Result<Secret> Keyring::open(std::string_view sealed_text, std::string_view context) {
  auto v = crypto::parse_sealed(sealed_text);
  if (!v.ok()) return v.status();
  auto key = v->kind == crypto::SealKind::keyfile ? file_key(false) : passphrase_key(v->salt);
  if (!key.ok()) return key.status();
  auto opened = crypto::open(**key, *v, context);
  if (!opened.ok() && v->kind == crypto::SealKind::keyfile) {
    return error(opened.status().code(),
                 opened.status().message() + " [seal key file " + settings_.key_file + "]");
  }
  if (!opened.ok()) {
    return error(opened.status().code(),
                 opened.status().message() + " [passphrase from " +
                     (settings_.passphrase_file.empty() ? std::string(kPassphraseEnv)
                                                        : settings_.passphrase_file) +
                     "]");
  }
  return opened;
}

Result<std::string> Keyring::seal(std::string_view context, std::string_view secret) {
  if (settings_.with == "passphrase") {
    if (seal_salt_.empty()) seal_salt_ = crypto::new_seal_salt();
    auto key = passphrase_key(seal_salt_);
    if (!key.ok()) return key.status();
    return crypto::seal(**key, context, secret);
  }
  auto key = file_key(true);
  if (!key.ok()) return key.status();
  return crypto::seal(**key, context, secret);
}

Status Keyring::check_seal_source() {
  if (settings_.with == "passphrase") {
    if (seal_salt_.empty()) seal_salt_ = crypto::new_seal_salt();
    auto key = passphrase_key(seal_salt_);
    return key.ok() ? Status::success() : key.status();
  }
  auto key = file_key(false);
  if (key.ok() || key.status().code() == Errc::not_found) return Status::success();
  return key.status();
}

Result<std::string> rewrite_api_keys(std::string_view text, const std::vector<ApiKeyEdit>& edits) {
  for (size_t i = 0; i < edits.size(); ++i) {
    const std::string& v = edits[i].value;
    bool ok = !v.empty() && v.size() <= config::kMaxLineBytes / 2 && v[0] != '"';
    for (char c : v) ok = ok && c > 0x20 && c < 0x7f;
    if (!ok) {
      return error(Errc::invalid_argument, "api_key for [provider " + edits[i].provider +
                                               "]: the new value is not one printable token");
    }
    for (size_t j = 0; j < i; ++j) {
      if (edits[j].provider == edits[i].provider) {
        return error(Errc::invalid_argument,
                     "[provider " + edits[i].provider + "] is edited twice");
      }
    }
  }
  // Splices, in text order: replace [from, to) with `with`.
  struct Splice {
    size_t from, to;
    std::string with;
  };
  std::vector<Splice> splices;
  std::vector<int> header_at(edits.size(), -1);   // splice index of a pending insert
  std::vector<bool> has_key(edits.size(), false);
  std::vector<bool> seen(edits.size(), false);
  const size_t start = text.substr(0, 3) == "\xef\xbb\xbf" ? 3 : 0;  // a BOM is kept as is
  int current = -1;  // index of the edit whose section the lines are in
  for (size_t pos = start; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    const bool has_nl = nl != std::string_view::npos;
    const size_t end = has_nl ? nl : text.size();
    std::string_view line = text.substr(pos, end - pos);
    const bool crlf = !line.empty() && line.back() == '\r';
    if (crlf) line.remove_suffix(1);
    const size_t next = has_nl ? nl + 1 : text.size();
    std::string_view t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') {
      pos = next;
      continue;
    }
    if (t[0] == '[') {
      current = -1;
      if (t.size() >= 2 && t.back() == ']') {
        std::string_view inner = trim(t.substr(1, t.size() - 2));
        size_t sp = 0;
        while (sp < inner.size() && !is_space(inner[sp])) ++sp;
        std::string_view name = trim(inner.substr(sp));
        if (inner.substr(0, sp) == "provider") {
          for (size_t i = 0; i < edits.size(); ++i) {
            if (edits[i].provider != name) continue;
            if (seen[i]) {
              return error(Errc::parse, "duplicate section [provider " + edits[i].provider + "]");
            }
            seen[i] = true;
            current = static_cast<int>(i);
            // Inserted after this line unless the section has an api_key line.
            // (A last line without "\n" gets one; a CRLF header keeps its style.)
            std::string add = has_nl ? "" : "\n";
            add += "api_key = " + edits[i].value + (crlf ? "\r\n" : "\n");
            header_at[i] = static_cast<int>(splices.size());
            splices.push_back({next, next, std::move(add)});
          }
        }
      }
      pos = next;
      continue;
    }
    size_t eq = t.find('=');
    if (current >= 0 && eq != std::string_view::npos && trim(t.substr(0, eq)) == "api_key") {
      const auto i = static_cast<size_t>(current);
      if (has_key[i]) {
        return error(Errc::parse, "duplicate api_key in [provider " + edits[i].provider + "]");
      }
      has_key[i] = true;
      // Drop the pending insert; replace from after '=' to the end of the line.
      splices[static_cast<size_t>(header_at[i])].with.clear();
      const size_t value_from = static_cast<size_t>(t.data() - text.data()) + eq + 1;
      const size_t value_to = static_cast<size_t>(line.data() - text.data()) + line.size();
      splices.push_back({value_from, value_to, " " + edits[i].value});
    }
    pos = next;
  }
  for (size_t i = 0; i < edits.size(); ++i) {
    if (!seen[i]) {
      return error(Errc::not_found, "no section [provider " + edits[i].provider + "]");
    }
  }
  // Size first, so the result is built without reallocating (no stray copies).
  size_t total = text.size();
  for (const Splice& s : splices) total = total - (s.to - s.from) + s.with.size();
  std::string out;
  out.reserve(total);
  size_t at = 0;
  for (const Splice& s : splices) {
    out.append(text.data() + at, s.from - at);
    out += s.with;
    at = s.to;
  }
  out.append(text.data() + at, text.size() - at);
  return out;
}

Result<Secret> read_api_key(int fd, const std::string& prompt) {
  // Room for the longest key, "\r\n", and one byte that proves it too long.
  Guarded buf(kMaxApiKeyBytes + 3);
  const bool tty = ::isatty(fd) == 1;
  struct termios saved {};
  bool restore = false;
  if (tty) {
    std::fputs(prompt.c_str(), stderr);
    std::fflush(stderr);
    if (::tcgetattr(fd, &saved) == 0) {
      struct termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      quiet.c_lflag |= ECHONL;  // Enter still moves to the next line
      restore = ::tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
  }
  size_t len = 0;
  Status st = Status::success();
  while (len < buf.size()) {
    // A terminal is read byte by byte up to Enter; a pipe or file to its end.
    ssize_t n = ::read(fd, buf.data() + len, tty ? 1 : buf.size() - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      st = error(Errc::io, std::string("read failed: ") + errno_text(errno));
      break;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
    if (tty && buf.data()[len - 1] == '\n') break;
  }
  if (restore) ::tcsetattr(fd, TCSAFLUSH, &saved);
  if (!st.ok()) return st;
  std::string_view text(buf.data(), len);
  if (len == buf.size()) {
    return error(Errc::limit, "the key is longer than " + std::to_string(kMaxApiKeyBytes) +
                                  " bytes");
  }
  size_t nl = text.find('\n');
  if (nl != std::string_view::npos) {
    if (nl + 1 != text.size()) {
      return error(Errc::invalid_argument,
                   "more than one line; give only the key, on one line");
    }
    text.remove_suffix(1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  }
  if (text.empty()) {
    return error(Errc::invalid_argument,
                 "no key given (empty input); e.g.: tokengo-agent keys set NAME < key.txt");
  }
  TG_TRY(check_api_key(text));
  return Secret(text);
}

cli::Command keys_command() {
  return {"keys",
          "seal vendor keys in the config: set (the key is read from stdin), list, seal-all",
          {{"config", true}},
          1,
          2,
          "set PROVIDER | list | seal-all"};
}

int run_keys(const cli::Parsed& args, const std::string& config_path) {
  // Positional words are never echoed: a key pasted in the wrong place must
  // not come back out in a message.
  const std::string& sub = args.positional[0];
  const size_t want = sub == "set" ? 2 : 1;
  if (sub != "set" && sub != "list" && sub != "seal-all") {
    return usage_error("keys", std::string("unknown subcommand; use: ") + kSubcommands);
  }
  if (args.positional.size() != want) {
    return usage_error("keys " + sub, sub == "set" ? "needs one PROVIDER name (the key is read "
                                                     "from stdin, never from the command line)"
                                                   : "takes no further arguments");
  }
  const std::string what = "keys " + sub;
  ConfigFile f;
  if (Status s = read_config(config_path, &f); !s.ok()) return fail(what, s.message());
  config::ParseResult parsed = config::parse(f.text.s, f.path, schema());
  if (!parsed.config) return report_errors(what, parsed.errors);
  if (sub == "list") return keys_list(*parsed.config);
  if (sub == "seal-all") return keys_seal_all(f, *parsed.config);
  return keys_set(f, *parsed.config, args.positional[1]);
}

}  // namespace tg::agent
