// The vendor passthrough in one process against the real fake vendor
// (tests/fakes/fake_vendor.js, run with node): a hub-side tunnel Session
// opens channels into an agent-side Session whose calls go to the
// Passthrough. Most tests use a `local` provider at http://127.0.0.1:<fake>;
// the TLS tests reach the fake under the vendors' real host names through
// fake_dns.so (LD_PRELOAD, set by CTest; they skip, saying so, without it),
// with a test CA and full certificate verification.
#include "agent/passthrough.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/net/tcp.h"
#include "shared/tls/certgen.h"
#include "shared/tunnel/session.h"
#include "shared/ws/connection.h"
#include "tests/unit/temp_dir.h"

extern char** environ;

// fake_dns.so is preloaded ahead of the ASan runtime in sanitizer builds.
extern "C" const char* __asan_default_options() { return "verify_asan_link_order=0"; }

namespace tg::agent {
namespace {

constexpr uint64_t kWaitMs = 20000;
constexpr const char* kVendorKey = "sk-vendor-test-key-4f2a";
constexpr const char* kUserToken = "sk-user-token-never-forwarded";
constexpr const char* kPin = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

double mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// A static test binary (the ports/*-static builds, TG_STATIC_BINARY) has no
// dynamic loader, so LD_PRELOAD does nothing there: the tests that need the
// shim skip. ports/tools/static-dns-check covers the static agent's name
// resolution instead.
bool shim_loaded() {
#ifdef TG_STATIC_BINARY
  return false;
#else
  const char* p = std::getenv("LD_PRELOAD");
  return p && std::strstr(p, "fake_dns") != nullptr;
#endif
}

// ---- the fake vendor process ----

class FakeVendor {
 public:
  // Starts node fake_vendor.js on an ephemeral port; false if it did not
  // report ready within 15 s.
  bool start(const std::string& record, const std::vector<std::string>& extra) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
    std::vector<std::string> args = {"node", std::string(TG_SOURCE_DIR) + "/tests/fakes/fake_vendor.js",
                                     "--port", "0", "--key", kVendorKey, "--record", record,
                                     "--exit-with-stdin"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The shim stays out of node: only the agent's lookups are faked.
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) {
      if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0) env_store.emplace_back(*e);
    }
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    int rc = posix_spawnp(&pid_, "node", &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    std::string line;
    const double until = mono_ms() + 15000;
    while (line.find('\n') == std::string::npos && mono_ms() < until) {
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) return false;
      line.append(buf, static_cast<size_t>(n));
    }
    auto at = line.find("127.0.0.1:");
    if (at == std::string::npos) return false;
    port_ = static_cast<uint16_t>(std::atoi(line.c_str() + at + 10));
    return port_ != 0;
  }
  ~FakeVendor() {
    if (stdin_ >= 0) close(stdin_);
    if (stdout_ >= 0) close(stdout_);
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  uint16_t port() const { return port_; }

  // A blocking GET on a test hook (plain HTTP fakes only); the body.
  std::string get(const std::string& path) const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    std::string resp;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const std::string req = "GET " + path + " HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n";
      if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
      }
    }
    close(fd);
    auto at = resp.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : resp.substr(at + 4);
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  uint16_t port_ = 0;
};

// One JSON value owned here.
struct Json {
  cJSON* root = nullptr;
  explicit Json(const std::string& text) : root(cJSON_Parse(text.c_str())) {}
  ~Json() { cJSON_Delete(root); }
  Json(const Json&) = delete;
  Json& operator=(const Json&) = delete;
};

const cJSON* field(const cJSON* o, const char* name) { return cJSON_GetObjectItemCaseSensitive(o, name); }
std::string str(const cJSON* o, const char* name) {
  const cJSON* f = field(o, name);
  return cJSON_IsString(f) ? f->valuestring : std::string();
}
double num(const cJSON* o, const char* name) {
  const cJSON* f = field(o, name);
  return cJSON_IsNumber(f) ? f->valuedouble : -1;
}
bool flag(const cJSON* o, const char* name) { return cJSON_IsTrue(field(o, name)); }

// ---- the hub side of a stream ----

struct HubCall final : tunnel::ChannelHandler {
  tunnel::Channel* ch = nullptr;
  std::string request;
  size_t sent = 0;
  std::optional<tunnel::Response> response;
  std::optional<tunnel::Finish> finish;
  std::optional<tunnel::Error> error;
  std::string body;
  bool fin = false;
  bool closed = false;
  bool stall = false;
  size_t unconsumed = 0;
  int data_events = 0;
  double first_data_ms = 0;

  bool done() const { return finish || error || closed; }
  void pump() {
    while (ch && sent < request.size()) {
      size_t cap = ch->send_capacity();
      if (cap == 0) return;
      size_t n = std::min(cap, request.size() - sent);
      ASSERT_TRUE(ch->send_data(std::string_view(request).substr(sent, n), sent + n == request.size()).ok());
      sent += n;
    }
  }
  void resume() {
    stall = false;
    if (ch && unconsumed) ch->consumed(unconsumed);
    unconsumed = 0;
  }
  void on_channel_message(tunnel::Channel&, const tunnel::Message& m) noexcept override {
    if (auto* r = std::get_if<tunnel::Response>(&m)) response = *r;
    if (auto* f = std::get_if<tunnel::Finish>(&m)) {
      finish = *f;
      ch = nullptr;
    }
    if (auto* e = std::get_if<tunnel::Error>(&m)) {
      error = *e;
      ch = nullptr;
    }
  }
  void on_channel_data(tunnel::Channel& c, std::string_view d, bool f) noexcept override {
    if (data_events++ == 0) first_data_ms = mono_ms();
    body.append(d);
    fin = fin || f;
    if (stall) {
      unconsumed += d.size();
    } else {
      c.consumed(d.size());
    }
  }
  void on_channel_writable(tunnel::Channel&) noexcept override { pump(); }
  void on_channel_closed(tunnel::Channel&, const Status&) noexcept override {
    closed = true;
    ch = nullptr;
  }
  std::string header(const std::string& name) const {
    if (!response) return "(no response)";
    for (const auto& [n, v] : response->headers) {
      if (n == name) return v;
    }
    return "(absent)";
  }
};

struct HubEvents final : tunnel::SessionHandler {
  std::vector<tunnel::Capacity> capacity;  // the agent's capacity reports, as the hub decoded them
  void on_message(tunnel::Session&, const tunnel::Message& m) noexcept override {
    if (auto* c = std::get_if<tunnel::Capacity>(&m)) capacity.push_back(*c);
  }
  void on_closed(tunnel::Session&, uint16_t, const std::string&) noexcept override {}
};

// Every call the passthrough reports as having reached a vendor.
struct Reports final : CallReporter {
  std::vector<FinishedCall> calls;
  void call_finished(const FinishedCall& f) noexcept override { calls.push_back(f); }
};

// "retry in N ms..." -> N (-1 if the message does not start so).
long retry_in_ms(const std::string& message) {
  if (message.rfind("retry in ", 0) != 0) return -1;
  return std::strtol(message.c_str() + 9, nullptr, 10);
}

struct AgentEvents final : tunnel::SessionHandler {
  CallHandler* calls = nullptr;
  void on_message(tunnel::Session&, const tunnel::Message&) noexcept override {}
  void on_call(tunnel::Session&, tunnel::Channel& ch, const tunnel::Call& call) noexcept override {
    calls->on_call(ch, call);
  }
  void on_closed(tunnel::Session&, uint16_t, const std::string&) noexcept override {}
};

std::string chat_body(const std::string& model, bool stream, const std::string& text = "alpha beta gamma") {
  return std::string("{\"model\":\"") + model + "\",\"stream\":" + (stream ? "true" : "false") +
         ",\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
}

class PassthroughTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    record_ = dir_ + "/records.jsonl";
  }

  void TearDown() override {
    hub_.reset();
    agent_.reset();
    passthrough_.reset();
    fake_.reset();
    EXPECT_TRUE(loop_.close().ok());
  }

  // Makes a test CA and a leaf for the vendor names; returns false on error.
  bool make_certs(const std::string& prefix) {
    auto ca_key = tls::generate_key();
    auto leaf_key = tls::generate_key();
    if (!ca_key.ok() || !leaf_key.ok()) return false;
    tls::CertRequest ca;
    ca.common_name = "Passthrough Test CA";
    ca.is_ca = true;
    ca.days = 2;
    ca.key_pem = *ca_key;
    auto ca_cert = tls::issue_cert(ca);
    if (!ca_cert.ok()) return false;
    tls::CertRequest leaf;
    leaf.common_name = "api.openai.com";
    leaf.dns_names = {"api.openai.com", "api.anthropic.com", "api.deepseek.com",
                      "my-res.openai.azure.com"};
    leaf.days = 2;
    leaf.key_pem = *leaf_key;
    leaf.issuer_cert_pem = *ca_cert;
    leaf.issuer_key_pem = *ca_key;
    auto leaf_cert = tls::issue_cert(leaf);
    if (!leaf_cert.ok()) return false;
    std::ofstream(dir_ + "/" + prefix + "ca.pem") << *ca_cert;
    std::ofstream(dir_ + "/" + prefix + "leaf.pem") << *leaf_cert;
    std::ofstream(dir_ + "/" + prefix + "leaf.key") << *leaf_key;
    return true;
  }

  void start_fake(bool tls = false, std::vector<std::string> extra = {}) {
    if (tls) {
      ASSERT_TRUE(make_certs(""));
      extra.insert(extra.end(), {"--tls", dir_ + "/leaf.pem", dir_ + "/leaf.key"});
    }
    fake_ = std::make_unique<FakeVendor>();
    ASSERT_TRUE(fake_->start(record_, extra)) << "node tests/fakes/fake_vendor.js did not start";
    if (tls) {
      const std::string p = "127.0.0.1:" + std::to_string(fake_->port());
      const std::string map = "api.openai.com=" + p + ",api.anthropic.com=" + p +
                              ",api.deepseek.com=" + p + ",my-res.openai.azure.com=" + p +
                              ",ollama.test=" + p + ",public.test=8.8.8.8:" +
                              std::to_string(fake_->port());
      setenv("TG_FAKE_DNS", map.c_str(), 1);
    }
  }

  std::string local_url() const { return "http://127.0.0.1:" + std::to_string(fake_->port()); }

  // Loads `providers` (agent.conf provider sections) and connects a hub
  // Session to an agent Session that hands calls to a new Passthrough.
  void start_agent(const std::string& providers, tunnel::SessionOptions opts = {},
                   const std::string& ca_file = "") {
    std::string text = std::string("hub = wss://hub.test:8443/tunnel\nhub_pin = ") + kPin + "\n";
    if (!ca_file.empty()) text += "ca_file = " + ca_file + "\n";
    auto parsed = parse(text + providers, "agent.conf");
    ASSERT_TRUE(parsed.config) << (parsed.errors.empty() ? "" : parsed.errors[0].to_string());
    config_.emplace(std::move(*parsed.config));
    auto p = Passthrough::create(loop_, *config_, options_);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    passthrough_ = std::move(p.value());
    passthrough_->set_reporter(&reports_);
    passthrough_->set_sender([this](const tunnel::Message& m) -> Status {
      if (!agent_) return error(Errc::closed, "no tunnel");
      return agent_->send(m);
    });
    agent_events_.calls = passthrough_.get();

    net::TcpListener listener(loop_);
    net::StreamPtr c, s;
    ASSERT_TRUE(listener.listen("127.0.0.1", 0, [&](net::StreamPtr x) { s = std::move(x); }).ok());
    net::TcpConnector connector(loop_);
    ASSERT_TRUE(connector.connect("127.0.0.1", listener.port(), kWaitMs, [&](Result<net::StreamPtr> r) {
      if (r.ok()) c = std::move(r.value());
    }).ok());
    ASSERT_TRUE(loop_.run_until([&] { return c && s; }, kWaitMs));
    listener.close();
    auto wc = std::make_unique<ws::Connection>(loop_, std::move(c), "", ws::Role::client);
    auto wsrv = std::make_unique<ws::Connection>(loop_, std::move(s), "", ws::Role::server);
    hub_ = std::make_unique<tunnel::Session>(loop_, std::move(wsrv), tunnel::Side::hub, &hub_events_, opts);
    agent_ = std::make_unique<tunnel::Session>(loop_, std::move(wc), tunnel::Side::agent, &agent_events_,
                                               opts);
    hub_->start();
    agent_->start();
    hub_->authenticated(opts);
    agent_->authenticated(opts);
  }

  std::string local_provider(const std::string& models, int max_parallel = 4,
                             const std::string& key = kVendorKey) {
    return "[provider lan]\ntype = local\nurl = " + local_url() + "\napi_key = " + key +
           "\nmodels = " + models + "\nmax_parallel = " + std::to_string(max_parallel) + "\n";
  }

  // Opens a stream as the hub does and sends `body` with FIN.
  void open(HubCall& h, const std::string& model, const std::string& path, const std::string& body,
            tunnel::Headers headers = {{"content-type", "application/json"}},
            uint32_t deadline_ms = 60000) {
    tunnel::Call call;
    call.request_id = "attempt-" + std::to_string(++attempts_);
    call.model = model;
    call.method = "POST";
    call.path = path;
    call.headers = std::move(headers);
    call.stream = body.find("\"stream\":true") != std::string::npos;
    call.deadline_ms = deadline_ms;
    auto ch = hub_->open_channel(call, &h);
    ASSERT_TRUE(ch.ok()) << ch.status().to_string();
    h.ch = *ch;
    h.request = body;
    h.pump();
  }

  bool wait(const std::function<bool()>& done, uint64_t ms = kWaitMs) { return loop_.run_until(done, ms); }

  // The fake's records (one JSON per line), waiting for at least `min`.
  std::vector<std::unique_ptr<Json>> records(size_t min) {
    std::vector<std::unique_ptr<Json>> out;
    wait([&] {
      out.clear();
      std::string all;
      if (FILE* f = std::fopen(record_.c_str(), "rb")) {
        char buf[65536];
        for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) all.append(buf, n);
        std::fclose(f);
      }
      // Only complete lines: the fake may be in the middle of writing a big one.
      size_t start = 0;
      for (size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1) {
        if (nl > start) out.push_back(std::make_unique<Json>(all.substr(start, nl - start)));
      }
      return out.size() >= min;
    });
    return out;
  }

  Loop loop_;
  int attempts_ = 0;  // request ids of the calls opened
  test::TempDir tmp_{"tg-passthrough"};
  std::string dir_ = tmp_.path();
  std::string record_;
  std::unique_ptr<FakeVendor> fake_;
  std::optional<AgentConfig> config_;
  PassthroughOptions options_;
  std::unique_ptr<Passthrough> passthrough_;
  HubEvents hub_events_;
  AgentEvents agent_events_;
  Reports reports_;
  std::unique_ptr<tunnel::Session> hub_, agent_;
};

#define NEEDS_SHIM()                                                                      \
  if (!shim_loaded()) {                                                                   \
    GTEST_SKIP() << "needs LD_PRELOAD=fake_dns.so to reach the fake under vendor names " \
                    "(CTest sets it; a static binary cannot preload)";                    \
  }

// ---- plain HTTP, `local` provider ----

TEST_F(PassthroughTest, ChatNonStream) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini"));
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  ASSERT_TRUE(h.response);
  EXPECT_EQ(h.response->status, 200u);
  EXPECT_EQ(h.finish->upstream_status, 200u);
  EXPECT_TRUE(h.fin);
  EXPECT_EQ(h.header("content-type"), "application/json");
  EXPECT_EQ(h.header("openai-processing-ms"), "1");
  EXPECT_EQ(h.header("x-upstream-request-id").rfind("req_", 0), 0u);
  EXPECT_EQ(h.header("openai-organization"), "(absent)");
  Json j(h.body);
  ASSERT_NE(j.root, nullptr) << h.body;
  const cJSON* choice = cJSON_GetArrayItem(field(j.root, "choices"), 0);
  EXPECT_EQ(str(field(choice, "message"), "content"), "alpha beta gamma");
  EXPECT_EQ(passthrough_->stats().finished, 1u);
  EXPECT_EQ(passthrough_->in_flight(), 0u);
}

TEST_F(PassthroughTest, StreamChunksReachTheHubWhileTheVendorIsStillSending) {
  start_fake();
  start_agent(local_provider("fake-chunks-5-slow-150"));
  HubCall h;
  open(h, "fake-chunks-5-slow-150", "/v1/chat/completions", chat_body("fake-chunks-5-slow-150", true));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish);
  EXPECT_EQ(h.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_NE(h.body.find("data: [DONE]"), std::string::npos);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  // The first chunk was at the hub before the vendor sent its last one.
  const double vendor_done = num(recs[0]->root, "finished_at_ms");
  EXPECT_LT(h.first_data_ms, vendor_done);
  EXPECT_GE(h.data_events, 5);
  std::printf("first chunk at hub %.1f ms before the vendor finished; %d data frames\n",
              vendor_done - h.first_data_ms, h.data_events);
}

