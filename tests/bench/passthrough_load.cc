// passthrough_load: the load generator of scripts/bench-passthrough. C
// closed-loop virtual users, each on its own keep-alive HTTP/1.1 connection
// (shared/http ClientConnection over plain TCP), POST chat completions to
// 127.0.0.1:PORT for a warm-up then a measured window, and print one
// key=value summary line: latency percentiles, requests/s and, for the
// processes named with --watch, CPU microseconds per request from /proc.
// With --stream it times each SSE event: time to first event and the gaps
// between consecutive content events. Only ever talks to 127.0.0.1.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/http/client.h"
#include "shared/net/tcp.h"

namespace tg::bench {
namespace {

constexpr const char* kProgram = "passthrough_load";
constexpr uint64_t kMaxConcurrency = 4096;
constexpr uint64_t kMaxDurationMs = 600 * 1000;
constexpr uint64_t kConnectTimeoutMs = 5000;
constexpr size_t kMaxWatchGroups = 8;
constexpr size_t kMaxEventsPerStream = 4096;
constexpr size_t kMaxSamples = 20u * 1000u * 1000u;  // bounded sample memory

uint64_t now_ns() noexcept { return uv_hrtime(); }

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "%s: %s\n"
               "usage: %s --port P [--path /v1/chat/completions] [--token T] --model M\n"
               "          [--concurrency C] [--duration-ms D] [--warmup-ms W] [--stream]\n"
               "          [--chunks N] [--watch LABEL=PID[,PID...]]... [--label L] [--samples FILE]\n"
               "          [--id-prefix P]\n",
               kProgram, why, kProgram);
  std::exit(2);
}

uint64_t parse_u64(const char* flag, const char* v) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0') {
    std::fprintf(stderr, "%s: %s needs an integer, got '%s'\n", kProgram, flag, v);
    std::exit(2);
  }
  return n;
}

struct WatchGroup {
  std::string label;
  std::vector<int> pids;
};

struct Options {
  uint16_t port = 0;
  std::string path = "/v1/chat/completions";
  std::string token = "sk-bench";
  std::string model;
  std::string label = "run";
  uint64_t concurrency = 1;
  uint64_t duration_ms = 5000;
  uint64_t warmup_ms = 1000;
  uint64_t chunks = 20;  // content events per stream (the model's chunks-N)
  bool stream = false;
  std::vector<WatchGroup> watch;
  std::string samples;  // file for per-stream timestamps (stream mode)
  std::string id_prefix = "b";  // request ids: <prefix><n>
};

// utime + stime of a process (all threads) in clock ticks; -1 if gone.
long long cpu_ticks(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return -1;
  const size_t rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream in(s.substr(rp + 2));
  std::string field;
  long long utime = 0, stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && (in >> field); ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return utime + stime;
}

long long group_ticks(const WatchGroup& g) {
  long long sum = 0;
  for (int p : g.pids) {
    const long long t = cpu_ticks(p);
    if (t >= 0) sum += t;
  }
  return sum;
}

double percentile(std::vector<uint64_t>& v, double q) {
  if (v.empty()) return 0.0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1000.0;  // ns -> us
}

enum class Phase { warmup, measure, drain };

struct Shared {
  Options opt;
  Loop* loop = nullptr;
  std::string body;
  Phase phase = Phase::warmup;
  uint64_t measure_start_ns = 0;
  uint64_t measure_end_ns = 0;
  uint64_t completed = 0;      // in the window
  uint64_t errors = 0;         // in the window: transport errors
  uint64_t non200 = 0;         // in the window: other statuses
  uint64_t short_streams = 0;  // in the window: fewer content events than --chunks
  uint64_t connects = 0;       // over the whole run
  std::vector<uint64_t> latency_ns;  // non-stream: request -> end
  std::vector<uint64_t> ttfe_ns;     // stream: request -> first SSE event
  std::vector<uint64_t> gap_ns;      // stream: between consecutive content events
  std::string first_error;
  size_t active_users = 0;
  uint64_t next_id = 0;
  FILE* samples = nullptr;  // stream: "id first_event_ns last_event_ns" per measured stream
};

// One closed-loop virtual user: connect, then request after request on the
// same keep-alive connection (reconnecting when the server closes it).
class User final : public http::ClientHandler {
 public:
  enum class State { idle, connecting, requesting, stopped };

