// Test vectors of LEDGER.md section 6, frozen: agent seed 00..1f, hub seed
// 20..3f. The hashes, JSON lines and signature were checked independently with
// Python (hashlib, json, Ed25519 from `cryptography`) building the bytes from
// the layout tables; the layouts are also spelled out here field by field.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"
#include "shared/ledger/checkpoint.h"
#include "shared/ledger/entry.h"
#include "tests/unit/ledger/examples.h"

namespace tg::ledger {
namespace {

using test::hex_of;

constexpr const char* kAgentB64 = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
constexpr const char* kAgentHex = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
constexpr const char* kHubB64 = "Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=";
constexpr const char* kHubHex = "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7";

constexpr const char* kHashes[3] = {
    "6e69c22f30bc42a4873309f77e3f210f5a18da91615a3e12d63093c194b03b02",
    "dd7db4321752b035ca2d84c68976c888e2bad2cf051bcf1da618ef19d049367d",
    "5fe823805e81cea741d6d504ecf15de95934343288ab65088a3eee07fc08e106",
};

const char* const kLines[3] = {
    R"({"agent":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","seq":1,"request_id":"req-0001","model":"gpt-4o-mini","input":1200,"cached":200,"output":350,"estimated":false,"price_version":3,"cost":390,"tier_ppm":800000,"credit":312,"time_ms":1717171717000,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"6e69c22f30bc42a4873309f77e3f210f5a18da91615a3e12d63093c194b03b02"})",
    R"({"agent":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","seq":2,"request_id":"req-0002","model":"claude-3-haiku","input":5000,"cached":0,"output":1024,"estimated":true,"price_version":3,"cost":2530,"tier_ppm":800000,"credit":2024,"time_ms":1717171718500,"prev":"6e69c22f30bc42a4873309f77e3f210f5a18da91615a3e12d63093c194b03b02","hash":"dd7db4321752b035ca2d84c68976c888e2bad2cf051bcf1da618ef19d049367d"})",
    R"({"agent":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","seq":3,"request_id":"r\"3\\","model":"deepseek-chat","input":0,"cached":0,"output":0,"estimated":false,"price_version":4,"cost":0,"tier_ppm":800000,"credit":0,"time_ms":1717171720000,"prev":"dd7db4321752b035ca2d84c68976c888e2bad2cf051bcf1da618ef19d049367d","hash":"5fe823805e81cea741d6d504ecf15de95934343288ab65088a3eee07fc08e106"})",
};

constexpr const char* kSignatureHex =
    "4ac745609416cdc5e2817b356a29068f85195ba0cfdc649da67391974049ef77"
    "e8acc71221d392cf8c34cc22432f6c1455598e86642b078cc081dfee30edc007";

using Layout = std::vector<std::pair<std::string, std::string>>;  // hex, field name

// Canonical bytes of entry 1, field by field, spelled out from the table.
Layout entry1_layout() {
  return {
      {"746f6b656e676f2f6c65646765722d656e7472792f7631", "label"},  // tokengo/ledger-entry/v1
      {"00", "NUL"},
      {kAgentHex, "agent"},
      {"0000000000000001", "seq"},
      {"08", "L1"},
      {"7265712d30303031", "request_id"},  // req-0001
      {"0b", "L2"},
      {"6770742d346f2d6d696e69", "model"},  // gpt-4o-mini
      {"00000000000004b0", "input"},        // 1200
      {"00000000000000c8", "cached"},       // 200
      {"000000000000015e", "output"},       // 350
      {"00", "estimated"},
      {"0000000000000003", "price_version"},
      {"0000000000000186", "cost"},      // 390
      {"000c3500", "tier_ppm"},          // 800000
      {"0000000000000138", "credit"},    // 312
      {"0000018fcf690388", "time_ms"},   // 1717171717000
      {std::string(64, '0'), "prev"},
  };
}

Layout checkpoint_layout() {
  return {
      {"746f6b656e676f2f6c65646765722d636865636b706f696e742f7631", "label"},
      {"00", "NUL"},
      {kAgentHex, "agent"},
      {"0000000000000003", "seq"},
      {kHashes[2], "head"},
      {"0000000000000b68", "total_cost"},    // 2920
      {"0000000000000920", "total_credit"},  // 2336
      {"0000018fcf6a47c0", "time_ms"},       // 1717171800000
  };
}

std::string joined(const Layout& l) {
  std::string out;
  for (const auto& field : l) out += field.first;
  return out;
}

// The code block of LEDGER.md: hex padded to 66 columns, then the name.
std::string as_block(const Layout& l) {
  std::string out;
  for (const auto& field : l) {
    std::string line = field.first;
    line.resize(66, ' ');
    out += line + field.second + "\n";
  }
  return out;
}

