#include "shared/tls/certgen.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "shared/crypto/hash.h"
#include "shared/tls/detail.h"
#include "shared/tls/mbedtls_compat.h"

namespace tg::tls {
namespace {

constexpr size_t kCertPemBufBytes = 32 * 1024;
constexpr size_t kKeyPemBufBytes = 4 * 1024;
constexpr size_t kSerialBytes = 16;
constexpr unsigned kSelfSignedDays = 3650;

// RAII for the mbedTLS objects used here.
struct Pk {
  mbedtls_pk_context ctx;
  Pk() { mbedtls_pk_init(&ctx); }
  ~Pk() { mbedtls_pk_free(&ctx); }
  Pk(const Pk&) = delete;
  Pk& operator=(const Pk&) = delete;
};
struct Crt {
  mbedtls_x509_crt ctx;
  Crt() { mbedtls_x509_crt_init(&ctx); }
  ~Crt() { mbedtls_x509_crt_free(&ctx); }
  Crt(const Crt&) = delete;
  Crt& operator=(const Crt&) = delete;
};
struct CrtWriter {
  mbedtls_x509write_cert ctx;
  CrtWriter() { mbedtls_x509write_crt_init(&ctx); }
  ~CrtWriter() { mbedtls_x509write_crt_free(&ctx); }
  CrtWriter(const CrtWriter&) = delete;
  CrtWriter& operator=(const CrtWriter&) = delete;
};

Status parse_key(Pk* pk, const std::string& pem, const char* which) {
  if (pem.empty()) return Status(Errc::invalid_argument, std::string(which) + " is empty");
  if (pem.size() > kMaxKeyPemBytes) {
    return Status(Errc::limit, std::string(which) + " is larger than " +
                                   std::to_string(kMaxKeyPemBytes) + " bytes");
  }
  int rc = compat::pk_parse_key(&pk->ctx, pem, &detail::rng);
  if (rc != 0) return Status(Errc::parse, detail::mbedtls_error(rc, which));
  return Status();
}

Status check_common_name(const std::string& cn) {
  if (cn.empty()) return Status(Errc::invalid_argument, "common_name is empty");
  if (cn.size() > kMaxCommonNameBytes) {
    return Status(Errc::limit, "common_name '" + cn + "' is longer than " +
                                   std::to_string(kMaxCommonNameBytes) + " bytes");
  }
  for (char ch : cn) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == ',' || c == '=' || c == '+' || c == '\\' || c == '"' ||
        c == ';' || c == '<' || c == '>' || c == '#') {
      return Status(Errc::invalid_argument,
                    "common_name '" + cn + "' holds a character not allowed here");
    }
  }
  return Status();
}

Status check_dns_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxDnsNameBytes) {
    return Status(Errc::invalid_argument, "dns name '" + name + "' must be 1.." +
                                              std::to_string(kMaxDnsNameBytes) + " bytes");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '*' || c == '_';
    if (!ok) return Status(Errc::invalid_argument, "dns name '" + name + "' has a bad character");
  }
  return Status();
}

// Encodes GeneralNames (RFC 5280 4.2.1.6) for the subjectAltName extension.
// asn1write fills the buffer from its end; entries are written last to first
// so they appear in the order given.
Result<std::vector<unsigned char>> encode_san(const CertRequest& req) {
  struct Entry {
    unsigned char tag;
    std::string bytes;
  };
  std::vector<Entry> entries;
  for (const std::string& d : req.dns_names) {
    TG_TRY(check_dns_name(d));
    entries.push_back({static_cast<unsigned char>(MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2), d});
  }
  for (const std::string& ip : req.ip_addresses) {
    unsigned char raw[16];
    if (inet_pton(AF_INET, ip.c_str(), raw) == 1) {
      entries.push_back({static_cast<unsigned char>(MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7),
                         std::string(reinterpret_cast<char*>(raw), 4)});
    } else if (inet_pton(AF_INET6, ip.c_str(), raw) == 1) {
      entries.push_back({static_cast<unsigned char>(MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7),
                         std::string(reinterpret_cast<char*>(raw), 16)});
    } else {
      return Status(Errc::invalid_argument, "ip address '" + ip + "' is not a numeric IPv4/IPv6 address");
    }
  }
  size_t bound = 16;
  for (const Entry& e : entries) bound += e.bytes.size() + 8;
  std::vector<unsigned char> buf(bound);
  unsigned char* start = buf.data();
  unsigned char* p = start + buf.size();
  size_t len = 0;
  auto add = [&len](int rc) -> bool {
    if (rc < 0) return false;
    len += static_cast<size_t>(rc);
    return true;
  };
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const size_t before = len;
    if (!add(mbedtls_asn1_write_raw_buffer(
            &p, start, reinterpret_cast<const unsigned char*>(it->bytes.data()), it->bytes.size())) ||
        !add(mbedtls_asn1_write_len(&p, start, len - before)) ||
        !add(mbedtls_asn1_write_tag(&p, start, it->tag))) {
      return Status(Errc::internal, "subjectAltName encoding overflowed");
    }
  }
  if (!add(mbedtls_asn1_write_len(&p, start, len)) ||
      !add(mbedtls_asn1_write_tag(&p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))) {
    return Status(Errc::internal, "subjectAltName encoding overflowed");
  }
  return std::vector<unsigned char>(p, p + len);
}