  User(Shared& sh, uv_loop_t* loop) : sh_(sh), loop_(loop), connector_(loop) {}

  void start() { next(); }
  State state() const { return state_; }

 private:
  void transition(State to) { state_ = to; }

  void next() {
    if (sh_.phase == Phase::drain) {
      transition(State::stopped);
      conn_.reset();
      --sh_.active_users;
      return;
    }
    if (conn_ && conn_->reusable()) {
      send();
      return;
    }
    conn_.reset();
    transition(State::connecting);
    Status s = connector_.connect("127.0.0.1", sh_.opt.port, kConnectTimeoutMs,
                                  [this](Result<net::StreamPtr> r) { on_connected(std::move(r)); });
    if (!s.ok()) fail_and_retry(s);
  }

  void on_connected(Result<net::StreamPtr> r) {
    if (!r.ok()) {
      fail_and_retry(r.status());
      return;
    }
    ++sh_.connects;
    http::ClientOptions co;
    co.response_timeout_ms = 60000;
    conn_ = std::make_unique<http::ClientConnection>(loop_, std::move(*r), co);
    next();
  }

  void send() {
    transition(State::requesting);
    http::RequestHead h;
    h.method = "POST";
    h.target = sh_.opt.path;
    h.headers.add("Host", "127.0.0.1:" + std::to_string(sh_.opt.port));
    h.headers.add("Content-Type", "application/json");
    h.headers.add("Authorization", "Bearer " + sh_.opt.token);
    // The body carries a per-request id in OpenAI's `user` field, which the
    // fake vendor records: the script pairs vendor and client timestamps.
    id_ = sh_.next_id++;
    body_ = sh_.body;
    body_.insert(1, "\"user\":\"" + sh_.opt.id_prefix + std::to_string(id_) + "\",");
    h.headers.add("Content-Length", std::to_string(body_.size()));
    started_ns_ = now_ns();
    counted_ = sh_.phase == Phase::measure;
    status_ = 0;
    events_.clear();
    tail_ = 0;
    Status s = conn_->request(h, this);
    if (s.ok()) s = conn_->write(body_);
    if (s.ok()) s = conn_->finish();
    if (!s.ok()) fail_and_retry(s);
  }

  void fail_and_retry(const Status& why) {
    if (counted_ && sh_.phase == Phase::measure) {
      ++sh_.errors;
      if (sh_.first_error.empty()) sh_.first_error = why.to_string();
    }
    conn_.reset();
    counted_ = false;
    // Retry from the loop (never inside the failing call).
    retry_.start(10, 0, [this] { next(); });
  }

  void on_response_head(http::ClientConnection&, const http::ResponseHead& head) noexcept override {
    status_ = head.status;
  }

  void on_response_body(http::ClientConnection&, std::string_view piece) noexcept override {
    if (!sh_.opt.stream) return;
    // An SSE event ends with an empty line: count "\n\n" across pieces.
    const uint64_t t = now_ns();
    for (char c : piece) {
      if (c == '\n' && tail_ == '\n') {
        if (events_.size() < kMaxEventsPerStream) events_.push_back(t);
        tail_ = 0;
      } else {
        tail_ = c;
      }
    }
  }

  void on_response_end(http::ClientConnection&) noexcept override {
    const uint64_t end = now_ns();
    if (counted_ && sh_.phase == Phase::measure && end <= sh_.measure_end_ns) {
      if (status_ != 200) {
        ++sh_.non200;
      } else {
        ++sh_.completed;
        record(end);
      }
    }
    next();
  }

  void record(uint64_t end) {
    if (!sh_.opt.stream) {
      if (sh_.latency_ns.size() < kMaxSamples) sh_.latency_ns.push_back(end - started_ns_);
      return;
    }
    // OpenAI stream: event 0 = role chunk, events 1..N = content chunks,
    // then the finish chunk (and a usage chunk if asked) and [DONE].
    if (events_.empty()) return;
    if (sh_.ttfe_ns.size() < kMaxSamples) sh_.ttfe_ns.push_back(events_[0] - started_ns_);
    if (sh_.samples) {
      std::fprintf(sh_.samples, "%s%" PRIu64 " %" PRIu64 " %" PRIu64 " %zu\n", sh_.opt.id_prefix.c_str(), id_, events_.front(),
                   events_.back(), events_.size());
    }
    const size_t n = static_cast<size_t>(sh_.opt.chunks);
    if (events_.size() < n + 1) {
      ++sh_.short_streams;
      return;
    }
    for (size_t i = 2; i <= n; ++i) {
      if (sh_.gap_ns.size() < kMaxSamples) sh_.gap_ns.push_back(events_[i] - events_[i - 1]);
    }
  }

