#include "shared/crypto/ed25519.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "shared/crypto/hash.h"

namespace tg::crypto {

namespace {

constexpr std::string_view kFileTag = "tokengo-ed25519-v1 ";
constexpr size_t kSeedBytes = crypto_sign_SEEDBYTES;  // 32
constexpr size_t kSeedBase64Chars = 44;               // base64 of 32 bytes, padded
constexpr size_t kMaxKeyFileBytes = 128;              // the whole file is 64 bytes
static_assert(crypto_sign_SEEDBYTES == 32 && crypto_sign_PUBLICKEYBYTES == 32 &&
                  crypto_sign_SECRETKEYBYTES == 64 && crypto_sign_BYTES == 64,
              "libsodium Ed25519 sizes");

// A stack buffer wiped on every path out of its scope.
template <size_t N>
struct WipedBuffer {
  unsigned char b[N];
  WipedBuffer() { sodium_memzero(b, N); }
  ~WipedBuffer() { sodium_memzero(b, N); }
  WipedBuffer(const WipedBuffer&) = delete;
  WipedBuffer& operator=(const WipedBuffer&) = delete;
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

std::string errno_text(int err) { return std::strerror(err); }

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Status write_all(int fd, const unsigned char* data, size_t len, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(Errc::io, path + ": write failed: " + errno_text(errno));
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return Status::success();
}

// Reads at most `cap` bytes; sets *len. Fails if the file holds more.
Status read_small(int fd, unsigned char* buf, size_t cap, size_t* len, const std::string& path) {
  *len = 0;
  for (;;) {
    if (*len == cap) {
      return error(Errc::parse, path + ": not a TokenGo key file (longer than " +
                                    std::to_string(cap - 1) + " bytes)");
    }
    ssize_t n = ::read(fd, buf + *len, cap - *len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(Errc::io, path + ": read failed: " + errno_text(errno));
    }
    if (n == 0) return Status::success();
    *len += static_cast<size_t>(n);
  }
}

}  // namespace

KeyPair KeyPair::generate() {
  init();
  WipedBuffer<kSeedBytes> seed;
  randombytes_buf(seed.b, kSeedBytes);
  Result<KeyPair> kp = from_seed(
      std::string_view(reinterpret_cast<const char*>(seed.b), kSeedBytes));
  return std::move(kp).value();  // a 32-byte seed cannot fail
}

Result<KeyPair> KeyPair::from_seed(std::string_view seed32) {
  init();
  if (seed32.size() != kSeedBytes) {
    return error(Errc::invalid_argument, "ed25519 seed must be 32 bytes, got " +
                                             std::to_string(seed32.size()));
  }
  KeyPair kp;
  WipedBuffer<crypto_sign_SECRETKEYBYTES> sk;
  crypto_sign_seed_keypair(kp.public_.data(), sk.b,
                           reinterpret_cast<const unsigned char*>(seed32.data()));
  kp.secret_ = Secret(std::string_view(reinterpret_cast<const char*>(sk.b), sizeof sk.b));
  return kp;
}

std::string KeyPair::public_base64() const {
  return base64_encode(
      std::string_view(reinterpret_cast<const char*>(public_.data()), public_.size()));
}

Signature KeyPair::sign(std::string_view message) const {
  assert(secret_.size() == crypto_sign_SECRETKEYBYTES);  // not a moved-from KeyPair
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), secret_.bytes());
  return sig;
}

