#include "shared/crypto/ed25519.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "shared/crypto/hash.h"
#include "tests/unit/temp_dir.h"

namespace tg::crypto {
namespace {

constexpr const char* kSeedHex =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr const char* kPublicHex =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr const char* kEmptySigHex =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
    "701cf9b46bd25bf5f0595bbe24655141438e7a100b";

std::string to_hex(const uint8_t* p, size_t n) {
  return hex_encode(std::string_view(reinterpret_cast<const char*>(p), n));
}

KeyPair vector1() {
  auto r = KeyPair::from_seed(*hex_decode(kSeedHex));
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

// A fresh directory per test, removed with its files at the end.
class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ + "/agent.key";
  }
  void write_file(const std::string& content, mode_t mode) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << content;
    ASSERT_EQ(chmod(path_.c_str(), mode), 0);
  }
  std::string read_file() {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  test::TempDir tmp_{"tg-ed25519-test"};
  std::string dir_ = tmp_.path();
  std::string path_;
};

TEST(Ed25519, Rfc8032Vector1PublicKey) {
  KeyPair kp = vector1();
  EXPECT_EQ(to_hex(kp.public_key().data(), 32), kPublicHex);
}

TEST(Ed25519, Rfc8032Vector1SignatureOfEmptyMessage) {
  KeyPair kp = vector1();
  Signature sig = kp.sign("");
  EXPECT_EQ(to_hex(sig.data(), sig.size()), kEmptySigHex);
  EXPECT_TRUE(verify(kp.public_key(), "", sig));
}

TEST(Ed25519, DerivedKeysDependOnSeedContextAndId) {
  auto a = KeyPair::from_seed(*hex_decode(kSeedHex));
  auto again = KeyPair::from_seed(*hex_decode(kSeedHex));
  ASSERT_TRUE(a.ok() && again.ok());
  const KeyPair other = KeyPair::generate();
  const Secret k = a->derive_key("tgticket", 1);
  ASSERT_EQ(k.size(), 32u);
  EXPECT_TRUE(k.equals(again->derive_key("tgticket", 1).reveal()));
  EXPECT_FALSE(k.equals(a->derive_key("tgticket", 2).reveal()));
  EXPECT_FALSE(k.equals(a->derive_key("tgother_", 1).reveal()));
  EXPECT_FALSE(k.equals(other.derive_key("tgticket", 1).reveal()));
  EXPECT_NE(k.reveal().substr(0, 32), hex_decode(kSeedHex)->substr(0, 32));  // not the seed
}

TEST(Ed25519, FromSeedRejectsWrongLength) {
  auto r = KeyPair::from_seed("short");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
}

TEST(Ed25519, SignVerifyRoundTrip) {
  KeyPair kp = KeyPair::generate();
  Signature sig = kp.sign("hello hub");
  EXPECT_TRUE(verify(kp.public_key(), "hello hub", sig));
}

TEST(Ed25519, VerifyFailsWithWrongKey) {
  KeyPair a = KeyPair::generate();
  KeyPair b = KeyPair::generate();
  EXPECT_FALSE(verify(b.public_key(), "msg", a.sign("msg")));
}

TEST(Ed25519, VerifyFailsOnAlteredMessage) {
  KeyPair kp = KeyPair::generate();
  EXPECT_FALSE(verify(kp.public_key(), "msg2", kp.sign("msg")));
}

TEST(Ed25519, GenerateGivesDistinctKeys) {
  EXPECT_NE(KeyPair::generate().public_key(), KeyPair::generate().public_key());
}

TEST(Ed25519, PublicBase64ParsesBack) {
  KeyPair kp = vector1();
  std::string b64 = kp.public_base64();
  EXPECT_EQ(b64.size(), 44u);
  auto r = parse_public_key(b64);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kp.public_key());
}

TEST(Ed25519, ParsePublicKeyRejectsWrongLength) {
  auto r = parse_public_key(base64_encode(std::string(31, 'x')));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "public key must decode to 32 bytes, got 31");
}

