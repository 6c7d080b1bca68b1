// The ApiServerTest fixture: TunnelServer + ApiServer on 127.0.0.1 with a
// temporary SQLite database, scripted agents over real TLS tunnels answering
// calls like a vendor would, and users speaking HTTP through
// http::ClientConnection (or raw TCP for malformed input). Shared by
// api_server_test.cc and api_wipe_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/agent_store.h"
#include "hub/api_server.h"
#include "hub/config.h"
#include "hub/tunnel_server.h"
#include "hub/user_store.h"
#include "shared/http/client.h"
#include "shared/net/tcp.h"
#include "shared/tls/certgen.h"
#include "tests/unit/hub/hub_test_util.h"

namespace tg::hub::test {

using testing::Agent;
using testing::kWaitMs;
using testing::LogCapture;
using testing::TempDir;

// The agent side of one stream: records the call and the request body, and
// lets the test answer like a vendor.
struct AgentCall final : tunnel::ChannelHandler {
  tunnel::Call call;
  tunnel::Channel* ch = nullptr;
  std::string body;
  bool body_done = false;
  bool closed = false;
  Status closed_why;
  std::function<void(AgentCall&)> on_body;      // request FIN arrived
  std::function<void(AgentCall&)> on_writable;  // send capacity came back

  void on_channel_message(tunnel::Channel&, const tunnel::Message&) noexcept override {}
  void on_channel_data(tunnel::Channel& c, std::string_view data, bool fin) noexcept override {
    body.append(data);
    if (!data.empty()) c.consumed(data.size());
    if (fin) {
      body_done = true;
      if (on_body) on_body(*this);
    }
  }
  void on_channel_writable(tunnel::Channel&) noexcept override {
    if (on_writable) on_writable(*this);
  }
  void on_channel_closed(tunnel::Channel&, const Status& why) noexcept override {
    closed = true;
    closed_why = why;
    ch = nullptr;
  }