std::string utc_stamp(time_t t) {
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string errno_text(int err) { return std::strerror(err); }

// Writes `data` to a temporary file beside `path` with `mode`, syncs it and
// renames it over `path`: readers see the old file or the whole new one.
Status write_file_atomic(const std::string& path, const std::string& data, mode_t mode) {
  char suffix[20];
  std::snprintf(suffix, sizeof suffix, ".tmp.%08x", randombytes_random());
  const std::string tmp = path + suffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status(Errc::io, "create " + tmp + ": " + errno_text(errno));
  Status st;
  if (::fchmod(fd, mode) != 0) st = Status(Errc::io, "chmod " + tmp + ": " + errno_text(errno));
  size_t off = 0;
  while (st.ok() && off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      st = Status(Errc::io, "write " + tmp + ": " + errno_text(errno));
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (st.ok() && ::fsync(fd) != 0) st = Status(Errc::io, "fsync " + tmp + ": " + errno_text(errno));
  if (::close(fd) != 0 && st.ok()) st = Status(Errc::io, "close " + tmp + ": " + errno_text(errno));
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status(Errc::io, "rename " + tmp + " to " + path + ": " + errno_text(errno));
  }
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

}  // namespace

Result<std::string> generate_key() {
  TG_TRY(detail::init_once());
  Pk pk;
  int rc = compat::pk_generate_p256(&pk.ctx, &detail::rng);
  if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "generate P-256 key"));
  unsigned char buf[kKeyPemBufBytes];
  rc = mbedtls_pk_write_key_pem(&pk.ctx, buf, sizeof buf);
  if (rc != 0) {
    sodium_memzero(buf, sizeof buf);
    return Status(Errc::internal, detail::mbedtls_error(rc, "write key PEM"));
  }
  std::string pem(reinterpret_cast<char*>(buf));
  sodium_memzero(buf, sizeof buf);
  return pem;
}

