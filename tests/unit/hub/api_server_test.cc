// The user API end to end in one process: TunnelServer + ApiServer on
// 127.0.0.1 with a temporary SQLite database, scripted agents over real TLS
// tunnels answering calls like a vendor would, and users speaking HTTP through
// http::ClientConnection (or raw TCP for malformed input); the fixture is in
// api_server_fixture.h.
#include "hub/api_server.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/hub/api_server_fixture.h"

namespace tg::hub {
namespace {

using test::AgentCall;
using test::ApiServerTest;
using test::kChatBody;
using test::RawUser;
using test::User;
using testing::Agent;
using testing::kWaitMs;

TEST_F(ApiServerTest, ChatCompletionIsRelayedWithFilteredHeaders) {
  start();
  connect_agent();
  next_on_body = [](AgentCall& c) {
    c.answer(200, R"({"id":"x","choices":[]})",
             {{"x-upstream-request-id", "up-1"}, {"set-cookie", "no"}});
  };
  User& u = post("/v1/chat/completions", kChatBody, {{"OpenAI-Beta", "assistants=v2"}});
  ASSERT_TRUE(finished(u));
  ASSERT_TRUE(u.ended) << u.why.to_string();
  EXPECT_EQ(u.head->status, 200);
  EXPECT_EQ(u.body, R"({"id":"x","choices":[]})");
  EXPECT_EQ(u.header("content-type"), "application/json");
  EXPECT_EQ(u.header("x-upstream-request-id"), "up-1");
  EXPECT_FALSE(u.head->headers.has("set-cookie"));
  ASSERT_EQ(calls.size(), 1u);
  const tunnel::Call& c = calls[0]->call;
  EXPECT_EQ(c.model, "m1");
  EXPECT_EQ(c.path, "/v1/chat/completions");
  EXPECT_EQ(c.method, "POST");
  EXPECT_FALSE(c.stream);
  EXPECT_GT(c.deadline_ms, 0u);
  EXPECT_EQ(calls[0]->body, kChatBody);
  std::string rid;
  for (const auto& [n, v] : c.headers) {
    EXPECT_NE(n, "authorization");
    EXPECT_NE(n, "host");
    if (n == "x-request-id") rid = v;
  }
  EXPECT_EQ(rid.size(), 32u);
  EXPECT_EQ(u.header("x-request-id"), rid);
  bool beta = false;
  for (const auto& [n, v] : c.headers) beta = beta || (n == "openai-beta" && v == "assistants=v2");
  EXPECT_TRUE(beta);
  EXPECT_EQ(tunnels->tunnels().tunnels_for("m1")[0]->in_flight, 0u);
}

TEST_F(ApiServerTest, MessagesAcceptXApiKeyAndForwardAnthropicVersion) {
  start();
  connect_agent({"claude"});
  next_on_body = [](AgentCall& c) { c.answer(200, R"({"type":"message"})"); };
  User& u = post("/v1/messages", R"({"model":"claude","max_tokens":5,"stream":false})",
                 {{"x-api-key", token}, {"anthropic-version", "2023-06-01"}}, false);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 200);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]->call.path, "/v1/messages");
  bool version = false;
  for (const auto& [n, v] : calls[0]->call.headers) {
    EXPECT_NE(n, "x-api-key");
    version = version || (n == "anthropic-version" && v == "2023-06-01");
  }
  EXPECT_TRUE(version);
}

TEST_F(ApiServerTest, EmbeddingsAreRouted) {
  start();
  connect_agent({"emb"});
  next_on_body = [](AgentCall& c) { c.answer(200, R"({"data":[]})"); };
  User& u = post("/v1/embeddings", R"({"model":"emb","input":"x"})");
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 200);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]->call.path, "/v1/embeddings");
}

TEST_F(ApiServerTest, MissingTokenIs401InOpenAIFormat) {
  start();
  User& u = post("/v1/chat/completions", kChatBody, {}, false);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 401);
  EXPECT_NE(u.body.find(R"("type":"invalid_request_error")"), std::string::npos) << u.body;
  EXPECT_NE(u.body.find(R"("code":"invalid_api_key")"), std::string::npos) << u.body;
  EXPECT_NE(u.body.find(R"("param":null)"), std::string::npos) << u.body;
  EXPECT_EQ(u.header("x-request-id").size(), 32u);
}