TEST_F(PassthroughTest, Embeddings) {
  start_fake();
  start_agent(local_provider("text-embedding-3-small"));
  HubCall h;
  open(h, "text-embedding-3-small", "/v1/embeddings",
       "{\"model\":\"text-embedding-3-small\",\"input\":\"hello world\"}");
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish);
  Json j(h.body);
  ASSERT_NE(j.root, nullptr);
  EXPECT_EQ(str(j.root, "object"), "list");
  EXPECT_EQ(cJSON_GetArraySize(field(cJSON_GetArrayItem(field(j.root, "data"), 0), "embedding")), 16);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(str(recs[0]->root, "path"), "/v1/embeddings");
}

TEST_F(PassthroughTest, Vendor429IsNotForwardedButAnsweredRateLimited) {
  start_fake(false, {"--behaviour", "429-retryafter-3"});  // every model of this fake answers 429
  start_agent(local_provider("gpt-4o-mini, gpt-4o"));
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error) << (h.response ? "forwarded " + std::to_string(h.response->status) : "closed");
  EXPECT_FALSE(h.response);
  EXPECT_EQ(h.body, "");
  EXPECT_EQ(h.error->code, "upstream_rate_limited");
  EXPECT_EQ(h.error->message,
            "retry in 3000 ms; vendor answered 429 (127.0.0.1, provider lan, now 1 requests per minute)");
  EXPECT_EQ(passthrough_->stats().vendor_429, 1u);
  // Unlimited before: one call in the last minute, halved, at least 1.
  EXPECT_EQ(passthrough_->limiter().effective_rpm(0), 1u);
  // The call reached the vendor: reported, with the 429 and no usage.
  ASSERT_EQ(reports_.calls.size(), 1u);
  EXPECT_EQ(reports_.calls[0].status, 429);
  EXPECT_TRUE(billing::is_zero(reports_.calls[0].usage));
  // The hub heard it for every model of the provider.
  ASSERT_TRUE(wait([&] { return !hub_events_.capacity.empty(); }));
  EXPECT_EQ(hub_events_.capacity[0].models, (std::vector<std::string>{"gpt-4o-mini", "gpt-4o"}));
  EXPECT_EQ(hub_events_.capacity[0].ready_in_ms, 3000u);
  EXPECT_EQ(hub_events_.capacity[0].rpm, 1u);
  // Paused: the next call of the provider never reaches the vendor.
  HubCall g;
  open(g, "gpt-4o", "/v1/chat/completions", chat_body("gpt-4o", false));
  ASSERT_TRUE(wait([&] { return g.done(); }));
  ASSERT_TRUE(g.error);
  EXPECT_EQ(g.error->code, "rate_limited");
  const long n = retry_in_ms(g.error->message);
  EXPECT_GT(n, 2000);
  EXPECT_LE(n, 3000);
  EXPECT_NE(g.error->message.find("provider lan: paused after a vendor 429 (1 requests per minute)"),
            std::string::npos) << g.error->message;
  EXPECT_EQ(passthrough_->stats().rate_limited, 1u);
  EXPECT_EQ(reports_.calls.size(), 1u);  // the refused call reached nothing
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(str(recs[0]->root, "behaviour"), "429-retryafter-3");
}

TEST_F(PassthroughTest, ProviderSaysItIsUsableAgainAfterThePause) {
  start_fake();
  start_agent(local_provider("fake-429-retryafter-1, gpt-4o-mini"));
  HubCall h;
  open(h, "fake-429-retryafter-1", "/v1/chat/completions", chat_body("fake-429-retryafter-1", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "upstream_rate_limited");
  const double paused_at = mono_ms();
  // From the loop's timer, once the second is over.
  ASSERT_TRUE(wait([&] { return hub_events_.capacity.size() >= 2; }, 5000));
  const double took = mono_ms() - paused_at;
  EXPECT_EQ(hub_events_.capacity[0].ready_in_ms, 1000u);
  EXPECT_EQ(hub_events_.capacity[1].ready_in_ms, 0u);
  EXPECT_EQ(hub_events_.capacity[1].models, hub_events_.capacity[0].models);
  EXPECT_GE(took, 900);
  HubCall g;
  open(g, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return g.done(); }));
  ASSERT_TRUE(g.finish) << (g.error ? g.error->code + ": " + g.error->message : "closed");
  EXPECT_EQ(g.response->status, 200u);
  EXPECT_EQ(passthrough_->limiter().effective_rpm(0), 2u);  // a success adds one back
}

TEST_F(PassthroughTest, EmptyRequestBucketIsRateLimitedAndReported) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini, gpt-4o") + "rpm = 6\n");  // a bucket of one per 10 s
  HubCall a, b;
  open(a, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return a.done(); }));
  ASSERT_TRUE(a.finish);
  open(b, "gpt-4o", "/v1/chat/completions", chat_body("gpt-4o", false));
  ASSERT_TRUE(wait([&] { return b.done(); }));
  ASSERT_TRUE(b.error);
  EXPECT_FALSE(b.response);
  EXPECT_EQ(b.error->code, "rate_limited");
  const long n = retry_in_ms(b.error->message);
  EXPECT_GT(n, 0) << b.error->message;
  EXPECT_LE(n, 10000);
  EXPECT_NE(b.error->message.find("; provider lan: requests per minute used up (6 requests per minute)"),
            std::string::npos) << b.error->message;
  EXPECT_EQ(passthrough_->stats().calls, 1u);
  EXPECT_EQ(passthrough_->stats().rate_limited, 1u);
  EXPECT_EQ(passthrough_->stats().refused, 1u);
  EXPECT_EQ(reports_.calls.size(), 1u);
  auto recs = records(1);
  EXPECT_EQ(recs.size(), 1u);
  // The admission that emptied the bucket was reported with its models.
  ASSERT_TRUE(wait([&] { return !hub_events_.capacity.empty(); }));
  const tunnel::Capacity& c = hub_events_.capacity[0];
  EXPECT_EQ(c.models, (std::vector<std::string>{"gpt-4o-mini", "gpt-4o"}));
  EXPECT_GT(c.ready_in_ms, 0u);
  EXPECT_LE(c.ready_in_ms, 10000u);
  EXPECT_EQ(c.rpm, 6u);
  EXPECT_EQ(passthrough_->stats().capacity_reports, hub_events_.capacity.size());
}

TEST_F(PassthroughTest, TokenBucketInDebtRefusesUntilItRefills) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini") + "tpm = 60\n");  // 10 tokens in the bucket, 1 per second
  const std::string words = "one two three four five six seven eight nine ten eleven twelve";
  HubCall a, b;
  open(a, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false, words));
  ASSERT_TRUE(wait([&] { return a.done(); }));
  ASSERT_TRUE(a.finish);
  ASSERT_EQ(reports_.calls.size(), 1u);
  const billing::Usage& u = reports_.calls[0].usage;
  EXPECT_EQ(u.input + u.cached + u.output, 24u);  // 12 words in, 12 out: 14 tokens of debt
  EXPECT_EQ(passthrough_->limiter().tokens(0, uv_now(loop_)), -14);
  open(b, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return b.done(); }));
  ASSERT_TRUE(b.error);
  EXPECT_EQ(b.error->code, "rate_limited");
  EXPECT_NE(b.error->message.find("provider lan: tokens per minute used up"), std::string::npos)
      << b.error->message;
  EXPECT_GT(retry_in_ms(b.error->message), 13000);
}
TEST_F(PassthroughTest, Vendor401IsPassedThrough) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini", 4, "sk-wrong-key"));
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish);
  EXPECT_EQ(h.response->status, 401u);
  EXPECT_NE(h.body.find("\"error\""), std::string::npos) << h.body;
  EXPECT_EQ(h.body.find("sk-wrong-key"), std::string::npos);
}

TEST_F(PassthroughTest, UnknownModel) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini"));
  HubCall h;
  open(h, "not-served", "/v1/chat/completions", chat_body("not-served", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "unknown_model");
  EXPECT_EQ(h.error->message, "no provider for model not-served");
  EXPECT_EQ(passthrough_->stats().refused, 1u);
}