TEST(Ed25519, ParsePublicKeyRejectsBadBase64) {
  EXPECT_FALSE(parse_public_key(vector1().public_base64() + "\n").ok());
}

TEST_F(KeyFileTest, SaveLoadRoundTrip) {
  KeyPair kp = KeyPair::generate();
  ASSERT_TRUE(kp.save(path_).ok());
  auto r = KeyPair::load(path_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->public_key(), kp.public_key());
  EXPECT_TRUE(verify(kp.public_key(), "m", r->sign("m")));
}

TEST_F(KeyFileTest, SaveWritesMode0600AndDocumentedFormat) {
  ASSERT_TRUE(vector1().save(path_).ok());
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::string seed = *hex_decode(kSeedHex);
  EXPECT_EQ(read_file(), "tokengo-ed25519-v1 " + base64_encode(seed) + "\n");
}

TEST_F(KeyFileTest, SaveReplacesExistingFileAndLeavesNoTemp) {
  write_file("old", 0644);
  ASSERT_TRUE(vector1().save(path_).ok());
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(KeyPair::load(path_).ok());
  std::string cmd = "test $(ls -A '" + dir_ + "' | wc -l) -eq 1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(KeyFileTest, SaveIntoMissingDirectoryFails) {
  auto st = vector1().save(dir_ + "/nope/agent.key");
  EXPECT_FALSE(st.ok());
}

TEST_F(KeyFileTest, LoadRefusesMode0644WithFixHint) {
  ASSERT_TRUE(vector1().save(path_).ok());
  ASSERT_EQ(chmod(path_.c_str(), 0644), 0);
  auto r = KeyPair::load(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::permission);
  EXPECT_EQ(r.status().message(), path_ + ": private key file is readable by others (mode 0644); run: chmod 600 " + path_);
}

TEST_F(KeyFileTest, LoadRefusesGroupBitsOnly) {
  ASSERT_TRUE(vector1().save(path_).ok());
  ASSERT_EQ(chmod(path_.c_str(), 0640), 0);
  EXPECT_EQ(KeyPair::load(path_).status().code(), Errc::permission);
}

TEST_F(KeyFileTest, LoadMissingFileIsNotFound) {
  auto r = KeyPair::load(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::not_found);
}

TEST_F(KeyFileTest, LoadAcceptsMissingFinalNewline) {
  std::string seed = *hex_decode(kSeedHex);
  write_file("tokengo-ed25519-v1 " + base64_encode(seed), 0600);
  auto r = KeyPair::load(path_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(to_hex(r->public_key().data(), 32), kPublicHex);
}

TEST_F(KeyFileTest, LoadRefusesTamperedFiles) {
  std::string good = base64_encode(*hex_decode(kSeedHex));
  const std::string bad[] = {
      "",
      "tokengo-ed25519-v2 " + good + "\n",             // wrong tag
      "tokengo-ed25519-v1  " + good + "\n",            // double space
      "tokengo-ed25519-v1 " + good.substr(0, 40) + "\n",  // truncated seed
      "tokengo-ed25519-v1 " + good + "\n\n",           // extra line
      "tokengo-ed25519-v1 " + good + " \n",            // trailing space
      "tokengo-ed25519-v1 " + good + "\r\n",           // CRLF
      "tokengo-ed25519-v1 " + good.substr(0, 42) + "!=\n",  // bad character
      "tokengo-ed25519-v1 " + good + "\n" + std::string(200, 'A'),  // oversize
  };
  for (const std::string& content : bad) {
    write_file(content, 0600);
    auto r = KeyPair::load(path_);
    EXPECT_FALSE(r.ok()) << "accepted: " << content;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Errc::parse) << content;
    }
  }
}

TEST_F(KeyFileTest, LoadErrorNeverEchoesSeed) {
  std::string good = base64_encode(*hex_decode(kSeedHex));
  write_file("tokengo-ed25519-v1 " + good + "x\n", 0600);
  auto r = KeyPair::load(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find(good.substr(0, 8)), std::string::npos);
}

}  // namespace
}  // namespace tg::crypto
