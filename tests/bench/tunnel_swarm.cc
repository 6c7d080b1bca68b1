// tunnel_swarm: the load generator of scripts/bench-tunnels. `tunnels` runs N
// real agent::TunnelClient instances in one process (each with its own
// Ed25519 key, approved in the hub's registry first), spread over source
// addresses 127.0.0.2.., started at a controlled pace, and holds them idle;
// `tls` holds N idle pinned TLS connections to any TLS server (the nginx
// baseline). Prints progress and a stable summary line on stdout; never talks
// to anything outside 127.0.0.0/8 (the target is whatever the script passes).
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/tunnel_client.h"
#include "hub/agent_store.h"
#include "shared/cli/args.h"
#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/crypto/ed25519.h"
#include "shared/net/stream.h"
#include "shared/net/url.h"
#include "shared/tls/connector.h"
#include "shared/tls/context.h"

namespace tg::bench {
namespace {

constexpr const char* kProgram = "tunnel_swarm";
constexpr uint64_t kMaxCount = 200000;
constexpr uint64_t kMaxPerAddress = 20000;
constexpr uint64_t kMaxAddresses = 253;     // 127.0.0.2 .. 127.0.0.254
constexpr uint64_t kPaceTickMs = 2;
constexpr uint64_t kProgressMs = 1000;
constexpr uint64_t kSpareFds = 256;          // loop, signals, SQLite, stdio
constexpr uint64_t kTlsTimeoutMs = 30000;

double now_s() {
  using Clock = std::chrono::steady_clock;
  static const Clock::time_point start = Clock::now();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void out(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("swarm: ", stdout);
  std::vfprintf(stdout, fmt, ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  va_end(ap);
}

Result<uint64_t> number(const cli::Parsed& p, const char* name, uint64_t fallback, uint64_t max) {
  if (!p.has(name)) return fallback;
  const std::string v = p.get(name);
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 || n > max) {
    return Status(Errc::invalid_argument, "--" + std::string(name) + " " + v +
                                              ": expected an integer from 0 to " +
                                              std::to_string(max));
  }
  return static_cast<uint64_t>(n);
}

// Raises RLIMIT_NOFILE to at least `need` (the hard limit too, when allowed).
Status raise_fd_limit(uint64_t need) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return Status(Errc::io, std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  if (rl.rlim_cur >= need) return Status();
  rlimit want = rl;
  want.rlim_cur = need;
  if (want.rlim_max < need) want.rlim_max = need;
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
    return Status(Errc::limit, "RLIMIT_NOFILE is " + std::to_string(rl.rlim_cur) + " (hard " +
                                   std::to_string(rl.rlim_max) + "), " + std::to_string(need) +
                                   " needed: " + std::strerror(errno));
  }
  out("RLIMIT_NOFILE raised from %llu to %llu", static_cast<unsigned long long>(rl.rlim_cur),
      static_cast<unsigned long long>(need));
  return Status();
}

std::string source_address(uint64_t index, uint64_t per_address) {
  return "127.0.0." + std::to_string(2 + index / per_address);
}

// Settings common to both modes.
struct Pace {
  uint64_t count = 0;
  uint64_t per_address = 2000;
  uint64_t concurrency = 200;  // connections in handshake at once
  uint64_t rate = 0;           // starts per second; 0 = only `concurrency` limits
  uint64_t ready_timeout_s = 300;
  uint64_t hold_s = 900;       // after all are ready, at most this long
};

Result<Pace> parse_pace(const cli::Parsed& p) {
  Pace pace;
  auto count = number(p, "count", 0, kMaxCount);
  if (!count.ok()) return count.status();
  if (*count == 0) return Status(Errc::invalid_argument, "--count is required (1 or more)");
  pace.count = *count;
  auto per = number(p, "per-address", pace.per_address, kMaxPerAddress);
  if (!per.ok()) return per.status();
  if (*per == 0) return Status(Errc::invalid_argument, "--per-address must be at least 1");
  pace.per_address = *per;
  if ((pace.count + pace.per_address - 1) / pace.per_address > kMaxAddresses) {
    return Status(Errc::invalid_argument, "--count " + std::to_string(pace.count) +
                                              " over --per-address " + std::to_string(pace.per_address) +
                                              " needs more than 253 source addresses");
  }
  auto conc = number(p, "concurrency", pace.concurrency, kMaxCount);
  if (!conc.ok()) return conc.status();
  if (*conc == 0) return Status(Errc::invalid_argument, "--concurrency must be at least 1");
  pace.concurrency = *conc;
  auto rate = number(p, "rate", pace.rate, 1000000);
  if (!rate.ok()) return rate.status();
  pace.rate = *rate;
  auto rt = number(p, "ready-timeout", pace.ready_timeout_s, 3600);
  if (!rt.ok()) return rt.status();
  pace.ready_timeout_s = *rt;
  auto hold = number(p, "hold", pace.hold_s, 24 * 3600);
  if (!hold.ok()) return hold.status();
  pace.hold_s = *hold;
  return pace;
}

// How many more connections may start now.
uint64_t allowance(const Pace& pace, uint64_t started, uint64_t in_progress, double since_start_s) {
  if (started >= pace.count || in_progress >= pace.concurrency) return 0;
  uint64_t n = std::min(pace.count - started, pace.concurrency - in_progress);
  if (pace.rate > 0) {
    const auto due = static_cast<uint64_t>(since_start_s * static_cast<double>(pace.rate)) + 1;
    n = due > started ? std::min(n, due - started) : 0;
  }
  return n;
}

// Runs the loop until `stop` is set by a signal or `hold_s` passes.
void hold(Loop& loop, uint64_t hold_s) {
  bool stop = false;
  Signal term(loop), intr(loop);
  Status s = term.start(SIGTERM, [&](int) { stop = true; });
  if (s.ok()) s = intr.start(SIGINT, [&](int) { stop = true; });
  if (!s.ok()) out("warning: %s", s.message().c_str());
  out("holding (SIGTERM or SIGINT ends it; at most %llu s)",
      static_cast<unsigned long long>(hold_s));
  const bool signalled = loop.run_until([&] { return stop; }, hold_s * 1000);
  out("%s", signalled ? "signal received: stopping" : "hold time over: stopping");
}

// ---------------------------------------------------------------- tunnels --

struct Sim {
  explicit Sim(crypto::KeyPair k) : key(std::move(k)) {}
  crypto::KeyPair key;
  std::unique_ptr<agent::TunnelClient> client;
  bool ever_ready = false;
};

int run_tunnels(const cli::Parsed& p) {
  auto pace = parse_pace(p);
  if (!pace.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, pace.status().message().c_str());
    return 2;
  }
  const std::string hub = p.get("hub");
  const std::string pin = p.get("pin");
  const std::string db = p.get("db");
  if (hub.empty() || pin.empty() || db.empty()) {
    std::fprintf(stderr, "%s: tunnels needs --hub, --pin and --db\n", kProgram);
    return 2;
  }
  auto conf = agent::parse("hub = " + hub + "\nhub_pin = " + pin +
                               "\nlog_level = warn\n[tunnel]\nconnect_timeout = 30s\n"
                               "[provider bench]\ntype = local\nurl = http://127.0.0.1:11434\nmodels = bench-model\n",
                           "swarm-agent.conf");
  if (!conf.config) {
    for (const auto& d : conf.errors) {
      std::fprintf(stderr, "%s: agent config: %s\n", kProgram, d.message.c_str());
    }
    return 2;
  }
  const agent::AgentConfig& config = *conf.config;
  Status fd = raise_fd_limit(pace->count + kSpareFds);
  if (!fd.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, fd.message().c_str());
    return 1;
  }

