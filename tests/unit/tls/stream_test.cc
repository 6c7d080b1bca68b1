// TLS streams over real loopback sockets: handshake, data, verification,
// pins, failures and flow control. Certificates come from our generator.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "shared/core/loop.h"
#include "shared/crypto/hash.h"
#include "shared/net/tcp.h"
#include "shared/tls/certgen.h"
#include "shared/tls/connector.h"
#include "shared/tls/context.h"
#include "shared/tls/pin.h"
#include "tests/unit/tls/tls_pair.h"
#include "tests/unit/tls/tls_test_util.h"

namespace tg::tls {
namespace {

using test::Peer;
using test::TlsClient;
using test::TlsServer;
using test::kWaitMs;
using test::pinned;
using test::server_config;
using test::trusting;

// The TlsInfo of a TLS stream (a test failure, and an empty info, on plain TCP).
const net::TlsInfo& info_of(const net::Stream& s) {
  static const net::TlsInfo none;
  const net::TlsInfo* info = s.tls();
  if (info == nullptr) {
    ADD_FAILURE() << "not a TLS stream";
    return none;
  }
  return *info;
}

std::string pseudo_random(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

TEST(TlsStream, HandshakeAndEchoBothWays) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    server.peer.echo = true;
    server.on_accept = [](Peer& p) {
      // Written before the handshake: buffered, sent once it completes.
      EXPECT_TRUE(p.s->write("greeting;").ok());
    };
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.connect(server.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    ASSERT_TRUE(client.peer.s->write("hello").ok());
    ASSERT_TRUE(loop.run_until([&] { return client.peer.got == "greeting;hello"; }, kWaitMs))
        << client.peer.got;
    EXPECT_EQ(server.peer.got, "hello");
    const net::TlsInfo& info = info_of(*client.peer.s);
    EXPECT_EQ(info.version.rfind("TLSv1.", 0), 0u) << info.version;
    EXPECT_EQ(info.peer_pin, server.ctx->pin());
    EXPECT_EQ(client.peer.ends, 0);
    EXPECT_EQ(server.peer.ends, 0);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, SeveralMebibytesBothWaysArriveIntact) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    server.peer.echo = true;
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.connect(server.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    const std::string data = pseudo_random(6 * 1024 * 1024 + 123, 7);
    std::string_view rest = data;
    while (!rest.empty()) {  // uneven pieces, including ones spanning records
      const size_t n = std::min<size_t>(rest.size(), 50000);
      ASSERT_TRUE(client.peer.s->write(rest.substr(0, n)).ok());
      rest.remove_prefix(n);
    }
    ASSERT_TRUE(loop.run_until([&] { return client.peer.got.size() >= data.size(); }, 60000));
    EXPECT_EQ(server.peer.got.size(), data.size());
    EXPECT_TRUE(crypto::sha256(server.peer.got) == crypto::sha256(data));
    EXPECT_TRUE(crypto::sha256(client.peer.got) == crypto::sha256(data));
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, AlpnIsNegotiated) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub, {"http/1.1", "tokengo-tunnel/1"}));
    ClientConfig cc = pinned(server.ctx->pin());
    cc.alpn = {"tokengo-tunnel/1"};
    TlsClient client(loop, cc);
    client.connect(server.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    EXPECT_EQ(info_of(*client.peer.s).alpn, "tokengo-tunnel/1");
    ASSERT_TRUE(client.peer.s->write("x").ok());
    ASSERT_TRUE(loop.run_until([&] { return server.peer.got == "x"; }, kWaitMs));
    EXPECT_EQ(info_of(*server.peer.s).alpn, "tokengo-tunnel/1");
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, ServerSeesTheClientsSni) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.connect(server.port(), "hub.example.org");
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    ASSERT_TRUE(client.peer.s->write("x").ok());
    ASSERT_TRUE(loop.run_until([&] { return server.peer.got == "x"; }, kWaitMs));
    EXPECT_EQ(info_of(*server.peer.s).sni, "hub.example.org");
    EXPECT_TRUE(info_of(*server.peer.s).peer_pin.empty());  // no client certificate
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, CaVerificationAcceptsLeafForLocalhost) {
  Loop loop;
  {
    test::KeyCert ca = test::make_ca("Test CA");
    test::KeyCert leaf = test::make_leaf(ca, "localhost");
    TlsServer server(loop, server_config(leaf));
    TlsClient client(loop, trusting(ca.cert));
    client.connect(server.port(), "localhost");
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    EXPECT_EQ(info_of(*client.peer.s).peer_pin, test::must(pin_of_cert_pem(leaf.cert)));
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, UnknownCaIsRefused) {
  Loop loop;
  {
    test::KeyCert ca = test::make_ca("Test CA");
    test::KeyCert other = test::make_ca("Other CA");
    test::KeyCert leaf = test::make_leaf(ca, "localhost");
    TlsServer server(loop, server_config(leaf));
    TlsClient client(loop, trusting(other.cert));
    client.connect(server.port(), "localhost");
    ASSERT_TRUE(loop.run_until([&] { return client.done && server.peer.ends == 1; }, kWaitMs));
    EXPECT_FALSE(client.peer.s);
    EXPECT_EQ(client.failure.code(), Errc::permission) << client.failure.to_string();
    EXPECT_NE(client.failure.message().find("certificate verification failed for localhost"),
              std::string::npos)
        << client.failure.message();
    EXPECT_EQ(server.peer.why.code(), Errc::tls) << server.peer.why.to_string();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, HostnameMismatchIsRefused) {
  Loop loop;
  {
    test::KeyCert ca = test::make_ca("Test CA");
    test::KeyCert leaf = test::make_leaf(ca, "localhost");
    TlsServer server(loop, server_config(leaf));
    TlsClient client(loop, trusting(ca.cert));
    client.connect(server.port(), "api.example.com");
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    EXPECT_FALSE(client.peer.s);
    EXPECT_EQ(client.failure.code(), Errc::permission) << client.failure.to_string();
    EXPECT_NE(client.failure.message().find("api.example.com"), std::string::npos);
    EXPECT_NE(client.failure.message().find("CN"), std::string::npos) << client.failure.message();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, PinAcceptsTheRightKey) {
  Loop loop;
  {
    test::TempDir dir;
    const std::string cert = dir.file("hub.crt"), key = dir.file("hub.key");
    ASSERT_TRUE(ensure_self_signed(cert, key, "tokengo-hub", {"localhost"}).ok());
    const std::string pin = test::must(pin_of_cert_file(cert));
    ServerConfig sc;
    sc.cert_chain_file = cert;
    sc.private_key_file = key;
    TlsServer server(loop, sc);
    TlsClient client(loop, pinned(pin));
    client.connect(server.port(), "127.0.0.1");
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    EXPECT_EQ(info_of(*client.peer.s).peer_pin, pin);  // what the file says is what TLS sees
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, PinRefusesAnotherKeyAndSaysSo) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    test::KeyCert impostor = test::make_self_signed("hub");
    const std::string expected = test::must(pin_of_cert_pem(hub.cert));
    const std::string got = test::must(pin_of_cert_pem(impostor.cert));
    TlsServer server(loop, server_config(impostor));
    TlsClient client(loop, pinned(expected));
    client.connect(server.port(), "hub.example.org");
    ASSERT_TRUE(loop.run_until([&] { return client.done && server.peer.ends == 1; }, kWaitMs));
    EXPECT_FALSE(client.peer.s);
    EXPECT_EQ(client.failure.code(), Errc::permission);
    EXPECT_EQ(client.failure.message(),
              "public key pin mismatch for hub.example.org (127.0.0.1:" +
                  std::to_string(server.port()) + "): expected " + expected + ", got " + got);
    EXPECT_FALSE(server.peer.why.ok());
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, GarbageFromRawTcpEndsTheServerStream) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    net::TcpConnector raw(loop);
    Peer rawp;
    ASSERT_TRUE(raw.connect("127.0.0.1", server.port(), kWaitMs, [&](Result<net::StreamPtr> r) {
                     ASSERT_TRUE(r.ok());
                     rawp.s = std::move(r.value());
                     rawp.s->set_handler(&rawp);
                     EXPECT_TRUE(rawp.s->write("GET / HTTP/1.1\r\nHost: x\r\n\r\n").ok());
                   }).ok());
    ASSERT_TRUE(loop.run_until([&] { return server.peer.ends == 1; }, kWaitMs));
    EXPECT_EQ(server.peer.why.code(), Errc::tls) << server.peer.why.to_string();
    EXPECT_TRUE(server.peer.got.empty());
    ASSERT_TRUE(loop.run_until([&] { return rawp.ends == 1; }, kWaitMs));  // we hung up
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, ClientClosingMidHandshakeEndsServerStream) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    net::TcpConnector raw(loop);
    Peer rawp;
    ASSERT_TRUE(raw.connect("127.0.0.1", server.port(), kWaitMs, [&](Result<net::StreamPtr> r) {
                     ASSERT_TRUE(r.ok());
                     rawp.s = std::move(r.value());
                     rawp.s->set_handler(&rawp);
                     EXPECT_TRUE(rawp.s->write(std::string("\x16\x03\x01\x00", 4)).ok());
                     rawp.s->shutdown();
                   }).ok());
    ASSERT_TRUE(loop.run_until([&] { return server.peer.ends == 1; }, kWaitMs));
    EXPECT_EQ(server.peer.why.code(), Errc::tls);
    EXPECT_NE(server.peer.why.message().find("closed the connection"), std::string::npos)
        << server.peer.why.message();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, ServerClosingMidHandshakeFailsTheConnector) {
  Loop loop;
  {
    net::TcpListener raw(loop);
    net::StreamPtr accepted;
    Peer rawp;
    rawp.on_read = [](Peer& p, std::string_view) { p.s.reset(); };  // ClientHello seen: hang up
    ASSERT_TRUE(raw.listen("127.0.0.1", 0, [&](net::StreamPtr s) {
                     rawp.s = std::move(s);
                     rawp.s->set_handler(&rawp);
                   }).ok());
    TlsClient client(loop, pinned("sha256/" + std::string(43, 'A') + "="));
    client.connect(raw.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    EXPECT_FALSE(client.peer.s);
    EXPECT_EQ(client.failure.code(), Errc::tls) << client.failure.to_string();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, HandshakeTimeoutEndsServerStream) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    server.handshake_timeout_ms = 50;
    net::TcpConnector raw(loop);
    net::StreamPtr silent;
    ASSERT_TRUE(raw.connect("127.0.0.1", server.port(), kWaitMs, [&](Result<net::StreamPtr> r) {
                     ASSERT_TRUE(r.ok());
                     silent = std::move(r.value());
                   }).ok());
    ASSERT_TRUE(loop.run_until([&] { return server.peer.ends == 1; }, kWaitMs));
    EXPECT_EQ(server.peer.why.code(), Errc::timeout) << server.peer.why.to_string();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, ConnectorTimeoutCoversTheHandshake) {
  Loop loop;
  {
    net::TcpListener raw(loop);
    net::StreamPtr silent;  // accepts and never answers
    ASSERT_TRUE(raw.listen("127.0.0.1", 0, [&](net::StreamPtr s) { silent = std::move(s); }).ok());
    TlsClient client(loop, pinned("sha256/" + std::string(43, 'A') + "="));
    client.connect(raw.port(), "localhost", 100);
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    EXPECT_EQ(client.failure.code(), Errc::timeout) << client.failure.to_string();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, DestroyedConnectorNeverCallsBack) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.connect(server.port());
    // Let the TCP connect finish so the handshake is in flight, then cancel.
    ASSERT_TRUE(loop.run_until([&] { return server.peer.s != nullptr; }, kWaitMs));
    client.connector.reset();
    ASSERT_TRUE(loop.run_until([&] { return server.peer.ends == 1; }, kWaitMs));
    EXPECT_FALSE(client.done);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, CloseNotifyEndsBothSidesOk) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.connect(server.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    ASSERT_TRUE(client.peer.s->write("bye").ok());
    client.peer.s->shutdown();
    EXPECT_EQ(client.peer.s->write("more").code(), Errc::closed);  // refused at once
    ASSERT_TRUE(loop.run_until([&] { return server.peer.ends == 1 && client.peer.ends == 1; },
                               kWaitMs));
    EXPECT_EQ(server.peer.got, "bye");
    EXPECT_TRUE(server.peer.why.ok()) << server.peer.why.to_string();
    EXPECT_TRUE(client.peer.why.ok()) << client.peer.why.to_string();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, WriteBackpressurePausesAndDrains) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    server.on_accept = [](Peer& p) { p.s->pause_reading(); };  // a stalled reader
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.connect(server.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    net::Stream& s = *client.peer.s;
    s.set_write_watermarks(64 * 1024, 16 * 1024);
    const std::string chunk(64 * 1024, 'x');
    size_t sent = 0;
    // Writes are batched per loop turn and the kernel takes what it can, so
    // fill until the stream stays blocked across turns: the socket is full.
    for (int turns = 0; turns < 10000 && sent < (size_t{256} << 20); ++turns) {
      while (!s.write_blocked()) {
        ASSERT_TRUE(s.write(chunk).ok());
        sent += chunk.size();
      }
      loop.run_until([] { return false; }, 5);
      if (s.write_blocked()) break;
    }
    ASSERT_TRUE(s.write_blocked());
    EXPECT_GT(s.queued_bytes(), s.high_water());
    const int drains_before = client.peer.drains;
    loop.run_until([] { return false; }, 50);  // the stalled reader takes nothing
    EXPECT_EQ(client.peer.drains, drains_before);
    EXPECT_EQ(server.peer.got.size(), 0u);
    server.peer.s->resume_reading();
    ASSERT_TRUE(loop.run_until([&] { return client.peer.drains == drains_before + 1; }, 30000));
    EXPECT_LE(s.queued_bytes(), 16u * 1024);
    ASSERT_TRUE(loop.run_until([&] { return server.peer.got.size() == sent; }, 30000));
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, DetachedHandlerKeepsBytesUntilReattached) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.connect(server.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done && server.peer.s; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    client.peer.s->set_handler(nullptr);
    ASSERT_TRUE(server.peer.s->write("kept").ok());
    server.peer.s->shutdown();
    loop.run_until([] { return false; }, 100);
    EXPECT_EQ(client.peer.got, "");
    client.peer.s->set_handler(&client.peer);
    EXPECT_EQ(client.peer.got, "");  // nothing inside set_handler
    ASSERT_TRUE(loop.run_until([&] { return client.peer.ends == 1; }, kWaitMs));
    EXPECT_EQ(client.peer.got, "kept");
    EXPECT_TRUE(client.peer.why.ok()) << client.peer.why.to_string();
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, HandlerMayDestroyTheStreamInsideItsCallbacks) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    int server_reads = 0;
    server.peer.on_read = [&](Peer& p, std::string_view) {
      ++server_reads;
      p.s.reset();  // destroyed inside on_stream_read
    };
    TlsClient client(loop, pinned(server.ctx->pin()));
    client.peer.on_end = [](Peer& p, const Status&) { p.s.reset(); };  // ... and on_stream_end
    client.connect(server.port());
    ASSERT_TRUE(loop.run_until([&] { return client.done; }, kWaitMs));
    ASSERT_TRUE(client.peer.s) << client.failure.to_string();
    // Two records in one go: the second must not be delivered to a dead stream.
    ASSERT_TRUE(client.peer.s->write("first").ok());
    ASSERT_TRUE(client.peer.s->write("second").ok());
    ASSERT_TRUE(loop.run_until([&] { return client.peer.ends == 1; }, kWaitMs));
    EXPECT_EQ(server_reads, 1);
    EXPECT_FALSE(server.peer.s);
    EXPECT_FALSE(client.peer.s);
  }
  EXPECT_TRUE(loop.close().ok());
}

TEST(TlsStream, ConnectorMayBeDestroyedInsideItsCallback) {
  Loop loop;
  {
    test::KeyCert hub = test::make_self_signed("hub");
    TlsServer server(loop, server_config(hub));
    auto ctx = ClientContext::create(pinned(server.ctx->pin()));
    ASSERT_TRUE(ctx.ok());
    auto connector = std::make_unique<Connector>(loop, ctx.value());
    net::StreamPtr stream;
    ASSERT_TRUE(connector->connect("127.0.0.1", server.port(), kWaitMs,
                                   [&](Result<net::StreamPtr> r) {
                                     connector.reset();
                                     ASSERT_TRUE(r.ok()) << r.status().to_string();
                                     stream = std::move(r.value());
                                   }).ok());
    ASSERT_TRUE(loop.run_until([&] { return stream != nullptr; }, kWaitMs));
    EXPECT_FALSE(connector);
  }
  EXPECT_TRUE(loop.close().ok());
}

}  // namespace
}  // namespace tg::tls
