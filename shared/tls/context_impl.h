// The mbedTLS side of ServerContext and ClientContext, visible only to the
// shared/tls sources (the public context.h stays free of mbedTLS headers).
#pragma once

#include <string>
#include <vector>

#include "shared/tls/context.h"
#include "shared/tls/mbedtls_compat.h"

namespace tg::tls {

// SNI callback installed on every server config; records the name the client
// asked for on the stream that owns `ssl`. Defined in stream.cc.
int on_server_sni(void* unused, mbedtls_ssl_context* ssl, const unsigned char* name,
                  size_t len) noexcept;

struct ServerContext::Impl {
  mbedtls_ssl_config conf;
  mbedtls_x509_crt chain;
  mbedtls_pk_context key;
  std::vector<std::string> alpn;
  std::vector<const char*> alpn_list;  // NULL-terminated views of `alpn`
  std::string pin;

  Impl() {
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&chain);
    mbedtls_pk_init(&key);
  }
  ~Impl() {
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&chain);
    mbedtls_pk_free(&key);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

struct ClientContext::Impl {
  ClientConfig config;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt ca;
  size_t ca_count = 0;                 // certificates parsed into `ca`
  std::vector<const char*> alpn_list;  // NULL-terminated views of config.alpn

  Impl() {
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca);
  }
  ~Impl() {
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

}  // namespace tg::tls
