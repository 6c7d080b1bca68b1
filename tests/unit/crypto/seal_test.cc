#include "shared/crypto/seal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "shared/crypto/hash.h"
#include "tests/unit/temp_dir.h"

namespace tg::crypto {
namespace {

constexpr const char* kContext = "[provider vec] type openai";
constexpr const char* kSecret = "sk-SEALTEST-7f3a9c";

// Written by this code once; a change of format or cipher makes them fail.
constexpr const char* kKeyfileVector =
    "sealed:v1:keyfile:q/+CF7gNYfJuvpzXR3Ydw862ctxq5EqD2Ij9VXHjk3VMKd4+8dplVZxTdI6//Kpt3GfWOaRiO"
    "oEyuhtjpuuFJgylYWE8OwrbrROQeRNq3dO2";
constexpr const char* kArgon2Vector =
    "sealed:v1:argon2id:U1NTU1NTU1NTU1NTU1NTUw==:6ZCCJJmLFPxYYzHLYmfGeUhc9dHWG5BvwQsvg6CznwneS4Md"
    "GNISPopWTiJ9rggt6c2pfDl63Gun09TY6QNEfirBMuXxrz66oS1ctCbVJ8/9";

std::string vector_key_bytes() {
  std::string k;
  for (int i = 1; i <= 32; ++i) k += static_cast<char>(i);
  return k;
}

SealKey file_key(char fill) {
  auto k = SealKey::from_bytes(std::string(32, fill));
  EXPECT_TRUE(k.ok());
  return std::move(k).value();
}

std::string seal_ok(const SealKey& key, std::string_view context, std::string_view secret) {
  auto t = seal(key, context, secret);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? *t : std::string();
}

// The error of opening `token`; also checks it never holds the secret.
std::string open_error(const SealKey& key, std::string_view token, std::string_view context) {
  auto v = parse_sealed(token);
  if (!v.ok()) return v.status().message();
  auto s = open(key, *v, context);
  EXPECT_FALSE(s.ok());
  if (s.ok()) return "";
  EXPECT_EQ(s.status().message().find(kSecret), std::string::npos);
  return s.status().message();
}

std::string parse_error(std::string_view token) {
  auto v = parse_sealed(token);
  EXPECT_FALSE(v.ok()) << token;
  return v.ok() ? "" : v.status().message();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(Seal, KeyfileRoundTrip) {
  SealKey key = file_key('k');
  std::string token = seal_ok(key, kContext, kSecret);
  EXPECT_EQ(token.rfind("sealed:v1:keyfile:", 0), 0u) << token;
  EXPECT_FALSE(contains(token, kSecret));
  auto v = parse_sealed(token);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->kind, SealKind::keyfile);
  EXPECT_EQ(format_sealed(*v), token);
  auto s = open(key, *v, kContext);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->reveal(), kSecret);
}

TEST(Seal, PassphraseRoundTrip) {
  const std::string salt = new_seal_salt();
  ASSERT_EQ(salt.size(), kSealSaltBytes);
  auto key = SealKey::from_passphrase("correct horse battery", salt);
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->kind(), SealKind::argon2id);
  std::string token = seal_ok(*key, kContext, kSecret);
  EXPECT_EQ(token.rfind("sealed:v1:argon2id:" + base64_encode(salt) + ":", 0), 0u) << token;
  auto v = parse_sealed(token);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->salt, salt);
  // The same passphrase and salt give the same key again.
  auto again = SealKey::from_passphrase("correct horse battery", salt);
  ASSERT_TRUE(again.ok());
  auto s = open(*again, *v, kContext);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->reveal(), kSecret);
}

TEST(Seal, FixedVectorsStillOpen) {
  auto key = SealKey::from_bytes(vector_key_bytes());
  ASSERT_TRUE(key.ok());
  auto v = parse_sealed(kKeyfileVector);
  ASSERT_TRUE(v.ok()) << v.status().message();
  auto s = open(*key, *v, kContext);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->reveal(), "sk-vector-0001");

  auto pk = SealKey::from_passphrase("correct horse", std::string(16, 'S'));
  ASSERT_TRUE(pk.ok());
  auto v2 = parse_sealed(kArgon2Vector);
  ASSERT_TRUE(v2.ok()) << v2.status().message();
  auto s2 = open(*pk, *v2, kContext);
  ASSERT_TRUE(s2.ok()) << s2.status().message();
  EXPECT_EQ(s2->reveal(), "sk-vector-0002");
}