  // Keys, then their approval in the hub's registry.
  std::vector<std::unique_ptr<Sim>> sims;
  sims.reserve(pace->count);
  double t0 = now_s();
  for (uint64_t i = 0; i < pace->count; ++i) {
    sims.push_back(std::make_unique<Sim>(crypto::KeyPair::generate()));
  }
  out("generated %llu Ed25519 keys in %.3f s", static_cast<unsigned long long>(pace->count),
      now_s() - t0);
  {
    auto store = hub::AgentStore::open(db, false);
    if (!store.ok()) {
      std::fprintf(stderr, "%s: %s\n", kProgram, store.status().message().c_str());
      return 1;
    }
    t0 = now_s();
    for (const auto& sim : sims) {
      auto r = store->approve(sim->key.public_base64(), "bench", hub::kTierPpmMax);
      if (!r.ok()) {
        std::fprintf(stderr, "%s: approve: %s\n", kProgram, r.status().message().c_str());
        return 1;
      }
    }
    const double took = now_s() - t0;
    out("approved %llu keys in %.3f s (%.0f per s, one transaction each: AgentStore has no batch "
        "approve)",
        static_cast<unsigned long long>(pace->count), took,
        static_cast<double>(pace->count) / std::max(took, 1e-9));
  }

  Loop loop;
  agent::RefusingCallHandler calls(config.models());
  uint64_t started = 0, ready_now = 0, ready_ever = 0, drops = 0;
  for (uint64_t i = 0; i < pace->count; ++i) {
    Sim* sim = sims[i].get();
    sim->client = std::make_unique<agent::TunnelClient>(loop, config, sim->key, &calls);
    sim->client->set_source_address(source_address(i, pace->per_address));
    sim->client->set_on_state([&, sim](agent::TunnelClient::State from,
                                       agent::TunnelClient::State to) {
      using S = agent::TunnelClient::State;
      if (to == S::ready) {
        ++ready_now;
        if (!sim->ever_ready) {
          sim->ever_ready = true;
          ++ready_ever;
        }
      }
      if (from == S::ready) {
        --ready_now;
        ++drops;
      }
    });
  }

