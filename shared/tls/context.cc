#include "shared/tls/context.h"

#include <sodium.h>

#include "shared/tls/context_impl.h"
#include "shared/tls/detail.h"
#include "shared/tls/pin.h"

namespace tg::tls {
namespace {

Status check_alpn(const std::vector<std::string>& alpn) {
  if (alpn.size() > kMaxAlpnProtocols) {
    return Status(Errc::limit, "more than " + std::to_string(kMaxAlpnProtocols) + " ALPN protocols");
  }
  for (const std::string& p : alpn) {
    if (p.empty() || p.size() > kMaxAlpnNameBytes) {
      return Status(Errc::invalid_argument, "ALPN protocol '" + p + "' must be 1..255 bytes");
    }
  }
  return Status();
}

void build_alpn_list(const std::vector<std::string>& alpn, std::vector<const char*>* out) {
  out->clear();
  for (const std::string& p : alpn) out->push_back(p.c_str());
  out->push_back(nullptr);
}

// Text from exactly one of `pem` / `file`; `what` names the field for errors.
Result<std::string> pem_or_file(const std::string& pem, const std::string& file, const char* what) {
  if (!pem.empty() && !file.empty()) {
    return Status(Errc::invalid_argument, std::string(what) + ": give PEM text or a file, not both");
  }
  if (pem.empty() && file.empty()) {
    return Status(Errc::invalid_argument, std::string(what) + ": neither PEM text nor a file given");
  }
  if (!pem.empty()) {
    if (pem.size() > kMaxPemBytes) {
      return Status(Errc::limit, std::string(what) + " is larger than " + std::to_string(kMaxPemBytes) + " bytes");
    }
    return pem;
  }
  Result<std::string> text = detail::read_file(file, kMaxPemBytes);
  if (!text.ok()) return Status(text.status().code(), std::string(what) + ": " + text.status().message());
  return text;
}

int parse_chain(mbedtls_x509_crt* crt, const std::string& pem) {
  return mbedtls_x509_crt_parse(crt, reinterpret_cast<const unsigned char*>(pem.c_str()),
                                pem.size() + 1);
}

}  // namespace

// ---- ServerContext ----

ServerContext::ServerContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerContext::~ServerContext() = default;
const std::string& ServerContext::pin() const noexcept { return impl_->pin; }

Result<std::shared_ptr<ServerContext>> ServerContext::create(const ServerConfig& config) {
  TG_TRY(detail::init_once());
  TG_TRY(check_alpn(config.alpn));
  auto impl = std::make_unique<Impl>();

  Result<std::string> chain = pem_or_file(config.cert_chain_pem, config.cert_chain_file,
                                          "server certificate chain");
  if (!chain.ok()) return chain.status();
  int rc = parse_chain(&impl->chain, chain.value());
  if (rc != 0) return Status(Errc::parse, detail::mbedtls_error(rc, "server certificate chain"));

  Result<std::string> key = pem_or_file(config.private_key_pem, config.private_key_file,
                                        "server private key");
  if (!key.ok()) return key.status();
  rc = compat::pk_parse_key(&impl->key, key.value(), &detail::rng);
  sodium_memzero(key.value().data(), key.value().size());
  if (rc != 0) return Status(Errc::parse, detail::mbedtls_error(rc, "server private key"));
  rc = compat::pk_check_pair(&impl->chain.pk, &impl->key, &detail::rng);
  if (rc != 0) {
    return Status(Errc::invalid_argument,
                  "server private key does not match the first certificate of the chain");
  }
  size_t spki_len = 0;
  const unsigned char* spki = compat::crt_spki(&impl->chain, &spki_len);
  impl->pin = pin_of_spki(spki, spki_len);

  mbedtls_ssl_config* conf = &impl->conf;
  rc = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                   MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "server TLS config"));
  mbedtls_ssl_conf_rng(conf, &detail::rng, nullptr);
  compat::conf_min_tls12(conf);
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
  rc = mbedtls_ssl_conf_own_cert(conf, &impl->chain, &impl->key);
  if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "server certificate"));
  mbedtls_ssl_conf_sni(conf, &on_server_sni, nullptr);
  if (!config.alpn.empty()) {
    impl->alpn = config.alpn;
    build_alpn_list(impl->alpn, &impl->alpn_list);
    rc = mbedtls_ssl_conf_alpn_protocols(conf, impl->alpn_list.data());
    if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "server ALPN list"));
  }
  return std::shared_ptr<ServerContext>(new ServerContext(std::move(impl)));
}

// ---- ClientContext ----

ClientContext::ClientContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClientContext::~ClientContext() = default;
const ClientConfig& ClientContext::config() const noexcept { return impl_->config; }
size_t ClientContext::ca_count() const noexcept { return impl_->ca_count; }

Result<std::shared_ptr<ClientContext>> ClientContext::create(const ClientConfig& config) {
  TG_TRY(detail::init_once());
  TG_TRY(check_alpn(config.alpn));
  if (config.pins.size() > kMaxPins) {
    return Status(Errc::limit, "more than " + std::to_string(kMaxPins) + " pins");
  }
  for (const std::string& p : config.pins) TG_TRY(check_pin(p));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  mbedtls_ssl_config* conf = &impl->conf;
  int rc = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                       MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "client TLS config"));
  mbedtls_ssl_conf_rng(conf, &detail::rng, nullptr);
  compat::conf_min_tls12(conf);

  if (config.pins.empty()) {
    // Full verification: CA chain plus the server name (set per connection).
    Result<std::string> bundle = config.ca_pem.empty()
                                     ? detail::read_file(config.ca_file, kMaxPemBytes)
                                     : Result<std::string>(config.ca_pem);
    if (!bundle.ok()) {
      return Status(bundle.status().code(), "CA bundle: " + bundle.status().message());
    }
    // A bundle may hold a few certificates this library cannot parse (rc > 0
    // counts them); it is usable as long as some parsed.
    rc = parse_chain(&impl->ca, bundle.value());
    const char* where = config.ca_pem.empty() ? config.ca_file.c_str() : "ca_pem";
    if (rc < 0 || impl->ca.version == 0) {
      return Status(Errc::parse, detail::mbedtls_error(rc < 0 ? rc : MBEDTLS_ERR_X509_INVALID_FORMAT,
                                                       (std::string("CA bundle ") + where).c_str()));
    }
    for (const mbedtls_x509_crt* c = &impl->ca; c != nullptr && c->version != 0; c = c->next) {
      ++impl->ca_count;
    }
    mbedtls_ssl_conf_ca_chain(conf, &impl->ca, nullptr);
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  } else {
    // Trust by pin alone: the chain is not verified against CAs; the verify
    // callback of each stream checks the leaf's key against the pins.
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
  }
  if (!impl->config.alpn.empty()) {
    build_alpn_list(impl->config.alpn, &impl->alpn_list);
    rc = mbedtls_ssl_conf_alpn_protocols(conf, impl->alpn_list.data());
    if (rc != 0) return Status(Errc::internal, detail::mbedtls_error(rc, "client ALPN list"));
  }
  return std::shared_ptr<ClientContext>(new ClientContext(std::move(impl)));
}

}  // namespace tg::tls