Status KeyPair::save(const std::string& path) const {
  init();
  // Line: tag, base64 seed, newline. The seed is the first half of the secret key.
  constexpr size_t kLineBytes = kFileTag.size() + kSeedBase64Chars + 1;
  WipedBuffer<kLineBytes + 1> line;  // +1: sodium_bin2base64 writes a NUL
  std::memcpy(line.b, kFileTag.data(), kFileTag.size());
  sodium_bin2base64(reinterpret_cast<char*>(line.b + kFileTag.size()), kSeedBase64Chars + 1,
                    secret_.bytes(), kSeedBytes, sodium_base64_VARIANT_ORIGINAL);
  line.b[kLineBytes - 1] = '\n';

  const std::string tmp = path + ".tmp-" + random_id().substr(0, 12);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.fd < 0) {
    return error(errno == EACCES ? Errc::permission : Errc::io,
                 tmp + ": cannot create key file: " + errno_text(errno));
  }
  Status st = write_all(fd.fd, line.b, kLineBytes, tmp);
  if (st.ok() && ::fsync(fd.fd) != 0) {
    st = error(Errc::io, tmp + ": fsync failed: " + errno_text(errno));
  }
  if (st.ok()) {
    int rc = ::close(fd.fd);
    fd.fd = -1;
    if (rc != 0) st = error(Errc::io, tmp + ": close failed: " + errno_text(errno));
  }
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = error(Errc::io, path + ": cannot replace key file: " + errno_text(errno));
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  // Make the rename durable. Best effort: some filesystems refuse fsync on a directory.
  Fd dir(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd >= 0) ::fsync(dir.fd);
  return Status::success();
}

Result<KeyPair> KeyPair::load(const std::string& path) {
  init();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) {
    int err = errno;
    Errc code = err == ENOENT ? Errc::not_found : err == EACCES ? Errc::permission : Errc::io;
    return error(code, path + ": cannot open key file: " + errno_text(err));
  }
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) {
    return error(Errc::io, path + ": stat failed: " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return error(Errc::invalid_argument, path + ": not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    return error(Errc::permission, path + ": private key file is readable by others (mode " +
                                       octal_mode(st.st_mode) + "); run: chmod 600 " + path);
  }

  WipedBuffer<kMaxKeyFileBytes> buf;
  size_t len = 0;
  TG_TRY(read_small(fd.fd, buf.b, sizeof buf.b, &len, path));

  // Exactly: tag, 44 base64 characters, optional final newline.
  const Status bad = error(Errc::parse, path + ": not a TokenGo key file (expected one line '" +
                                            std::string(kFileTag) + "<base64 seed>')");
  size_t body = len;
  if (body > 0 && buf.b[body - 1] == '\n') --body;
  if (body != kFileTag.size() + kSeedBase64Chars ||
      std::memcmp(buf.b, kFileTag.data(), kFileTag.size()) != 0) {
    return bad;
  }
  WipedBuffer<kSeedBytes + 1> seed;  // 44 chars can hold 33 bytes; 32 must come out
  size_t seed_len = 0;
  const char* b64 = reinterpret_cast<const char*>(buf.b + kFileTag.size());
  const char* end = nullptr;
  if (sodium_base642bin(seed.b, sizeof seed.b, b64, kSeedBase64Chars, nullptr, &seed_len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64 + kSeedBase64Chars || seed_len != kSeedBytes) {
    return bad;
  }
  return from_seed(std::string_view(reinterpret_cast<const char*>(seed.b), kSeedBytes));
}

Secret KeyPair::derive_key(std::string_view context, uint64_t id) const {
  assert(secret_.size() == crypto_sign_SECRETKEYBYTES);
  assert(context.size() == crypto_kdf_CONTEXTBYTES);
  static_assert(crypto_kdf_KEYBYTES == kSeedBytes, "the seed is the master key");
  char ctx[crypto_kdf_CONTEXTBYTES + 1] = {};
  std::memcpy(ctx, context.data(), crypto_kdf_CONTEXTBYTES);
  WipedBuffer<32> sub;
  // libsodium's secret key is seed || public key: the seed is the master key.
  crypto_kdf_derive_from_key(sub.b, sizeof sub.b, id, ctx, secret_.bytes());
  return Secret(std::string_view(reinterpret_cast<const char*>(sub.b), sizeof sub.b));
}

bool verify(const PublicKey& key, std::string_view message, const Signature& sig) {
  init();
  return crypto_sign_verify_detached(sig.data(),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), key.data()) == 0;
}

Result<PublicKey> parse_public_key(std::string_view base64) {
  Result<std::string> raw = base64_decode(base64);
  if (!raw.ok()) {
    return error(Errc::parse, "public key: " + raw.status().message());
  }
  if (raw->size() != 32) {
    return error(Errc::parse, "public key must decode to 32 bytes, got " +
                                  std::to_string(raw->size()));
  }
  PublicKey key;
  std::memcpy(key.data(), raw->data(), key.size());
  return key;
}

}  // namespace tg::crypto