  void on_error(http::ClientConnection&, const Status& why) noexcept override {
    fail_and_retry(why);
  }

  Shared& sh_;
  uv_loop_t* loop_;
  net::TcpConnector connector_;
  std::unique_ptr<http::ClientConnection> conn_;
  Timer retry_{loop_};
  State state_ = State::idle;
  uint64_t started_ns_ = 0;
  bool counted_ = false;
  int status_ = 0;
  uint64_t id_ = 0;
  std::string body_;
  char tail_ = 0;
  std::vector<uint64_t> events_;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--port") {
      uint64_t p = parse_u64("--port", val());
      if (p == 0 || p > 65535) usage("--port must be 1..65535");
      o.port = static_cast<uint16_t>(p);
    } else if (a == "--path") {
      o.path = val();
    } else if (a == "--token") {
      o.token = val();
    } else if (a == "--model") {
      o.model = val();
    } else if (a == "--label") {
      o.label = val();
    } else if (a == "--concurrency") {
      o.concurrency = parse_u64("--concurrency", val());
    } else if (a == "--duration-ms") {
      o.duration_ms = parse_u64("--duration-ms", val());
    } else if (a == "--warmup-ms") {
      o.warmup_ms = parse_u64("--warmup-ms", val());
    } else if (a == "--chunks") {
      o.chunks = parse_u64("--chunks", val());
    } else if (a == "--id-prefix") {
      o.id_prefix = val();
    } else if (a == "--samples") {
      o.samples = val();
    } else if (a == "--stream") {
      o.stream = true;
    } else if (a == "--watch") {
      std::string w = val();
      const size_t eq = w.find('=');
      if (eq == std::string::npos || eq == 0) usage("--watch needs LABEL=PID[,PID...]");
      if (o.watch.size() >= kMaxWatchGroups) usage("too many --watch groups");
      WatchGroup g;
      g.label = w.substr(0, eq);
      std::istringstream in(w.substr(eq + 1));
      std::string p;
      while (std::getline(in, p, ',')) {
        if (!p.empty()) g.pids.push_back(static_cast<int>(parse_u64("--watch", p.c_str())));
      }
      o.watch.push_back(g);
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  if (o.port == 0) usage("--port is required");
  if (o.model.empty()) usage("--model is required");
  if (o.concurrency < 1 || o.concurrency > kMaxConcurrency) usage("--concurrency must be 1..4096");
  if (o.duration_ms < 100 || o.duration_ms > kMaxDurationMs) usage("--duration-ms must be 100..600000");
  if (o.warmup_ms > kMaxDurationMs) usage("--warmup-ms must be at most 600000");
  if (o.chunks < 2 || o.chunks > 1000) usage("--chunks must be 2..1000");
  return o;
}

