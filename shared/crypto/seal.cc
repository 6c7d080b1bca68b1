#include "shared/crypto/seal.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shared/crypto/hash.h"

namespace tg::crypto {

namespace {

constexpr std::string_view kVersion = "v1";
// Smallest box: nonce, MAC, context length byte, one context byte, one secret byte.
constexpr size_t kMinSealPayloadBytes = kSealNonceBytes + kSealMacBytes + 3;
constexpr size_t kMaxEchoBytes = 16;  // of a version or kind word in a message

static_assert(kSealSaltBytes == crypto_pwhash_SALTBYTES, "argon2id salt size");
static_assert(kSealNonceBytes == crypto_secretbox_NONCEBYTES, "secretbox nonce size");
static_assert(kSealMacBytes == crypto_secretbox_MACBYTES, "secretbox MAC size");
static_assert(kSealKeyBytes == crypto_secretbox_KEYBYTES, "secretbox key size");
static_assert(kSealArgon2OpsLimit == crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE &&
                  kSealArgon2MemLimit == crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
              "sealed:v1:argon2id uses libsodium's INTERACTIVE cost");
static_assert(kMaxSealContextBytes <= 255, "the context length is one byte");
static_assert(kSealedPrefix.size() + 3 + 9 + 24 + 1 + (kMaxSealPayloadBytes + 2) / 3 * 4 <=
                  kMaxSealedTextBytes,
              "the largest token fits kMaxSealedTextBytes");

// Bytes in libsodium guarded memory, wiped and freed on every path out.
class Guarded {
 public:
  explicit Guarded(size_t n) : size_(n) {
    init();
    data_ = static_cast<unsigned char*>(sodium_malloc(n == 0 ? 1 : n));
    if (!data_) std::abort();  // out of memory for secrets: nothing sane to do
    sodium_memzero(data_, n == 0 ? 1 : n);
  }
  ~Guarded() { sodium_free(data_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  unsigned char* data() noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  std::string_view view(size_t from, size_t n) const noexcept {
    return std::string_view(reinterpret_cast<const char*>(data_) + from, n);
  }

 private:
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// Closes a file descriptor on every path.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string errno_text(int err) { return std::strerror(err); }

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A version or kind word, quoted if it is short and plain, for messages.
std::string echo_word(std::string_view w) {
  bool plain = !w.empty() && w.size() <= kMaxEchoBytes;
  for (char c : w) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
  }
  return plain ? "'" + std::string(w) + "'" : "(unreadable)";
}

// A context label found inside a box, for messages: printable ASCII or nothing.
std::string echo_context(std::string_view c) {
  for (char ch : c) {
    if (ch < 0x20 || ch > 0x7e) return "another context";
  }
  return std::string(c);
}

// Opens a key or passphrase file that must be a regular file without group
// or other permission bits. `what` names it in messages ("seal key file").
Status open_private_file(const std::string& path, const char* what, Fd* out, struct stat* st) {
  out->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (out->fd < 0) {
    int err = errno;
    Errc code = err == ENOENT ? Errc::not_found : err == EACCES ? Errc::permission : Errc::io;
    return error(code, path + ": cannot open " + what + ": " + errno_text(err));
  }
  if (::fstat(out->fd, st) != 0) {
    return error(Errc::io, path + ": stat failed: " + errno_text(errno));
  }
  if (!S_ISREG(st->st_mode)) {
    return error(Errc::invalid_argument, path + ": " + what + " is not a regular file");
  }
  if ((st->st_mode & 077) != 0) {
    return error(Errc::permission, path + ": " + what + " is accessible by group or others (mode " +
                                       octal_mode(st->st_mode) + "); run: chmod 600 " + path);
  }
  return Status::success();
}

// Reads at most buf.size() bytes into buf; *len is how many. Fails if the
// file holds more.
Status read_bounded(int fd, Guarded& buf, size_t* len, const std::string& path,
                    const std::string& too_long) {
  *len = 0;
  for (;;) {
    if (*len == buf.size()) return error(Errc::limit, path + ": " + too_long);
    ssize_t n = ::read(fd, buf.data() + *len, buf.size() - *len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(Errc::io, path + ": read failed: " + errno_text(errno));
    }
    if (n == 0) return Status::success();
    *len += static_cast<size_t>(n);
  }
}

}  // namespace

const char* seal_kind_name(SealKind kind) noexcept {
  return kind == SealKind::argon2id ? "argon2id" : "keyfile";
}

bool is_sealed(std::string_view value) noexcept {
  return value.substr(0, kSealedPrefix.size()) == kSealedPrefix;
}

Result<SealedValue> parse_sealed(std::string_view text) {
  if (text.size() > kMaxSealedTextBytes) {
    return error(Errc::limit, "sealed value is longer than " +
                                  std::to_string(kMaxSealedTextBytes) + " bytes (" +
                                  std::to_string(text.size()) + ")");
  }
  if (!is_sealed(text)) return error(Errc::parse, "sealed value must start with 'sealed:'");
  std::string_view rest = text.substr(kSealedPrefix.size());
  // Fields: version, kind, then one (keyfile) or two (argon2id) base64 fields.
  std::string_view fields[4];
  size_t n = 0;  // fields in all; the first four are kept
  for (;;) {
    size_t colon = rest.find(':');
    if (n < 4) fields[n] = rest.substr(0, colon);
    ++n;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (fields[0] != kVersion) {
    return error(Errc::parse, "sealed value has unknown version " + echo_word(fields[0]) +
                                  " (this agent reads sealed:v1:...)");
  }
  SealedValue v;
  std::string_view payload;
  if (n >= 2 && fields[1] == "keyfile") {
    v.kind = SealKind::keyfile;
    if (n != 3) {
      return error(Errc::parse, "sealed value: expected sealed:v1:keyfile:<base64>, got " +
                                    std::to_string(n) + " ':'-separated fields");
    }
    payload = fields[2];
  } else if (n >= 2 && fields[1] == "argon2id") {
    v.kind = SealKind::argon2id;
    if (n != 4) {
      return error(Errc::parse,
                   "sealed value: expected sealed:v1:argon2id:<base64 salt>:<base64>, got " +
                       std::to_string(n) + " ':'-separated fields");
    }
    Result<std::string> salt = base64_decode(fields[2]);
    if (!salt.ok()) return error(Errc::parse, "sealed value: salt: " + salt.status().message());
    if (salt->size() != kSealSaltBytes) {
      return error(Errc::parse, "sealed value: salt must be " + std::to_string(kSealSaltBytes) +
                                    " bytes, got " + std::to_string(salt->size()));
    }
    v.salt = std::move(*salt);
    payload = fields[3];
  } else {
    return error(Errc::parse, "sealed value has unknown kind " +
                                  echo_word(n >= 2 ? fields[1] : std::string_view()) +
                                  " (expected keyfile or argon2id)");
  }
  Result<std::string> box = base64_decode(payload);
  if (!box.ok()) return error(Errc::parse, "sealed value: box: " + box.status().message());
  if (box->size() < kMinSealPayloadBytes || box->size() > kMaxSealPayloadBytes) {
    return error(Errc::parse, "sealed value: box is " + std::to_string(box->size()) +
                                  " bytes, must be " + std::to_string(kMinSealPayloadBytes) +
                                  ".." + std::to_string(kMaxSealPayloadBytes) +
                                  " (truncated?)");
  }
  v.payload = std::move(*box);
  return v;
}

std::string format_sealed(const SealedValue& value) {
  std::string out(kSealedPrefix);
  out += kVersion;
  out += ':';
  out += seal_kind_name(value.kind);
  out += ':';
  if (value.kind == SealKind::argon2id) {
    out += base64_encode(value.salt);
    out += ':';
  }
  out += base64_encode(value.payload);
  return out;
}

SealKey SealKey::generate() {
  Guarded k(kSealKeyBytes);
  randombytes_buf(k.data(), kSealKeyBytes);
  SealKey key;
  key.key_ = Secret(k.view(0, kSealKeyBytes));
  return key;
}

Result<SealKey> SealKey::from_bytes(std::string_view key32) {
  if (key32.size() != kSealKeyBytes) {
    return error(Errc::invalid_argument, "seal key must be " + std::to_string(kSealKeyBytes) +
                                             " bytes, got " + std::to_string(key32.size()));
  }
  SealKey key;
  key.key_ = Secret(key32);
  return key;
}

Result<SealKey> SealKey::from_passphrase(std::string_view passphrase, std::string_view salt16) {
  init();
  if (passphrase.empty()) return error(Errc::invalid_argument, "passphrase is empty");
  if (passphrase.size() > kMaxPassphraseBytes) {
    return error(Errc::limit, "passphrase is longer than " +
                                  std::to_string(kMaxPassphraseBytes) + " bytes");
  }
  if (salt16.size() != kSealSaltBytes) {
    return error(Errc::invalid_argument, "argon2id salt must be " +
                                             std::to_string(kSealSaltBytes) + " bytes, got " +
                                             std::to_string(salt16.size()));
  }
  Guarded k(kSealKeyBytes);
  if (crypto_pwhash(k.data(), kSealKeyBytes, passphrase.data(), passphrase.size(),
                    bytes_of(salt16), kSealArgon2OpsLimit, kSealArgon2MemLimit,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return error(Errc::internal, "argon2id could not get its " +
                                     std::to_string(kSealArgon2MemLimit >> 20) +
                                     " MiB of memory");
  }
  SealKey key;
  key.kind_ = SealKind::argon2id;
  key.salt_ = std::string(salt16);
  key.key_ = Secret(k.view(0, kSealKeyBytes));
  return key;
}

Result<SealKey> SealKey::load_file(const std::string& path) {
  Fd fd(-1);
  struct stat st {};
  TG_TRY(open_private_file(path, "seal key file", &fd, &st));
  Guarded buf(kSealKeyBytes + 1);
  size_t len = 0;
  const std::string wrong = "seal key file must hold exactly " + std::to_string(kSealKeyBytes) +
                            " bytes";
  Status s = read_bounded(fd.fd, buf, &len, path, wrong + ", has more");
  if (!s.ok()) return s.code() == Errc::limit ? error(Errc::parse, s.message()) : s;
  if (len != kSealKeyBytes) {
    return error(Errc::parse, path + ": " + wrong + ", has " + std::to_string(len));
  }
  return from_bytes(buf.view(0, kSealKeyBytes));
}

Status SealKey::create_file(const std::string& path) const {
  if (kind_ != SealKind::keyfile || key_.size() != kSealKeyBytes) {
    return error(Errc::invalid_argument, path + ": only a key-file seal key can be saved");
  }
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return error(Errc::invalid_argument,
                   path + ": already exists; refusing to replace a seal key file");
    }
    return error(err == EACCES ? Errc::permission : Errc::io,
                 path + ": cannot create seal key file: " + errno_text(err));
  }
  Status st = Status::success();
  if (::fchmod(fd.fd, 0600) != 0) {
    st = error(Errc::io, path + ": chmod failed: " + errno_text(errno));
  }
  const unsigned char* p = key_.bytes();
  size_t left = key_.size();
  while (st.ok() && left > 0) {
    ssize_t n = ::write(fd.fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      st = error(Errc::io, path + ": write failed: " + errno_text(errno));
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (st.ok() && ::fsync(fd.fd) != 0) {
    st = error(Errc::io, path + ": fsync failed: " + errno_text(errno));
  }
  if (st.ok()) {
    int rc = ::close(fd.fd);
    fd.fd = -1;
    if (rc != 0) st = error(Errc::io, path + ": close failed: " + errno_text(errno));
  }
  if (!st.ok()) {
    ::unlink(path.c_str());
    return st;
  }
  // Make the new name durable. Best effort: some filesystems refuse fsync on a directory.
  Fd dir(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd >= 0) ::fsync(dir.fd);
  return Status::success();
}

std::string new_seal_salt() {
  std::string salt(kSealSaltBytes, '\0');
  random_bytes(salt.data(), salt.size());
  return salt;
}

Result<std::string> seal(const SealKey& key, std::string_view context, std::string_view secret) {
  init();
  if (key.key_.size() != kSealKeyBytes) {
    return error(Errc::invalid_argument, "seal: no seal key (moved-from SealKey)");
  }
  if (context.empty() || context.size() > kMaxSealContextBytes) {
    return error(Errc::invalid_argument, "seal: context must be 1.." +
                                             std::to_string(kMaxSealContextBytes) + " bytes");
  }
  if (secret.empty() || secret.size() > kMaxSealedSecretBytes) {
    return error(Errc::invalid_argument, "seal: the secret must be 1.." +
                                             std::to_string(kMaxSealedSecretBytes) +
                                             " bytes, got " + std::to_string(secret.size()));
  }
  const size_t plain_len = 1 + context.size() + secret.size();
  Guarded plain(plain_len);
  plain.data()[0] = static_cast<unsigned char>(context.size());
  std::memcpy(plain.data() + 1, context.data(), context.size());
  std::memcpy(plain.data() + 1 + context.size(), secret.data(), secret.size());

  SealedValue v;
  v.kind = key.kind_;
  v.salt = key.salt_;
  v.payload.assign(kSealNonceBytes + kSealMacBytes + plain_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(v.payload.data());
  randombytes_buf(out, kSealNonceBytes);
  crypto_secretbox_easy(out + kSealNonceBytes, plain.data(), plain_len, out, key.key_.bytes());
  return format_sealed(v);
}

Result<Secret> open(const SealKey& key, const SealedValue& sealed, std::string_view context) {
  init();
  if (key.key_.size() != kSealKeyBytes) {
    return error(Errc::invalid_argument, "open: no seal key (moved-from SealKey)");
  }
  if (sealed.kind != key.kind_) {
    return error(Errc::invalid_argument, std::string("value is sealed with kind ") +
                                             seal_kind_name(sealed.kind) + ", the key is of kind " +
                                             seal_kind_name(key.kind_));
  }
  if (sealed.kind == SealKind::argon2id &&
      (sealed.salt.size() != key.salt_.size() ||
       sodium_memcmp(sealed.salt.data(), key.salt_.data(), key.salt_.size()) != 0)) {
    return error(Errc::invalid_argument, "value is sealed with another argon2id salt than the key");
  }
  const size_t n = sealed.payload.size();
  if (n < kMinSealPayloadBytes || n > kMaxSealPayloadBytes) {
    return error(Errc::parse, "sealed value: box is " + std::to_string(n) + " bytes, must be " +
                                  std::to_string(kMinSealPayloadBytes) + ".." +
                                  std::to_string(kMaxSealPayloadBytes) + " (truncated?)");
  }
  const auto* in = bytes_of(sealed.payload);
  const size_t plain_len = n - kSealNonceBytes - kSealMacBytes;
  Guarded plain(plain_len);
  if (crypto_secretbox_open_easy(plain.data(), in + kSealNonceBytes, n - kSealNonceBytes, in,
                                 key.key_.bytes()) != 0) {
    return error(Errc::permission, std::string("sealed value does not open with this ") +
                                       (key.kind_ == SealKind::keyfile ? "seal key file"
                                                                       : "passphrase") +
                                       " (wrong key, or the value was altered)");
  }
  const size_t ctx_len = plain.data()[0];
  if (ctx_len == 0 || 1 + ctx_len >= plain_len) {
    return error(Errc::parse, "sealed value is malformed inside (bad context length)");
  }
  std::string_view found = plain.view(1, ctx_len);
  if (found != context) {
    return error(Errc::permission, "value was sealed for " + echo_context(found) + ", not for " +
                                       echo_context(context));
  }
  return Secret(plain.view(1 + ctx_len, plain_len - 1 - ctx_len));
}

Result<Secret> read_passphrase_file(const std::string& path) {
  Fd fd(-1);
  struct stat st {};
  TG_TRY(open_private_file(path, "passphrase file", &fd, &st));
  Guarded buf(kMaxPassphraseBytes + 3);  // room for "\r\n" and one byte too many
  size_t len = 0;
  TG_TRY(read_bounded(fd.fd, buf, &len, path,
                      "passphrase is longer than " + std::to_string(kMaxPassphraseBytes) +
                          " bytes"));
  std::string_view text = buf.view(0, len);
  size_t nl = text.find('\n');
  if (nl != std::string_view::npos) {
    if (nl + 1 != text.size()) {
      return error(Errc::parse, path + ": passphrase file must hold one line, found more");
    }
    text.remove_suffix(1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  }
  if (text.empty()) return error(Errc::parse, path + ": passphrase file is empty");
  if (text.size() > kMaxPassphraseBytes) {
    return error(Errc::limit, path + ": passphrase is longer than " +
                                  std::to_string(kMaxPassphraseBytes) + " bytes");
  }
  return Secret(text);
}

}  // namespace tg::crypto