TEST(Seal, EachSealUsesAFreshNonce) {
  SealKey key = file_key('k');
  EXPECT_NE(seal_ok(key, kContext, kSecret), seal_ok(key, kContext, kSecret));
}

TEST(Seal, WrongKeyFileDoesNotOpen) {
  std::string token = seal_ok(file_key('k'), kContext, kSecret);
  EXPECT_EQ(open_error(file_key('x'), token, kContext),
            "sealed value does not open with this seal key file (wrong key, or the value was "
            "altered)");
}

TEST(Seal, WrongPassphraseDoesNotOpen) {
  const std::string salt(16, 's');
  auto right = SealKey::from_passphrase("right", salt);
  auto wrong = SealKey::from_passphrase("wrong", salt);
  ASSERT_TRUE(right.ok() && wrong.ok());
  std::string token = seal_ok(*right, kContext, kSecret);
  EXPECT_EQ(open_error(*wrong, token, kContext),
            "sealed value does not open with this passphrase (wrong key, or the value was "
            "altered)");
}

TEST(Seal, EveryAlteredPayloadByteIsRefused) {
  SealKey key = file_key('k');
  auto v = parse_sealed(seal_ok(key, kContext, kSecret));
  ASSERT_TRUE(v.ok());
  for (size_t i = 0; i < v->payload.size(); ++i) {
    SealedValue bad = *v;
    bad.payload[i] = static_cast<char>(bad.payload[i] ^ 0x01);
    auto s = open(key, bad, kContext);
    ASSERT_FALSE(s.ok()) << "byte " << i;
    EXPECT_TRUE(contains(s.status().message(), "does not open")) << s.status().message();
  }
}

TEST(Seal, ATokenMovedToAnotherContextIsRefused) {
  SealKey key = file_key('k');
  std::string token = seal_ok(key, "[provider a] type openai", kSecret);
  EXPECT_EQ(open_error(key, token, "[provider b] type openai"),
            "value was sealed for [provider a] type openai, not for [provider b] type openai");
  EXPECT_EQ(open_error(key, token, "[provider a] type anthropic"),
            "value was sealed for [provider a] type openai, not for [provider a] type anthropic");
}

TEST(Seal, TruncatedTokensAreRefused) {
  SealKey key = file_key('k');
  std::string token = seal_ok(key, kContext, kSecret);
  // Cut at every 4-character boundary of the base64: too short or not opening.
  const size_t body = std::string("sealed:v1:keyfile:").size();
  for (size_t cut = body; cut < token.size(); cut += 4) {
    std::string t = token.substr(0, cut);
    auto v = parse_sealed(t);
    if (!v.ok()) {
      EXPECT_TRUE(contains(v.status().message(), "sealed value")) << v.status().message();
      continue;
    }
    auto s = open(key, *v, kContext);
    EXPECT_FALSE(s.ok()) << "cut at " << cut;
  }
  EXPECT_EQ(parse_error("sealed:v1:keyfile:" + base64_encode(std::string(42, 'x'))),
            "sealed value: box is 42 bytes, must be 43..1320 (truncated?)");
}

