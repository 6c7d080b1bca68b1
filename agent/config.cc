#include "agent/config.h"

#include <functional>
#include <set>

#include "agent/keystore.h"
#include "agent/vendors.h"
#include "shared/core/log.h"
#include "shared/crypto/seal.h"
#include "shared/tls/pin.h"

namespace tg::agent {
namespace {

using config::Key;
using config::Type;

constexpr int64_t kHour = 3600 * 1000;

bool all_of_chars(std::string_view v, std::string_view extra) {
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              extra.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// The type-specific keys: azure's resource/deployment/api_version, local's
// url. Each is required by its type and refused by every other.
void check_vendor_keys(const config::Section& p, ProviderConfig& pc,
                       const std::function<void(std::string_view, std::string)>& err) {
  const std::string label = p.label() + ": ";
  pc.resource = std::string(p.str("resource"));
  pc.deployment = std::string(p.str("deployment"));
  pc.api_version = std::string(p.str("api_version"));
  if (pc.type == "azure") {
    const bool lower = pc.resource.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos;
    if (pc.resource.empty()) {
      err("resource", label + "resource is required for type azure (<resource>.openai.azure.com)");
    } else if (pc.resource.size() < 2 || pc.resource.size() > 64 || !lower ||
               !all_of_chars(pc.resource, "-")) {
      err("resource", label + "resource '" + pc.resource.substr(0, 64) +
                          "' must be 2..64 of a-z 0-9 -");
    }
    if (pc.deployment.empty()) {
      err("deployment", label + "deployment is required for type azure");
    } else if (pc.deployment.size() > 64 || !all_of_chars(pc.deployment, "._-")) {
      err("deployment", label + "deployment '" + pc.deployment.substr(0, 64) +
                            "' must be 1..64 of A-Z a-z 0-9 . _ -");
    }
    if (pc.api_version.empty() || pc.api_version.size() > 32 ||
        !all_of_chars(pc.api_version, ".-")) {
      err("api_version", label + "api_version '" + pc.api_version.substr(0, 32) +
                             "' must be 1..32 of A-Z a-z 0-9 . -");
    }
  } else {
    for (const char* k : {"resource", "deployment", "api_version"}) {
      if (p.is_set(k)) err(k, label + k + " is only for type azure");
    }
    pc.resource.clear();
    pc.deployment.clear();
    pc.api_version.clear();
  }
  if (pc.type == "local") {
    if (!p.is_set("url")) {
      err("url", label + "url is required for type local (e.g. http://127.0.0.1:11434)");
      return;
    }
    auto url = net::parse_url(p.str("url"));
    if (!url.ok()) {
      err("url", label + "url: " + url.status().message());
    } else if (url->scheme != "http" && url->scheme != "https") {
      err("url", label + "url: must be http:// or https://, got " + url->scheme + "://");
    } else if (url->path.find('?') != std::string::npos) {
      err("url", label + "url: must not have a query");
    } else if (is_ip_literal(url->host) && !is_local_address(url->host)) {
      err("url", label + "url: " + url->host +
                     " is not a loopback or private address (local serves only 127.0.0.0/8, "
                     "::1, 10/8, 172.16/12, 192.168/16, fd00::/8)");
    } else {
      pc.url = *url;
    }
  } else if (p.is_set("url")) {
    err("url", label + "url is only for type local (vendor addresses are built into the agent)");
  }
}

bool valid_model_name(std::string_view m) {
  if (m.empty() || m.size() > kMaxModelNameBytes) return false;
  for (char c : m) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '/' || c == '@';
    if (!ok) return false;
  }
  return true;
}

// Splits "a, b ,c" into trimmed items; empty items are kept (and rejected later).
std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

config::Schema make_schema() {
  config::Schema s;
  s.sections.push_back({"", false, false, {
      Key{"hub", Type::string, nullptr, 0, 0, nullptr,
          "the hub's tunnel address, wss://host:port/path"},
      Key{"hub_pin", Type::string, nullptr, 0, 0, nullptr,
          "the hub's public-key pin, sha256/<base64>, as printed by 'tokengo-hub cert'"},
      Key{"identity_key", Type::string, "agent.key", 0, 0, nullptr,
          "this agent's Ed25519 key file (mode 0600), made by 'tokengo-agent keygen'"},
      Key{"enroll_token", Type::secret, "", 0, 0, nullptr,
          "one-time token from 'tokengo-hub enroll', presented once to bind the key"},
      Key{"ca_file", Type::string, "/etc/ssl/certs/ca-certificates.crt", 0, 0, nullptr,
          "CA bundle used to verify vendors"},
      Key{"log_level", Type::choice, "info", 0, 0, "debug|info|warn|error", nullptr},
      Key{"vendor_connect_timeout", Type::duration, "10s", 100, 600000, nullptr,
          "resolve + TCP + TLS to a vendor"},
      Key{"vendor_response_timeout", Type::duration, "300s", 1000, 86400000, nullptr,
          "request sent -> the vendor's response head"},
      Key{"vendor_idle_timeout", Type::duration, "120s", 0, 86400000, nullptr,
          "silence between body bytes after the head; 0 = none"},
      Key{"ledger", Type::string, "tokengo-agent.db", 0, 0, nullptr,
          "SQLite file of the agent's ledger (outbox, mirrored chain); written per request"},
      Key{"ledger_commit_delay", Type::duration, "20ms", 0, 1000, nullptr,
          "settlements from the hub wait this long to share one ledger commit"},
      Key{"seal_with", Type::choice, "keyfile", 0, 0, "keyfile|passphrase",
          "what 'tokengo-agent keys' seals new api_key values with"},
      Key{"seal_key_file", Type::string, "seal.key", 0, 0, nullptr,
          "device seal key (32 random bytes, mode 0600), made by 'tokengo-agent keys set'"},
      Key{"seal_passphrase_file", Type::string, "", 0, 0, nullptr,
          "file holding the seal passphrase (mode 0600); empty: TOKENGO_PASSPHRASE"},
  }});
  s.sections.push_back({"tunnel", false, false, {
      Key{"connect_timeout", Type::duration, "10s", 100, kHour, nullptr, nullptr},
      Key{"backoff_min", Type::duration, "500ms", 10, kHour, nullptr, nullptr},
      Key{"backoff_max", Type::duration, "60s", 10, kHour, nullptr, nullptr},
      Key{"backoff_reset_after", Type::duration, "60s", 0, 24 * kHour, nullptr, nullptr},
      Key{"tcp_keepalive", Type::duration, "30s", 1000, kHour, nullptr, nullptr},
      Key{"tcp_user_timeout", Type::duration, "45s", 0, kHour, nullptr, nullptr},
      Key{"drain_timeout", Type::duration, "30s", 0, kHour, nullptr, nullptr},
  }});
  s.sections.push_back({"provider", true, true, {
      Key{"type", Type::choice, nullptr, 0, 0, "openai|anthropic|deepseek|azure|local", nullptr},
      Key{"api_key", Type::secret, "", 0, 0, nullptr, "the vendor key (not needed for local)"},
      Key{"models", Type::string, nullptr, 0, 0, nullptr, "comma-separated model names"},
      Key{"max_parallel", Type::integer, "4", 1, 256, nullptr, nullptr},
      Key{"rpm", Type::integer, "0", 0, kMaxProviderRpm, nullptr,
          "requests per minute sent with this key; 0: no limit of ours"},
      Key{"tpm", Type::integer, "0", 0, kMaxProviderTpm, nullptr,
          "tokens per minute (input + output, as metered); 0: no limit of ours"},
      Key{"resource", Type::string, "", 0, 0, nullptr,
          "azure only: the resource name in <resource>.openai.azure.com"},
      Key{"deployment", Type::string, "", 0, 0, nullptr, "azure only: the deployment name"},
      Key{"api_version", Type::string, kDefaultAzureApiVersion, 0, 0, nullptr,
          "azure only: the api-version query value"},
      Key{"url", Type::string, "", 0, 0, nullptr,
          "local only: http(s)://host:port of a server on a loopback or private address"},
  }});
  return s;
}

LoadResult finish(config::ParseResult parsed) {
  LoadResult out;
  if (!parsed.config) {
    out.errors = std::move(parsed.errors);
    return out;
  }
  const config::Config& c = *parsed.config;
  auto err = [&](const config::Section& sec, std::string_view key, std::string msg) {
    out.errors.push_back(c.diagnostic(sec, key, std::move(msg)));
  };

  AgentConfig a;
  a.file = c.file();
  const config::Section& g = c.global();
  auto hub = net::parse_url(g.str("hub"));
  if (!hub.ok()) {
    err(g, "hub", "hub: " + hub.status().message());
  } else if (hub->scheme != "wss") {
    err(g, "hub", "hub: must be a wss:// address (the tunnel always uses TLS)");
  } else {
    a.hub = *hub;
  }
  a.hub_pin = std::string(g.str("hub_pin"));
  if (Status s = tls::check_pin(a.hub_pin); !s.ok()) err(g, "hub_pin", "hub_pin: " + s.message());
  a.identity_key = c.resolve_path(g.str("identity_key"));
  a.ledger = c.resolve_path(g.str("ledger"));
  a.ledger_commit_delay_ms = g.duration_ms("ledger_commit_delay");
  a.vendor_connect_timeout_ms = g.duration_ms("vendor_connect_timeout");
  a.vendor_response_timeout_ms = g.duration_ms("vendor_response_timeout");
  a.vendor_idle_timeout_ms = g.duration_ms("vendor_idle_timeout");
  a.enroll_token = Secret(g.secret("enroll_token").reveal());
  a.ca_file = std::string(g.str("ca_file"));
  a.log_level = std::string(g.str("log_level"));
  a.seal = seal_settings(c);

  const config::Section& t = *c.section("tunnel");
  a.tunnel.connect_timeout_ms = t.duration_ms("connect_timeout");
  a.tunnel.backoff_min_ms = t.duration_ms("backoff_min");
  a.tunnel.backoff_max_ms = t.duration_ms("backoff_max");
  a.tunnel.backoff_reset_after_ms = t.duration_ms("backoff_reset_after");
  a.tunnel.tcp_keepalive_ms = t.duration_ms("tcp_keepalive");
  a.tunnel.tcp_user_timeout_ms = t.duration_ms("tcp_user_timeout");
  a.tunnel.drain_timeout_ms = t.duration_ms("drain_timeout");
  if (a.tunnel.backoff_max_ms < a.tunnel.backoff_min_ms) {
    err(t, "backoff_max", "backoff_max must be at least backoff_min");
  }

  std::set<std::string> seen;
  Keyring keyring(a.seal);  // loads the key file or passphrase only if a value is sealed
  for (const config::Section* p : c.sections("provider")) {
    ProviderConfig pc;
    pc.name = p->name();
    pc.type = std::string(p->str("type"));
    const std::string_view raw = p->secret("api_key").reveal();
    if (crypto::is_sealed(raw)) {
      auto opened = keyring.open(raw, seal_context(pc.name, pc.type));
      if (opened.ok()) {
        pc.api_key = std::move(*opened);
      } else {
        err(*p, "api_key", p->label() + ": api_key: " + opened.status().message() +
                               "; to store the key again: tokengo-agent keys set " + pc.name);
      }
    } else {
      pc.api_key = Secret(raw);
      if (!raw.empty()) {
        out.warnings.push_back(c.diagnostic(
            *p, "api_key", "api_key of " + p->label() + " is stored in plain text; run "
                               "'tokengo-agent keys set " + pc.name + "' or 'keys seal-all'"));
      }
    }
    pc.max_parallel = static_cast<int>(p->integer("max_parallel"));
    pc.rpm = static_cast<uint32_t>(p->integer("rpm"));
    pc.tpm = static_cast<uint64_t>(p->integer("tpm"));
    if (pc.type != "local" && pc.api_key.empty() && !crypto::is_sealed(raw)) {
      err(*p, "api_key", p->label() + ": api_key is required for type " + pc.type);
    }
    check_vendor_keys(*p, pc, [&](std::string_view key, std::string msg) {
      err(*p, key, std::move(msg));
    });
    for (std::string& m : split_list(p->str("models"))) {
      if (!valid_model_name(m)) {
        err(*p, "models", p->label() + ": bad model name '" + m.substr(0, 64) +
                              "' (1..128 of A-Z a-z 0-9 . _ - : / @)");
      } else if (!seen.insert(m).second) {
        err(*p, "models", p->label() + ": model '" + m + "' is already served by another provider");
      } else {
        pc.models.push_back(std::move(m));
      }
    }
    a.providers.push_back(std::move(pc));
  }
  if (a.providers.empty()) {
    config::Diagnostic d;
    d.file = c.file();
    d.message = "no [provider NAME] section: the agent must serve at least one provider";
    out.errors.push_back(std::move(d));
  }
  if (seen.size() > kMaxModelsPerAgent) {
    config::Diagnostic d;
    d.file = c.file();
    d.message = "more than " + std::to_string(kMaxModelsPerAgent) + " models in all";
    out.errors.push_back(std::move(d));
  }
  if (out.errors.empty()) out.config = std::move(a);
  return out;
}

}  // namespace

std::vector<std::string> AgentConfig::models() const {
  std::vector<std::string> out;
  for (const auto& p : providers) out.insert(out.end(), p.models.begin(), p.models.end());
  return out;
}

int AgentConfig::max_parallel() const {
  int n = 0;
  for (const auto& p : providers) n += p.max_parallel;
  return n;
}

const config::Schema& schema() {
  static const config::Schema s = make_schema();
  return s;
}

SealSettings seal_settings(const config::Config& c) {
  const config::Section& g = c.global();
  SealSettings s;
  s.with = std::string(g.str("seal_with"));
  s.key_file = c.resolve_path(g.str("seal_key_file"));
  s.passphrase_file = c.resolve_path(g.str("seal_passphrase_file"));
  return s;
}

LoadResult load(const std::string& path) {
  LoadResult r = finish(config::load(path, schema()));
  if (r.config && r.config->log_level == "error") return r;
  for (const auto& w : r.warnings) TG_WARN("agent", "%s", w.to_string().c_str());
  return r;
}

LoadResult parse(std::string_view text, const std::string& file_name) {
  return finish(config::parse(text, file_name, schema()));
}

}  // namespace tg::agent