  out("connecting %llu tunnels to %s from 127.0.0.2-%s (%llu per address), %llu in handshake at "
      "once, rate %s",
      static_cast<unsigned long long>(pace->count), hub.c_str(),
      source_address(pace->count - 1, pace->per_address).c_str(),
      static_cast<unsigned long long>(pace->per_address),
      static_cast<unsigned long long>(pace->concurrency),
      pace->rate ? (std::to_string(pace->rate) + "/s").c_str() : "unlimited");
  const double start_s = now_s();
  double last_progress = start_s;
  uint64_t last_ready = 0;
  double peak = 0;
  Status start_error;
  auto pacer = std::make_unique<Timer>(loop);
  pacer->start(0, kPaceTickMs, [&] {
    const double t = now_s();
    uint64_t n = allowance(*pace, started, started - ready_now, t - start_s);
    for (; n > 0 && start_error.ok(); --n) {
      start_error = sims[started]->client->start();
      ++started;
    }
    if (t - last_progress >= static_cast<double>(kProgressMs) / 1000.0) {
      const double r = static_cast<double>(ready_ever - last_ready) / (t - last_progress);
      peak = std::max(peak, r);
      out("t=%.1fs started=%llu ready=%llu in_handshake=%llu rate=%.0f/s", t - start_s,
          static_cast<unsigned long long>(started), static_cast<unsigned long long>(ready_now),
          static_cast<unsigned long long>(started - ready_now), r);
      last_progress = t;
      last_ready = ready_ever;
    }
  });
  const bool all = loop.run_until([&] { return ready_ever == pace->count || !start_error.ok(); },
                                  pace->ready_timeout_s * 1000);
  pacer.reset();  // its handle must be closed before loop.close()
  const double took = now_s() - start_s;
  uint64_t attempts = 0;
  for (const auto& sim : sims) attempts += sim->client->stats().attempts;
  int rc = 0;
  if (!start_error.ok()) {
    std::fprintf(stderr, "%s: TunnelClient::start: %s\n", kProgram, start_error.message().c_str());
    rc = 1;
  } else if (all && ready_now == pace->count) {
    out("all %llu tunnels ready in %.3f s (%.0f connects/s; peak %.0f/s over 1 s; %llu attempts)",
        static_cast<unsigned long long>(pace->count), took,
        static_cast<double>(pace->count) / took, peak, static_cast<unsigned long long>(attempts));
  } else {
    // Why not: the state of every client and the most frequent last errors.
    std::map<std::string, uint64_t> states, errors;
    for (const auto& sim : sims) {
      ++states[agent::TunnelClient::state_name(sim->client->state())];
      const std::string& e = sim->client->stats().last_error;
      if (!e.empty()) ++errors[e.substr(0, 160)];
    }
    out("NOT READY: %llu of %llu ready (%llu ever) after %.1f s, %llu attempts, %llu drops",
        static_cast<unsigned long long>(ready_now), static_cast<unsigned long long>(pace->count),
        static_cast<unsigned long long>(ready_ever), took,
        static_cast<unsigned long long>(attempts), static_cast<unsigned long long>(drops));
    for (const auto& [name, n] : states) {
      out("  state %s: %llu", name.c_str(), static_cast<unsigned long long>(n));
    }
    for (const auto& [e, n] : errors) {
      out("  last error x%llu: %s", static_cast<unsigned long long>(n), e.c_str());
    }
    rc = 1;
  }
  if (rc == 0) {
    const uint64_t drops_before = drops;
    hold(loop, pace->hold_s);
    out("%llu tunnels dropped while holding; %llu ready at the end",
        static_cast<unsigned long long>(drops - drops_before),
        static_cast<unsigned long long>(ready_now));
  }
  for (const auto& sim : sims) sim->client->stop();
  sims.clear();
  Status closed = loop.close();
  if (!closed.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, closed.message().c_str());
    return 1;
  }
  return rc;
}