  void head(uint32_t status, const std::string& content_type,
            tunnel::Headers extra = {}) {
    tunnel::Response r;
    r.status = status;
    r.headers = {{"content-type", content_type}};
    for (auto& h : extra) r.headers.push_back(h);
    Status s = ch->send(r);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  void data(const std::string& bytes, bool fin = false) {
    Status s = ch->send_data(bytes, fin);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  void finish(uint32_t upstream = 200) {
    tunnel::Finish f;
    f.upstream_status = upstream;
    Status s = ch->send(f);
    EXPECT_TRUE(s.ok()) << s.to_string();
    ch->close(tunnel::abort_reason::shutdown);  // finished: no abort goes out
    ch = nullptr;
  }
  void fail(const std::string& code, const std::string& message) {
    tunnel::Error e;
    e.code = code;
    e.message = message;
    Status s = ch->send(e);
    EXPECT_TRUE(s.ok()) << s.to_string();
    ch->close(tunnel::abort_reason::shutdown);
    ch = nullptr;
  }
  // Whole non-streamed answer.
  void answer(uint32_t status, const std::string& json, tunnel::Headers extra = {}) {
    head(status, "application/json", std::move(extra));
    data(json, true);
    finish(status);
  }
};

// One user request over plain HTTP.
struct User final : http::ClientHandler {
  explicit User(Loop& loop) : loop_(loop), tcp_(loop) {}

  bool pause_after_head = false;
  std::optional<http::ResponseHead> head;
  std::string body;
  std::vector<std::string> pieces;
  bool ended = false;
  bool failed = false;
  Status why;

  bool done() const { return ended || failed; }
  std::string header(const std::string& name) const {
    return head ? std::string(head->headers.get(name)) : std::string();
  }

  void send(uint16_t port, const std::string& method, const std::string& path,
            const std::string& payload, std::vector<std::pair<std::string, std::string>> headers) {
    Status s = tcp_.connect("127.0.0.1", port, kWaitMs, [=](Result<net::StreamPtr> r) {
      if (!r.ok()) {
        failed = true;
        why = r.status();
        return;
      }
      conn = std::make_unique<http::ClientConnection>(loop_, std::move(r.value()));
      http::RequestHead h;
      h.method = method;
      h.target = path;
      h.headers.add("Host", "127.0.0.1");
      for (const auto& [n, v] : headers) h.headers.add(n, v);
      const bool chunked = h.headers.has("transfer-encoding");
      if (!chunked && (method == "POST" || !payload.empty())) {
        h.headers.add("Content-Length", std::to_string(payload.size()));
      }
      Status st = conn->request(h, this);
      ASSERT_TRUE(st.ok()) << st.to_string();
      if (!payload.empty()) {
        st = conn->write(payload);
        ASSERT_TRUE(st.ok()) << st.to_string();
      }
      if (chunked || !payload.empty()) (void)conn->finish();
    });
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  void on_response_head(http::ClientConnection& c, const http::ResponseHead& h) noexcept override {
    head = h;
    if (pause_after_head) c.pause_response();
  }
  void on_response_body(http::ClientConnection&, std::string_view piece) noexcept override {
    body.append(piece);
    pieces.emplace_back(piece);
  }
  void on_response_end(http::ClientConnection&) noexcept override { ended = true; }
  void on_error(http::ClientConnection&, const Status& s) noexcept override {
    failed = true;
    why = s;
  }

  std::unique_ptr<http::ClientConnection> conn;

 private:
  Loop& loop_;
  net::TcpConnector tcp_;
};

// Raw bytes over TCP, for input the HTTP client would not send.
struct RawUser final : net::StreamHandler {
  explicit RawUser(Loop& loop) : tcp(loop) {}
  net::TcpConnector tcp;
  net::StreamPtr s;
  std::string got;
  bool ended = false;
  void connect(uint16_t port, std::string bytes) {
    Status st = tcp.connect("127.0.0.1", port, kWaitMs, [this, bytes](Result<net::StreamPtr> r) {
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      s = std::move(r.value());
      s->set_handler(this);
      (void)s->write(bytes);
    });
    ASSERT_TRUE(st.ok());
  }
  void on_stream_read(net::Stream&, std::string_view d) noexcept override { got.append(d); }
  void on_stream_end(net::Stream&, const Status&) noexcept override { ended = true; }
};

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    tls_ctx = testing::hub_tls_context(dir);
    ASSERT_TRUE(tls_ctx);
    ASSERT_NO_FATAL_FAILURE(testing::open_stores_with_alice(dir, &agents_db, &users, &token));
    auto defaults = parse("", "test.conf");
    ASSERT_TRUE(defaults.config);
    tunnel_settings = defaults.config->tunnel;
    tunnel_settings.events_poll_ms = 20;
    tunnel_settings.window_bytes = 64 * 1024;
    api_settings = defaults.config->api;
  }

  void start() {
    tunnels = std::make_unique<TunnelServer>(loop, tunnel_settings, tls_ctx, &*agents_db);
    ASSERT_TRUE(tunnels->start(net::HostPort{"127.0.0.1", 0}).ok());
    api = std::make_unique<ApiServer>(loop, api_settings, tunnels.get(), &*users, nullptr);
    Status s = api->start(net::HostPort{"127.0.0.1", 0});
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  // An approved agent serving `models` whose calls are recorded in `calls`.
  Agent& connect_agent(std::vector<std::string> models = {"m1"}, uint32_t max_parallel = 4) {
    agents.push_back(std::make_unique<Agent>(loop, tls_ctx->pin(), tunnels->port()));
    Agent& a = *agents.back();
    a.models = std::move(models);
    a.max_parallel = max_parallel;
    EXPECT_TRUE(agents_db->approve(a.pubkey(), "bob", kTierPpmMax).ok());
    a.on_call_fn = [this](tunnel::Session&, tunnel::Channel& ch, const tunnel::Call& c) {
      calls.push_back(std::make_unique<AgentCall>());
      AgentCall& rec = *calls.back();
      rec.call = c;
      rec.ch = &ch;
      if (next_on_body) rec.on_body = next_on_body;
      ch.set_handler(&rec);
    };
    a.connect();
    EXPECT_TRUE(run([&] { return a.registered.has_value() || a.ended(); }));
    EXPECT_TRUE(a.registered.has_value());
    return a;
  }

  User& post(const std::string& path, const std::string& body,
             std::vector<std::pair<std::string, std::string>> headers = {}, bool auth = true) {
    if (auth) headers.emplace_back("Authorization", "Bearer " + token);
    headers.emplace_back("Content-Type", "application/json");
    users_.push_back(std::make_unique<User>(loop));
    users_.back()->send(api->port(), "POST", path, body, std::move(headers));
    return *users_.back();
  }

  User& get(const std::string& path) {
    users_.push_back(std::make_unique<User>(loop));
    users_.back()->send(api->port(), "GET", path, "", {{"Authorization", "Bearer " + token}});
    return *users_.back();
  }

  bool run(const std::function<bool()>& done, uint64_t ms = kWaitMs) {
    return loop.run_until(done, ms);
  }
  bool finished(User& u) { return run([&] { return u.done(); }); }
  AgentCall& wait_call(size_t n = 1) {
    EXPECT_TRUE(run([&] { return calls.size() >= n && calls[n - 1]->body_done; }));
    return *calls.at(n - 1);
  }

  void TearDown() override {
    users_.clear();
    api.reset();
    agents.clear();
    tunnels.reset();
    calls.clear();
    EXPECT_TRUE(loop.close().ok());
  }

  LogCapture logs;
  TempDir dir;
  Loop loop;
  std::shared_ptr<tls::ServerContext> tls_ctx;
  std::optional<AgentStore> agents_db;
  std::optional<UserStore> users;
  std::string token;
  TunnelSettings tunnel_settings{};
  ApiSettings api_settings{};
  std::unique_ptr<TunnelServer> tunnels;
  std::unique_ptr<ApiServer> api;
  std::vector<std::unique_ptr<Agent>> agents;
  std::vector<std::unique_ptr<AgentCall>> calls;
  std::function<void(AgentCall&)> next_on_body;
  std::vector<std::unique_ptr<User>> users_;
};

inline const std::string kChatBody = R"({"model":"m1","messages":[{"role":"user","content":"hi"}]})";

}  // namespace tg::hub::test
