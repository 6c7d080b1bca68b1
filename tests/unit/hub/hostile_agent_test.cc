// Hostile agents against the real hub in one process: TunnelServer, Billing
// over a temporary SQLite ledger and ApiServer on 127.0.0.1 with real TLS,
// honest scripted agents, and hostile ones (raw WebSocket connections from
// hub_test_util.h) that write what a Session would refuse: messages for
// streams they do not own, claims for requests they never served, data
// beyond their window, oversized messages, floods, and sockets they stop
// reading. Memory is the process's live heap (allocator statistics; VmRSS
// where the C library has none), sampled on every loop turn: hub and agents
// share the process, so every bound below counts the test's own buffers too.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "hub/agent_store.h"
#include "hub/api_server.h"
#include "hub/billing.h"
#include "hub/config.h"
#include "hub/ledger_sqlite.h"
#include "hub/tunnel_server.h"
#include "hub/user_store.h"
#include "shared/crypto/hash.h"
#include "shared/http/client.h"
#include "shared/net/tcp.h"
#include "shared/tls/certgen.h"
#include "shared/tunnel/frame.h"
#include "tests/unit/hub/hub_test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define TG_HOSTILE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_HOSTILE_ASAN 1
#endif
#endif
#if defined(TG_HOSTILE_ASAN)
// The sanitizer runtime's allocator statistics (sanitizer/allocator_interface.h,
// which GCC does not install).
extern "C" size_t __sanitizer_get_current_allocated_bytes(void);
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tg::hub {
namespace {

using testing::Agent;
using testing::kWaitMs;
using testing::TempDir;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

// An OpenAI answer with usage: 12 prompt tokens (4 cached), 30 completion.
constexpr std::string_view kAnswer =
    R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",)"
    R"("content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,)"
    R"("prompt_tokens_details":{"cached_tokens":4}}})";
// 8 x 3 + 4 x 1 + 30 x 7 micro-units at the test prices.
constexpr int64_t kAnswerCost = 238;

// ---- memory ----

// VmRSS of this process in bytes (0 if unreadable).
size_t resident_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream in(line.substr(6));
    size_t kib = 0;
    in >> kib;
    return kib * kKiB;
  }
  return 0;
}

// Live heap bytes: the sanitizer's or glibc's allocator statistics; VmRSS
// elsewhere (musl has no counter), which only over-counts.
size_t memory_in_use() {
#if defined(TG_HOSTILE_ASAN)
  return __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#else
  return resident_bytes();
#endif
}

// Growth of memory_in_use() over a baseline, with the peak of all samples.
// VmRSS growth is kept for the report line (info()); bounds use the heap.
class MemoryWatch {
 public:
  MemoryWatch() : base_(memory_in_use()), peak_(base_), rss_base_(resident_bytes()) {}
  void sample() { peak_ = std::max(peak_, memory_in_use()); }
  size_t peak_growth() const { return peak_ - base_; }
  size_t growth_now() const {
    const size_t now = memory_in_use();
    return now > base_ ? now - base_ : 0;
  }
  std::string info() const {
    const size_t rss = resident_bytes();
    return "peak heap growth " + std::to_string(peak_growth() / kKiB) + " KiB, VmRSS growth " +
           std::to_string((rss > rss_base_ ? rss - rss_base_ : 0) / kKiB) + " KiB";
  }

 private:
  size_t base_;
  size_t peak_;
  size_t rss_base_;
};

// The kernel's largest TCP send plus receive buffer: bytes a loopback
// connection can hold outside our process. 16 MiB if /proc is unreadable.
size_t kernel_tcp_buffer_max() {
  auto third = [](const char* path) -> size_t {
    std::ifstream f(path);
    size_t a = 0, b = 0, c = 0;
    if (!(f >> a >> b >> c)) return 0;
    return c;
  };
  const size_t sum = third("/proc/sys/net/ipv4/tcp_wmem") + third("/proc/sys/net/ipv4/tcp_rmem");
  return sum > 0 ? sum : 16 * kMiB;
}

// Counts log lines without keeping them (a flood must not grow the test), and
// how many lines contained each needle (request bodies, tokens: never logged).
class LogCounter {
 public:
  LogCounter() {
    log::set_level(log::Level::debug);
    log::set_sink([](log::Level, const char* line, void* user) {
      static_cast<LogCounter*>(user)->add(line);
    }, this);
  }
  ~LogCounter() {
    log::set_sink(nullptr, nullptr);
    log::set_level(log::Level::info);
  }
  LogCounter(const LogCounter&) = delete;
  LogCounter& operator=(const LogCounter&) = delete;

  void watch(const std::string& needle) {
    needles_.push_back(needle);
    hits_.push_back(0);
  }
  size_t hits(const std::string& needle) const {
    for (size_t i = 0; i < needles_.size(); ++i) {
      if (needles_[i] == needle) return hits_[i];
    }
    return 0;
  }
  size_t lines = 0;
  size_t bytes = 0;

 private:
  void add(const char* line) {
    const std::string_view l(line);
    ++lines;
    bytes += l.size();
    for (size_t i = 0; i < needles_.size(); ++i) {
      if (l.find(needles_[i]) != std::string_view::npos) ++hits_[i];
    }
  }
  std::vector<std::string> needles_;
  std::vector<size_t> hits_;
};

// ---- the honest side ----

// The agent side of one stream on an honest (Session-driven) agent: keeps the
// call and the request body, answers like a vendor.
struct HonestCall final : tunnel::ChannelHandler {
  tunnel::Call call;
  tunnel::Channel* ch = nullptr;
  std::string body;
  bool body_done = false;
  bool closed = false;
  Status closed_why;

