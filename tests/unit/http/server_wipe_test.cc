// The HTTP server leaves no copy of a user's credential behind: a request
// head carries the token (`Authorization: Bearer`, `x-api-key`), and the
// parser's field buffer and every Header that held it are wiped before they
// are freed. Checked with the scanning operator new/delete of
// tests/support/freed_scan.h over a real loopback connection, the token
// arriving split across reads; the read buffer of shared/net is one static
// buffer, never freed. Its own executable: the allocator replacement must not
// leak into other tests.
#include <gtest/gtest.h>
#include <sodium.h>

#include <string>
#include <vector>

#include "shared/crypto/wipe.h"
#include "shared/http/server.h"
#include "tests/support/freed_scan.h"
#include "tests/unit/http/test_util.h"

namespace tg::http {
namespace {

namespace freed_scan = tg::test::freed_scan;
using test::HttpFixture;
using test::Sink;

class ServerWipeTest : public HttpFixture {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    key = "sk-tg-wipe-";
    for (int i = 0; i < 4; ++i) key += std::to_string(randombytes_random());
  }
  void TearDown() override {
    (void)freed_scan::disarm();
    for (std::string& p : pieces) crypto::wipe(&p);
    crypto::wipe(&seen);
    crypto::wipe(&key);
    HttpFixture::TearDown();
  }
  std::string key;
  std::vector<std::string> pieces;
  std::string seen;  // what the handler read, reserved up front
};

// Two requests on one keep-alive connection, each head arriving in pieces
// that cut the token. The handler copies the head and removes the
// credentials from the copy, as the hub does before it forwards a head. No
// freed block held the token while the connection was served, nor once
// server and client were gone.
TEST_F(ServerWipeTest, NoFreedBlockHoldsTheUsersToken) {
  start();
  const size_t cut = key.size() / 2;
  for (int r = 0; r < 2; ++r) {
    pieces.push_back("GET /v1/models HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " +
                     key.substr(0, 5));
    pieces.push_back(key.substr(5, cut - 5));
    pieces.push_back(key.substr(cut) + "\r\nx-api-key: " + key + "\r\nx-other: " +
                     std::string(200, 'o') + "\r\n\r\n");
  }
  std::string expected;
  expected.reserve(4 * key.size() + 64);
  for (int r = 0; r < 2; ++r) expected.append("Bearer " + key + key);
  seen.reserve(expected.capacity());
  int answered = 0;
  size_t forwarded_fields = 0;
  app.on_req = [&](Exchange& ex) {
    seen.append(ex.request().headers.get("authorization"));
    seen.append(ex.request().headers.get("x-api-key"));
    RequestHead forward = ex.request();
    forward.headers.remove("authorization");
    forward.headers.remove("x-api-key");
    forwarded_fields = forward.headers.size();
    (void)ex.reply(200, "ok");
    ++answered;
  };
  Sink sink;
  sink.data.reserve(4096);
  net::Stream* c = connect(&sink);
  ASSERT_NE(c, nullptr);
  freed_scan::arm(key);
  for (size_t i = 0; i < pieces.size(); ++i) {
    ASSERT_TRUE(c->write(pieces[i]).ok());
    // Each piece is read by the server on its own before the next is sent.
    const size_t want_answers = (i + 1) / 3;
    ASSERT_TRUE(run_until([&] { return answered == static_cast<int>(want_answers); }, 5000));
    (void)loop.run_until([] { return false; }, 20);
  }
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(forwarded_fields, 2u);  // host, x-other
  EXPECT_TRUE(seen == expected) << "the handler read other credentials";
  EXPECT_EQ(freed_scan::hits(), 0u) << "freed blocks held the token while the connection was open";
  clients.clear();
  connectors.clear();
  (void)loop.run_until([] { return false; }, 50);
  listener.reset();
  server.reset();
  (void)loop.run_until([] { return false; }, 20);
  EXPECT_EQ(freed_scan::disarm(), 0u) << "freed blocks held the token once the server was gone";
  crypto::wipe(&expected);

  // The scan sees a head that is freed unwiped: a copy of the token in a
  // std::string of our own, freed as it is.
  freed_scan::arm(key);
  {
    std::string copy;
    copy.reserve(2 * key.size());
    copy.append(key);
  }
  EXPECT_EQ(freed_scan::disarm(), 1u) << "the scan missed a freed copy of the token";
}

}  // namespace
}  // namespace tg::http
