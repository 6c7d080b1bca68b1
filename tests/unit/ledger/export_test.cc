// The export file: entries then signed checkpoints, line by line.
#include <gtest/gtest.h>

#include <string>

#include "shared/ledger/export.h"
#include "tests/unit/ledger/examples.h"

namespace tg::ledger {
namespace {

std::string file_of(const std::vector<Entry>& entries, const std::vector<SignedCheckpoint>& cps) {
  std::string out;
  for (const Entry& e : entries) out += to_json(e) + "\n";
  for (const SignedCheckpoint& c : cps) out += checkpoint_to_json(c) + "\n";
  return out;
}

SignedCheckpoint signed_checkpoint() {
  SignedCheckpoint c;
  c.checkpoint = test::checkpoint();
  c.sig = sign(test::hub_key(), c.checkpoint);
  return c;
}

TEST(LedgerExport, RoundTripsEntriesAndCheckpoints) {
  const auto chain = test::chain();
  const SignedCheckpoint cp = signed_checkpoint();
  auto parsed = parse_export(file_of(chain, {cp}));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_EQ(parsed->entries.size(), chain.size());
  for (size_t i = 0; i < chain.size(); ++i) EXPECT_EQ(parsed->entries[i], chain[i]);
  ASSERT_EQ(parsed->checkpoints.size(), 1u);
  EXPECT_EQ(parsed->checkpoints[0].checkpoint, cp.checkpoint);
  EXPECT_EQ(parsed->checkpoints[0].sig, cp.sig);
  EXPECT_TRUE(verify(test::hub_key().public_key(), parsed->checkpoints[0].checkpoint,
                     parsed->checkpoints[0].sig));
}

TEST(LedgerExport, EmptyAndBlankLines) {
  auto empty = parse_export("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->entries.empty());
  auto blank = parse_export("\n\r\n" + to_json(test::chain()[0]) + "\r\n\n");
  ASSERT_TRUE(blank.ok()) << blank.status().message();
  EXPECT_EQ(blank->entries.size(), 1u);
}

TEST(LedgerExport, ErrorsNameTheLine) {
  auto chain = test::chain();
  std::string text = to_json(chain[0]) + "\n" + to_json(chain[1]) + "\n{\"agent\":1}\n";
  auto r = parse_export(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("line 3: ", 0), 0u) << r.status().message();
}

TEST(LedgerExport, CheckpointBeforeEntriesIsRefused) {
  auto r = parse_export(checkpoint_to_json(signed_checkpoint()) + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("before any entry"), std::string::npos);
}

TEST(LedgerExport, MalformedCheckpointsAreRefused) {
  const std::string first = to_json(test::chain()[0]) + "\n";
  std::string good = checkpoint_to_json(signed_checkpoint());
  const char* bad[] = {
      "{\"checkpoint\":{}}",
      "{\"checkpoint\":{\"seq\":0,\"head\":\"00\",\"total_cost\":0,\"total_credit\":0,\"time_ms\":0,\"sig\":\"\"}}",
      "{\"checkpoint\":[]}",
      "{\"checkpoint\":{\"seq\":1}} trailing",
  };
  for (const char* b : bad) {
    EXPECT_FALSE(parse_export(first + b + "\n").ok()) << b;
  }
  // A field too many.
  std::string extra = good;
  extra.insert(extra.size() - 2, ",\"x\":1");
  EXPECT_FALSE(parse_export(first + extra + "\n").ok());
  // A fraction where an integer belongs.
  std::string frac = good;
  const size_t at = frac.find("\"total_cost\":");
  ASSERT_NE(at, std::string::npos);
  frac.insert(frac.find(',', at), ".5");
  EXPECT_FALSE(parse_export(first + frac + "\n").ok());
  // Numbers the exporter never writes, though a double reads them as the
  // same integer: the signed text has one form per value.
  for (const char* form : {".0", "e0", ".0000000000000001"}) {
    std::string other_form = good;
    other_form.insert(other_form.find(',', other_form.find("\"seq\":")), form);
    auto r = parse_export(first + other_form + "\n");
    ASSERT_FALSE(r.ok()) << form;
    EXPECT_NE(r.status().message().find("is not a plain integer"), std::string::npos)
        << r.status().message();
  }
  // Nesting is bounded before cJSON sees the line.
  auto deep = parse_export(first + "{\"checkpoint\":" + std::string(100, '[') + "\n");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "line 2: checkpoint: nesting deeper than 4 at offset 17");
}

TEST(LedgerExport, MixedAgentsAreRefused) {
  Entry other = test::simple();
  other.agent = test::hub_key().public_key();
  auto r = parse_export(to_json(test::chain()[0]) + "\n" + to_json(other) + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("another agent"), std::string::npos);
}

TEST(LedgerExport, OverlongLineIsRefused) {
  std::string line(kMaxJsonLine + 1, ' ');
  auto r = parse_export(line + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::limit);
}

}  // namespace
}  // namespace tg::ledger