  void on_channel_message(tunnel::Channel&, const tunnel::Message&) noexcept override {}
  void on_channel_data(tunnel::Channel& c, std::string_view data, bool fin) noexcept override {
    body.append(data);
    if (!data.empty()) c.consumed(data.size());
    if (fin) body_done = true;
  }
  void on_channel_closed(tunnel::Channel&, const Status& why) noexcept override {
    closed = true;
    closed_why = why;
    ch = nullptr;
  }
  void head() {
    tunnel::Response r;
    r.status = 200;
    r.headers = {{"content-type", "application/json"}};
    Status s = ch->send(r);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  void data(std::string_view bytes, bool fin) {
    Status s = ch->send_data(bytes, fin);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  void finish() {
    tunnel::Finish f;
    f.upstream_status = 200;
    Status s = ch->send(f);
    EXPECT_TRUE(s.ok()) << s.to_string();
    ch->close(tunnel::abort_reason::shutdown);  // finished: no abort goes out
    ch = nullptr;
  }
};

// One user request over plain HTTP. The body is shared, not copied per user.
struct User final : http::ClientHandler {
  explicit User(Loop& loop) : loop_(loop), tcp_(loop) {}

  bool pause_after_head = false;
  std::optional<http::ResponseHead> head;
  std::string body;
  bool ended = false;
  bool failed = false;
  Status why;
  std::unique_ptr<http::ClientConnection> conn;

  bool done() const { return ended || failed; }

  void post(uint16_t port, const std::string& token, std::shared_ptr<const std::string> payload) {
    auto on_connect = [this, token, payload](Result<net::StreamPtr> r) {
      if (!r.ok()) {
        failed = true;
        why = r.status();
        return;
      }
      conn = std::make_unique<http::ClientConnection>(loop_, std::move(r.value()));
      http::RequestHead h;
      h.method = "POST";
      h.target = "/v1/chat/completions";
      h.headers.add("Host", "127.0.0.1");
      h.headers.add("Authorization", "Bearer " + token);
      h.headers.add("Content-Type", "application/json");
      h.headers.add("Content-Length", std::to_string(payload->size()));
      Status st = conn->request(h, this);
      ASSERT_TRUE(st.ok()) << st.to_string();
      st = conn->write(*payload);
      ASSERT_TRUE(st.ok()) << st.to_string();
      (void)conn->finish();
    };
    Status s = tcp_.connect("127.0.0.1", port, kWaitMs, on_connect);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  void on_response_head(http::ClientConnection& c, const http::ResponseHead& h) noexcept override {
    head = h;
    if (pause_after_head) c.pause_response();
  }
  void on_response_body(http::ClientConnection&, std::string_view piece) noexcept override {
    if (body.size() < 64 * kKiB) body.append(piece.substr(0, 64 * kKiB - body.size()));
  }
  void on_response_end(http::ClientConnection&) noexcept override { ended = true; }
  void on_error(http::ClientConnection&, const Status& s) noexcept override {
    failed = true;
    why = s;
  }

 private:
  Loop& loop_;
  net::TcpConnector tcp_;
};

// A chat request body: `model`, with `marker` in the prompt, padded with
// spaces (valid JSON whitespace) to `size` bytes.
std::shared_ptr<const std::string> chat_body(const std::string& model, const std::string& marker,
                                             size_t size = 0) {
  std::string b = R"({"model":")" + model + R"(","messages":[{"role":"user","content":")" + marker +
                  R"("}]})";
  if (b.size() < size) b.append(size - b.size(), ' ');
  return std::make_shared<const std::string>(std::move(b));
}

bool contains(const std::vector<std::pair<ws::Opcode, std::string>>& frames, const std::string& s) {
  for (const auto& f : frames) {
    if (f.second.find(s) != std::string::npos) return true;
  }
  return false;
}

billing::PriceTable test_prices() {
  auto t = billing::PriceTable::make(1, {{"*", billing::ModelPrice{3000000, 1000000, 7000000}}});
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(*t);
}

class HostileAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    tls_ctx = testing::hub_tls_context(dir);
    ASSERT_TRUE(tls_ctx);
    ASSERT_NO_FATAL_FAILURE(testing::open_stores_with_alice(dir, &agents_db, &users, &token));
    auto ledger_opened = SqliteLedgerStore::open(dir.file("hub.db"));
    ASSERT_TRUE(ledger_opened.ok()) << ledger_opened.status().to_string();
    ledger = std::move(*ledger_opened);
    ASSERT_TRUE(ledger->credit_user("alice", 1000 * billing::kMicrosPerUnit, 1).ok());
    auto defaults = parse("", "test.conf");
    ASSERT_TRUE(defaults.config);
    tunnel_settings = defaults.config->tunnel;
    tunnel_settings.events_poll_ms = 20;
    api_settings = defaults.config->api;
    billing_settings = defaults.config->billing;
  }

  void start() {
    tunnels = std::make_unique<TunnelServer>(loop, tunnel_settings, tls_ctx, &*agents_db);
    billing = std::make_unique<Billing>(
        loop, billing_settings, ledger.get(), test_prices(), &ledger_key,
        [this](const std::string& agent, const tunnel::Message& m) {
          return tunnels && tunnels->send_to(agent, m);
        },
        [this](const std::string& agent) -> Result<uint32_t> {
          auto rec = agents_db->lookup(agent);
          if (!rec.ok()) return rec.status();
          if (!*rec) return error(Errc::not_found, "agent not in the registry");
          return (*rec)->tier_ppm;
        });
    tunnels->set_billing(billing.get());
    ASSERT_TRUE(billing->start().ok());
    ASSERT_TRUE(tunnels->start(net::HostPort{"127.0.0.1", 0}).ok());
    api = std::make_unique<ApiServer>(loop, api_settings, tunnels.get(), &*users, nullptr,
                                      billing.get());
    Status s = api->start(net::HostPort{"127.0.0.1", 0});
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  Agent& new_agent(std::vector<std::string> models, bool raw) {
    agents.push_back(std::make_unique<Agent>(loop, tls_ctx->pin(), tunnels->port()));
    Agent& a = *agents.back();
    a.models = std::move(models);
    a.max_parallel = 64;
    a.raw = raw;
    a.record_all = raw;
    EXPECT_TRUE(agents_db->approve(a.pubkey(), "owner-" + std::to_string(agents.size()),
                                   800000).ok());
    return a;
  }
  void connect(Agent& a) {
    a.connect();
    ASSERT_TRUE(run([&] { return a.registered_count > 0 || a.ended(); }));
    ASSERT_GT(a.registered_count, 0) << "agent not registered";
  }
  // An honest agent: a Session that records every call in `calls`.
  Agent& honest(std::vector<std::string> models) {
    Agent& a = new_agent(std::move(models), false);
    a.on_call_fn = [this](tunnel::Session&, tunnel::Channel& ch, const tunnel::Call& c) {
      calls.push_back(std::make_unique<HonestCall>());
      calls.back()->call = c;
      calls.back()->ch = &ch;
      ch.set_handler(calls.back().get());
    };
    connect(a);
    return a;
  }
  // A hostile agent: a raw WebSocket that records every byte it is sent.
  Agent& hostile(std::vector<std::string> models) {
    Agent& a = new_agent(std::move(models), true);
    connect(a);
    return a;
  }

  User& post(std::shared_ptr<const std::string> body, bool pause_after_head = false) {
    users_.push_back(std::make_unique<User>(loop));
    users_.back()->pause_after_head = pause_after_head;
    users_.back()->post(api->port(), token, std::move(body));
    return *users_.back();
  }

  bool run(const std::function<bool()>& done, uint64_t ms = kWaitMs) {
    return loop.run_until(done, ms);
  }
  // Runs the loop for `ms`, sampling `watch` if given.
  void run_for(uint64_t ms, MemoryWatch* watch = nullptr) {
    run([&] {
      if (watch) watch->sample();
      return false;
    }, ms);
  }

  HonestCall& wait_call(size_t n) {
    EXPECT_TRUE(run([&] { return calls.size() >= n && calls[n - 1]->body_done; }));
    return *calls.at(n - 1);
  }

  // Answers a raw agent's call number `n` (1-based) the honest way: response
  // head, the whole kAnswer with FIN, finish.
  void raw_answer(Agent& a, size_t n) {
    ASSERT_TRUE(run([&] { return a.raw_calls.size() >= n || a.ended(); }));
    ASSERT_GE(a.raw_calls.size(), n);
    const uint32_t id = a.raw_calls[n - 1].id;
    tunnel::Response r;
    r.id = id;
    r.status = 200;
    r.headers = {{"content-type", "application/json"}};
    ASSERT_TRUE(a.send(r).ok());
    auto frame = tunnel::encode_frame(id, true, kAnswer);
    ASSERT_TRUE(frame.ok());
    ASSERT_TRUE(a.send_binary(*frame).ok());
    tunnel::Finish f;
    f.id = id;
    f.upstream_status = 200;
    ASSERT_TRUE(a.send(f).ok());
  }

  static tunnel::Claim claim_for(const std::string& request_id, const std::string& model) {
    tunnel::Claim c;
    c.request_id = request_id;
    c.model = model;
    c.input = 8;
    c.cached = 4;
    c.output = 30;
    return c;
  }

  int64_t alice_balance() {
    auto b = ledger->user_balance("alice");
    EXPECT_TRUE(b.ok() && *b);
    return b.ok() && *b ? (*b)->balance : -1;
  }
  uint64_t chain_seq(const std::string& agent) {
    auto c = ledger->chain(agent);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? c->seq : 0;
  }

  void TearDown() override {
    users_.clear();
    api.reset();
    if (billing) billing->stop();
    agents.clear();
    tunnels.reset();
    billing.reset();
    calls.clear();
    EXPECT_TRUE(loop.close().ok());
  }

  LogCounter logs;
  TempDir dir;
  Loop loop;
  std::shared_ptr<tls::ServerContext> tls_ctx;
  std::optional<AgentStore> agents_db;
  std::optional<UserStore> users;
  std::unique_ptr<SqliteLedgerStore> ledger;
  crypto::KeyPair ledger_key = crypto::KeyPair::generate();
  std::string token;
  TunnelSettings tunnel_settings{};
  ApiSettings api_settings{};
  BillingSettings billing_settings{};
  std::unique_ptr<TunnelServer> tunnels;
  std::unique_ptr<Billing> billing;
  std::unique_ptr<ApiServer> api;
  std::vector<std::unique_ptr<Agent>> agents;
  std::vector<std::unique_ptr<HonestCall>> calls;
  std::vector<std::unique_ptr<User>> users_;
};

// Every stream-bound message and a data frame for stream `id`, as a hostile
// agent would write them.
struct Forged {
  std::string name;
  bool binary;
  std::string bytes;
};
std::vector<Forged> forged_for(uint32_t id) {
  std::vector<Forged> out;
  auto frame = tunnel::encode_frame(id, false, "injected by another agent");
  EXPECT_TRUE(frame.ok());
  out.push_back({"data", true, *frame});
  tunnel::Response r;
  r.id = id;
  r.status = 200;
  r.headers = {{"content-type", "application/json"}};
  out.push_back({"response", false, tunnel::encode(r)});
  tunnel::Finish f;
  f.id = id;
  f.upstream_status = 200;
  out.push_back({"finish", false, tunnel::encode(f)});
  tunnel::Error e;
  e.id = id;
  e.code = std::string(tunnel::stream_error::internal);
  e.message = "forged";
  out.push_back({"error", false, tunnel::encode(e)});
  tunnel::Credit c;
  c.id = id;
  c.bytes = 65536;
  out.push_back({"credit", false, tunnel::encode(c)});
  tunnel::Abort a;
  a.id = id;
  a.reason = std::string(tunnel::abort_reason::client_gone);
  out.push_back({"abort", false, tunnel::encode(a)});
  return out;
}

