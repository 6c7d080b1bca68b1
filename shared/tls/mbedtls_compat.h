// mbedtls_compat: the ONE place where mbedTLS 2.28 and 3.x differ for us.
// Every version check (MBEDTLS_VERSION_NUMBER) and every access to a field
// that 3.x made private lives here; the rest of shared/tls calls these
// wrappers. Internal to shared/tls: never include it from another module.
#pragma once

#include <mbedtls/version.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <mbedtls/build_info.h>
#include <psa/crypto.h>
#else
#include <mbedtls/config.h>
#endif

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <cstddef>
#include <string>

namespace tg::tls::compat {

// mbedTLS 3.x needs PSA initialised before any TLS 1.3 handshake, and its
// x509 writer may hash through PSA. Returns 0 or an mbedTLS/PSA error code.
inline int crypto_init() {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  return static_cast<int>(psa_crypto_init());
#else
  return 0;
#endif
}

// Parses a PEM or DER private key held in `text` (PEM needs the terminating
// NUL, which std::string provides: the length passed includes it).
inline int pk_parse_key(mbedtls_pk_context* pk, const std::string& text,
                        int (*f_rng)(void*, unsigned char*, size_t)) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.c_str());
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  return mbedtls_pk_parse_key(pk, p, text.size() + 1, nullptr, 0, f_rng, nullptr);
#else
  (void)f_rng;
  return mbedtls_pk_parse_key(pk, p, text.size() + 1, nullptr, 0);
#endif
}

// 0 when `priv` is the private half of `pub`.
inline int pk_check_pair(const mbedtls_pk_context* pub, const mbedtls_pk_context* priv,
                         int (*f_rng)(void*, unsigned char*, size_t)) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  return mbedtls_pk_check_pair(pub, priv, f_rng, nullptr);
#else
  (void)f_rng;
  return mbedtls_pk_check_pair(pub, priv);
#endif
}

// Generates an ECDSA P-256 key into an initialised, empty `pk`.
inline int pk_generate_p256(mbedtls_pk_context* pk, int (*f_rng)(void*, unsigned char*, size_t)) {
  int rc = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (rc != 0) return rc;
  return mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), f_rng, nullptr);
}

// Serial number from big-endian bytes: an mbedtls_mpi in 2.28, raw bytes in 3.x.
inline int x509write_set_serial(mbedtls_x509write_cert* crt, unsigned char* bytes, size_t len) {
#if MBEDTLS_VERSION_NUMBER >= 0x03040000
  return mbedtls_x509write_crt_set_serial_raw(crt, bytes, len);
#else
  mbedtls_mpi serial;
  mbedtls_mpi_init(&serial);
  int rc = mbedtls_mpi_read_binary(&serial, bytes, len);
  if (rc == 0) rc = mbedtls_x509write_crt_set_serial(crt, &serial);
  mbedtls_mpi_free(&serial);
  return rc;
#endif
}

// Lowest protocol version we speak: TLS 1.2 (1.3 too where the library has it).
inline void conf_min_tls12(mbedtls_ssl_config* conf) {
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
  mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

// Per-connection user pointer, read back inside config-wide callbacks (SNI).
// 3.x has a user-data slot; 2.28 has none, but its public p_bio is the pointer
// we passed to mbedtls_ssl_set_bio, which is the same object.
inline void ssl_set_user(mbedtls_ssl_context* ssl, void* user) {
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
  mbedtls_ssl_set_user_data_p(ssl, user);
#else
  (void)ssl;
  (void)user;  // set through mbedtls_ssl_set_bio
#endif
}
inline void* ssl_get_user(mbedtls_ssl_context* ssl) {
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
  return mbedtls_ssl_get_user_data_p(ssl);
#else
  return ssl->p_bio;
#endif
}

// mbedtls_ssl_read/handshake results that only mean "call again later":
// true for WANT_READ/WANT_WRITE, and in 3.x for a TLS 1.3 NewSessionTicket
// (handled by the library, nothing for the application).
inline bool ssl_want_io(int rc) {
  return rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE;
}
inline bool ssl_retry_now(int rc) {
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
  if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) return true;
#endif
  (void)rc;
  return false;
}

// The DER SubjectPublicKeyInfo of a parsed certificate (public in both versions).
inline const unsigned char* crt_spki(const mbedtls_x509_crt* crt, size_t* len) {
  *len = crt->pk_raw.len;
  return crt->pk_raw.p;
}

}  // namespace tg::tls::compat
