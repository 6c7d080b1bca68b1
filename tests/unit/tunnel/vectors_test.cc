// Test vectors of PROTOCOL.md, frozen: seed 00..1f, nonce 32 x a5, hub SPKI
// hash 32 x 5a. The public key and the signature were checked independently
// with OpenSSL 3 (`openssl pkeyutl -sign -rawin` over the same 119 bytes);
// the signed bytes are also built here by hand from their layout.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "shared/crypto/ed25519.h"
#include "shared/crypto/hash.h"
#include "shared/tunnel/auth.h"
#include "shared/tunnel/frame.h"
#include "shared/tunnel/messages.h"
#include "tests/unit/tunnel/examples.h"

namespace tg::tunnel {
namespace {

constexpr const char* kPublicKeyB64 = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
constexpr const char* kPublicKeyHex = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
constexpr const char* kSignatureHex =
    "5496eb5632c5955c5563d98c3781739f44d48af3fe735a21a83a6d9652896ad0"
    "ff7421b1bc3a5743f9ad0d7f8390e39422f27474e041b58178116d57143cb807";

crypto::KeyPair test_key() {
  std::string seed;
  for (int i = 0; i < 32; ++i) seed.push_back(static_cast<char>(i));
  return crypto::KeyPair::from_seed(seed).value();
}

Nonce test_nonce() {
  Nonce n;
  n.fill(0xa5);
  return n;
}

crypto::Sha256 test_spki() {
  crypto::Sha256 h;
  h.fill(0x5a);
  return h;
}

std::string repeat(const char* hex_byte, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += hex_byte;
  return out;
}

template <size_t N>
std::string hex_of(const std::array<uint8_t, N>& a) {
  return crypto::hex_encode(std::string_view(reinterpret_cast<const char*>(a.data()), N));
}

TEST(TunnelVectors, PublicKeyOfTheTestSeed) {
  const crypto::KeyPair kp = test_key();
  EXPECT_EQ(kp.public_base64(), kPublicKeyB64);
  EXPECT_EQ(hex_of(kp.public_key()), kPublicKeyHex);
}

TEST(TunnelVectors, LedgerKeyOfTheWelcomeExample) {
  std::string seed;
  for (int i = 0x20; i < 0x40; ++i) seed.push_back(static_cast<char>(i));
  const crypto::KeyPair kp = crypto::KeyPair::from_seed(seed).value();
  EXPECT_EQ(hex_of(kp.public_key()), test::kLedgerKeyHex);
  EXPECT_EQ(kp.public_base64(), "Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=");
  Welcome w = std::get<Welcome>(test::examples()[3].message);
  EXPECT_TRUE(w.ledger_key == kp.public_key());
}

TEST(TunnelVectors, SignedBytesFollowTheLayout) {
  // "tokengo/tunnel-auth/v1" spelled out byte by byte, then 0x00, nonce, spki, key.
  const std::string label = "74" "6f" "6b" "65" "6e" "67" "6f" "2f" "74" "75" "6e" "6e" "65" "6c" "2d"
                            "61" "75" "74" "68" "2f" "76" "31";
  const std::string expected = label + "00" + repeat("a5", 32) + repeat("5a", 32) + kPublicKeyHex;
  const std::string got = auth_signed_bytes(test_nonce(), test_spki(), test_key().public_key());
  EXPECT_EQ(got.size(), kAuthSignedSize);
  EXPECT_EQ(got.size(), 119u);
  EXPECT_EQ(crypto::hex_encode(got), expected);
}

TEST(TunnelVectors, SignatureOfTheTestVector) {
  const crypto::Signature sig = sign_auth(test_key(), test_nonce(), test_spki());
  EXPECT_EQ(hex_of(sig), kSignatureHex);
}

TEST(TunnelVectors, AuthMessageOfTheTestVector) {
  const crypto::KeyPair kp = test_key();
  Auth a;
  a.pubkey = kp.public_key();
  a.sig = sign_auth(kp, test_nonce(), test_spki());
  a.agent_version = "0.1.0";
  a.platform = "linux x86_64";
  EXPECT_EQ(encode(a), test::examples()[1].json);
}

TEST(TunnelVectors, SignatureVerifies) {
  const crypto::KeyPair kp = test_key();
  const crypto::Signature sig = sign_auth(kp, test_nonce(), test_spki());
  EXPECT_TRUE(verify_auth(kp.public_key(), sig, test_nonce(), test_spki()));
}

TEST(TunnelVectors, SignatureForAnotherHubKeyDoesNotVerify) {
  const crypto::KeyPair kp = test_key();
  const crypto::Signature sig = sign_auth(kp, test_nonce(), test_spki());
  crypto::Sha256 other = test_spki();
  other[31] ^= 1;
  EXPECT_FALSE(verify_auth(kp.public_key(), sig, test_nonce(), other));
}

TEST(TunnelVectors, SignatureForAnotherNonceDoesNotVerify) {
  const crypto::KeyPair kp = test_key();
  const crypto::Signature sig = sign_auth(kp, test_nonce(), test_spki());
  Nonce other = test_nonce();
  other[0] ^= 1;
  EXPECT_FALSE(verify_auth(kp.public_key(), sig, other, test_spki()));
}

TEST(TunnelVectors, SignatureUnderAnotherKeyDoesNotVerify) {
  const crypto::Signature sig = sign_auth(test_key(), test_nonce(), test_spki());
  const crypto::KeyPair other = crypto::KeyPair::generate();
  EXPECT_FALSE(verify_auth(other.public_key(), sig, test_nonce(), test_spki()));
}

TEST(TunnelVectors, DataFrameWithoutFin) {
  EXPECT_EQ(crypto::hex_encode(encode_frame(7, false, "hello").value()), "000000000768656c6c6f");
}

TEST(TunnelVectors, DataFrameWithFin) {
  EXPECT_EQ(crypto::hex_encode(encode_frame(7, true, "").value()), "0100000007");
  EXPECT_EQ(crypto::hex_encode(encode_frame(7, true, "bye").value()), "0100000007627965");
}

TEST(TunnelVectors, PinToSha256) {
  const std::string pin = "sha256/" + crypto::base64_encode(std::string(32, '\x5a'));
  EXPECT_EQ(pin, "sha256/WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=");
  Result<crypto::Sha256> h = pin_to_sha256(pin);
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_TRUE(*h == test_spki());
}

TEST(TunnelVectors, PinWithoutPrefixIsRejected) {
  Result<crypto::Sha256> h = pin_to_sha256("WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Errc::parse);
}

TEST(TunnelVectors, PinOfWrongLengthIsRejected) {
  Result<crypto::Sha256> h = pin_to_sha256("sha256/WlpaWlpa");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().message(), "pin \"sha256/WlpaWlpa\" must hold the base64 of 32 bytes, got 6");
}

TEST(TunnelVectors, PinWithBadBase64IsRejected) {
  EXPECT_FALSE(pin_to_sha256("sha256/Wlpa*lpa").ok());
}

// PROTOCOL.md holds the same vectors: every example line and every hex value.
std::string protocol_md() {
  std::ifstream in(TG_TUNNEL_PROTOCOL_MD);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(TunnelVectors, DocumentHoldsEveryExampleMessage) {
  const std::string doc = protocol_md();
  ASSERT_FALSE(doc.empty()) << TG_TUNNEL_PROTOCOL_MD;
  for (const auto& ex : test::examples()) {
    EXPECT_NE(doc.find("\n" + ex.json + "\n"), std::string::npos) << ex.json;
  }
}

TEST(TunnelVectors, DocumentHoldsTheAuthVector) {
  const std::string doc = protocol_md();
  EXPECT_NE(doc.find(std::string("base64  ") + kPublicKeyB64), std::string::npos);
  EXPECT_NE(doc.find(std::string("hex     ") + kPublicKeyHex), std::string::npos);
  const std::string sig(kSignatureHex);
  EXPECT_NE(doc.find(sig.substr(0, 64) + "\n" + sig.substr(64)), std::string::npos);
  const std::string signed_hex =
      crypto::hex_encode(auth_signed_bytes(test_nonce(), test_spki(), test_key().public_key()));
  const std::string layout = signed_hex.substr(0, 44) + "\n" + signed_hex.substr(44, 2) + "\n" +
                             signed_hex.substr(46, 64) + "\n" + signed_hex.substr(110, 64) + "\n" +
                             signed_hex.substr(174, 64);
  EXPECT_NE(doc.find(layout), std::string::npos);
}

TEST(TunnelVectors, DocumentHoldsTheLedgerKey) {
  EXPECT_NE(protocol_md().find(std::string("hex\n`") + test::kLedgerKeyHex + "`"), std::string::npos);
}

TEST(TunnelVectors, DocumentedSettleAddsUp) {
  // The prose of section 10: 100 x 150000 + 50 x 600000 per million is 45,
  // 45 x 800000 per million is 36, with the price row of the prices example.
  const auto ex = test::examples();
  const Prices* prices = nullptr;
  const Settle* settle = nullptr;
  for (const auto& e : ex) {
    if (const auto* p = std::get_if<Prices>(&e.message)) prices = p;
    if (const auto* st = std::get_if<Settle>(&e.message)) settle = st;
  }
  ASSERT_TRUE(prices && settle);
  const PriceEntry& row = prices->models[0];
  ASSERT_EQ(row.model, settle->model);
  EXPECT_EQ(settle->price_version, prices->version);
  const int64_t cost = (static_cast<int64_t>(settle->input) * row.input +
                        static_cast<int64_t>(settle->cached) * row.cached_input +
                        static_cast<int64_t>(settle->output) * row.output) / 1000000;
  EXPECT_EQ(settle->cost, cost);
  EXPECT_EQ(settle->credit, settle->cost * settle->tier_ppm / 1000000);
}

TEST(TunnelVectors, DocumentHoldsTheFrameVectors) {
  const std::string doc = protocol_md();
  EXPECT_NE(doc.find("000000000768656c6c6f\n"), std::string::npos);
  EXPECT_NE(doc.find("0100000007\n"), std::string::npos);
  EXPECT_NE(doc.find("0100000007627965\n"), std::string::npos);
}

}  // namespace
}  // namespace tg::tunnel