// ---- streams of other agents ----

// Stream ids are per tunnel: agent B names A's stream by its number, which on
// B's own tunnel was never opened (PROTOCOL.md section 6: close 4000). A's
// stream and its user never notice, and none of A's bytes reach B.
TEST_F(HostileAgentTest, ForeignStreamMessagesCloseTheSenderWith4000) {
  start();
  const std::string marker = "A-BODY-" + crypto::random_id();
  logs.watch(marker);
  logs.watch(token);
  Agent& a = honest({"ma"});
  User& u = post(chat_body("ma", marker));
  HonestCall& c = wait_call(1);
  ASSERT_NE(c.body.find(marker), std::string::npos);
  const uint32_t a_id = c.call.id;

  std::vector<Forged> forged = forged_for(a_id);
  for (const Forged& f : forged_for(7777)) {
    forged.push_back({f.name + " (never issued id)", f.binary, f.bytes});
  }
  for (const Forged& f : forged) {
    SCOPED_TRACE(f.name);
    Agent& b = hostile({"mb"});
    ASSERT_TRUE((f.binary ? b.send_binary(f.bytes) : b.send_text(f.bytes)).ok());
    ASSERT_TRUE(run([&] { return b.closed > 0; }));
    EXPECT_EQ(b.code, tunnel::close_code::bad_message) << b.why;
    EXPECT_FALSE(contains(b.frames, marker));
    EXPECT_TRUE(b.raw_calls.empty());
    EXPECT_FALSE(c.closed) << c.closed_why.to_string();
    EXPECT_EQ(a.closed, 0);
  }

  // A's stream is intact: it answers, the user gets exactly A's bytes.
  c.head();
  c.data(kAnswer, true);
  c.finish();
  ASSERT_TRUE(run([&] { return u.done(); }));
  ASSERT_TRUE(u.ended) << u.why.to_string();
  EXPECT_EQ(u.head->status, 200);
  EXPECT_EQ(u.body, kAnswer);
  EXPECT_EQ(logs.hits(marker), 0u) << "a request body reached the log";
  EXPECT_EQ(logs.hits(token), 0u) << "the user's token reached the log";
}

// When B used the same stream number itself and that stream is over, the
// messages are late ones for B's own closed stream: ignored (section 6), B
// stays up, and A's stream of the same number is untouched.
TEST_F(HostileAgentTest, ForeignMessagesOnAnIdTheSenderClosedAreIgnored) {
  start();
  const std::string marker = "A-BODY-" + crypto::random_id();
  logs.watch(marker);
  Agent& b = hostile({"mb"});
  User& ub = post(chat_body("mb", "for b"));
  raw_answer(b, 1);
  ASSERT_TRUE(run([&] { return ub.done(); }));
  ASSERT_TRUE(ub.ended) << ub.why.to_string();
  EXPECT_EQ(ub.body, kAnswer);
  const uint32_t b_id = b.raw_calls[0].id;

  Agent& a = honest({"ma"});
  User& u = post(chat_body("ma", marker));
  HonestCall& c = wait_call(1);
  ASSERT_EQ(c.call.id, b_id) << "both tunnels number their first stream alike";

  for (const Forged& f : forged_for(b_id)) {
    ASSERT_TRUE((f.binary ? b.send_binary(f.bytes) : b.send_text(f.bytes)).ok()) << f.name;
  }
  // A register answered means every earlier message was processed.
  const int before = b.registered_count;
  tunnel::Register reg;
  reg.models = {"mb"};
  reg.max_parallel = 4;
  ASSERT_TRUE(b.send(reg).ok());
  ASSERT_TRUE(run([&] { return b.registered_count > before || b.closed > 0; }));
  EXPECT_EQ(b.closed, 0) << b.code << " " << b.why;
  EXPECT_FALSE(c.closed);

  c.head();
  c.data(kAnswer, true);
  c.finish();
  ASSERT_TRUE(run([&] { return u.done(); }));
  ASSERT_TRUE(u.ended) << u.why.to_string();
  EXPECT_EQ(u.body, kAnswer);
  EXPECT_EQ(a.closed, 0);
  EXPECT_FALSE(contains(b.frames, marker));
  EXPECT_EQ(logs.hits(marker), 0u);

  // One above the highest id B was given: never opened, 4000.
  auto frame = tunnel::encode_frame(b_id + 1, false, "x");
  ASSERT_TRUE(frame.ok());
  ASSERT_TRUE(b.send_binary(*frame).ok());
  ASSERT_TRUE(run([&] { return b.closed > 0; }));
  EXPECT_EQ(b.code, tunnel::close_code::bad_message);
  EXPECT_EQ(a.closed, 0);
}

// ---- claims ----