TEST_F(ApiServerTest, WrongTokenIs401InAnthropicFormat) {
  start();
  User& u = post("/v1/messages", R"({"model":"claude"})",
                 {{"x-api-key", "sk-tg-" + std::string(64, '0')}}, false);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 401);
  EXPECT_EQ(u.body.rfind(R"({"type":"error","error":{"type":"authentication_error")", 0), 0u)
      << u.body;
}

TEST_F(ApiServerTest, RevokedTokenIsRefusedWhileRunning) {
  start();
  connect_agent();
  next_on_body = [](AgentCall& c) { c.answer(200, "{}"); };
  User& first = post("/v1/chat/completions", kChatBody);
  ASSERT_TRUE(finished(first));
  EXPECT_EQ(first.head->status, 200);
  // The operator CLI revokes it through its own connection to the file.
  auto cli = UserStore::open(dir.file("hub.db"), false);
  ASSERT_TRUE(cli.ok());
  ASSERT_TRUE(cli->revoke_token(token, 2).ok());
  // The hub reads the file's data_version at most once per loop millisecond
  // (the tick authenticate() gets): a request in the same millisecond as
  // the first may still pass. The next one must not.
  const uint64_t t0 = loop.now_ms();
  ASSERT_TRUE(run([&] { return loop.now_ms() > t0; }));
  User& second = post("/v1/chat/completions", kChatBody);
  ASSERT_TRUE(finished(second));
  EXPECT_EQ(second.head->status, 401);
}

TEST_F(ApiServerTest, UnknownModelIs404) {
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", R"({"model":"nope"})");
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 404);
  EXPECT_NE(u.body.find("model_not_found"), std::string::npos) << u.body;
  EXPECT_TRUE(calls.empty());
}

TEST_F(ApiServerTest, MalformedJsonIs400) {
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", R"({"model":"m1",)");
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 400);
  EXPECT_NE(u.body.find("invalid_json"), std::string::npos) << u.body;
}

TEST_F(ApiServerTest, MissingModelIs400InAnthropicFormat) {
  start();
  User& u = post("/v1/messages", R"({"max_tokens":1})");
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 400);
  EXPECT_NE(u.body.find(R"("type":"invalid_request_error")"), std::string::npos) << u.body;
}

TEST_F(ApiServerTest, BodyOverTheLimitIs413) {
  api_settings.max_request_body = 1024;
  start();
  User& u = post("/v1/chat/completions", std::string(2048, ' '));
  ASSERT_TRUE(finished(u));
  ASSERT_TRUE(u.head.has_value()) << u.why.to_string();
  EXPECT_EQ(u.head->status, 413);
  EXPECT_NE(u.body.find("request_too_large"), std::string::npos) << u.body;
}

TEST_F(ApiServerTest, ChunkedBodyOverTheLimitIs413) {
  api_settings.max_request_body = 1024;
  start();
  RawUser raw(loop);
  std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                    token + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(512, 'a') + "\r\n";
  raw.connect(api->port(), req);
  ASSERT_TRUE(run([&] { return raw.got.find("\r\n\r\n{") != std::string::npos || raw.ended; }));
  EXPECT_EQ(raw.got.rfind("HTTP/1.1 413", 0), 0u) << raw.got;
}

TEST_F(ApiServerTest, NoFreeAgentIs503) {
  start();
  connect_agent({"m1"}, 1);
  User& held = post("/v1/chat/completions", kChatBody);
  AgentCall& c = wait_call();
  User& u = post("/v1/chat/completions", kChatBody);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 503);
  EXPECT_NE(u.body.find(R"("type":"server_error")"), std::string::npos) << u.body;
  c.answer(200, "{}");
  ASSERT_TRUE(finished(held));
  EXPECT_EQ(held.head->status, 200);
}

TEST_F(ApiServerTest, ModelWhoseAgentLeftIs503) {
  start();
  Agent& a = connect_agent();
  User& models = get("/v1/models");  // the hub learns m1 is served
  ASSERT_TRUE(finished(models));
  a.close(tunnel::close_code::normal);
  ASSERT_TRUE(run([&] { return tunnels->tunnels().count() == 0; }));
  User& u = post("/v1/chat/completions", kChatBody);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 503);
}

TEST_F(ApiServerTest, DeadlineBeforeTheHeadIs504AndAbortsTheStream) {
  api_settings.request_deadline_ms = 300;
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", kChatBody);
  AgentCall& c = wait_call();
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 504);
  ASSERT_TRUE(run([&] { return c.closed; }));
  EXPECT_NE(c.closed_why.message().find("deadline"), std::string::npos) << c.closed_why.to_string();
}