TEST(Seal, MalformedTokensNameTheProblem) {
  const std::string box = base64_encode(std::string(60, 'b'));
  const std::string salt = base64_encode(std::string(16, 's'));
  EXPECT_EQ(parse_error("sk-plain"), "sealed value must start with 'sealed:'");
  EXPECT_EQ(parse_error("sealed:v2:keyfile:" + box),
            "sealed value has unknown version 'v2' (this agent reads sealed:v1:...)");
  EXPECT_EQ(parse_error("sealed:v1\x01:keyfile:" + box),
            "sealed value has unknown version (unreadable) (this agent reads sealed:v1:...)");
  EXPECT_EQ(parse_error("sealed:v1:scrypt:" + box),
            "sealed value has unknown kind 'scrypt' (expected keyfile or argon2id)");
  EXPECT_EQ(parse_error("sealed:v1"), "sealed value has unknown kind (unreadable) (expected "
                                      "keyfile or argon2id)");
  EXPECT_EQ(parse_error("sealed:v1:keyfile:" + box + ":x"),
            "sealed value: expected sealed:v1:keyfile:<base64>, got 4 ':'-separated fields");
  EXPECT_EQ(parse_error("sealed:v1:argon2id:" + box),
            "sealed value: expected sealed:v1:argon2id:<base64 salt>:<base64>, got 3 "
            "':'-separated fields");
  EXPECT_EQ(parse_error("sealed:v1:argon2id:" + base64_encode("short") + ":" + box),
            "sealed value: salt must be 16 bytes, got 5");
  EXPECT_EQ(parse_error("sealed:v1:argon2id:" + salt + ":" + box + ":::"),
            "sealed value: expected sealed:v1:argon2id:<base64 salt>:<base64>, got 7 "
            "':'-separated fields");
  EXPECT_EQ(parse_error("sealed:v1:keyfile:" + box.substr(0, box.size() - 1)),
            "sealed value: box: base64: length 79 is not a multiple of 4");
  EXPECT_EQ(parse_error("sealed:v1:keyfile:" + box.substr(0, 76) + "!!!!"),
            "sealed value: box: base64: invalid character or padding at offset 76");
  EXPECT_EQ(parse_error("sealed:v1:keyfile: " + box.substr(1)),
            "sealed value: box: base64: invalid character or padding at offset 0");
  EXPECT_EQ(parse_error("sealed:v1:argon2id:" + salt.substr(0, 20) + "!!!!:" + box),
            "sealed value: salt: base64: invalid character or padding at offset 20");
  EXPECT_EQ(parse_error("sealed:v1:keyfile:" + std::string(kMaxSealedTextBytes, 'A')),
            "sealed value is longer than 2048 bytes (2066)");
}

TEST(Seal, KindAndSaltMustMatchTheKey) {
  SealKey fk = file_key('k');
  auto pk = SealKey::from_passphrase("p", std::string(16, 'a'));
  auto pk2 = SealKey::from_passphrase("p", std::string(16, 'b'));
  ASSERT_TRUE(pk.ok() && pk2.ok());
  std::string by_file = seal_ok(fk, kContext, kSecret);
  std::string by_pass = seal_ok(*pk, kContext, kSecret);
  EXPECT_EQ(open_error(*pk, by_file, kContext),
            "value is sealed with kind keyfile, the key is of kind argon2id");
  EXPECT_EQ(open_error(fk, by_pass, kContext),
            "value is sealed with kind argon2id, the key is of kind keyfile");
  EXPECT_EQ(open_error(*pk2, by_pass, kContext),
            "value is sealed with another argon2id salt than the key");
}

TEST(Seal, LimitsOfSecretAndContext) {
  SealKey key = file_key('k');
  const std::string longest_secret(kMaxSealedSecretBytes, 'S');
  const std::string longest_context(kMaxSealContextBytes, 'C');
  auto t = seal(key, longest_context, longest_secret);
  ASSERT_TRUE(t.ok()) << t.status().message();
  // The largest token fits the parser's limit and opens.
  auto pk = SealKey::from_passphrase("p", std::string(16, 'a'));
  ASSERT_TRUE(pk.ok());
  auto biggest = seal(*pk, longest_context, longest_secret);
  ASSERT_TRUE(biggest.ok());
  EXPECT_LE(biggest->size(), kMaxSealedTextBytes);
  auto v = parse_sealed(*biggest);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->payload.size(), kMaxSealPayloadBytes);
  auto s = open(*pk, *v, longest_context);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->reveal(), longest_secret);

  EXPECT_FALSE(seal(key, longest_context + "C", "k").ok());
  EXPECT_FALSE(seal(key, "", "k").ok());
  EXPECT_FALSE(seal(key, kContext, "").ok());
  auto too_long = seal(key, kContext, longest_secret + "S");
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().message(), "seal: the secret must be 1..1024 bytes, got 1025");
}

TEST(Seal, PassphraseLimits) {
  EXPECT_EQ(SealKey::from_passphrase("", std::string(16, 'a')).status().message(),
            "passphrase is empty");
  EXPECT_EQ(SealKey::from_passphrase(std::string(kMaxPassphraseBytes + 1, 'p'),
                                     std::string(16, 'a'))
                .status()
                .message(),
            "passphrase is longer than 1024 bytes");
  EXPECT_EQ(SealKey::from_passphrase("p", "salt").status().message(),
            "argon2id salt must be 16 bytes, got 4");
  EXPECT_EQ(SealKey::from_bytes("short").status().message(), "seal key must be 32 bytes, got 5");
}