// -------------------------------------------------------------------- tls --

// One idle TLS connection: keeps the stream and notices its end.
class IdleConn final : public net::StreamHandler {
 public:
  explicit IdleConn(uint64_t* ended) : ended_(ended) {}
  void on_stream_read(net::Stream& s, std::string_view data) noexcept override {
    (void)s;
    (void)data;
  }
  void on_stream_end(net::Stream& s, const Status& why) noexcept override {
    (void)s;
    if (ended_first_) return;
    ended_first_ = true;
    ++*ended_;
    if (*ended_ <= 3) out("connection ended: %s", why.ok() ? "closed by the peer" : why.message().c_str());
  }
  std::unique_ptr<tls::Connector> connector;
  net::StreamPtr stream;

 private:
  uint64_t* ended_;
  bool ended_first_ = false;
};

int run_tls(const cli::Parsed& p) {
  auto pace = parse_pace(p);
  if (!pace.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, pace.status().message().c_str());
    return 2;
  }
  auto target = net::parse_listen_address(p.get("target"));
  const std::string pin = p.get("pin");
  if (!target.ok() || pin.empty()) {
    std::fprintf(stderr, "%s: tls needs --target IP:PORT and --pin sha256/...%s%s\n", kProgram,
                 target.ok() ? "" : ": ", target.ok() ? "" : target.status().message().c_str());
    return 2;
  }
  Status fd = raise_fd_limit(pace->count + kSpareFds);
  if (!fd.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, fd.message().c_str());
    return 1;
  }
  tls::ClientConfig cc;
  cc.pins.push_back(pin);
  auto ctx = tls::ClientContext::create(cc);
  if (!ctx.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, ctx.status().message().c_str());
    return 1;
  }

  Loop loop;
  uint64_t ended = 0, started = 0, done = 0, failed = 0;
  std::string last_failure;
  std::vector<std::unique_ptr<IdleConn>> conns;
  conns.reserve(pace->count);
  out("opening %llu idle TLS connections to %s:%u, %llu in handshake at once",
      static_cast<unsigned long long>(pace->count), target->host.c_str(), target->port,
      static_cast<unsigned long long>(pace->concurrency));
  const double start_s = now_s();
  double last_progress = start_s;
  auto pacer = std::make_unique<Timer>(loop);
  pacer->start(0, kPaceTickMs, [&] {
    const double t = now_s();
    uint64_t n = allowance(*pace, started, started - done, t - start_s);
    for (; n > 0; --n) {
      auto conn = std::make_unique<IdleConn>(&ended);
      IdleConn* c = conn.get();
      c->connector = std::make_unique<tls::Connector>(loop, *ctx);
      net::TcpOptions opts;
      opts.bind_address = source_address(started, pace->per_address);
      ++started;
      conns.push_back(std::move(conn));
      Status s = c->connector->connect(
          target->host, target->port, kTlsTimeoutMs,
          [&, c](Result<net::StreamPtr> r) {
            ++done;
            if (!r.ok()) {
              ++failed;
              last_failure = r.status().message();
              return;
            }
            c->stream = std::move(r.value());
            c->stream->set_handler(c);
          },
          std::string(), opts);
      if (!s.ok()) {
        ++done;
        ++failed;
        last_failure = s.message();
      }
    }
    if (t - last_progress >= static_cast<double>(kProgressMs) / 1000.0) {
      out("t=%.1fs started=%llu connected=%llu failed=%llu", t - start_s,
          static_cast<unsigned long long>(started), static_cast<unsigned long long>(done - failed),
          static_cast<unsigned long long>(failed));
      last_progress = t;
    }
  });
  const bool all = loop.run_until([&] { return done == pace->count; },
                                  pace->ready_timeout_s * 1000);
  pacer.reset();  // its handle must be closed before loop.close()
  const double took = now_s() - start_s;
  int rc = 0;
  if (all && failed == 0 && ended == 0) {
    out("all %llu TLS connections open in %.3f s (%.0f handshakes/s)",
        static_cast<unsigned long long>(pace->count), took,
        static_cast<double>(pace->count) / took);
    hold(loop, pace->hold_s);
    out("%llu connections ended while holding", static_cast<unsigned long long>(ended));
  } else {
    out("NOT READY: %llu of %llu open after %.1f s, %llu failed, %llu ended; last failure: %s",
        static_cast<unsigned long long>(done - failed - ended),
        static_cast<unsigned long long>(pace->count), took,
        static_cast<unsigned long long>(failed), static_cast<unsigned long long>(ended),
        last_failure.c_str());
    rc = 1;
  }
  conns.clear();
  Status closed = loop.close();
  if (!closed.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, closed.message().c_str());
    return 1;
  }
  return rc;
}