TEST_F(ApiServerTest, AgentErrorBeforeTheHeadMapsToItsStatus) {
  start();
  connect_agent();
  next_on_body = [](AgentCall& c) { c.fail("upstream_unreachable", "connect failed"); };
  User& u = post("/v1/messages", R"({"model":"m1"})", {{"x-api-key", token}}, false);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 502);
  EXPECT_NE(u.body.find(R"("type":"api_error")"), std::string::npos) << u.body;
}

TEST_F(ApiServerTest, VendorErrorBodyPassesThroughUntouched) {
  start();
  connect_agent();
  const std::string vendor = R"({"error":{"message":"Rate limit","type":"requests"}})";
  next_on_body = [&](AgentCall& c) { c.answer(429, vendor, {{"retry-after", "7"}}); };
  User& u = post("/v1/chat/completions", kChatBody);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 429);
  EXPECT_EQ(u.body, vendor);
  EXPECT_EQ(u.header("retry-after"), "7");
}

TEST_F(ApiServerTest, StreamedChunksArriveOneByOne) {
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", R"({"model":"m1","stream":true})");
  AgentCall& c = wait_call();
  EXPECT_TRUE(c.call.stream);
  c.head(200, "text/event-stream");
  c.data("data: {\"n\":1}\n\n");
  ASSERT_TRUE(run([&] { return u.body.find("\"n\":1") != std::string::npos || u.done(); }));
  EXPECT_EQ(u.header("cache-control"), "no-cache");
  EXPECT_EQ(u.header("x-accel-buffering"), "no");
  EXPECT_EQ(u.body, "data: {\"n\":1}\n\n");  // the second chunk is not sent yet
  c.data("data: {\"n\":2}\n\n");
  ASSERT_TRUE(run([&] { return u.body.find("\"n\":2") != std::string::npos || u.done(); }));
  c.data("data: [DONE]\n\n", true);
  c.finish();
  ASSERT_TRUE(finished(u));
  EXPECT_TRUE(u.ended);
  EXPECT_EQ(u.body, "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n");
}

TEST_F(ApiServerTest, MidStreamAgentErrorEndsWithAnSseErrorEvent) {
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", R"({"model":"m1","stream":true})");
  AgentCall& c = wait_call();
  c.head(200, "text/event-stream");
  c.data("data: {\"n\":1}\n\n");
  c.fail("upstream_error", "vendor went away");
  ASSERT_TRUE(finished(u));
  EXPECT_TRUE(u.ended);
  EXPECT_EQ(u.body.rfind("data: {\"n\":1}\n\ndata: {\"error\":{", 0), 0u) << u.body;
  EXPECT_EQ(u.body.substr(u.body.size() - 2), "\n\n");
}

TEST_F(ApiServerTest, TunnelLossMidStreamEndsAnthropicStreamWithAnErrorEvent) {
  start();
  Agent& a = connect_agent();
  User& u = post("/v1/messages", R"({"model":"m1","stream":true})");
  AgentCall& c = wait_call();
  c.head(200, "text/event-stream; charset=utf-8");
  c.data("event: message_start\ndata: {}\n\n");
  ASSERT_TRUE(run([&] { return !u.body.empty() || u.done(); }));
  a.close(tunnel::close_code::going_away);
  ASSERT_TRUE(finished(u));
  EXPECT_NE(u.body.find("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\""),
            std::string::npos)
      << u.body;
}

TEST_F(ApiServerTest, UserDisconnectAbortsTheStreamWithClientGone) {
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", R"({"model":"m1","stream":true})");
  AgentCall& c = wait_call();
  c.head(200, "text/event-stream");
  c.data("data: 1\n\n");
  ASSERT_TRUE(run([&] { return !u.body.empty(); }));
  u.conn.reset();  // the user goes away
  ASSERT_TRUE(run([&] { return c.closed; }));
  EXPECT_NE(c.closed_why.message().find("client_gone"), std::string::npos)
      << c.closed_why.to_string();
  ASSERT_TRUE(run([&] { return api->active_requests() == 0; }));
  EXPECT_EQ(tunnels->tunnels().tunnels_for("m1")[0]->in_flight, 0u);
}