TEST_F(PassthroughTest, PathNotServedByTheDialectIsBadRequest) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini"));
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/messages", "{\"model\":\"gpt-4o-mini\"}");
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "bad_request");
}

TEST_F(PassthroughTest, BusyAtTheProvidersMaxParallel) {
  start_fake();
  start_agent(local_provider("fake-chunks-100-slow-100", 1));
  HubCall first, second;
  open(first, "fake-chunks-100-slow-100", "/v1/chat/completions",
       chat_body("fake-chunks-100-slow-100", true));
  ASSERT_TRUE(wait([&] { return first.data_events > 0; }));
  open(second, "fake-chunks-100-slow-100", "/v1/chat/completions",
       chat_body("fake-chunks-100-slow-100", true));
  ASSERT_TRUE(wait([&] { return second.done(); }));
  ASSERT_TRUE(second.error);
  EXPECT_EQ(second.error->code, "busy");
  EXPECT_EQ(second.error->message, "provider lan is at max_parallel 1");
  first.ch->close(tunnel::abort_reason::client_gone);
  ASSERT_TRUE(wait([&] { return passthrough_->in_flight() == 0; }));
}

TEST_F(PassthroughTest, VendorDisconnectMidStreamIsUpstreamError) {
  start_fake();
  start_agent(local_provider("fake-chunks-10-disconnect-after-3"));
  HubCall h;
  open(h, "fake-chunks-10-disconnect-after-3", "/v1/chat/completions",
       chat_body("fake-chunks-10-disconnect-after-3", true));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.response);
  EXPECT_EQ(h.response->status, 200u);
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "upstream_error");
  EXPECT_FALSE(h.fin);
  EXPECT_FALSE(h.finish);
  // The head went to the hub: never retried.
  EXPECT_EQ(passthrough_->stats().vendor_retries, 0u);
  wait([] { return false; }, 700);  // longer than any retry back-off
  EXPECT_EQ(records(1).size(), 1u);
}

TEST_F(PassthroughTest, HubAbortClosesTheVendorConnectionAtOnce) {
  start_fake();
  start_agent(local_provider("fake-slow-20-chunks-1000"));
  HubCall h;
  open(h, "fake-slow-20-chunks-1000", "/v1/chat/completions",
       chat_body("fake-slow-20-chunks-1000", true));
  ASSERT_TRUE(wait([&] { return h.data_events >= 3; }));
  const double aborted_at = mono_ms();
  h.ch->close(tunnel::abort_reason::client_gone);
  h.ch = nullptr;
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(flag(recs[0]->root, "client_aborted"));
  const double closed_at = num(recs[0]->root, "closed_at_ms");
  ASSERT_GT(closed_at, 0);
  const double took = closed_at - aborted_at;
  std::printf("vendor saw the close %.2f ms after the hub's abort\n", took);
  RecordProperty("abort_to_vendor_close_us", static_cast<int>(took * 1000));
  // Not a performance bound: the stream had 19 s left, so the close came
  // from the abort and not from the stream's end.
  EXPECT_LT(took, 5000);
  EXPECT_EQ(passthrough_->stats().aborted, 1u);
  EXPECT_EQ(passthrough_->in_flight(), 0u);
}

TEST_F(PassthroughTest, SlowHubReaderHoldsTheVendorBack) {
  start_fake();
  tunnel::SessionOptions opts;
  opts.window = 64 * 1024;
  start_agent(local_provider("fake-chunks-1000-chunksize-65536"), opts);
  const std::string model = "fake-chunks-1000-chunksize-65536";  // ~65 MiB of SSE
  HubCall h;
  h.stall = true;
  open(h, model, "/v1/chat/completions", chat_body(model, true));
  // Let the pipe fill up and settle: the fake stops making progress.
  double last = -1, sent = 0, drains = 0;
  for (int i = 0; i < 100; ++i) {
    wait([] { return false; }, 200);
    Json j(fake_->get("/_fake/inflight"));
    const cJSON* r = cJSON_GetArrayItem(j.root, 0);
    ASSERT_NE(r, nullptr) << "the stream ended while the hub read nothing";
    sent = num(r, "bytes_sent");
    drains = num(r, "drain_waits");
    if (sent == last && drains > 0) break;
    last = sent;
  }
  std::printf("stalled: vendor sent %.0f bytes, drain_waits %.0f, hub unread %zu, agent held at most %zu\n",
              sent, drains, h.unconsumed, passthrough_->stats().max_held_bytes);
  EXPECT_EQ(sent, last) << "the vendor kept sending to a stalled reader";
  EXPECT_GT(drains, 0);
  EXPECT_LT(sent, 32.0 * 1024 * 1024);           // far from the 65 MiB stream
  EXPECT_LE(h.unconsumed, opts.window);          // the hub holds at most a window
  EXPECT_LE(passthrough_->stats().max_held_bytes, 256u * 1024);  // the agent at most a read
  // The reader comes back: the stream flows again to the end.
  h.resume();
  ASSERT_TRUE(wait([&] { return h.done(); }, 120000));
  ASSERT_TRUE(h.finish);
  EXPECT_GT(h.body.size(), 65536u * 1000);
  EXPECT_NE(h.body.find("data: [DONE]"), std::string::npos);
}

TEST_F(PassthroughTest, VendorGetsItsKeyAndNoneOfTheUsersHeaders) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini"));
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false),
       {{"content-type", "application/json"},
        {"authorization", std::string("Bearer ") + kUserToken},
        {"x-api-key", kUserToken},
        {"api-key", kUserToken},
        {"cookie", std::string("s=") + kUserToken},
        {"connection", "close"},
        {"x-forwarded-for", "203.0.113.9"},
        {"user-agent", "OpenAI/JS 4.77.0"},
        {"x-request-id", "hub-req-1"}});
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish);
  EXPECT_EQ(h.response->status, 200u);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  const cJSON* rec = recs[0]->root;
  char* raw = cJSON_PrintUnformatted(field(rec, "raw_headers"));
  const std::string raw_headers = raw;
  cJSON_free(raw);
  EXPECT_EQ(raw_headers.find(kUserToken), std::string::npos) << raw_headers;
  const cJSON* hd = field(rec, "headers");
  EXPECT_EQ(str(hd, "authorization"), std::string("Bearer ") + kVendorKey);
  EXPECT_EQ(str(hd, "accept-encoding"), "identity");
  EXPECT_EQ(str(hd, "transfer-encoding"), "chunked");
  EXPECT_EQ(str(hd, "host"), "127.0.0.1:" + std::to_string(fake_->port()));
  EXPECT_EQ(str(hd, "user-agent"), "OpenAI/JS 4.77.0");
  EXPECT_EQ(str(hd, "x-request-id"), "hub-req-1");
  for (const char* gone : {"x-api-key", "api-key", "cookie", "connection", "x-forwarded-for"}) {
    EXPECT_EQ(field(hd, gone), nullptr) << gone;
  }
  EXPECT_EQ(str(rec, "path"), "/v1/chat/completions");
}

TEST_F(PassthroughTest, LargeRequestBodyStreamsThroughIntact) {
  start_fake();
  tunnel::SessionOptions opts;
  opts.window = 64 * 1024;
  start_agent(local_provider("gpt-4o-mini"), opts);
  std::string words;
  for (int i = 0; words.size() < 2u * 1024 * 1024; ++i) words += "w" + std::to_string(i) + " ";
  words += "end";
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false, words));
  ASSERT_TRUE(wait([&] { return h.done(); })) << "hub sent " << h.sent << " of " << h.request.size();
  ASSERT_TRUE(h.finish) << (h.error ? h.error->message : "");
  EXPECT_EQ(h.sent, h.request.size());
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(num(recs[0]->root, "body_bytes"), static_cast<double>(h.request.size()));
  // Held request bytes never exceeded a window (credit follows the socket).
  EXPECT_LE(passthrough_->stats().max_held_bytes, opts.window);
}

TEST_F(PassthroughTest, DeadlineBeforeTheHeadIsDeadlineExceeded) {
  start_fake();
  start_agent(local_provider("fake-think-10000"));
  HubCall h;
  open(h, "fake-think-10000", "/v1/chat/completions", chat_body("fake-think-10000", false),
       {{"content-type", "application/json"}}, 300);
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "deadline_exceeded");
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(flag(recs[0]->root, "client_aborted"));
}

