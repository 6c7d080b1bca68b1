// agent.conf: the schema (one row per key, with type, range and default),
// the typed AgentConfig built from it, and the cross-field checks. Relative
// paths in the file are resolved against the file's own directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/config/config.h"
#include "shared/core/secret.h"
#include "shared/net/url.h"

namespace tg::agent {

constexpr const char* kDefaultConfigPath = "/etc/tokengo/agent.conf";
constexpr size_t kMaxModelsPerAgent = 256;
constexpr size_t kMaxModelNameBytes = 128;

constexpr const char* kDefaultAzureApiVersion = "2024-10-21";
// Upper bounds of the provider keys rpm and tpm (rpm: the tunnel's capacity.rpm).
constexpr int64_t kMaxProviderRpm = 10000000;
constexpr int64_t kMaxProviderTpm = 10000000000;

struct ProviderConfig {
  std::string name;                 // [provider NAME]
  std::string type;                 // openai | anthropic | deepseek | azure | local
  Secret api_key;                   // empty only for local
  std::vector<std::string> models;  // exposed names (= vendor model names)
  int max_parallel = 4;
  // Our own limits for this key (agent/limiter.h); 0: none.
  uint32_t rpm = 0;                 // requests per minute
  uint64_t tpm = 0;                 // tokens per minute (input + cached + output)
  // azure only: <resource>.openai.azure.com, /openai/deployments/<deployment>/...
  std::string resource;
  std::string deployment;
  std::string api_version;          // azure: the api-version query value
  // local only: http(s)://host[:port][/prefix]; host is a loopback/private
  // literal or a name (checked again, resolved, at every request).
  std::optional<net::Url> url;
};

struct TunnelConfig {
  uint64_t connect_timeout_ms;      // TCP + TLS + WebSocket handshake
  uint64_t backoff_min_ms;          // first reconnect delay cap
  uint64_t backoff_max_ms;          // reconnect delay ceiling
  uint64_t backoff_reset_after_ms;  // tunnel up this long -> back-off starts over
  uint64_t tcp_keepalive_ms;
  uint64_t tcp_user_timeout_ms;
  uint64_t drain_timeout_ms;        // SIGTERM: time for in-flight requests
};

// Where the seal key of `sealed:v1:...` api_key values comes from (see
// agent/keystore.h and the comments of configs/agent.conf).
struct SealSettings {
  std::string with = "keyfile";  // seal_with: what new seals use, keyfile | passphrase
  std::string key_file;          // seal_key_file, resolved: the device key file
  std::string passphrase_file;   // seal_passphrase_file, resolved; "": TOKENGO_PASSPHRASE
};

struct AgentConfig {
  std::string file;
  net::Url hub;                // wss://host:port/path
  std::string hub_pin;         // sha256/<base64>
  std::string identity_key;    // path, resolved
  Secret enroll_token;         // empty: the key must be approved by the operator
  std::string ca_file;         // for vendors (used from the passthrough on)
  std::string log_level;
  std::string ledger;          // the ledger's SQLite file, resolved
  uint64_t ledger_commit_delay_ms = 20;  // ledger writes grouped into one commit this long
  uint64_t vendor_connect_timeout_ms = 10000;   // resolve + TCP + TLS to a vendor
  uint64_t vendor_response_timeout_ms = 300000; // request sent -> response head
  uint64_t vendor_idle_timeout_ms = 120000;     // silence between body bytes after the head
  TunnelConfig tunnel;
  SealSettings seal;
  std::vector<ProviderConfig> providers;  // api_key values already unsealed

  // Every exposed model name, in provider order, without duplicates.
  std::vector<std::string> models() const;
  // Sum of providers' max_parallel.
  int max_parallel() const;
};

const config::Schema& schema();

// The seal settings of a config parsed against schema().
SealSettings seal_settings(const config::Config& c);

struct LoadResult {
  std::optional<AgentConfig> config;
  std::vector<config::Diagnostic> errors;
  // One per provider whose api_key is written in plain text (never the key).
  std::vector<config::Diagnostic> warnings;
};
// Sealed api_key values are opened with the configured seal key (the key
// file or the passphrase is read only when a sealed value needs it); an
// error names the provider and line, never key bytes. load() also logs each
// warning once (WARN, component "agent") unless log_level is error; parse()
// logs nothing.
LoadResult load(const std::string& path);
LoadResult parse(std::string_view text, const std::string& file_name);

}  // namespace tg::agent
