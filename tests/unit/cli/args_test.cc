#include "shared/cli/args.h"

#include <gtest/gtest.h>

#include <vector>

namespace tg::cli {
namespace {

const std::vector<Command> kCommands = {
    {"keygen", "create a key", {{"out", true}, {"force", false}}},
    {"approve", "approve a key", {{"owner", true}, {"tag", true, true}}, 1, 1, "PUBKEY"},
};

Result<Parsed> run(std::vector<const char*> args) {
  args.insert(args.begin(), "prog");
  return parse(static_cast<int>(args.size()), args.data(), kCommands);
}

TEST(Args, CommandWithOptions) {
  auto r = run({"keygen", "--out", "a.key", "--force"});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->command, "keygen");
  EXPECT_EQ(r->get("out"), "a.key");
  EXPECT_TRUE(r->has("force"));
}

TEST(Args, InlineValueAndPositional) {
  auto r = run({"approve", "--owner=alice", "KEY", "--tag", "a", "--tag", "b"});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->positional, std::vector<std::string>{"KEY"});
  EXPECT_EQ(r->get("owner"), "alice");
  EXPECT_EQ(r->all("tag"), (std::vector<std::string>{"a", "b"}));
}

TEST(Args, HelpAndVersionAnywhere) {
  EXPECT_EQ(run({"keygen", "--help"})->command, "help");
  EXPECT_EQ(run({"--version"})->command, "version");
}

TEST(Args, ErrorsNameTheCulprit) {
  EXPECT_EQ(run({}).status().message(), "no command given");
  EXPECT_EQ(run({"frobnicate"}).status().message(), "unknown command 'frobnicate'");
  EXPECT_EQ(run({"--frob"}).status().message(), "unknown option '--frob'");
  EXPECT_EQ(run({"keygen", "--frob"}).status().message(), "keygen: unknown option '--frob'");
  EXPECT_EQ(run({"keygen", "-x"}).status().message(), "keygen: unknown option '-x'");
  EXPECT_EQ(run({"keygen", "--out"}).status().message(), "keygen: option '--out' needs a value");
  EXPECT_EQ(run({"keygen", "--force=1"}).status().message(),
            "keygen: option '--force' takes no value");
  EXPECT_EQ(run({"keygen", "--out", "a", "--out", "b"}).status().message(),
            "keygen: option '--out' given twice");
  EXPECT_EQ(run({"keygen", "extra"}).status().message(), "keygen: takes no arguments, got 1");
  EXPECT_EQ(run({"approve"}).status().message(), "approve: takes arguments: PUBKEY, got 0");
}

TEST(Args, DoubleDashEndsOptions) {
  auto r = run({"approve", "--", "--weird-key"});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->positional[0], "--weird-key");
}

TEST(Args, UsageListsCommands) {
  std::string u = usage("tokengo-x", "Does x.", kCommands);
  EXPECT_NE(u.find("keygen [--out VALUE] [--force]"), std::string::npos);
  EXPECT_NE(u.find("approve PUBKEY"), std::string::npos);
}

}  // namespace
}  // namespace tg::cli