TEST_F(PassthroughTest, NothingListeningIsUpstreamUnreachable) {
  start_fake();
  uint16_t dead_port = 0;
  {
    net::TcpListener l(loop_);
    ASSERT_TRUE(l.listen("127.0.0.1", 0, [](net::StreamPtr) {}).ok());
    dead_port = l.port();
  }
  start_agent("[provider lan]\ntype = local\nurl = http://127.0.0.1:" + std::to_string(dead_port) +
              "\nmodels = m\n");
  HubCall h;
  open(h, "m", "/v1/chat/completions", chat_body("m", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "upstream_unreachable");
  EXPECT_EQ(passthrough_->stats().vendor_retries, 2u);  // connect refused is retried, twice
  EXPECT_EQ(reports_.calls.size(), 1u);
}

TEST_F(PassthroughTest, HubAbortBeforeTheResponseHeadClosesTheVendorConnection) {
  start_fake();
  start_agent(local_provider("fake-think-20000"));
  HubCall h;
  open(h, "fake-think-20000", "/v1/chat/completions", chat_body("fake-think-20000", false));
  // Wait until the vendor is thinking on it.
  ASSERT_TRUE(wait([&] {
    Json j(fake_->get("/_fake/inflight"));
    return cJSON_GetArraySize(j.root) == 1;
  }));
  const double aborted_at = mono_ms();
  h.ch->close(tunnel::abort_reason::client_gone);
  h.ch = nullptr;
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(flag(recs[0]->root, "client_aborted"));
  const double took = num(recs[0]->root, "closed_at_ms") - aborted_at;
  std::printf("vendor saw the close %.2f ms after the hub's abort (before the head)\n", took);
  EXPECT_LT(took, 5000);  // the vendor would have answered after 20 s
  EXPECT_EQ(passthrough_->in_flight(), 0u);
}

TEST_F(PassthroughTest, DeadlineAfterTheHeadEndsTheStreamWithAnError) {
  start_fake();
  start_agent(local_provider("fake-chunks-100-slow-100"));
  HubCall h;
  open(h, "fake-chunks-100-slow-100", "/v1/chat/completions",
       chat_body("fake-chunks-100-slow-100", true), {{"content-type", "application/json"}}, 500);
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.response);
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "deadline_exceeded");
  EXPECT_FALSE(h.fin);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(flag(recs[0]->root, "client_aborted"));
}

TEST_F(PassthroughTest, TunnelLossClosesTheVendorConnection) {
  start_fake();
  start_agent(local_provider("fake-chunks-100-slow-100"));
  HubCall h;
  open(h, "fake-chunks-100-slow-100", "/v1/chat/completions",
       chat_body("fake-chunks-100-slow-100", true));
  ASSERT_TRUE(wait([&] { return h.data_events > 0; }));
  hub_.reset();  // the transport ends at once, without a close frame
  ASSERT_TRUE(wait([&] { return passthrough_->in_flight() == 0; }));
  EXPECT_EQ(passthrough_->stats().aborted, 1u);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(flag(recs[0]->root, "client_aborted"));
}

std::vector<std::string>* g_log_lines = nullptr;

TEST_F(PassthroughTest, VendorKeyNeverInALogLineOrATunnelMessage) {
  start_fake();
  std::vector<std::string> lines;
  g_log_lines = &lines;
  log::set_sink([](log::Level, const char* line, void*) { g_log_lines->push_back(line); }, nullptr);
  const log::Level was = log::level();
  log::set_level(log::Level::debug);
  start_agent(local_provider("gpt-4o-mini, fake-429, fake-chunks-5-disconnect-after-2"));
  std::vector<std::unique_ptr<HubCall>> calls;
  for (const char* model : {"gpt-4o-mini", "fake-429", "fake-chunks-5-disconnect-after-2", "unknown"}) {
    calls.push_back(std::make_unique<HubCall>());
    open(*calls.back(), model, "/v1/chat/completions", chat_body(model, true));
  }
  ASSERT_TRUE(wait([&] {
    for (auto& c : calls) {
      if (!c->done()) return false;
    }
    return true;
  }));
  log::set_level(was);
  log::set_sink(nullptr, nullptr);
  g_log_lines = nullptr;
  EXPECT_FALSE(lines.empty());
  for (const auto& l : lines) EXPECT_EQ(l.find(kVendorKey), std::string::npos) << l;
  for (auto& c : calls) {
    if (c->response) {
      for (const auto& [n, v] : c->response->headers) {
        EXPECT_EQ(v.find(kVendorKey), std::string::npos) << n;
      }
    }
    if (c->error) {
      EXPECT_EQ(c->error->message.find(kVendorKey), std::string::npos);
    }
  }
}

// ---- keep-alive pool ----

TEST_F(PassthroughTest, KeptAliveConnectionIsReusedForTheNextCall) {
  start_fake();
  start_agent(local_provider("gpt-4o-mini"));
  for (int i = 0; i < 3; ++i) {
    HubCall h;
    open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", i == 1));
    ASSERT_TRUE(wait([&] { return h.done(); }));
    ASSERT_TRUE(h.finish) << i;
  }
  auto recs = records(3);
  ASSERT_EQ(recs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(num(recs[i]->root, "connection"), num(recs[0]->root, "connection"));
    EXPECT_EQ(num(recs[i]->root, "request_on_connection"), static_cast<double>(i + 1));
  }
  EXPECT_EQ(passthrough_->stats().connections, 1u);
  EXPECT_EQ(passthrough_->stats().reused, 2u);
}

TEST_F(PassthroughTest, IdleConnectionOlderThanIdleMsIsNotReused) {
  start_fake();
  options_.idle_ms = 100;
  start_agent(local_provider("gpt-4o-mini"));
  HubCall a, b;
  open(a, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return a.done(); }));
  wait([] { return false; }, 300);
  open(b, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return b.done(); }));
  ASSERT_TRUE(b.finish);
  auto recs = records(2);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_NE(num(recs[0]->root, "connection"), num(recs[1]->root, "connection"));
  EXPECT_EQ(passthrough_->stats().connections, 2u);
  EXPECT_EQ(passthrough_->stats().reused, 0u);
}

TEST_F(PassthroughTest, NoPoolWhenIdleMsIsZero) {
  start_fake();
  options_.idle_ms = 0;
  start_agent(local_provider("gpt-4o-mini"));
  for (int i = 0; i < 2; ++i) {
    HubCall h;
    open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
    ASSERT_TRUE(wait([&] { return h.done(); }));
    ASSERT_TRUE(h.finish);
  }
  EXPECT_EQ(passthrough_->stats().connections, 2u);
}

// A tiny HTTP/1.1 vendor made of raw sockets. The agent's requests (chunked)
// are numbered in arrival order over all connections; request n gets
// script[n] (past the end: ok): 200 "{}" with keep-alive, a 503, or its
// connection closed without an answer.
struct ScriptedVendor {
  enum class Act { ok, unavailable, drop };
  struct Conn final : net::StreamHandler {
    ScriptedVendor* v = nullptr;
    net::StreamPtr s;
    bool dead = false;
    std::string in;
    void on_stream_read(net::Stream&, std::string_view d) noexcept override {
      if (dead) return;
      in.append(d);
      size_t end;
      while (!dead && (end = in.find("\r\n0\r\n\r\n")) != std::string::npos) {
        const size_t n = v->requests.size();
        v->requests.push_back(in.substr(0, end + 7));
        in.erase(0, end + 7);
        const Act act = n < v->script.size() ? v->script[n] : Act::ok;
        if (act == Act::drop) {
          ++v->dropped;
          dead = true;
          s->close();
          return;
        }
        (void)s->write(act == Act::ok
                           ? "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                           : "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                             "Content-Length: 11\r\n\r\n{\"e\":\"503\"}");
      }
    }
    void on_stream_end(net::Stream&, const Status&) noexcept override { dead = true; }
  };
  net::TcpListener listener;
  std::vector<Act> script;
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<std::string> requests;
  int dropped = 0;
  ScriptedVendor(uv_loop_t* loop, std::vector<Act> s) : listener(loop), script(std::move(s)) {}
  bool start(uint16_t port = 0) {
    return listener.listen("127.0.0.1", port, [this](net::StreamPtr st) {
      auto c = std::make_unique<Conn>();
      c->v = this;
      c->s = std::move(st);
      c->s->set_handler(c.get());
      conns.push_back(std::move(c));
    }).ok();
  }
  // The decoded body of request n.
  std::string body(size_t n) const {
    const std::string& r = requests.at(n);
    std::string out;
    size_t at = r.find("\r\n\r\n") + 4;
    while (at < r.size()) {
      const size_t eol = r.find("\r\n", at);
      const size_t len = std::strtoul(r.substr(at, eol - at).c_str(), nullptr, 16);
      if (len == 0) break;
      out += r.substr(eol + 2, len);
      at = eol + 2 + len + 2;
    }
    return out;
  }
};

