#include "hub/run.h"

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "hub/agent_store.h"
#include "hub/api_server.h"
#include "hub/billing.h"
#include "hub/config.h"
#include "hub/ledger_sqlite.h"
#include "hub/tunnel_server.h"
#include "hub/user_store.h"
#include "platform/service_notify.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/core/version.h"
#include "shared/crypto/ed25519.h"
#include "shared/sqlite/checkpointer.h"
#include "shared/tls/certgen.h"
#include "shared/tls/context.h"

namespace tg::hub {
namespace {

constexpr const char* kLog = "hub";

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "tokengo-hub";
  return buf;
}

std::string authority(const net::HostPort& hp, uint16_t port) {
  const bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(port);
}

int startup_error(const std::string& what, const Status& s) {
  std::fprintf(stderr, "tokengo-hub: %s: %s\n", what.c_str(), s.message().c_str());
  return 1;
}

// The Ed25519 key that signs ledger checkpoints: created (mode 0600) on
// first start, like the TLS certificate.
Result<crypto::KeyPair> ledger_key(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) {
    crypto::KeyPair k = crypto::KeyPair::generate();
    TG_TRY(k.save(path));
    TG_INFO(kLog, "created ledger key %s (public key %s)", path.c_str(), k.public_base64().c_str());
    return k;
  }
  return crypto::KeyPair::load(path);
}

}  // namespace

cli::Command run_command() {
  static std::string summary;
  summary = std::string("run the hub: serve agent tunnels until SIGTERM (config: --config, "
                        "default ") + kDefaultConfigPath + ")";
  return {"run", summary.c_str(), {{"config", true}}};
}