TEST_F(HostileAgentTest, ClaimsForOtherAgentsOrUnknownRequestsAreRejectedAndChangeNothing) {
  start();
  Agent& a = honest({"ma"});
  Agent& b = honest({"mb"});
  const int64_t balance = alice_balance();
  User& u = post(chat_body("ma", "hello"));
  HonestCall& c = wait_call(1);
  const std::string rid = c.call.request_id;
  ASSERT_FALSE(rid.empty());

  // While A's stream is open (the hub meters it in memory).
  c.head();
  ASSERT_TRUE(b.send(claim_for(rid, "ma")).ok());
  const std::string never = "never-issued-" + crypto::random_id();
  ASSERT_TRUE(b.send(claim_for(never, "mb")).ok());
  ASSERT_TRUE(run([&] { return b.claim_rejected.size() == 2 || b.ended(); }));
  ASSERT_EQ(b.claim_rejected.size(), 2u);
  EXPECT_EQ(b.claim_rejected[0].request_id, rid);
  EXPECT_EQ(b.claim_rejected[0].code, "not_yours");
  EXPECT_EQ(b.claim_rejected[1].request_id, never);
  EXPECT_EQ(b.claim_rejected[1].code, "unknown_request");
  EXPECT_EQ(b.closed, 0);

  c.data(kAnswer, true);
  c.finish();
  ASSERT_TRUE(run([&] { return u.done(); }));
  ASSERT_TRUE(u.ended);
  // B replays A's call ticket for an id of its own, or for A's request:
  // the ticket names A's request and key, so neither verifies.
  ASSERT_FALSE(c.call.ticket.empty());
  tunnel::Claim stolen = claim_for(never, "ma");
  stolen.ticket = c.call.ticket;
  ASSERT_TRUE(b.send(stolen).ok());
  ASSERT_TRUE(run([&] { return b.claim_rejected.size() == 3 || b.ended(); }));
  ASSERT_EQ(b.claim_rejected.size(), 3u);
  EXPECT_EQ(b.claim_rejected[2].code, "bad_ticket");
  b.claim_rejected.pop_back();

  // Nothing moved: no entry, no row (A's attempt is metered in memory), no money.
  auto pending = ledger->pending(rid);
  ASSERT_TRUE(pending.ok());
  EXPECT_FALSE(pending->has_value());
  EXPECT_EQ(billing->open_tickets(), 1u);
  auto settled = ledger->settled(rid);
  ASSERT_TRUE(settled.ok());
  EXPECT_FALSE(settled->has_value());
  auto unknown = ledger->pending(never);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
  EXPECT_EQ(chain_seq(b.pubkey()), 0u);
  EXPECT_EQ(chain_seq(a.pubkey()), 0u);
  EXPECT_EQ(billing->settled_count(), 0u);
  EXPECT_EQ(alice_balance(), balance);
  EXPECT_TRUE(b.settles.empty());

  // A's own claim settles it, once.
  ASSERT_TRUE(a.send(claim_for(rid, "ma")).ok());
  ASSERT_TRUE(run([&] { return !a.settles.empty() || a.ended(); }));
  ASSERT_EQ(a.settles.size(), 1u);
  EXPECT_EQ(a.settles[0].request_id, rid);
  EXPECT_EQ(a.settles[0].seq, 1u);
  EXPECT_EQ(a.settles[0].cost, kAnswerCost);

  // After settlement: B is still refused, A's replay gets the same entry.
  ASSERT_TRUE(b.send(claim_for(rid, "ma")).ok());
  ASSERT_TRUE(a.send(claim_for(rid, "ma")).ok());
  ASSERT_TRUE(run([&] {
    return (b.claim_rejected.size() == 3 && a.settles.size() == 2) || b.ended();
  }));
  ASSERT_EQ(b.claim_rejected.size(), 3u);
  EXPECT_EQ(b.claim_rejected[2].code, "not_yours");
  ASSERT_EQ(a.settles.size(), 2u);
  EXPECT_EQ(a.settles[1], a.settles[0]);
  EXPECT_TRUE(b.settles.empty());
  EXPECT_EQ(billing->settled_count(), 1u);
  EXPECT_EQ(chain_seq(a.pubkey()), 1u);
  EXPECT_EQ(chain_seq(b.pubkey()), 0u);
  EXPECT_EQ(alice_balance(), balance - kAnswerCost);
  settled = ledger->settled(rid);
  ASSERT_TRUE(settled.ok() && *settled);
  EXPECT_EQ((*settled)->agent, a.pubkey());
}

// Thousands of claims for ids that were never issued: each gets exactly one
// claim_rejected, nothing is stored, and memory does not follow the count.
TEST_F(HostileAgentTest, ClaimFloodIsRejectedOneForOneWithoutGrowingMemory) {
  constexpr size_t kClaims = 4000;
  constexpr size_t kInFlight = 64;
  start();
  Agent& b = honest({"mb"});
  run_for(100);
  MemoryWatch mem;
  size_t sent = 0;
  size_t rejected = 0;
  size_t wrong = 0;
  ASSERT_TRUE(run([&] {
    mem.sample();
    for (const auto& r : b.claim_rejected) wrong += r.code == "unknown_request" ? 0u : 1u;
    rejected += b.claim_rejected.size();
    b.claim_rejected.clear();  // the test keeps no per-claim state
    while (sent < kClaims && sent - rejected < kInFlight) {
      const std::string id = "flood-" + std::to_string(sent) + "-" + crypto::random_id();
      EXPECT_TRUE(b.send(claim_for(id, "mb")).ok());
      ++sent;
    }
    return rejected == kClaims || b.ended();
  }, 60000)) << rejected << " of " << kClaims << " rejected";
  EXPECT_EQ(rejected, kClaims);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(b.closed, 0);
  EXPECT_EQ(billing->open_tickets(), 0u);
  EXPECT_EQ(billing->queued(), 0u);
  auto chains = ledger->chains();
  ASSERT_TRUE(chains.ok());
  EXPECT_TRUE(chains->empty());
  // Bound: nothing per claim is kept (no ticket, row or map entry); what
  // moves is one message at a time, SQLite's page cache (2 MiB by default)
  // and allocator slack. Keeping ~200 bytes per claim would pass 0.8 MiB
  // only with far more claims, so the bound is checked at the end too.
  EXPECT_LT(mem.peak_growth(), 8 * kMiB);
  EXPECT_LT(mem.growth_now(), 4 * kMiB);
  std::printf("[   info   ] %zu claims: %zu log lines, %zu log bytes; %s\n", kClaims, logs.lines,
              logs.bytes, mem.info().c_str());
}

// ---- memory ----