TEST(LedgerVectors, Keys) {
  EXPECT_EQ(test::agent_key().public_base64(), kAgentB64);
  EXPECT_EQ(hex_of(test::agent_key().public_key()), kAgentHex);
  EXPECT_EQ(test::hub_key().public_base64(), kHubB64);
  EXPECT_EQ(hex_of(test::hub_key().public_key()), kHubHex);
}

TEST(LedgerVectors, CanonicalBytesOfEntryOne) {
  const std::string bytes = canonical(test::chain()[0]);
  EXPECT_EQ(bytes.size(), 178u);
  EXPECT_EQ(crypto::hex_encode(bytes), joined(entry1_layout()));
}

TEST(LedgerVectors, Hashes) {
  const std::vector<Entry> c = test::chain();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(to_hex(hash(c[i])), kHashes[i]) << "seq " << i + 1;
  EXPECT_EQ(canonical(c[1]).size(), 181u);
  EXPECT_EQ(canonical(c[2]).size(), 176u);
}

TEST(LedgerVectors, JsonLines) {
  const std::vector<Entry> c = test::chain();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(to_json(c[i]), kLines[i]);
    Result<Entry> e = from_json(kLines[i]);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    EXPECT_TRUE(*e == c[i]) << "seq " << i + 1;
  }
}

TEST(LedgerVectors, LinesFormAChain) {
  ChainWalker w(test::agent_key().public_key());
  for (const char* line : kLines) {
    Result<Entry> e = from_json(line);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    ASSERT_TRUE(w.add(*e).ok()) << w.add(*e).to_string();
  }
  EXPECT_EQ(to_hex(w.head()), kHashes[2]);
  EXPECT_EQ(w.total_cost(), 2920);
  EXPECT_EQ(w.total_credit(), 2336);
  EXPECT_TRUE(checkpoint_of(w, 1717171800000) == test::checkpoint());
}

TEST(LedgerVectors, CheckpointBytes) {
  const std::string bytes = canonical(test::checkpoint());
  EXPECT_EQ(bytes.size(), 125u);
  EXPECT_EQ(crypto::hex_encode(bytes), joined(checkpoint_layout()));
}

TEST(LedgerVectors, CheckpointSignature) {
  const crypto::Signature sig = sign(test::hub_key(), test::checkpoint());
  EXPECT_EQ(hex_of(sig), kSignatureHex);
  Result<std::string> raw = crypto::hex_decode(kSignatureHex);
  ASSERT_TRUE(raw.ok());
  crypto::Signature parsed;
  std::copy(raw->begin(), raw->end(), parsed.begin());
  EXPECT_TRUE(verify(test::hub_key().public_key(), test::checkpoint(), parsed));
}

// LEDGER.md holds the same vectors.
std::string ledger_md() {
  std::ifstream in(TG_LEDGER_MD);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(LedgerVectors, DocumentHoldsTheKeys) {
  const std::string doc = ledger_md();
  ASSERT_FALSE(doc.empty()) << TG_LEDGER_MD;
  EXPECT_NE(doc.find(std::string("\nagent   ") + kAgentB64 + "\n"), std::string::npos);
  EXPECT_NE(doc.find(std::string("\nagent   ") + kAgentHex + "\n"), std::string::npos);
  EXPECT_NE(doc.find(std::string("\nhub     ") + kHubB64 + "\n"), std::string::npos);
  EXPECT_NE(doc.find(std::string("\nhub     ") + kHubHex + "\n"), std::string::npos);
}

TEST(LedgerVectors, DocumentHoldsTheLayouts) {
  const std::string doc = ledger_md();
  EXPECT_NE(doc.find("\n" + as_block(entry1_layout()) + "```"), std::string::npos)
      << as_block(entry1_layout());
  EXPECT_NE(doc.find("\n" + as_block(checkpoint_layout()) + "```"), std::string::npos)
      << as_block(checkpoint_layout());
}

TEST(LedgerVectors, DocumentHoldsHashesLinesAndSignature) {
  const std::string doc = ledger_md();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NE(doc.find("\nseq " + std::to_string(i + 1) + "   " + kHashes[i] + "\n"),
              std::string::npos);
    EXPECT_NE(doc.find(std::string("\n") + kLines[i] + "\n"), std::string::npos) << kLines[i];
  }
  const std::string sig(kSignatureHex);
  EXPECT_NE(doc.find("\n" + sig.substr(0, 64) + "\n" + sig.substr(64) + "\n"), std::string::npos);
}

}  // namespace
}  // namespace tg::ledger
