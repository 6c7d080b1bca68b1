#include "shared/core/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tg {
namespace {

struct Capture {
  std::vector<std::string> lines;
  Capture() {
    log::set_sink([](log::Level, const char* line, void* user) {
      static_cast<Capture*>(user)->lines.emplace_back(line);
    }, this);
  }
  ~Capture() {
    log::set_sink(nullptr, nullptr);
    log::set_level(log::Level::info);
  }
};

TEST(Log, LineHasTimeLevelComponentAndMessage) {
  Capture cap;
  TG_INFO("tunnel", "agent %s connected", "abc");
  ASSERT_EQ(cap.lines.size(), 1u);
  const std::string& l = cap.lines[0];
  EXPECT_EQ(l.size(), std::string("2026-11-22T10:00:00.000Z INFO  tunnel: agent abc connected").size());
  EXPECT_EQ(l[10], 'T');
  EXPECT_NE(l.find(" INFO  tunnel: agent abc connected"), std::string::npos);
}

TEST(Log, ControlCharactersAreEscapedSoLinesCannotBeForged) {
  Capture cap;
  TG_WARN("http", "path %s", "/a\nFAKE ERROR x\r\x01");
  ASSERT_EQ(cap.lines.size(), 1u);
  EXPECT_NE(cap.lines[0].find("path /a\\nFAKE ERROR x\\r\\x01"), std::string::npos);
  EXPECT_EQ(cap.lines[0].find('\n'), std::string::npos);
}

TEST(Log, LevelFiltersAndSkipsArgumentEvaluation) {
  Capture cap;
  log::set_level(log::Level::warn);
  int evaluated = 0;
  auto arg = [&] { ++evaluated; return "x"; };
  TG_INFO("c", "%s", arg());
  TG_ERROR("c", "%s", arg());
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(cap.lines.size(), 1u);
}

TEST(Log, LongMessagesAreCut) {
  Capture cap;
  std::string big(10000, 'a');
  TG_INFO("c", "%s", big.c_str());
  ASSERT_EQ(cap.lines.size(), 1u);
  EXPECT_LT(cap.lines[0].size(), 2200u);
  EXPECT_NE(cap.lines[0].find("..."), std::string::npos);
}

TEST(Log, ParseLevel) {
  log::Level l;
  EXPECT_TRUE(log::parse_level("debug", &l));
  EXPECT_EQ(l, log::Level::debug);
  EXPECT_FALSE(log::parse_level("verbose", &l));
}

}  // namespace
}  // namespace tg