// A flood of data frames that ignores the credit window: the hub holds at
// most a window (and its user's socket buffer), then closes the tunnel 4000.
TEST_F(HostileAgentTest, DataBeyondTheWindowCloses4000WithBoundedMemory) {
  constexpr size_t kFloodCap = 128 * kMiB;
  start();
  Agent& b = hostile({"mb"});
  User& u = post(chat_body("mb", "flood me"), /*pause_after_head=*/true);
  ASSERT_TRUE(run([&] { return !b.raw_calls.empty() || b.ended(); }));
  ASSERT_FALSE(b.raw_calls.empty());
  const uint32_t id = b.raw_calls[0].id;
  tunnel::Response r;
  r.id = id;
  r.status = 200;
  r.headers = {{"content-type", "text/event-stream"}};
  ASSERT_TRUE(b.send(r).ok());
  ASSERT_TRUE(run([&] { return u.head.has_value() || u.done(); }));

  MemoryWatch mem;
  auto frame = tunnel::encode_frame(id, false, std::string(tunnel::kMaxFramePayload, 'x'));
  ASSERT_TRUE(frame.ok());
  size_t flooded = 0;
  // Sends while its own queue has room: the flooder's memory stays small.
  auto pump = [&] {
    while (b.closed == 0 && flooded < kFloodCap && !b.write_blocked()) {
      if (!b.send_binary(*frame).ok()) return;
      flooded += tunnel::kMaxFramePayload;
    }
  };
  b.on_drain_fn = pump;
  pump();
  ASSERT_TRUE(run([&] {
    mem.sample();
    return b.closed > 0;
  }, 60000)) << "flooded " << flooded << " bytes without being closed";
  b.on_drain_fn = nullptr;
  EXPECT_EQ(b.code, tunnel::close_code::bad_message) << b.why;
  EXPECT_LT(flooded, kFloodCap);
  ASSERT_TRUE(run([&] { return !tunnels->tunnels().online(b.pubkey()); }));
  // Bound: the hub keeps one WebSocket message (<= 64 KiB + 5) and the
  // user's socket queue (its 256 KiB high-water mark plus one piece); the
  // flooder keeps its own 256 KiB high-water mark plus one frame. 16 MiB
  // leaves room for TLS records and allocator slack; buffering the flood
  // (it reaches the kernel's socket buffers and more) would pass it.
  EXPECT_LT(mem.peak_growth(), 16 * kMiB) << "flooded " << flooded;
  std::printf("[   info   ] closed after %zu flooded bytes; %s\n", flooded, mem.info().c_str());
}

// Control messages over the phase's limit close with 1009 before the hub
// buffers them: 4 KiB + 1 before auth, 64 KiB + 1 and 1 MiB after.
TEST_F(HostileAgentTest, OversizedControlMessagesClose1009) {
  start();
  MemoryWatch mem;
  struct Case {
    const char* name;
    bool authenticate;
    size_t size;
  };
  for (const Case& k : {Case{"pre-auth 4 KiB + 1", false, tunnel::kMaxPreAuthMessage + 1},
                        Case{"session 64 KiB + 1", true, tunnel::kMaxSessionMessage + 1},
                        Case{"session 1 MiB", true, kMiB}}) {
    SCOPED_TRACE(k.name);
    Agent& b = new_agent({"mb"}, true);
    b.send_auth = k.authenticate;
    b.connect();
    if (k.authenticate) {
      ASSERT_TRUE(run([&] { return b.registered_count > 0 || b.ended(); }));
    } else {
      ASSERT_TRUE(run([&] { return contains(b.frames, "\"challenge\"") || b.ended(); }));
    }
    // A well-formed register padded with JSON whitespace: only its size is wrong.
    std::string msg = R"({"type":"register","models":["mb"],"max_parallel":1)";
    msg.append(k.size - msg.size() - 1, ' ');
    msg.push_back('}');
    ASSERT_EQ(msg.size(), k.size);
    ASSERT_TRUE(b.send_text(msg).ok());
    ASSERT_TRUE(run([&] { return b.closed > 0; }));
    EXPECT_EQ(b.code, tunnel::close_code::message_too_big) << b.why;
    mem.sample();
  }
  // Bound: the test's own 1 MiB message (and its framed copy in the
  // sender's queue) plus one rejected message at the hub.
  EXPECT_LT(mem.peak_growth(), 8 * kMiB);
}

// Thousands of `register` messages, each with another model list: the hub
// keeps only the latest list.
TEST_F(HostileAgentTest, ThousandsOfRegistersKeepOnlyTheLatestModelList) {
  constexpr int kRegisters = 3000;
  constexpr int kModels = 64;
  constexpr int kInFlight = 16;
  start();
  Agent& b = honest({"mb"});
  run_for(100);
  MemoryWatch mem;
  auto models_of = [](int n) {
    std::vector<std::string> out;
    for (int i = 0; i < kModels; ++i) {
      std::string m = "reg" + std::to_string(n) + "-model" + std::to_string(i) + "-";
      m.append(tunnel::kMaxModel - m.size(), 'x');
      out.push_back(std::move(m));
    }
    return out;
  };
  int sent = 0;
  const int start_count = b.registered_count;
  ASSERT_TRUE(run([&] {
    mem.sample();
    while (sent < kRegisters && sent - (b.registered_count - start_count) < kInFlight) {
      tunnel::Register r;
      r.models = models_of(sent);
      r.max_parallel = 4;
      EXPECT_TRUE(b.send(r).ok());
      ++sent;
    }
    return b.registered_count - start_count == kRegisters || b.ended();
  }, 120000));
  EXPECT_EQ(b.closed, 0);
  const Tunnels::Entry* e = tunnels->tunnels().find(b.pubkey());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->models, models_of(kRegisters - 1));
  EXPECT_TRUE(tunnels->tunnels().tunnels_for(models_of(0)[0]).empty());
  EXPECT_EQ(tunnels->tunnels().tunnels_for(models_of(kRegisters - 1)[0]).size(), 1u);
  run_for(1200, &mem);  // one sweep of the router's model memory
  // Bound: the registry holds one list (64 x 128 bytes); the router
  // remembers the names it saw at its once-a-second sweeps (a few lists;
  // kMaxKnownModels caps it for good). All lists together would be 3000 x
  // 64 x (128 + node overhead) > 24 MiB.
  EXPECT_LT(mem.growth_now(), 6 * kMiB);
  EXPECT_LT(mem.peak_growth(), 12 * kMiB);
  std::printf("[   info   ] %d registers: %zu log lines, %zu log bytes; %s\n", kRegisters,
              logs.lines, logs.bytes, mem.info().c_str());
}