std::string local_at(uint16_t port) {
  return "[provider lan]\ntype = local\nurl = http://127.0.0.1:" + std::to_string(port) + "\nmodels = m\n";
}

TEST_F(PassthroughTest, ReusedConnectionClosedBeforeTheAnswerIsRetriedOnANewOne) {
  start_fake();  // unused here; keeps the fixture's shape
  using Act = ScriptedVendor::Act;
  auto vendor = std::make_unique<ScriptedVendor>(loop_, std::vector<Act>{Act::ok, Act::drop});
  ASSERT_TRUE(vendor->start());
  start_agent(local_at(vendor->listener.port()));
  HubCall a, b;
  open(a, "m", "/v1/chat/completions", chat_body("m", false, "first"));
  ASSERT_TRUE(wait([&] { return a.done(); }));
  ASSERT_TRUE(a.finish);
  open(b, "m", "/v1/chat/completions", chat_body("m", false, "second"));
  ASSERT_TRUE(wait([&] { return b.done(); }));
  ASSERT_TRUE(b.finish) << (b.error ? b.error->code + ": " + b.error->message : "closed");
  EXPECT_EQ(b.body, "{}");
  EXPECT_EQ(vendor->dropped, 1);
  ASSERT_EQ(vendor->requests.size(), 3u);
  EXPECT_EQ(vendor->body(2), chat_body("m", false, "second"));
  EXPECT_EQ(vendor->conns.size(), 2u);
  EXPECT_EQ(passthrough_->stats().reused, 1u);
  EXPECT_EQ(passthrough_->stats().retried, 1u);
  EXPECT_EQ(passthrough_->stats().vendor_retries, 0u);  // immediate, not a back-off retry
  hub_.reset();
  agent_.reset();
  passthrough_.reset();
  vendor.reset();
}

// ---- retries after a 5xx or a failed connection ----

TEST_F(PassthroughTest, Vendor5xxThenSuccessIsOneAnswerFromTwoRequests) {
  start_fake();  // unused here
  using Act = ScriptedVendor::Act;
  auto vendor = std::make_unique<ScriptedVendor>(loop_, std::vector<Act>{Act::unavailable});
  ASSERT_TRUE(vendor->start());
  start_agent(local_at(vendor->listener.port()));
  HubCall h;
  const std::string body = chat_body("m", false, "replay me");
  open(h, "m", "/v1/chat/completions", body);
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(h.response->status, 200u);  // the 503 never reached the hub
  EXPECT_EQ(h.finish->upstream_status, 200u);
  EXPECT_EQ(h.body, "{}");
  ASSERT_EQ(vendor->requests.size(), 2u);
  EXPECT_EQ(vendor->body(0), body);
  EXPECT_EQ(vendor->body(1), body);
  EXPECT_EQ(vendor->conns.size(), 2u);  // on a new connection
  EXPECT_EQ(passthrough_->stats().vendor_retries, 1u);
  ASSERT_EQ(reports_.calls.size(), 1u);  // one attempt, one report
  EXPECT_EQ(reports_.calls[0].status, 200);
  hub_.reset();
  agent_.reset();
  passthrough_.reset();
  vendor.reset();
}

TEST_F(PassthroughTest, ConnectRefusedThenSuccess) {
  start_fake();  // unused here
  uint16_t port = 0;
  {
    net::TcpListener l(loop_);
    ASSERT_TRUE(l.listen("127.0.0.1", 0, [](net::StreamPtr) {}).ok());
    port = l.port();
  }
  start_agent(local_at(port));
  HubCall h;
  open(h, "m", "/v1/chat/completions", chat_body("m", false));
  // The first connect was refused and a retry is waiting: the vendor comes up.
  ASSERT_TRUE(wait([&] { return passthrough_->stats().vendor_retries == 1; }));
  auto vendor = std::make_unique<ScriptedVendor>(loop_, std::vector<ScriptedVendor::Act>{});
  ASSERT_TRUE(vendor->start(port));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(h.response->status, 200u);
  EXPECT_EQ(vendor->requests.size(), 1u);
  EXPECT_EQ(passthrough_->stats().vendor_retries, 1u);
  EXPECT_EQ(passthrough_->stats().connections, 1u);
  hub_.reset();
  agent_.reset();
  passthrough_.reset();
  vendor.reset();
}

TEST_F(PassthroughTest, ConnectionResetBeforeTheHeadIsRetried) {
  start_fake();  // unused here
  using Act = ScriptedVendor::Act;
  auto vendor = std::make_unique<ScriptedVendor>(loop_, std::vector<Act>{Act::drop});
  ASSERT_TRUE(vendor->start());
  start_agent(local_at(vendor->listener.port()));
  HubCall h;
  open(h, "m", "/v1/chat/completions", chat_body("m", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(vendor->requests.size(), 2u);
  EXPECT_EQ(passthrough_->stats().vendor_retries, 1u);
  EXPECT_EQ(passthrough_->stats().retried, 0u);
  hub_.reset();
  agent_.reset();
  passthrough_.reset();
  vendor.reset();
}

TEST_F(PassthroughTest, KeepAliveRetryAndBackoffRetryAddUp) {
  start_fake();  // unused here
  using Act = ScriptedVendor::Act;
  // Call A: ok. Call B: its reused connection is dropped (immediate retry),
  // the new one answers 503 (back-off retry), the third answers.
  auto vendor = std::make_unique<ScriptedVendor>(
      loop_, std::vector<Act>{Act::ok, Act::drop, Act::unavailable, Act::ok});
  ASSERT_TRUE(vendor->start());
  start_agent(local_at(vendor->listener.port()));
  HubCall a, b;
  open(a, "m", "/v1/chat/completions", chat_body("m", false, "first"));
  ASSERT_TRUE(wait([&] { return a.done(); }));
  ASSERT_TRUE(a.finish);
  open(b, "m", "/v1/chat/completions", chat_body("m", false, "second"));
  ASSERT_TRUE(wait([&] { return b.done(); }));
  ASSERT_TRUE(b.finish) << (b.error ? b.error->code + ": " + b.error->message : "closed");
  EXPECT_EQ(b.response->status, 200u);
  ASSERT_EQ(vendor->requests.size(), 4u);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(vendor->body(i), chat_body("m", false, "second")) << i;
  EXPECT_EQ(vendor->conns.size(), 3u);
  EXPECT_EQ(passthrough_->stats().retried, 1u);
  EXPECT_EQ(passthrough_->stats().vendor_retries, 1u);
  hub_.reset();
  agent_.reset();
  passthrough_.reset();
  vendor.reset();
}

TEST_F(PassthroughTest, Vendor5xxIsRetriedTwiceThenForwarded) {
  start_fake();
  start_agent(local_provider("fake-500"));
  HubCall h;
  const double t0 = mono_ms();
  open(h, "fake-500", "/v1/chat/completions", chat_body("fake-500", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  const double took = mono_ms() - t0;
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(h.response->status, 500u);
  EXPECT_EQ(h.finish->upstream_status, 500u);
  EXPECT_NE(h.body.find("\"server_error\""), std::string::npos) << h.body;
  auto recs = records(3);
  ASSERT_EQ(recs.size(), 3u);
  for (const auto& r : recs) EXPECT_EQ(num(r->root, "body_bytes"), num(recs[0]->root, "body_bytes"));
  EXPECT_EQ(passthrough_->stats().vendor_retries, 2u);
  EXPECT_GE(took, 300);  // 100..300 ms, then 200..600 ms
  ASSERT_EQ(reports_.calls.size(), 1u);
  EXPECT_EQ(reports_.calls[0].status, 500);
}

TEST_F(PassthroughTest, BodyOverTheReplayLimitIsNotRetried) {
  start_fake();
  start_agent(local_provider("fake-500"));
  std::string words;
  while (words.size() <= kMaxReplayBytes) words += "word ";
  HubCall h;
  open(h, "fake-500", "/v1/chat/completions", chat_body("fake-500", false, words));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(h.response->status, 500u);
  EXPECT_EQ(passthrough_->stats().vendor_retries, 0u);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(num(recs[0]->root, "body_bytes"), static_cast<double>(h.request.size()));
}

TEST_F(PassthroughTest, NoRetryPastTheDeadline) {
  start_fake();
  start_agent(local_provider("fake-500"));
  HubCall h;
  // 100 ms: the first back-off (at least 100 ms) cannot fit any more.
  open(h, "fake-500", "/v1/chat/completions", chat_body("fake-500", false),
       {{"content-type", "application/json"}}, 100);
  ASSERT_TRUE(wait([&] { return h.done(); }));
  EXPECT_EQ(passthrough_->stats().vendor_retries, 0u);
  wait([] { return false; }, 400);
  EXPECT_EQ(records(1).size(), 1u);
}

TEST_F(PassthroughTest, IdleConnectionClosedByTheVendorIsNotUsed) {
  start_fake(false, {"--keepalive-ms", "100"});
  options_.idle_ms = 10000;
  start_agent(local_provider("gpt-4o-mini"));
  HubCall a, b;
  open(a, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return a.done(); }));
  EXPECT_EQ(passthrough_->idle_connections(), 1u);
  // The fake closes its idle connection (node adds its own slack to 100 ms).
  ASSERT_TRUE(wait([&] { return passthrough_->idle_connections() == 0; }));
  open(b, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return b.done(); }));
  ASSERT_TRUE(b.finish) << (b.error ? b.error->code + ": " + b.error->message : "closed");
  EXPECT_EQ(passthrough_->stats().connections, 2u)
      << "reused " << passthrough_->stats().reused << ", retried " << passthrough_->stats().retried;
}