Result<std::string> issue_cert(const CertRequest& req) {
  TG_TRY(detail::init_once());
  TG_TRY(check_common_name(req.common_name));
  if (req.days == 0 || req.days > kMaxCertDays) {
    return Status(Errc::invalid_argument, "days must be 1.." + std::to_string(kMaxCertDays) +
                                              ", got " + std::to_string(req.days));
  }
  if (req.dns_names.size() + req.ip_addresses.size() > kMaxSanEntries) {
    return Status(Errc::limit, "more than " + std::to_string(kMaxSanEntries) +
                                   " subject alternative names");
  }
  const bool self_signed = req.issuer_cert_pem.empty();
  if (self_signed != req.issuer_key_pem.empty()) {
    return Status(Errc::invalid_argument,
                  "issuer_cert_pem and issuer_key_pem must be given together (or neither, for self-signed)");
  }

  Pk subject_key;
  TG_TRY(parse_key(&subject_key, req.key_pem, "subject key"));
  Pk issuer_key_storage;
  Crt issuer_crt;
  mbedtls_pk_context* issuer_key = &subject_key.ctx;
  std::string issuer_name = "CN=" + req.common_name;
  if (!self_signed) {
    TG_TRY(parse_key(&issuer_key_storage, req.issuer_key_pem, "issuer key"));
    int rc = mbedtls_x509_crt_parse(&issuer_crt.ctx,
                                    reinterpret_cast<const unsigned char*>(req.issuer_cert_pem.c_str()),
                                    req.issuer_cert_pem.size() + 1);
    if (rc != 0) return Status(Errc::parse, detail::mbedtls_error(rc, "issuer certificate"));
    rc = compat::pk_check_pair(&issuer_crt.ctx.pk, &issuer_key_storage.ctx, &detail::rng);
    if (rc != 0) {
      return Status(Errc::invalid_argument, "issuer key does not match the issuer certificate");
    }
    char dn[512];
    rc = mbedtls_x509_dn_gets(dn, sizeof dn, &issuer_crt.ctx.subject);
    if (rc < 0) return Status(Errc::parse, detail::mbedtls_error(rc, "issuer subject name"));
    issuer_name = dn;
    issuer_key = &issuer_key_storage.ctx;
  }

  Result<std::vector<unsigned char>> san = encode_san(req);
  if (!san.ok()) return san.status();

  CrtWriter w;
  mbedtls_x509write_crt_set_version(&w.ctx, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&w.ctx, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&w.ctx, &subject_key.ctx);
  mbedtls_x509write_crt_set_issuer_key(&w.ctx, issuer_key);

  unsigned char serial[kSerialBytes];
  randombytes_buf(serial, sizeof serial);
  serial[0] = static_cast<unsigned char>((serial[0] & 0x7f) | 0x40);  // positive, full length
  const time_t now = std::time(nullptr);
  const std::string not_before = utc_stamp(now - 3600);
  const std::string not_after = utc_stamp(now + static_cast<time_t>(req.days) * 86400);
  const std::string subject_name = "CN=" + req.common_name;
  unsigned int usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
  if (req.is_ca) usage |= MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN;

  struct Step {
    const char* what;
    int rc;
  };
  const Step steps[] = {
      {"serial", compat::x509write_set_serial(&w.ctx, serial, sizeof serial)},
      {"validity", mbedtls_x509write_crt_set_validity(&w.ctx, not_before.c_str(), not_after.c_str())},
      {"subject name", mbedtls_x509write_crt_set_subject_name(&w.ctx, subject_name.c_str())},
      {"issuer name", mbedtls_x509write_crt_set_issuer_name(&w.ctx, issuer_name.c_str())},
      {"basic constraints", mbedtls_x509write_crt_set_basic_constraints(&w.ctx, req.is_ca ? 1 : 0, -1)},
      {"subject key identifier", mbedtls_x509write_crt_set_subject_key_identifier(&w.ctx)},
      {"authority key identifier", mbedtls_x509write_crt_set_authority_key_identifier(&w.ctx)},
      {"key usage", mbedtls_x509write_crt_set_key_usage(&w.ctx, usage)},
      {"subject alternative name",
       req.dns_names.empty() && req.ip_addresses.empty()
           ? 0
           : mbedtls_x509write_crt_set_extension(&w.ctx, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                                 san->data(), san->size())},
  };
  for (const Step& s : steps) {
    if (s.rc != 0) return Status(Errc::internal, detail::mbedtls_error(s.rc, s.what));
  }
  std::vector<unsigned char> out(kCertPemBufBytes);
  int rc = mbedtls_x509write_crt_pem(&w.ctx, out.data(), out.size(), &detail::rng, nullptr);
  if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "write certificate PEM"));
  return std::string(reinterpret_cast<char*>(out.data()));
}

Status ensure_self_signed(const std::string& cert_path, const std::string& key_path,
                          const std::string& common_name,
                          const std::vector<std::string>& dns_names) {
  if (cert_path.empty() || key_path.empty()) {
    return Status(Errc::invalid_argument, "certificate and key paths must both be set");
  }
  const bool have_cert = file_exists(cert_path);
  const bool have_key = file_exists(key_path);
  if (have_cert && have_key) return Status();
  if (have_cert) {
    return Status(Errc::not_found, "certificate " + cert_path + " exists but its key " + key_path +
                                       " does not; refusing to replace the certificate");
  }
  std::string key_pem;
  if (have_key) {
    Result<std::string> k = detail::read_file(key_path, kMaxKeyPemBytes);
    if (!k.ok()) return k.status();
    key_pem = std::move(k.value());
  } else {
    Result<std::string> k = generate_key();
    if (!k.ok()) return k.status();
    key_pem = std::move(k.value());
  }
  CertRequest req;
  req.common_name = common_name;
  req.dns_names = dns_names;
  req.days = kSelfSignedDays;
  req.key_pem = key_pem;
  Result<std::string> cert = issue_cert(req);
  sodium_memzero(req.key_pem.data(), req.key_pem.size());
  if (!cert.ok()) {
    sodium_memzero(key_pem.data(), key_pem.size());
    if (have_key) {
      return Status(cert.status().code(), key_path + ": " + cert.status().message());
    }
    return cert.status();
  }
  Status st;
  if (!have_key) st = write_file_atomic(key_path, key_pem, 0600);
  sodium_memzero(key_pem.data(), key_pem.size());
  if (!st.ok()) return st;
  return write_file_atomic(cert_path, cert.value(), 0644);
}

}  // namespace tg::tls