// Pings beyond the budget from an agent that stopped reading: pongs are
// coalesced, the tunnel closes with 1008.
TEST_F(HostileAgentTest, PingFloodFromAnAgentThatDoesNotReadCloses1008) {
  start();
  Agent& b = hostile({"mb"});
  MemoryWatch mem;
  b.pause();
  b.ping_flood(static_cast<int>(tunnel::kMaxPingsPerMinute) + 1000);
  ASSERT_TRUE(run([&] {
    mem.sample();
    return !tunnels->tunnels().online(b.pubkey());
  }));
  b.resume();
  ASSERT_TRUE(run([&] { return b.closed > 0; }));
  EXPECT_EQ(b.code, tunnel::close_code::policy) << b.why;
  EXPECT_LT(mem.peak_growth(), 4 * kMiB);
}

// An agent that stops reading while the hub sends it calls. Phase one: calls
// whose windows together exceed the kernel's socket buffers plus the
// tunnel's write high-water mark, so the hub's queue passes the mark. Phase
// two: `later` calls with small bodies. Then the agent reads again. Returns
// what it read, in order; `stalled` reports the memory while it did not read.
struct StallResult {
  size_t first = 0;             // phase-one streams: ids 1..first
  size_t later_fins = 0;        // phase-two streams whose whole body arrived
  size_t last_later_call = 0;   // index in frames of the last phase-two call
  size_t first_later_data = 0;  // index in frames of the first phase-two data frame
  size_t calls = 0;
  std::string detail;           // bytes per stream, for failure messages
};

class StallTest : public HostileAgentTest {
 protected:
  static constexpr size_t kWindow = 4 * kMiB;
  static constexpr size_t kLater = 8;
  static constexpr size_t kLaterBody = 16 * kKiB;

  void stall_then_read(size_t high_water, StallResult* out, MemoryWatch* mem) {
    tunnel_settings.window_bytes = kWindow;
    tunnel_settings.write_high_water = high_water;
    api_settings.max_request_body = 8 * kMiB;
    start();
    Agent& b = hostile({"mb"});
    b.pause();
    HubTunnel* hub_side = tunnels->tunnels().find(b.pubkey())->tunnel;
    // Enough calls to pass the kernel's socket buffers (by the sysctls) plus
    // the mark. A kernel that holds more than its sysctls say gets up to 8
    // more, one at a time, each once the calls before it are all routed and
    // the queue stayed under the mark.
    const size_t estimate = (kernel_tcp_buffer_max() + high_water) / kWindow + 2;
    size_t first = 0;
    std::vector<User*> posted;
    auto post_first = [&] {
      posted.push_back(&post(chat_body("mb", "first-" + std::to_string(first), kWindow + kKiB)));
      ++first;
    };
    auto in_flight = [&]() -> size_t {
      const Tunnels::Entry* e = tunnels->tunnels().find(b.pubkey());
      return e ? e->in_flight : 0;
    };
    auto state = [&] {
      std::string s = std::to_string(in_flight()) + " of " + std::to_string(first) +
                      " calls in flight, hub queue " +
                      std::to_string(hub_side->session().queued_bytes()) + " bytes (mark " +
                      std::to_string(high_water) + ")";
      for (size_t i = 0; i < posted.size(); ++i) {
        const User& u = *posted[i];
        if (u.failed) s += "; user " + std::to_string(i) + ": " + u.why.to_string();
        if (u.head) s += "; user " + std::to_string(i) + " got " + std::to_string(u.head->status);
      }
      return s;
    };
    while (first < estimate) post_first();
    for (;;) {
      ASSERT_TRUE(run([&] {
        mem->sample();
        return in_flight() == first;
      }, 60000)) << "calls not routed: " << state();
      if (run([&] {
        mem->sample();
        return hub_side->session().write_blocked();
      }, 3000)) {
        break;
      }
      ASSERT_LT(first, estimate + 8)
          << "the hub never reported its write queue over the high-water mark: " << state();
      std::printf("[   info   ] one more call: %s\n", state().c_str());
      post_first();
    }
    out->first = first;
    for (size_t i = 0; i < kLater; ++i) {
      post(chat_body("mb", "later-" + std::to_string(i), kLaterBody));
    }
    ASSERT_TRUE(run([&] {
      mem->sample();
      return in_flight() == first + kLater;
    }, 60000)) << "later calls not routed: " << state();
    run_for(300, mem);
    EXPECT_TRUE(b.raw_calls.empty());  // it read nothing

    b.resume();
    auto later_fins = [&] {
      size_t fins = 0;
      for (const auto& f : b.frames) {
        if (f.first != ws::Opcode::binary) continue;
        auto d = tunnel::decode_frame(f.second);
        if (d.ok() && d->fin && d->id > first) ++fins;
      }
      return fins;
    };
    run([&] { return later_fins() == kLater || b.ended(); }, 10000);
    out->later_fins = later_fins();
    out->calls = b.raw_calls.size();
    out->first_later_data = b.frames.size();
    std::map<uint32_t, size_t> bytes;
    for (size_t i = 0; i < b.frames.size(); ++i) {
      const auto& f = b.frames[i];
      if (f.first == ws::Opcode::binary) {
        auto d = tunnel::decode_frame(f.second);
        ASSERT_TRUE(d.ok());
        bytes[d->id] += d->payload.size();
        if (d->id > first) out->first_later_data = std::min(out->first_later_data, i);
      } else if (f.second.find("\"type\":\"call\"") != std::string::npos) {
        auto m = tunnel::decode(f.second, tunnel::Phase::session);
        ASSERT_TRUE(m.ok());
        if (std::get<tunnel::Call>(*m).id > first) out->last_later_call = i;
      }
    }
    out->detail = std::to_string(out->calls) + " calls, body bytes per stream:";
    for (const auto& [id, n] : bytes) {
      out->detail += " " + std::to_string(id) + ":" + std::to_string(n);
    }
    b.close(tunnel::close_code::normal);
    ASSERT_TRUE(run([&] { return api->active_requests() == 0; }));
  }
};