int run(int argc, char** argv) {
  log::set_level(log::Level::error);
  Shared sh;
  sh.opt = parse(argc, argv);
  const Options& o = sh.opt;
  sh.body = std::string("{\"model\":\"") + o.model + "\",\"stream\":" + (o.stream ? "true" : "false") +
            ",\"messages\":[{\"role\":\"user\",\"content\":\"the quick brown fox jumps over the "
            "lazy dog\"}]}";

  if (!o.samples.empty()) {
    sh.samples = std::fopen(o.samples.c_str(), "w");
    if (!sh.samples) usage(("cannot write " + o.samples + ": " + std::strerror(errno)).c_str());
  }
  Loop loop;
  sh.loop = &loop;
  std::vector<std::unique_ptr<User>> users;
  users.reserve(o.concurrency);
  for (uint64_t i = 0; i < o.concurrency; ++i) users.push_back(std::make_unique<User>(sh, loop.get()));
  sh.active_users = users.size();

  const long hz = sysconf(_SC_CLK_TCK);
  std::vector<long long> ticks0(o.watch.size()), ticks1(o.watch.size());
  struct rusage ru0 {}, ru1 {};

  auto phase_timer_owner = std::make_unique<Timer>(loop.get());
  Timer& phase_timer = *phase_timer_owner;
  auto begin_measure = [&] {
    for (size_t i = 0; i < o.watch.size(); ++i) ticks0[i] = group_ticks(o.watch[i]);
    getrusage(RUSAGE_SELF, &ru0);
    sh.measure_start_ns = now_ns();
    sh.measure_end_ns = sh.measure_start_ns + o.duration_ms * 1000000ull;
    sh.phase = Phase::measure;
    phase_timer.start(o.duration_ms, 0, [&] {
      sh.measure_end_ns = now_ns();
      for (size_t i = 0; i < o.watch.size(); ++i) ticks1[i] = group_ticks(o.watch[i]);
      getrusage(RUSAGE_SELF, &ru1);
      sh.phase = Phase::drain;
    });
  };
  if (o.warmup_ms == 0) {
    begin_measure();
  } else {
    phase_timer.start(o.warmup_ms, 0, begin_measure);
  }
  for (auto& u : users) u->start();

  // Drain: in-flight requests finish (not counted); bounded wait.
  const bool drained = loop.run_until([&] { return sh.phase == Phase::drain && sh.active_users == 0; },
                                      o.warmup_ms + o.duration_ms + 60000);
  phase_timer_owner.reset();
  users.clear();
  (void)loop.run_until([] { return false; }, 50);
  Status closed = loop.close();

  const double secs = static_cast<double>(sh.measure_end_ns - sh.measure_start_ns) / 1e9;
  const double rps = secs > 0 ? static_cast<double>(sh.completed) / secs : 0.0;
  std::printf("load: label=%s mode=%s c=%" PRIu64 " completed=%" PRIu64 " errors=%" PRIu64
              " non200=%" PRIu64 " seconds=%.3f rps=%.1f connects=%" PRIu64,
              o.label.c_str(), o.stream ? "stream" : "plain", o.concurrency, sh.completed, sh.errors,
              sh.non200, secs, rps, sh.connects);
  if (!o.stream) {
    std::printf(" p50_us=%.1f p99_us=%.1f", percentile(sh.latency_ns, 0.50),
                percentile(sh.latency_ns, 0.99));
  } else {
    std::printf(" short_streams=%" PRIu64 " ttfe_p50_us=%.1f ttfe_p99_us=%.1f gaps=%zu gap_p50_us=%.1f"
                " gap_p99_us=%.1f",
                sh.short_streams, percentile(sh.ttfe_ns, 0.50), percentile(sh.ttfe_ns, 0.99),
                sh.gap_ns.size(), percentile(sh.gap_ns, 0.50), percentile(sh.gap_ns, 0.99));
  }
  const double done = static_cast<double>(std::max<uint64_t>(sh.completed, 1));
  for (size_t i = 0; i < o.watch.size(); ++i) {
    const double us = static_cast<double>(ticks1[i] - ticks0[i]) * 1e6 / static_cast<double>(hz);
    std::printf(" cpu_%s_us_per_req=%.1f cpu_%s_pct=%.1f", o.watch[i].label.c_str(), us / done,
                o.watch[i].label.c_str(), secs > 0 ? us / 1e4 / secs : 0.0);
  }
  auto tv_us = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
  };
  const double self_us = tv_us(ru1.ru_utime) + tv_us(ru1.ru_stime) - tv_us(ru0.ru_utime) - tv_us(ru0.ru_stime);
  std::printf(" cpu_loadgen_us_per_req=%.1f", self_us / done);
  std::printf("\n");
  if (!sh.first_error.empty()) std::printf("load: first error: %s\n", sh.first_error.c_str());
  if (!drained) std::printf("load: warning: in-flight requests did not finish within 60 s\n");
  if (!closed.ok()) std::printf("load: warning: %s\n", closed.to_string().c_str());
  std::fflush(stdout);
  if (sh.samples) std::fclose(sh.samples);
  return sh.completed > 0 ? 0 : 1;
}

}  // namespace
}  // namespace tg::bench

int main(int argc, char** argv) { return tg::bench::run(argc, argv); }