TEST_F(ApiServerTest, SlowReaderHoldsTheAgentBack) {
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", R"({"model":"m1","stream":true})");
  u.pause_after_head = true;
  AgentCall& c = wait_call();
  c.head(200, "text/event-stream");
  const std::string chunk(16 * 1024, 'x');
  size_t sent = 0;
  bool blocked = false;
  // Push as much as the hub accepts: it must stop giving credit.
  auto pump = [&] {
    while (c.ch && c.ch->send_capacity() >= chunk.size() && sent < 256 * 1024 * 1024) {
      c.data(chunk);
      sent += chunk.size();
    }
    if (c.ch && c.ch->send_capacity() == 0) blocked = true;
  };
  c.on_writable = [&](AgentCall&) { pump(); };
  pump();
  // Let everything settle: credit only comes back as the user reads.
  run([&] { return false; }, 1500);
  EXPECT_TRUE(blocked);
  EXPECT_LT(sent, 16u * 1024 * 1024) << "the hub buffered without bound";
  const size_t stalled_at = sent;
  run([&] { return false; }, 300);
  EXPECT_EQ(sent, stalled_at);
  // The user reads again: the agent may send again.
  c.on_writable = [&](AgentCall&) { pump(); };
  u.conn->resume_response();
  ASSERT_TRUE(run([&] { return sent > stalled_at + 1024 * 1024; }));
  u.conn.reset();
  ASSERT_TRUE(run([&] { return c.closed; }));
}

TEST_F(ApiServerTest, IdleStreamGetsKeepAliveComments) {
  api_settings.sse_keepalive_ms = 100;
  start();
  connect_agent();
  User& u = post("/v1/chat/completions", R"({"model":"m1","stream":true})");
  AgentCall& c = wait_call();
  c.head(200, "text/event-stream");
  ASSERT_TRUE(run([&] { return u.body.find(": keep-alive\n\n") != std::string::npos || u.done(); }));
  c.data("data: [DONE]\n\n", true);
  c.finish();
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.body.substr(u.body.size() - 14), "data: [DONE]\n\n");
}

TEST_F(ApiServerTest, ModelsListReflectsOnlineAgents) {
  start();
  User& none = get("/v1/models");
  ASSERT_TRUE(finished(none));
  EXPECT_EQ(none.body, R"({"object":"list","data":[]})");
  Agent& a = connect_agent({"m1", "m2"});
  User& two = get("/v1/models");
  ASSERT_TRUE(finished(two));
  EXPECT_NE(two.body.find(R"({"id":"m1","object":"model","created":)"), std::string::npos) << two.body;
  EXPECT_NE(two.body.find(R"("owned_by":"tokengo")"), std::string::npos) << two.body;
  EXPECT_NE(two.body.find(R"("id":"m2")"), std::string::npos) << two.body;
  User& one = get("/v1/models/m2");
  ASSERT_TRUE(finished(one));
  EXPECT_EQ(one.head->status, 200);
  EXPECT_EQ(one.body.rfind(R"({"id":"m2","object":"model")", 0), 0u) << one.body;
  User& missing = get("/v1/models/m3");
  ASSERT_TRUE(finished(missing));
  EXPECT_EQ(missing.head->status, 404);
  a.close(tunnel::close_code::normal);
  ASSERT_TRUE(run([&] { return tunnels->tunnels().count() == 0; }));
  User& after = get("/v1/models");
  ASSERT_TRUE(finished(after));
  EXPECT_EQ(after.body, R"({"object":"list","data":[]})");
}

TEST_F(ApiServerTest, UnknownPathIs404AndWrongMethodIs405) {
  start();
  User& u = post("/v1/completions-nope", kChatBody);
  ASSERT_TRUE(finished(u));
  EXPECT_EQ(u.head->status, 404);
  User& m = get("/v1/chat/completions");
  ASSERT_TRUE(finished(m));
  EXPECT_EQ(m.head->status, 405);
}

TEST_F(ApiServerTest, RequestsGoToTheLeastLoadedAgent) {
  start();
  connect_agent({"m1"}, 4);
  connect_agent({"m1"}, 4);
  post("/v1/chat/completions", kChatBody);
  post("/v1/chat/completions", kChatBody);
  ASSERT_TRUE(run([&] { return calls.size() == 2 && calls[1]->body_done; }));
  auto serving = tunnels->tunnels().tunnels_for("m1");
  ASSERT_EQ(serving.size(), 2u);
  EXPECT_EQ(serving[0]->in_flight, 1u);
  EXPECT_EQ(serving[1]->in_flight, 1u);
  for (auto& c : calls) c->answer(200, "{}");
  ASSERT_TRUE(run([&] { return api->active_requests() == 0; }));
}

}  // namespace
}  // namespace tg::hub
