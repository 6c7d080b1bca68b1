#include "shared/core/log.h"

#include <gtest/gtest.h>

#include <sys/time.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
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

std::string utc_now_to_ms() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(tv.tv_usec / 1000));
  return buf;
}

TEST(Log, TimeIsTheCurrentUtcTimeAcrossSeconds) {
  Capture cap;
  // Lines 150 ms apart for 1.2 s: the time prefix, formatted once per
  // second, must follow the clock into each new second.
  for (int i = 0; i < 9; ++i) {
    const std::string before = utc_now_to_ms();
    TG_INFO("t", "line %d", i);
    const std::string after = utc_now_to_ms();
    ASSERT_EQ(cap.lines.size(), static_cast<size_t>(i + 1));
    const std::string got = cap.lines.back().substr(0, before.size());
    EXPECT_LE(before, got);
    EXPECT_LE(got, after);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
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
