#include "shared/tls/certgen.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "shared/tls/context.h"
#include "shared/tls/pin.h"
#include "tests/unit/tls/tls_test_util.h"

namespace tg::tls {
namespace {

using test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(CertGen, GeneratesDistinctP256Keys) {
  Result<std::string> a = generate_key();
  Result<std::string> b = generate_key();
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a.value(), b.value());
  EXPECT_EQ(a->rfind("-----BEGIN EC PRIVATE KEY-----", 0), 0u);
}

TEST(CertGen, SelfSignedCertLoadsIntoServerContextWithMatchingPin) {
  test::KeyCert kc = test::make_self_signed("hub.test");
  ASSERT_EQ(kc.cert.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  ServerConfig sc;
  sc.cert_chain_pem = kc.cert;
  sc.private_key_pem = kc.key;
  auto ctx = ServerContext::create(sc);
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  Result<std::string> pin = pin_of_cert_pem(kc.cert);
  ASSERT_TRUE(pin.ok());
  EXPECT_EQ(pin.value(), ctx.value()->pin());
  EXPECT_TRUE(check_pin(pin.value()).ok());
  EXPECT_EQ(pin->size(), 7u + 44u);
}

TEST(CertGen, ServerContextRefusesKeyOfAnotherCert) {
  test::KeyCert a = test::make_self_signed("a.test");
  test::KeyCert b = test::make_self_signed("b.test");
  ServerConfig sc;
  sc.cert_chain_pem = a.cert;
  sc.private_key_pem = b.key;
  auto ctx = ServerContext::create(sc);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), Errc::invalid_argument);
}

TEST(CertGen, IssuerKeyMustMatchIssuerCert) {
  test::KeyCert ca = test::make_ca("Test CA");
  test::KeyCert other = test::make_ca("Other CA");
  CertRequest req;
  req.common_name = "leaf";
  req.key_pem = test::must(generate_key());
  req.issuer_cert_pem = ca.cert;
  req.issuer_key_pem = other.key;
  Result<std::string> r = issue_cert(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("issuer key does not match"), std::string::npos);
}

TEST(CertGen, RejectsBadRequestFields) {
  CertRequest req;
  req.key_pem = test::must(generate_key());
  req.common_name = "a,CN=b";
  EXPECT_EQ(issue_cert(req).status().code(), Errc::invalid_argument);
  req.common_name = "ok";
  req.days = 0;
  EXPECT_EQ(issue_cert(req).status().code(), Errc::invalid_argument);
  req.days = 10;
  req.ip_addresses = {"localhost"};
  Result<std::string> r = issue_cert(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'localhost'"), std::string::npos);
  req.ip_addresses = {"::1", "10.0.0.1"};
  req.dns_names = {"bad name"};
  EXPECT_EQ(issue_cert(req).status().code(), Errc::invalid_argument);
  req.dns_names = {"*.example.com"};
  EXPECT_TRUE(issue_cert(req).ok());
  req.key_pem = "not a key";
  EXPECT_EQ(issue_cert(req).status().code(), Errc::parse);
}

TEST(CertGen, EnsureSelfSignedCreatesFilesWithModes) {
  TempDir dir;
  const std::string cert = dir.file("hub.crt"), key = dir.file("hub.key");
  Status st = ensure_self_signed(cert, key, "tokengo-hub", {"hub.example.org", "localhost"});
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(mode_of(cert), 0644u);
  ServerConfig sc;
  sc.cert_chain_file = cert;
  sc.private_key_file = key;
  auto ctx = ServerContext::create(sc);
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  Result<std::string> pin = pin_of_cert_file(cert);
  ASSERT_TRUE(pin.ok()) << pin.status().to_string();
  EXPECT_EQ(pin.value(), ctx.value()->pin());
}

TEST(CertGen, EnsureSelfSignedIsIdempotent) {
  TempDir dir;
  const std::string cert = dir.file("hub.crt"), key = dir.file("hub.key");
  ASSERT_TRUE(ensure_self_signed(cert, key, "tokengo-hub", {}).ok());
  const std::string c1 = slurp(cert), k1 = slurp(key);
  ASSERT_TRUE(ensure_self_signed(cert, key, "tokengo-hub", {}).ok());
  EXPECT_EQ(slurp(cert), c1);
  EXPECT_EQ(slurp(key), k1);
}

TEST(CertGen, EnsureSelfSignedKeepsAnExistingKeyAndItsPin) {
  TempDir dir;
  const std::string cert = dir.file("hub.crt"), key = dir.file("hub.key");
  ASSERT_TRUE(ensure_self_signed(cert, key, "tokengo-hub", {}).ok());
  const std::string pin1 = test::must(pin_of_cert_file(cert));
  const std::string k1 = slurp(key);
  ASSERT_EQ(::unlink(cert.c_str()), 0);
  ASSERT_TRUE(ensure_self_signed(cert, key, "tokengo-hub", {}).ok());
  EXPECT_EQ(slurp(key), k1);
  EXPECT_EQ(test::must(pin_of_cert_file(cert)), pin1);
}

TEST(CertGen, EnsureSelfSignedRefusesCertWithoutKey) {
  TempDir dir;
  const std::string cert = dir.file("hub.crt"), key = dir.file("hub.key");
  ASSERT_TRUE(ensure_self_signed(cert, key, "tokengo-hub", {}).ok());
  ASSERT_EQ(::unlink(key.c_str()), 0);
  Status st = ensure_self_signed(cert, key, "tokengo-hub", {});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(key), std::string::npos);
}

TEST(Pin, FormatIsChecked) {
  EXPECT_TRUE(check_pin("sha256/" + std::string(43, 'A') + "=").ok());
  EXPECT_FALSE(check_pin("sha1/" + std::string(43, 'A') + "=").ok());
  EXPECT_FALSE(check_pin("sha256/AAAA").ok());
  EXPECT_FALSE(check_pin("sha256/" + std::string(43, '!') + "=").ok());
}

TEST(Pin, ErrorsNameTheProblem) {
  EXPECT_EQ(pin_of_cert_file("/nonexistent/x.crt").status().code(), Errc::not_found);
  EXPECT_EQ(pin_of_cert_pem("garbage").status().code(), Errc::parse);
  EXPECT_EQ(pin_of_cert_pem("").status().code(), Errc::invalid_argument);
}

TEST(ClientContext, RejectsMalformedPins) {
  ClientConfig cc;
  cc.pins = {"sha256/nope"};
  auto ctx = ClientContext::create(cc);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("sha256/nope"), std::string::npos);
}

TEST(ClientContext, MissingCaBundleIsAnError) {
  ClientConfig cc;
  cc.ca_file = "/nonexistent/ca.pem";
  auto ctx = ClientContext::create(cc);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

}  // namespace
}  // namespace tg::tls
