#include "agent/config.h"

#include <gtest/gtest.h>

#include <string>

namespace tg::agent {
namespace {

constexpr const char* kPin = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

std::string minimal(const std::string& extra = "") {
  return std::string("hub = wss://hub.test:8443/tunnel\nhub_pin = ") + kPin +
         "\n" + extra + "[provider p]\ntype = openai\napi_key = sk-x\nmodels = a, b\n";
}

std::string errors_of(const LoadResult& r) {
  std::string all;
  for (const auto& d : r.errors) all += d.to_string() + "\n";
  return all;
}

TEST(AgentConfig, ExampleFileIsValid) {
  auto r = load(std::string(TG_SOURCE_DIR) + "/configs/agent.conf");
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->hub.host, "hub.example.org");
  EXPECT_EQ(r.config->hub.port, 8443);
  EXPECT_EQ(r.config->models(), (std::vector<std::string>{"gpt-4o-mini", "gpt-4o"}));
  // identity_key is resolved next to the config file.
  EXPECT_EQ(r.config->identity_key, std::string(TG_SOURCE_DIR) + "/configs/agent.key");
}

TEST(AgentConfig, MinimalFileGetsDefaults) {
  auto r = parse(minimal(), "agent.conf");
  ASSERT_TRUE(r.config) << errors_of(r);
  const AgentConfig& c = *r.config;
  EXPECT_EQ(c.hub.path, "/tunnel");
  EXPECT_EQ(c.identity_key, "agent.key");
  EXPECT_TRUE(c.enroll_token.empty());
  EXPECT_EQ(c.tunnel.backoff_min_ms, 500u);
  EXPECT_EQ(c.tunnel.backoff_max_ms, 60000u);
  EXPECT_EQ(c.max_parallel(), 4);
  EXPECT_EQ(c.providers[0].api_key.reveal(), "sk-x");
}

TEST(AgentConfig, HubMustBeWss) {
  auto r = parse("hub = ws://hub.test/tunnel\nhub_pin = " + std::string(kPin) +
                     "\n[provider p]\ntype = local\nmodels = m\n",
                 "agent.conf");
  EXPECT_EQ(errors_of(r),
            "agent.conf:1: hub: must be a wss:// address (the tunnel always uses TLS)\n");
}

TEST(AgentConfig, BadPinNamesTheLine) {
  auto r = parse("hub = wss://h/t\nhub_pin = md5/abc\n[provider p]\ntype = local\nmodels = m\n",
                 "agent.conf");
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_NE(r.errors[0].message.find("hub_pin"), std::string::npos);
}

TEST(AgentConfig, ProviderRules) {
  auto r = parse(minimal("") + "[provider q]\ntype = anthropic\nmodels = b,,c d\n", "agent.conf");
  std::string e = errors_of(r);
  EXPECT_NE(e.find("agent.conf:7: [provider q]: api_key is required for type anthropic"),
            std::string::npos) << e;
  EXPECT_NE(e.find("[provider q]: model 'b' is already served by another provider"),
            std::string::npos) << e;
  EXPECT_NE(e.find("[provider q]: bad model name ''"), std::string::npos) << e;
  EXPECT_NE(e.find("[provider q]: bad model name 'c d'"), std::string::npos) << e;
}

TEST(AgentConfig, AtLeastOneProvider) {
  auto r = parse("hub = wss://h/t\nhub_pin = " + std::string(kPin) + "\n", "agent.conf");
  EXPECT_EQ(errors_of(r),
            "agent.conf: no [provider NAME] section: the agent must serve at least one provider\n");
}

TEST(AgentConfig, MissingRequiredKeysAreAllReported) {
  auto r = parse("[provider p]\ntype = local\nmodels = m\n", "agent.conf");
  std::string e = errors_of(r);
  EXPECT_NE(e.find("missing required key 'hub'"), std::string::npos) << e;
  EXPECT_NE(e.find("missing required key 'hub_pin'"), std::string::npos) << e;
}

TEST(AgentConfig, BackoffOrder) {
  auto r = parse(minimal("[tunnel]\nbackoff_min = 10s\nbackoff_max = 1s\n"), "agent.conf");
  EXPECT_NE(errors_of(r).find("backoff_max must be at least backoff_min"), std::string::npos);
}

TEST(AgentConfig, SecretsNeverInErrors) {
  auto r = parse("hub = wss://h/t\nhub_pin = x\n[provider p]\ntype = openai\n"
                 "api_key = sk-SECRET-123\nmodels = \n",
                 "agent.conf");
  ASSERT_FALSE(r.config);
  EXPECT_EQ(errors_of(r).find("SECRET"), std::string::npos);
}

}  // namespace
}  // namespace tg::agent
