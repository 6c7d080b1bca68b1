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
                     "\n[provider p]\ntype = local\nurl = http://127.0.0.1:11434\nmodels = m\n",
                 "agent.conf");
  EXPECT_EQ(errors_of(r),
            "agent.conf:1: hub: must be a wss:// address (the tunnel always uses TLS)\n");
}

TEST(AgentConfig, BadPinNamesTheLine) {
  auto r = parse("hub = wss://h/t\nhub_pin = md5/abc\n[provider p]\ntype = local\nurl = http://127.0.0.1:11434\nmodels = m\n",
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
  auto r = parse("[provider p]\ntype = local\nurl = http://127.0.0.1:11434\nmodels = m\n", "agent.conf");
  std::string e = errors_of(r);
  EXPECT_NE(e.find("missing required key 'hub'"), std::string::npos) << e;
  EXPECT_NE(e.find("missing required key 'hub_pin'"), std::string::npos) << e;
}

TEST(AgentConfig, BackoffOrder) {
  auto r = parse(minimal("[tunnel]\nbackoff_min = 10s\nbackoff_max = 1s\n"), "agent.conf");
  EXPECT_NE(errors_of(r).find("backoff_max must be at least backoff_min"), std::string::npos);
}

std::string with_provider(const std::string& body) {
  return std::string("hub = wss://hub.test:8443/tunnel\nhub_pin = ") + kPin + "\n[provider v]\n" + body;
}

TEST(AgentConfig, AzureNeedsResourceAndDeployment) {
  auto ok = parse(with_provider("type = azure\napi_key = k\nmodels = m\nresource = my-res\n"
                                "deployment = dep.1_a\n"), "agent.conf");
  ASSERT_TRUE(ok.config) << errors_of(ok);
  const ProviderConfig& p = ok.config->providers[0];
  EXPECT_EQ(p.resource, "my-res");
  EXPECT_EQ(p.deployment, "dep.1_a");
  EXPECT_EQ(p.api_version, kDefaultAzureApiVersion);
  EXPECT_FALSE(p.url);

  auto missing = parse(with_provider("type = azure\napi_key = k\nmodels = m\n"), "agent.conf");
  const std::string e = errors_of(missing);
  EXPECT_NE(e.find("agent.conf:3: [provider v]: resource is required for type azure"), std::string::npos) << e;
  EXPECT_NE(e.find("[provider v]: deployment is required for type azure"), std::string::npos) << e;
}

TEST(AgentConfig, AzureValuesAreChecked) {
  auto r = parse(with_provider("type = azure\napi_key = k\nmodels = m\nresource = My.Res\n"
                               "deployment = a/b\napi_version = 2024 10\n"), "agent.conf");
  const std::string e = errors_of(r);
  EXPECT_NE(e.find("agent.conf:7: [provider v]: resource 'My.Res' must be 2..64 of a-z 0-9 -"),
            std::string::npos) << e;
  EXPECT_NE(e.find("agent.conf:8: [provider v]: deployment 'a/b' must be 1..64 of A-Z a-z 0-9 . _ -"),
            std::string::npos) << e;
  EXPECT_NE(e.find("agent.conf:9: [provider v]: api_version '2024 10'"), std::string::npos) << e;
  auto one = parse(with_provider("type = azure\napi_key = k\nmodels = m\nresource = x\ndeployment = d\n"),
                   "agent.conf");
  EXPECT_NE(errors_of(one).find("resource 'x' must be 2..64"), std::string::npos);
}

TEST(AgentConfig, AzureKeysRefusedForOtherTypes) {
  auto r = parse(with_provider("type = openai\napi_key = k\nmodels = m\nresource = r1\n"
                               "deployment = d\napi_version = 2024-10-21\n"), "agent.conf");
  const std::string e = errors_of(r);
  EXPECT_NE(e.find("agent.conf:7: [provider v]: resource is only for type azure"), std::string::npos) << e;
  EXPECT_NE(e.find("agent.conf:8: [provider v]: deployment is only for type azure"), std::string::npos) << e;
  EXPECT_NE(e.find("agent.conf:9: [provider v]: api_version is only for type azure"), std::string::npos) << e;
}

TEST(AgentConfig, LocalNeedsAUrl) {
  auto r = parse(with_provider("type = local\nmodels = m\n"), "agent.conf");
  EXPECT_EQ(errors_of(r), "agent.conf:3: [provider v]: url is required for type local "
                          "(e.g. http://127.0.0.1:11434)\n");
  auto ok = parse(with_provider("type = local\nmodels = m\nurl = http://127.0.0.1:11434\n"), "agent.conf");
  ASSERT_TRUE(ok.config) << errors_of(ok);
  ASSERT_TRUE(ok.config->providers[0].url);
  EXPECT_EQ(ok.config->providers[0].url->port, 11434);
  EXPECT_TRUE(ok.config->providers[0].api_key.empty());
}

TEST(AgentConfig, LocalUrlMustBeLoopbackPrivateOrAName) {
  for (const char* good : {"http://127.0.0.1:8080", "https://10.1.2.3", "http://192.168.1.5:11434/api",
                           "http://172.16.0.9:80", "http://[::1]:8080", "http://[fd12::1]:80",
                           "http://ollama.lan:11434"}) {
    auto r = parse(with_provider(std::string("type = local\nmodels = m\nurl = ") + good + "\n"),
                   "agent.conf");
    EXPECT_TRUE(r.config) << good << ": " << errors_of(r);
  }
  for (const char* bad : {"http://8.8.8.8:80", "http://172.32.0.1", "http://[2001:db8::1]:80",
                          "http://0.0.0.0:80"}) {
    auto r = parse(with_provider(std::string("type = local\nmodels = m\nurl = ") + bad + "\n"),
                   "agent.conf");
    EXPECT_NE(errors_of(r).find("is not a loopback or private address"), std::string::npos)
        << bad << ": " << errors_of(r);
  }
  auto ws = parse(with_provider("type = local\nmodels = m\nurl = ws://127.0.0.1:80\n"), "agent.conf");
  EXPECT_NE(errors_of(ws).find("url: must be http:// or https://, got ws://"), std::string::npos)
      << errors_of(ws);
  auto q = parse(with_provider("type = local\nmodels = m\nurl = http://127.0.0.1/v?x=1\n"), "agent.conf");
  EXPECT_NE(errors_of(q).find("url: must not have a query"), std::string::npos) << errors_of(q);
  auto junk = parse(with_provider("type = local\nmodels = m\nurl = not a url\n"), "agent.conf");
  EXPECT_NE(errors_of(junk).find("agent.conf:6: [provider v]: url: "), std::string::npos)
      << errors_of(junk);
}

TEST(AgentConfig, UrlRefusedForVendorTypes) {
  for (const char* type : {"openai", "anthropic", "deepseek"}) {
    auto r = parse(with_provider(std::string("type = ") + type +
                                 "\napi_key = k\nmodels = m\nurl = http://127.0.0.1:1\n"),
                   "agent.conf");
    EXPECT_EQ(errors_of(r), "agent.conf:7: [provider v]: url is only for type local (vendor "
                            "addresses are built into the agent)\n") << type;
  }
}

TEST(AgentConfig, ProviderRateLimitsDefaultToNone) {
  auto r = parse(minimal(), "agent.conf");
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->providers[0].rpm, 0u);
  EXPECT_EQ(r.config->providers[0].tpm, 0u);
}

