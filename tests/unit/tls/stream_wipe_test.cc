// A TLS stream leaves no copy of the plaintext it carried in freed memory:
// what is written may hold a vendor key or a user's token. Its batch buffer
// grows (many writes in one loop turn, or before the handshake completes),
// is encrypted and freed; its record buffer holds what was read. Checked with
// a scanning operator new/delete that searches every freed block for a
// marker while armed. mbedTLS's own buffers (calloc, wiped
// by mbedtls_ssl_free) and the TCP stream's (ciphertext only) are not scanned
// (tests/support/freed_scan.h). Its own executable: the allocator replacement
// must not leak into other tests.
#include <gtest/gtest.h>
#include <sodium.h>

#include <string>
#include <string_view>
#include <vector>

#include "shared/core/loop.h"
#include "tests/support/freed_scan.h"
#include "tests/unit/tls/tls_pair.h"
#include "tests/unit/tls/tls_test_util.h"

namespace tg::tls {
namespace {

using test::kWaitMs;
using test::Peer;
using test::pinned;
using test::server_config;
using test::TlsClient;
using test::TlsServer;

// The marker: a stand-in for a vendor key in a request head.
constexpr std::string_view kKey = "sk-wipe-test-4f9c2e7a1b3d5f60";

// One write: the marker in a line of `pad` bytes.
std::string line(size_t i, size_t pad) {
  std::string s = "authorization: Bearer " + std::string(kKey) + " #" + std::to_string(i) + " ";
  s.append(pad, 'x');
  s.push_back('\n');
  return s;
}

namespace freed_scan = tg::test::freed_scan;

class TlsWipe : public ::testing::Test {
 protected:
  void TearDown() override { (void)freed_scan::disarm(); }
};

// Writes grow the batch buffer past what a stream keeps between turns, before
// and after the handshake; every byte arrives, and no freed block held the
// key, on either side, until both streams and their loop are gone.
TEST_F(TlsWipe, NoFreedBlockHoldsWhatWasWrittenOrRead) {
  constexpr size_t kBefore = 40;   // about 7 KiB before the handshake
  constexpr size_t kPerTurn = 300; // about 73 KiB per turn, over the reserve cap
  std::vector<std::string> lines;
  std::string before, after;
  for (size_t i = 0; i < kBefore; ++i) before += lines.emplace_back(line(i, 150));
  for (size_t i = 0; i < 2 * kPerTurn; ++i) after += lines.emplace_back(line(i, 220));
  {
    Loop loop;
    test::KeyCert hub = test::make_self_signed("hub");
    {
      TlsServer server(loop, server_config(hub));
      // The receiving sides keep what arrives in buffers reserved up front,
      // so the test's own strings never free a copy.
      server.peer.got.reserve(after.size() + 1);
      TlsClient client(loop, pinned(server.ctx->pin()));
      client.peer.got.reserve(before.size() + 1);
      freed_scan::arm(kKey);
      server.on_accept = [&](Peer& p) {
        // Before the handshake: queued as plaintext, in many small writes.
        for (size_t i = 0; i < kBefore; ++i) {
          Status st = p.s->write(lines[i]);
          EXPECT_TRUE(st.ok()) << st.to_string();
        }
      };
      client.connect(server.port());
      ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
      ASSERT_TRUE(client.peer.s) << client.failure.to_string();
      ASSERT_TRUE(loop.run_until([&] { return client.peer.got.size() == before.size(); }, kWaitMs));
      EXPECT_EQ(client.peer.got, before);
      // Two turns of many small writes each: the batch grows, is flushed and
      // freed, and the next one is reserved from its size.
      for (size_t turn = 0; turn < 2; ++turn) {
        size_t sent = 0;
        for (size_t i = 0; i < kPerTurn; ++i) {
          const std::string& l = lines[kBefore + turn * kPerTurn + i];
          Status st = client.peer.s->write(l);
          ASSERT_TRUE(st.ok()) << st.to_string();
          sent += l.size();
        }
        const size_t want = server.peer.got.size() + sent;
        ASSERT_TRUE(loop.run_until([&] { return server.peer.got.size() == want; }, kWaitMs));
      }
      EXPECT_TRUE(server.peer.got == after) << "the bytes arrived changed";
      EXPECT_EQ(freed_scan::hits(), 0u) << "freed blocks held the key while the streams were open";
      // What the peers recorded is the test's own: wiped before it is freed.
      sodium_memzero(server.peer.got.data(), server.peer.got.size());
      sodium_memzero(client.peer.got.data(), client.peer.got.size());
      client.peer.s.reset();
      server.peer.s.reset();
    }
    EXPECT_TRUE(loop.close().ok());
  }
  EXPECT_EQ(freed_scan::disarm(), 0u) << "freed blocks held the key once the streams were closed";
  // The scan itself works: a freed copy of the key is seen.
  freed_scan::arm(kKey);
  {
    std::string copy;
    copy.reserve(128);  // one block
    copy.append(kKey);
  }
  EXPECT_EQ(freed_scan::disarm(), 1u) << "the scan missed a freed copy of the key";
}

}  // namespace
}  // namespace tg::tls
