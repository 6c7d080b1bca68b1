// `tokengo-agent run` up to the point where it would connect: config and key
// errors, and a scan proving the agent's code never opens a listener (the
// runtime check is in tunnel_client_test.cc).
#include "agent/run.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/unit/temp_dir.h"

namespace tg::agent {
namespace {

using tg::test::TempDir;

constexpr const char* kConfig =
    "hub = wss://127.0.0.1:1/tunnel\n"
    "hub_pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    "identity_key = agent.key\n"
    "[provider p]\ntype = local\nurl = http://127.0.0.1:11434\nmodels = m1\n";

TEST(AgentRun, MissingConfigFileExitsWithOne) {
  TempDir dir;
  testing::internal::CaptureStderr();
  EXPECT_EQ(run(dir.file("absent.conf")), 1);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("tokengo-agent: "), std::string::npos) << err;
  EXPECT_NE(err.find("absent.conf"), std::string::npos) << err;
}

TEST(AgentRun, EveryConfigErrorIsPrinted) {
  TempDir dir;
  const std::string path = dir.write("agent.conf", "hub = http://x/\nhub_pin = nope\n");
  testing::internal::CaptureStderr();
  EXPECT_EQ(run(path), 1);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("hub: must be a wss://"), std::string::npos) << err;
  EXPECT_NE(err.find("hub_pin"), std::string::npos) << err;
  EXPECT_NE(err.find("provider"), std::string::npos) << err;
}

TEST(AgentRun, MissingIdentityKeySaysHowToCreateIt) {
  TempDir dir;
  const std::string path = dir.write("agent.conf", kConfig);
  testing::internal::CaptureStderr();
  EXPECT_EQ(run(path), 1);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("tokengo-agent keygen --out " + dir.file("agent.key")), std::string::npos) << err;
}

// The agent opens no listening socket: none of its sources uses a listener.
TEST(AgentRun, AgentSourcesNeverListen) {
  int scanned = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(TG_SOURCE_DIR) + "/agent")) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".cc" && ext != ".h") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    ++scanned;
    for (const char* word : {"TcpListener", "uv_listen", "ServerHandshake", "http::Server"}) {
      EXPECT_EQ(text.str().find(word), std::string::npos) << entry.path() << " uses " << word;
    }
  }
  EXPECT_GE(scanned, 6);
}

}  // namespace
}  // namespace tg::agent