TEST(AgentConfig, ProviderRateLimitsAtTheirEdges) {
  auto top = parse(with_provider("type = local\nmodels = m\nurl = http://127.0.0.1:1\n"
                                 "rpm = 10000000\ntpm = 10000000000\n"), "agent.conf");
  ASSERT_TRUE(top.config) << errors_of(top);
  EXPECT_EQ(top.config->providers[0].rpm, 10000000u);
  EXPECT_EQ(top.config->providers[0].tpm, 10000000000u);
  auto over = parse(with_provider("type = local\nmodels = m\nurl = http://127.0.0.1:1\n"
                                  "rpm = 10000001\ntpm = 10000000001\n"), "agent.conf");
  const std::string e = errors_of(over);
  EXPECT_NE(e.find("agent.conf:7: rpm must be 0..10000000, got 10000001"), std::string::npos) << e;
  EXPECT_NE(e.find("agent.conf:8: tpm must be 0..10000000000, got 10000000001"), std::string::npos) << e;
  auto negative = parse(with_provider("type = local\nmodels = m\nurl = http://127.0.0.1:1\nrpm = -1\n"),
                        "agent.conf");
  EXPECT_NE(errors_of(negative).find("agent.conf:7: rpm must be 0..10000000, got -1"), std::string::npos)
      << errors_of(negative);
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
