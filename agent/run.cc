#include "agent/run.h"

#include <signal.h>

#include <cstdio>

#include "agent/config.h"
#include "agent/ledger_mirror.h"
#include "agent/passthrough.h"
#include "agent/settlement.h"
#include "agent/tunnel_client.h"
#include "platform/service_notify.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/crypto/ed25519.h"
#include "shared/sqlite/checkpointer.h"

namespace tg::agent {
namespace {

constexpr const char* kProgram = "tokengo-agent";
constexpr const char* kLog = "agent";

const char* signal_name(int signum) { return signum == SIGTERM ? "SIGTERM" : signum == SIGINT ? "SIGINT" : "signal"; }

}  // namespace

cli::Command run_command() {
  static const std::string summary =
      std::string("connect to the hub and serve until SIGTERM (default config ") +
      kDefaultConfigPath + ")";
  return {"run", summary.c_str(), {{"config", true}}};
}

int run(const std::string& config_path) {
  LoadResult loaded = load(config_path);
  if (!loaded.config) {
    for (const auto& d : loaded.errors) std::fprintf(stderr, "%s: %s\n", kProgram, d.to_string().c_str());
    return 1;
  }
  const AgentConfig& config = *loaded.config;
  log::Level level = log::Level::info;
  if (log::parse_level(config.log_level.c_str(), &level)) log::set_level(level);

  auto key = crypto::KeyPair::load(config.identity_key);
  if (!key.ok()) {
    if (key.status().code() == Errc::not_found) {
      std::fprintf(stderr, "%s: identity key %s not found; create it with: %s keygen --out %s\n",
                   kProgram, config.identity_key.c_str(), kProgram, config.identity_key.c_str());
    } else {
      std::fprintf(stderr, "%s: %s\n", kProgram, key.status().message().c_str());
    }
    return 1;
  }
  // A peer that resets a connection must cost us an EPIPE, not the process.
  ::signal(SIGPIPE, SIG_IGN);

  auto mirror = LedgerMirror::open(config.ledger, key->public_key());
  if (!mirror.ok()) {
    std::fprintf(stderr, "%s: ledger %s: %s\n", kProgram, config.ledger.c_str(),
                 mirror.status().message().c_str());
    return 1;
  }

  int exit_code = 0;
  Loop loop;
  {
    PassthroughOptions vendor;
    vendor.connect_timeout_ms = config.vendor_connect_timeout_ms;
    vendor.response_timeout_ms = config.vendor_response_timeout_ms;
    vendor.body_idle_timeout_ms = config.vendor_idle_timeout_ms;
    auto calls = Passthrough::create(loop, config, vendor);
    if (!calls.ok()) {
      std::fprintf(stderr, "%s: %s\n", kProgram, calls.status().message().c_str());
      return 1;
    }
    // systemd Type=notify: READY=1 once the client runs (connected or
    // retrying), STOPPING=1 on SIGTERM, WATCHDOG=1 from the loop. Outlives
    // the client, whose state callback uses it.
    platform::ServiceNotifier notifier(loop, platform::notify_settings_from_environment());
    // WAL checkpoints of the ledger mirror in the thread pool, not inside a
    // commit on the loop (shared/sqlite/checkpointer.h).
    sqlite::Checkpointer checkpointer(loop, (*mirror)->db());
    // Outbox, claims and the mirrored chain; sends through the client below.
    TunnelClient* sender = nullptr;
    Settlement settlement(loop, mirror->get(), [&sender](const tunnel::Message& m) -> Status {
      if (!sender) return error(Errc::closed, "no tunnel");
      return sender->send(m);
    }, config.ledger_commit_delay_ms);
    (*calls)->set_reporter(&settlement);
    // Capacity reports of the limiter, through the same client.
    (*calls)->set_sender([&sender](const tunnel::Message& m) -> Status {
      if (!sender) return error(Errc::closed, "no tunnel");
      return sender->send(m);
    });
    // Declared after the passthrough, so destroyed first: its channels point there.
    TunnelClient client(loop, config, key.value(), calls->get());
    sender = &client;
    client.set_ledger(&settlement);
    Signal sigterm(loop), sigint(loop);
    int signals = 0;
    bool finished = false;
    auto finish = [&](int code) {
      if (finished) return;
      finished = true;
      exit_code = code;
      sigterm.stop();
      sigint.stop();
    };
    auto on_signal = [&](int signum) {
      if (++signals == 1) {
        TG_INFO(kLog, "received %s: stopping; in-flight calls get up to %llu ms",
                signal_name(signum), static_cast<unsigned long long>(config.tunnel.drain_timeout_ms));
        notifier.stopping(std::string(signal_name(signum)) + ": draining calls");
        client.shutdown(config.tunnel.drain_timeout_ms, [&] {
          TG_INFO(kLog, "agent stopped");
          finish(0);
        });
      } else {
        TG_WARN(kLog, "received %s again: exiting at once", signal_name(signum));
        client.stop();
        finish(1);
      }
    };
    client.set_on_state([&](TunnelClient::State, TunnelClient::State to) {
      if (to == TunnelClient::State::stopped && signals == 0) finish(1);  // replaced: gave up
      if (to == TunnelClient::State::ready) {
        (*calls)->on_tunnel_ready();
        notifier.status("tunnel up to " + config.hub.authority());
      } else if (to == TunnelClient::State::waiting) {
        notifier.status("reconnecting to " + config.hub.authority());
      }
    });
    Status s = sigterm.start(SIGTERM, on_signal);
    if (s.ok()) s = sigint.start(SIGINT, on_signal);
    if (s.ok()) s = client.start();
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", kProgram, s.message().c_str());
      client.stop();
      exit_code = 1;
    } else {
      const std::string url = "wss://" + config.hub.authority() + config.hub.path;
      TG_INFO(kLog, "agent %s starting; hub %s", key->public_base64().c_str(), url.c_str());
      notifier.ready("connecting to hub " + config.hub.authority());
      loop.run();
    }
  }
  Status closed = loop.close();
  if (!closed.ok()) TG_ERROR(kLog, "internal: %s", closed.message().c_str());
  return exit_code;
}

}  // namespace tg::agent