// A fresh directory per test, removed with its files at the end.
class SealFileTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }
  test::TempDir tmp_{"tg-seal-test"};
  std::string dir_ = tmp_.path();
};

TEST_F(SealFileTest, KeyFileIsCreated0600AndLoadsBack) {
  const std::string path = dir_ + "/seal.key";
  SealKey key = SealKey::generate();
  ASSERT_TRUE(key.create_file(path).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto loaded = SealKey::load_file(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto v = parse_sealed(seal_ok(key, kContext, kSecret));
  ASSERT_TRUE(v.ok());
  auto s = open(*loaded, *v, kContext);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->reveal(), kSecret);
}

TEST_F(SealFileTest, KeyFileIsNeverReplaced) {
  const std::string path = write("seal.key", std::string(32, 'a'), 0600);
  Status s = SealKey::generate().create_file(path);
  EXPECT_EQ(s.message(), path + ": already exists; refusing to replace a seal key file");
  auto still = SealKey::load_file(path);
  ASSERT_TRUE(still.ok());
  auto v = parse_sealed(seal_ok(file_key('a'), kContext, kSecret));
  EXPECT_TRUE(open(*still, *v, kContext).ok());
}

TEST_F(SealFileTest, KeyFileReadableByOthersIsRefused) {
  for (mode_t mode : {0644u, 0640u, 0604u, 0660u, 0602u}) {
    const std::string path = write("seal.key", std::string(32, 'a'), mode);
    auto k = SealKey::load_file(path);
    ASSERT_FALSE(k.ok());
    EXPECT_EQ(k.status().code(), Errc::permission);
    char m[8];
    std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(mode));
    EXPECT_EQ(k.status().message(), path + ": seal key file is accessible by group or others "
                                           "(mode " + m + "); run: chmod 600 " + path);
  }
  EXPECT_TRUE(SealKey::load_file(write("seal.key", std::string(32, 'a'), 0400)).ok());
}

TEST_F(SealFileTest, KeyFileOfWrongSizeOrMissingIsRefused) {
  std::string path = write("short.key", std::string(31, 'a'), 0600);
  EXPECT_EQ(SealKey::load_file(path).status().message(),
            path + ": seal key file must hold exactly 32 bytes, has 31");
  path = write("long.key", std::string(33, 'a'), 0600);
  EXPECT_EQ(SealKey::load_file(path).status().message(),
            path + ": seal key file must hold exactly 32 bytes, has more");
  auto missing = SealKey::load_file(dir_ + "/none.key");
  EXPECT_EQ(missing.status().code(), Errc::not_found);
  EXPECT_EQ(SealKey::load_file(dir_).status().message(),
            dir_ + ": seal key file is not a regular file");
}

TEST_F(SealFileTest, PassphraseFileIsOneLine) {
  auto p = read_passphrase_file(write("pass", "open sesame\n", 0600));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->reveal(), "open sesame");
  p = read_passphrase_file(write("pass", "crlf\r\n", 0600));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->reveal(), "crlf");
  p = read_passphrase_file(write("pass", "no newline", 0600));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->reveal(), "no newline");
  p = read_passphrase_file(write("pass", std::string(kMaxPassphraseBytes, 'p') + "\n", 0600));
  EXPECT_TRUE(p.ok());

  std::string path = write("pass", "\n", 0600);
  EXPECT_EQ(read_passphrase_file(path).status().message(), path + ": passphrase file is empty");
  EXPECT_EQ(read_passphrase_file(write("pass", "a\nb\n", 0600)).status().message(),
            path + ": passphrase file must hold one line, found more");
  EXPECT_EQ(read_passphrase_file(write("pass", std::string(kMaxPassphraseBytes + 1, 'p'), 0600))
                .status()
                .message(),
            path + ": passphrase is longer than 1024 bytes");
  EXPECT_EQ(read_passphrase_file(write("pass", "secret words\n", 0640)).status().message(),
            path + ": passphrase file is accessible by group or others (mode 0640); run: chmod "
                   "600 " + path);
}

}  // namespace
}  // namespace tg::crypto
