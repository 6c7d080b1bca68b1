#include "shared/crypto/aead.h"

#include <gtest/gtest.h>

#include <string>

namespace tg::crypto {
namespace {

const std::string kKey(kAeadKeyBytes, 'k');

TEST(Aead, SealsAndOpensWithTheSameKeyAndData) {
  const std::string sealed = aead_seal(kKey, "the fields", "the context");
  EXPECT_EQ(sealed.size(), 10 + kAeadNonceBytes + kAeadTagBytes);
  EXPECT_EQ(sealed.find("the fields"), std::string::npos);  // not in clear
  auto opened = aead_open(kKey, sealed, "the context");
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(*opened, "the fields");
  // A random nonce each time: the same record seals to another text.
  EXPECT_NE(aead_seal(kKey, "the fields", "the context"), sealed);
  EXPECT_TRUE(aead_open(kKey, aead_seal(kKey, "", ""), "").ok());
}

TEST(Aead, RefusesAnyChangeOtherKeyOrOtherData) {
  const std::string sealed = aead_seal(kKey, "the fields", "the context");
  for (size_t i = 0; i < sealed.size(); ++i) {  // nonce, ciphertext and tag
    std::string changed = sealed;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    EXPECT_FALSE(aead_open(kKey, changed, "the context").ok()) << i;
  }
  EXPECT_FALSE(aead_open(std::string(kAeadKeyBytes, 'j'), sealed, "the context").ok());
  EXPECT_FALSE(aead_open(kKey, sealed, "the contexT").ok());
  EXPECT_FALSE(aead_open(kKey, sealed.substr(0, sealed.size() - 1), "the context").ok());
  auto short_one = aead_open(kKey, std::string(kAeadNonceBytes + kAeadTagBytes - 1, 'x'), "");
  ASSERT_FALSE(short_one.ok());
  EXPECT_EQ(short_one.status().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace tg::crypto
