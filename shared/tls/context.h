// TLS contexts: the per-process, per-role configuration that every TLS stream
// of that role shares (certificate chain and key, trusted CAs, ALPN list,
// pins). Built once from config, immutable afterwards, shared by
// std::shared_ptr with the streams that use it. No mbedTLS types here.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "shared/core/status.h"

namespace tg::tls {

constexpr size_t kMaxAlpnProtocols = 8;
constexpr size_t kMaxAlpnNameBytes = 255;
constexpr size_t kMaxPins = 16;
constexpr size_t kMaxPemBytes = 4 * 1024 * 1024;  // CA bundles are ~200 KiB
constexpr const char* kDefaultCaFile = "/etc/ssl/certs/ca-certificates.crt";

struct ServerConfig {
  // Certificate chain (leaf first) and private key, as PEM text or as file
  // paths: for each of the two, exactly one of the pair is set.
  std::string cert_chain_pem;
  std::string cert_chain_file;
  std::string private_key_pem;
  std::string private_key_file;
  std::vector<std::string> alpn;  // preferred first; empty = no ALPN
};

class ServerContext {
 public:
  // Loads and checks the chain and key (the key must match the leaf).
  static Result<std::shared_ptr<ServerContext>> create(const ServerConfig& config);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // "sha256/..." of our own leaf certificate, as clients pin it.
  const std::string& pin() const noexcept;

  struct Impl;
  Impl& impl() noexcept { return *impl_; }

 private:
  explicit ServerContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct ClientConfig {
  // Trusted CAs: ca_pem (PEM text) if set, else the file ca_file. Not loaded
  // when pins are given.
  std::string ca_file = kDefaultCaFile;
  std::string ca_pem;
  // SNI and the name the certificate must carry; a connect call may name
  // another (see Connector). Verified whenever no pins are given.
  std::string server_name;
  std::vector<std::string> alpn;
  // "sha256/<base64>" pins of the peer leaf's public key. When non-empty the
  // peer must match one of them and CA/hostname verification is skipped (a
  // self-signed hub certificate is trusted by its pin alone). When empty, CA
  // and hostname verification are mandatory. There is no insecure mode.
  std::vector<std::string> pins;
};

class ClientContext {
 public:
  static Result<std::shared_ptr<ClientContext>> create(const ClientConfig& config);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  const ClientConfig& config() const noexcept;
  // CA certificates parsed from the bundle (0 when trusting by pins).
  size_t ca_count() const noexcept;

  struct Impl;
  Impl& impl() noexcept { return *impl_; }

 private:
  explicit ClientContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tg::tls