const std::vector<cli::Option> kPaceOptions = {
    {"count", true}, {"per-address", true}, {"concurrency", true},
    {"rate", true},  {"ready-timeout", true}, {"hold", true},
};

std::vector<cli::Command> commands() {
  std::vector<cli::Option> tun = kPaceOptions;
  tun.push_back({"hub", true});
  tun.push_back({"pin", true});
  tun.push_back({"db", true});
  std::vector<cli::Option> tl = kPaceOptions;
  tl.push_back({"target", true});
  tl.push_back({"pin", true});
  return {
      {"tunnels", "N real agent tunnels: --hub wss://127.0.0.1:P/tunnel --pin PIN --db HUBDB --count N", tun},
      {"tls", "N idle TLS connections: --target 127.0.0.1:P --pin PIN --count N", tl},
  };
}

}  // namespace
}  // namespace tg::bench

int main(int argc, char** argv) {
  using namespace tg;
  const auto cmds = bench::commands();
  auto parsed = cli::parse(argc, argv, cmds);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s: %s\n", bench::kProgram, parsed.status().message().c_str());
    return 2;
  }
  if (parsed->command == "help" || parsed->command == "version" || parsed->command.empty()) {
    std::fputs(cli::usage(bench::kProgram, "load generator for scripts/bench-tunnels", cmds).c_str(),
               stdout);
    return parsed->command.empty() ? 2 : 0;
  }
  log::set_level(log::Level::warn);
  if (parsed->command == "tunnels") return bench::run_tunnels(*parsed);
  return bench::run_tls(*parsed);
}