// Not a test: prints the cost of a call with and without the pool, over TLS
// under the vendor's real name. Run with --gtest_also_run_disabled_tests.
TEST_F(PassthroughTest, DISABLED_MeasurePoolLatency) {
  NEEDS_SHIM();
  start_fake(true);
  start_agent(std::string("[provider o]\ntype = openai\napi_key = ") + kVendorKey +
                  "\nmodels = gpt-4o-mini\nmax_parallel = 1\n",
              {}, dir_ + "/ca.pem");
  for (uint64_t idle : {uint64_t{0}, uint64_t{2000}}) {
    // Same Passthrough type, new instance with the other option.
    options_.idle_ms = idle;
    auto p = Passthrough::create(loop_, *config_, options_);
    ASSERT_TRUE(p.ok());
    agent_events_.calls = p->get();
    constexpr int kCalls = 200;
    std::vector<double> ms;
    timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    for (int i = 0; i < kCalls; ++i) {
      HubCall h;
      const double t0 = mono_ms();
      open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
      ASSERT_TRUE(wait([&] { return h.done(); }));
      ASSERT_TRUE(h.finish);
      ms.push_back(mono_ms() - t0);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    std::sort(ms.begin(), ms.end());
    const double cpu_us = (static_cast<double>(c1.tv_sec - c0.tv_sec) * 1e6 +
                           static_cast<double>(c1.tv_nsec - c0.tv_nsec) / 1e3) / kCalls;
    std::printf("idle_ms %llu: %d calls over TLS, p50 %.2f ms, p99 %.2f ms, %.0f us CPU per call "
                "(whole test process: hub+agent sessions and passthrough), %llu connections\n",
                static_cast<unsigned long long>(idle), kCalls, ms[kCalls / 2], ms[kCalls * 99 / 100],
                cpu_us, static_cast<unsigned long long>((*p)->stats().connections));
    agent_events_.calls = passthrough_.get();
  }
}

// ---- TLS with the vendors' real names (fake_dns.so) ----

TEST_F(PassthroughTest, OpenAiOverTlsUnderItsRealName) {
  NEEDS_SHIM();
  start_fake(true);
  start_agent(std::string("[provider o]\ntype = openai\napi_key = ") + kVendorKey + "\nmodels = gpt-4o-mini\n",
              {}, dir_ + "/ca.pem");
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false),
       {{"content-type", "application/json"}, {"authorization", std::string("Bearer ") + kUserToken}});
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(h.response->status, 200u);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  const cJSON* rec = recs[0]->root;
  EXPECT_EQ(str(field(rec, "tls"), "servername"), "api.openai.com");
  EXPECT_EQ(str(field(rec, "headers"), "host"), "api.openai.com");
  EXPECT_EQ(str(field(rec, "headers"), "authorization"), std::string("Bearer ") + kVendorKey);
  EXPECT_EQ(str(rec, "dialect"), "openai");
}