// The hub keeps at most its write high-water mark (plus the one window a
// stream may add when it starts below the mark) in the tunnel's queue: a
// call opened while the queue is over the mark sends its `call` and no body
// byte, so the agent, reading again, finds every later call before any of
// their body frames, and then gets those bodies. (The hub reads each user's
// whole body, at most max_request_body, before routing: that, not the
// tunnel, bounds what a user socket feeds it.)
TEST_F(StallTest, AgentThatStopsReadingHoldsBackTheBodiesOfLaterCalls) {
  StallResult r;
  MemoryWatch mem;
  stall_then_read(256 * kKiB, &r, &mem);
  EXPECT_EQ(r.calls, r.first + kLater) << r.detail;
  EXPECT_EQ(r.later_fins, kLater) << r.detail;
  EXPECT_LT(r.last_later_call, r.first_later_data)
      << "a call opened while the queue was over the high-water mark sent body bytes at once";
  // Bound while stalled: the bodies the hub read (a buffer may hold up to
  // twice its bytes), the queue (high water + one window), calls, slack.
  const size_t bodies = r.first * (kWindow + kKiB) + kLater * kLaterBody;
  EXPECT_LT(mem.peak_growth(), 2 * bodies + 256 * kKiB + kWindow + 16 * kMiB) << mem.info();
  std::printf("[   info   ] %zu streams of %zu bytes held, %zu later calls; %s\n", r.first,
              kWindow, kLater, mem.info().c_str());
}

// Regression: with a write_high_water below the transport's default mark
// (256 KiB; hub.conf allows 64 KiB) the transport never woke the session, so
// a channel that saw send_capacity() == 0 hung until its deadline. The
// session now sets the transport's marks from its own options.
TEST_F(StallTest, LowWriteHighWaterStillWakesBlockedStreams) {
  StallResult r;
  MemoryWatch mem;
  stall_then_read(64 * kKiB, &r, &mem);
  EXPECT_EQ(r.later_fins, kLater) << r.detail;
}

// Regression: an agent that stops reading but keeps sending `sync`
// (answered with every chain entry after its seq, up to 1024 `settle`s, plus
// the last checkpoint), `claim` or `register` made the hub queue answers
// without limit (43 MiB for 14.6k syncs). The session now closes the tunnel
// (1008) once the peer left more than Session::max_queued() unread: what flow
// control allows plus tunnel::kControlBacklog of control messages.
TEST_F(HostileAgentTest, AgentThatStopsReadingCannotGrowTheHubsQueueWithAnswers) {
  constexpr int kEntries = 16;
  // Each sync is answered with kEntries settles (~420 bytes each) and a
  // checkpoint: ~7 KB. Enough syncs to queue 64 MiB beyond what the kernel's
  // socket buffers can absorb.
  const size_t kSyncs = (kernel_tcp_buffer_max() + 64 * kMiB) / (7 * kKiB);
  billing_settings.checkpoint_every = 1;
  start();
  Agent& b = hostile({"mb"});
  // Earn a short chain honestly.
  for (int i = 1; i <= kEntries; ++i) {
    User& u = post(chat_body("mb", "earn-" + std::to_string(i)));
    raw_answer(b, static_cast<size_t>(i));
    ASSERT_TRUE(run([&] { return u.done(); }));
    ASSERT_TRUE(b.send(claim_for(b.raw_calls[static_cast<size_t>(i) - 1].request_id, "mb")).ok());
    ASSERT_TRUE(run([&] { return b.settles.size() >= static_cast<size_t>(i) || b.ended(); }));
  }
  ASSERT_EQ(chain_seq(b.pubkey()), static_cast<uint64_t>(kEntries));
  run_for(100);

  MemoryWatch mem;
  b.pause();
  tunnel::Sync sync;  // seq 0: "send me everything"
  const std::string text = tunnel::encode(sync);
  size_t sent = 0;
  auto pump = [&] {
    while (b.closed == 0 && sent < kSyncs && !b.write_blocked()) {
      if (!b.send_text(text).ok()) return;
      ++sent;
    }
  };
  b.on_drain_fn = pump;
  pump();
  run([&] {
    mem.sample();
    return (sent == kSyncs && b.queued_bytes() == 0) || !tunnels->tunnels().online(b.pubkey());
  }, 120000);
  run_for(2000, &mem);  // the hub reads what the kernel still holds
  b.on_drain_fn = nullptr;
  // Bound: the session's queue limit (high-water mark + max_streams x window
  // + kControlBacklog) and a batch of answers, with slack; the tunnel is closed.
  const auto limit = static_cast<size_t>(
      tunnel_settings.write_high_water +
      uint64_t{tunnel_settings.max_streams} * tunnel_settings.window_bytes + tunnel::kControlBacklog);
  EXPECT_FALSE(tunnels->tunnels().online(b.pubkey())) << "the tunnel of an agent that reads nothing stayed up";
  EXPECT_LT(mem.peak_growth(), limit + 8 * kMiB)
      << sent << " syncs answered into the queue of an agent that reads nothing";
  std::printf("[   info   ] %zu syncs sent; online %d; %s\n", sent,
              tunnels->tunnels().online(b.pubkey()) ? 1 : 0, mem.info().c_str());
}

}  // namespace
}  // namespace tg::hub