int run_daemon(const cli::Parsed& args) {
  const std::string path = args.get("config", kDefaultConfigPath);
  LoadResult loaded = load(path);
  if (!loaded.config) {
    for (const auto& d : loaded.errors) std::fprintf(stderr, "tokengo-hub: %s\n", d.to_string().c_str());
    return 1;
  }
  const HubConfig& cfg = *loaded.config;
  log::Level level = log::Level::info;
  if (log::parse_level(cfg.log_level.c_str(), &level)) log::set_level(level);
  // A peer closing mid-write must not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);

  TG_INFO(kLog, "tokengo-hub %s starting with %s", version_line().c_str(), path.c_str());
  const std::string name = cfg.tls_name.empty() ? host_name() : cfg.tls_name;
  Status s = tls::ensure_self_signed(cfg.tls_cert, cfg.tls_key, name, {name});
  if (!s.ok()) return startup_error("TLS certificate", s);
  tls::ServerConfig sc;
  sc.cert_chain_file = cfg.tls_cert;
  sc.private_key_file = cfg.tls_key;
  auto ctx = tls::ServerContext::create(sc);
  if (!ctx.ok()) return startup_error("TLS certificate " + cfg.tls_cert, ctx.status());
  TG_INFO(kLog, "hub public key pin: %s", (*ctx)->pin().c_str());

  // One connection for the daemon's three stores: one page cache, and the
  // hub's own writes (settlements) do not look like another process's to the
  // token cache (PRAGMA data_version).
  auto db = sqlite::Db::open(cfg.database);
  if (!db.ok()) return startup_error("database " + cfg.database, db.status());
  auto opened = AgentStore::open(db->share());
  if (!opened.ok()) return startup_error("database " + cfg.database, opened.status());
  std::optional<AgentStore> store(std::move(opened.value()));
  s = store->sessions_clear();
  if (!s.ok()) return startup_error("database " + cfg.database, s);
  auto users_opened = UserStore::open(db->share());
  if (!users_opened.ok()) return startup_error("database " + cfg.database, users_opened.status());
  std::optional<UserStore> users(std::move(users_opened.value()));
  auto ledger_opened = SqliteLedgerStore::open(db->share());
  if (!ledger_opened.ok()) return startup_error("database " + cfg.database, ledger_opened.status());
  std::unique_ptr<SqliteLedgerStore> ledger = std::move(*ledger_opened);

  billing::PricesLoad prices = billing::load_prices(cfg.billing.prices);
  if (!prices.table) {
    for (const auto& d : prices.errors) std::fprintf(stderr, "tokengo-hub: %s\n", d.to_string().c_str());
    return 1;
  }
  auto key = ledger_key(cfg.billing.ledger_key);
  if (!key.ok()) return startup_error("ledger key " + cfg.billing.ledger_key, key.status());
  TG_INFO(kLog, "ledger checkpoints are signed by %s", key->public_base64().c_str());

  int code = 0;
  Loop loop;
  {
    // WAL checkpoints in the thread pool, not inside a settlement's commit
    // on the loop (shared/sqlite/checkpointer.h).
    sqlite::Checkpointer checkpointer(loop, *db);
    // systemd Type=notify: READY=1 once both listeners are up, STOPPING=1 on
    // SIGTERM, WATCHDOG=1 from the loop (a no-op outside systemd).
    platform::ServiceNotifier notifier(loop, platform::notify_settings_from_environment());
    auto server = std::make_unique<TunnelServer>(loop, cfg.tunnel, *ctx, &*store);
    // Between the two servers: requests (api) hand channels to billing, and
    // billing's lingering channels belong to the tunnels.
    auto billing = std::make_unique<Billing>(
        loop, cfg.billing, ledger.get(), std::move(*prices.table), &*key,
        [&server](const std::string& agent, const tunnel::Message& m) {
          return server && server->send_to(agent, m);
        },
        [&store](const std::string& agent) -> Result<uint32_t> {
          auto rec = store->lookup(agent);
          if (!rec.ok()) return rec.status();
          if (!*rec) return error(Errc::not_found, "agent " + agent + " is not in the registry");
          return (*rec)->tier_ppm;
        });
    server->set_billing(billing.get());
    // Declared after the tunnel server so it is destroyed first: its
    // requests hold channels of the tunnels.
    std::unique_ptr<ApiServer> api;
    Signal term(loop), intr(loop), hup(loop);
    Status billing_started = billing->start();
    if (billing_started.ok()) s = server->start(cfg.agent_listen);
    if (!billing_started.ok()) {
      code = startup_error("billing", billing_started);
    } else if (s.ok()) {
      TG_INFO(kLog, "agent listener ready on %s",
              authority(cfg.agent_listen, server->port()).c_str());
      api = std::make_unique<ApiServer>(loop, cfg.api, server.get(), &*users,
                                        cfg.user_tls ? *ctx : nullptr, billing.get(), cfg.limits,
                                        cfg.routing);
      s = api->start(cfg.user_listen);
      if (!s.ok()) {
        code = startup_error("user API listener", s);
        api.reset();
      } else {
        TG_INFO(kLog, "user API ready on %s (%s)", authority(cfg.user_listen, api->port()).c_str(),
                cfg.user_tls ? "https" : "http");
      }
    } else {
      code = startup_error("tunnel listener", s);
    }
    if (code == 0) {
      int stops = 0;
      auto on_stop = [&](int signum) {
        const char* sig = signum == SIGINT ? "SIGINT" : "SIGTERM";
        if (++stops == 1) {
          TG_INFO(kLog, "%s: shutting down (send it again to exit at once)", sig);
          notifier.stopping(std::string(sig) + ": draining tunnels");
          api->shutdown();
          server->shutdown([&loop] { loop.stop(); });
          return;
        }
        TG_WARN(kLog, "%s again: exiting at once", sig);
        api.reset();      // aborts user requests; their tickets keep what was metered
        billing->stop();  // settles what is queued, closes lingering channels
        server.reset();   // aborts every connection; no callback fires
        loop.stop();
      };
      s = term.start(SIGTERM, on_stop);
      if (s.ok()) s = intr.start(SIGINT, on_stop);
      if (s.ok()) {
        s = hup.start(SIGHUP, [&](int) {
          billing::PricesLoad reloaded = billing::load_prices(cfg.billing.prices);
          if (!reloaded.table) {
            for (const auto& d : reloaded.errors) {
              TG_ERROR(kLog, "SIGHUP: %s (keeping the prices in force)", d.to_string().c_str());
            }
            return;
          }
          std::vector<std::string> online;
          for (const Tunnels::Entry* e : server->tunnels().all()) {
            if (e->registered) online.push_back(e->pubkey);
          }
          Status r = billing->reload_prices(std::move(*reloaded.table), online);
          if (!r.ok()) TG_ERROR(kLog, "SIGHUP: %s (keeping the prices in force)", r.message().c_str());
        });
      }
      if (!s.ok()) {
        code = startup_error("signals", s);
      } else {
        notifier.ready("agent listener on " + authority(cfg.agent_listen, server->port()) +
                       ", user API on " + authority(cfg.user_listen, api->port()));
        loop.run();
      }
    }
    api.reset();
    billing->stop();
    TG_INFO(kLog, "billing: %llu requests settled in this run",
            static_cast<unsigned long long>(billing->settled_count()));
    server.reset();
  }  // the servers and the signal watchers close their handles here
  Status closed = loop.close();
  if (!closed.ok()) TG_WARN(kLog, "event loop: %s", closed.message().c_str());
  users.reset();
  ledger.reset();
  store.reset();
  TG_INFO(kLog, "database closed");
  TG_INFO(kLog, "stopped");
  return code;
}

}  // namespace tg::hub