TEST_F(PassthroughTest, AnthropicStreamOverTls) {
  NEEDS_SHIM();
  start_fake(true);
  start_agent(std::string("[provider a]\ntype = anthropic\napi_key = ") + kVendorKey +
                  "\nmodels = claude-3-5-haiku-latest\n",
              {}, dir_ + "/ca.pem");
  HubCall h;
  open(h, "claude-3-5-haiku-latest", "/v1/messages",
       "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":50,\"stream\":true,"
       "\"messages\":[{\"role\":\"user\",\"content\":\"one two three\"}]}",
       {{"content-type", "application/json"}, {"x-api-key", kUserToken}});
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(h.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_NE(h.header("x-upstream-request-id"), "(absent)");
  EXPECT_NE(h.body.find("event: message_start"), std::string::npos);
  EXPECT_NE(h.body.find("event: message_stop"), std::string::npos);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  const cJSON* hd = field(recs[0]->root, "headers");
  EXPECT_EQ(str(hd, "x-api-key"), kVendorKey);
  EXPECT_EQ(str(hd, "anthropic-version"), "2023-06-01");
  EXPECT_EQ(str(field(recs[0]->root, "tls"), "servername"), "api.anthropic.com");
}

TEST_F(PassthroughTest, AzureDeploymentOverTls) {
  NEEDS_SHIM();
  start_fake(true);
  start_agent(std::string("[provider z]\ntype = azure\napi_key = ") + kVendorKey +
                  "\nresource = my-res\ndeployment = dep1\nmodels = gpt-az\n",
              {}, dir_ + "/ca.pem");
  HubCall h;
  open(h, "gpt-az", "/v1/chat/completions", chat_body("gpt-az", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  EXPECT_EQ(h.response->status, 200u);
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(str(recs[0]->root, "path"), "/openai/deployments/dep1/chat/completions?api-version=2024-10-21");
  EXPECT_EQ(str(field(recs[0]->root, "headers"), "api-key"), kVendorKey);
  EXPECT_EQ(str(field(recs[0]->root, "tls"), "servername"), "my-res.openai.azure.com");
}

TEST_F(PassthroughTest, DeepSeekOverTls) {
  NEEDS_SHIM();
  start_fake(true);
  start_agent(std::string("[provider d]\ntype = deepseek\napi_key = ") + kVendorKey +
                  "\nmodels = deepseek-chat\n",
              {}, dir_ + "/ca.pem");
  HubCall h;
  open(h, "deepseek-chat", "/v1/chat/completions", chat_body("deepseek-chat", true));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(str(recs[0]->root, "path"), "/chat/completions");
  EXPECT_EQ(str(recs[0]->root, "dialect"), "deepseek");
}

TEST_F(PassthroughTest, UntrustedVendorCertificateIsUpstreamUnreachable) {
  NEEDS_SHIM();
  start_fake(true);
  ASSERT_TRUE(make_certs("other-"));  // a CA that did not sign the fake's certificate
  start_agent(std::string("[provider o]\ntype = openai\napi_key = ") + kVendorKey + "\nmodels = gpt-4o-mini\n",
              {}, dir_ + "/other-ca.pem");
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "upstream_unreachable");
  EXPECT_EQ(h.error->message.find(kVendorKey), std::string::npos);
  EXPECT_EQ(passthrough_->stats().vendor_retries, 0u);  // a certificate refusal is final
}

// ---- the vendor CA bundle is held only while vendor connections need it ----

TEST_F(PassthroughTest, VendorCaBundleIsFreedAfterTheLingerAndParsedAgain) {
  NEEDS_SHIM();
  start_fake(true);
  options_.ca_linger_ms = 300;
  options_.idle_ms = 1500;  // the kept-alive connection holds the bundle past one linger
  start_agent(std::string("[provider o]\ntype = openai\napi_key = ") + kVendorKey + "\nmodels = gpt-4o-mini\n",
              {}, dir_ + "/ca.pem");
  // Checked at start-up, then freed.
  EXPECT_FALSE(passthrough_->vendor_ca_held());
  EXPECT_EQ(passthrough_->stats().ca_loads, 0u);

  HubCall a;
  open(a, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return a.done(); }));
  ASSERT_TRUE(a.finish) << (a.error ? a.error->code + ": " + a.error->message : "closed");
  EXPECT_EQ(passthrough_->stats().ca_loads, 1u);
  EXPECT_EQ(passthrough_->stats().ca_certificates, 1u);
  EXPECT_TRUE(passthrough_->vendor_ca_held());

  // Two lingers later the kept-alive connection still holds it.
  EXPECT_FALSE(wait([] { return false; }, 600));  // runs the loop for 600 ms
  EXPECT_EQ(passthrough_->idle_connections(), 1u);
  EXPECT_TRUE(passthrough_->vendor_ca_held());
  EXPECT_EQ(passthrough_->stats().ca_releases, 0u);

  // The pool closes it after idle_ms; one linger later the bundle is freed.
  const double closed_by = mono_ms();
  ASSERT_TRUE(wait([&] { return !passthrough_->vendor_ca_held(); }));
  EXPECT_GE(mono_ms() - closed_by, 300.0);
  EXPECT_EQ(passthrough_->idle_connections(), 0u);
  EXPECT_EQ(passthrough_->stats().ca_releases, 1u);

  // The next vendor connection parses it again and verifies as before.
  HubCall b;
  open(b, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", true));
  ASSERT_TRUE(wait([&] { return b.done(); }));
  ASSERT_TRUE(b.finish) << (b.error ? b.error->code + ": " + b.error->message : "closed");
  EXPECT_EQ(passthrough_->stats().ca_loads, 2u);
  EXPECT_EQ(passthrough_->stats().connections, 2u);
  EXPECT_EQ(passthrough_->stats().reused, 0u);
  EXPECT_TRUE(passthrough_->vendor_ca_held());
  ASSERT_TRUE(wait([&] { return !passthrough_->vendor_ca_held(); }));
  EXPECT_EQ(passthrough_->stats().ca_releases, 2u);
  auto recs = records(2);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(str(field(recs[1]->root, "tls"), "servername"), "api.openai.com");
}

TEST_F(PassthroughTest, VendorCaBundleStaysWhileACallRuns) {
  NEEDS_SHIM();
  start_fake(true);
  options_.ca_linger_ms = 200;
  options_.idle_ms = 0;  // no pool: only the running call holds the bundle
  start_agent(std::string("[provider o]\ntype = openai\napi_key = ") + kVendorKey +
                  "\nmodels = fake-chunks-10-slow-100\n",
              {}, dir_ + "/ca.pem");
  HubCall h;
  open(h, "fake-chunks-10-slow-100", "/v1/chat/completions",
       chat_body("fake-chunks-10-slow-100", true));
  ASSERT_TRUE(wait([&] { return h.response.has_value() || h.done(); }));
  // Several lingers pass during the ~1 s stream: the call's connection keeps it.
  EXPECT_FALSE(wait([] { return false; }, 700));  // runs the loop for 700 ms
  EXPECT_FALSE(h.done());
  EXPECT_TRUE(passthrough_->vendor_ca_held());
  EXPECT_EQ(passthrough_->stats().ca_releases, 0u);
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  ASSERT_TRUE(wait([&] { return !passthrough_->vendor_ca_held(); }));
  EXPECT_EQ(passthrough_->stats().ca_loads, 1u);
  EXPECT_EQ(passthrough_->stats().ca_releases, 1u);
}

TEST_F(PassthroughTest, ReloadedVendorCaBundleStillRefusesAnUnknownCa) {
  NEEDS_SHIM();
  start_fake(true);
  ASSERT_TRUE(make_certs("other-"));  // a CA that did not sign the fake's certificate
  options_.ca_linger_ms = 100;
  start_agent(std::string("[provider o]\ntype = openai\napi_key = ") + kVendorKey + "\nmodels = gpt-4o-mini\n",
              {}, dir_ + "/other-ca.pem");
  for (uint64_t round = 1; round <= 2; ++round) {
    HubCall h;
    open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
    ASSERT_TRUE(wait([&] { return h.done(); }));
    ASSERT_TRUE(h.error);
    EXPECT_EQ(h.error->code, "upstream_unreachable");
    EXPECT_EQ(passthrough_->stats().ca_loads, round);
    ASSERT_TRUE(wait([&] { return !passthrough_->vendor_ca_held(); }));
  }
  EXPECT_EQ(passthrough_->stats().ca_releases, 2u);
  EXPECT_EQ(passthrough_->stats().finished, 0u);
}

TEST_F(PassthroughTest, BadVendorCaFileIsReportedAtStartup) {
  const std::string bad = dir_ + "/not-a-bundle.pem";
  std::ofstream(bad) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
  auto parsed = parse(std::string("hub = wss://hub.test:8443/tunnel\nhub_pin = ") + kPin +
                          "\nca_file = " + bad + "\n[provider o]\ntype = openai\napi_key = " +
                          kVendorKey + "\nmodels = gpt-4o-mini\n",
                      "agent.conf");
  ASSERT_TRUE(parsed.config);
  auto p = Passthrough::create(loop_, *parsed.config, options_);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Errc::parse);
  EXPECT_EQ(p.status().message().rfind("vendor CA bundle " + bad + ": ", 0), 0u) << p.status().message();

  parsed.config->ca_file = dir_ + "/missing.pem";
  p = Passthrough::create(loop_, *parsed.config, options_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("vendor CA bundle " + dir_ + "/missing.pem"), std::string::npos)
      << p.status().message();
}

TEST_F(PassthroughTest, VendorCaFileGoneAfterStartupFailsTheCallNamingIt) {
  NEEDS_SHIM();
  start_fake(true);
  start_agent(std::string("[provider o]\ntype = openai\napi_key = ") + kVendorKey + "\nmodels = gpt-4o-mini\n",
              {}, dir_ + "/ca.pem");
  ASSERT_EQ(std::remove((dir_ + "/ca.pem").c_str()), 0);
  HubCall h;
  open(h, "gpt-4o-mini", "/v1/chat/completions", chat_body("gpt-4o-mini", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "upstream_unreachable");
  EXPECT_NE(h.error->message.find("vendor CA bundle " + dir_ + "/ca.pem"), std::string::npos)
      << h.error->message;
  EXPECT_EQ(passthrough_->stats().connections, 0u);
  EXPECT_FALSE(passthrough_->vendor_ca_held());
}

TEST_F(PassthroughTest, LocalNameResolvingToLoopbackIsServed) {
  NEEDS_SHIM();
  start_fake(false);
  const std::string p = "127.0.0.1:" + std::to_string(fake_->port());
  setenv("TG_FAKE_DNS", ("ollama.test=" + p).c_str(), 1);
  start_agent("[provider lan]\ntype = local\nurl = http://ollama.test:" + std::to_string(fake_->port()) +
              "\napi_key = " + kVendorKey + "\nmodels = llama\n");
  HubCall h;
  open(h, "llama", "/v1/chat/completions", chat_body("llama", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.finish) << (h.error ? h.error->code + ": " + h.error->message : "closed");
  auto recs = records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(str(field(recs[0]->root, "headers"), "host"), "ollama.test:" + std::to_string(fake_->port()));
}

TEST_F(PassthroughTest, LocalNameResolvingToAPublicAddressIsRefused) {
  NEEDS_SHIM();
  start_fake(false);
  setenv("TG_FAKE_DNS", "sneaky.test=8.8.8.8:80", 1);
  start_agent("[provider lan]\ntype = local\nurl = http://sneaky.test:80\nmodels = llama\n");
  HubCall h;
  open(h, "llama", "/v1/chat/completions", chat_body("llama", false));
  ASSERT_TRUE(wait([&] { return h.done(); }));
  ASSERT_TRUE(h.error);
  EXPECT_EQ(h.error->code, "upstream_unreachable");
  EXPECT_EQ(h.error->message,
            "local provider lan: sneaky.test resolves to 8.8.8.8, not a loopback or private address");
  EXPECT_EQ(passthrough_->stats().vendor_retries, 0u);
}

}  // namespace
}  // namespace tg::agent
