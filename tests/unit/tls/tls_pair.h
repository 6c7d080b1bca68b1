// A TLS server and client over real loopback sockets for the shared/tls
// tests: each side's stream delivers into a Peer that records what arrives.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shared/core/loop.h"
#include "shared/net/tcp.h"
#include "shared/tls/connector.h"
#include "shared/tls/context.h"
#include "tests/unit/tls/tls_test_util.h"

namespace tg::tls::test {

inline constexpr uint64_t kWaitMs = 5000;

// Records what a stream delivers; optionally echoes.
struct Peer : net::StreamHandler {
  net::StreamPtr s;
  std::string got;
  int ends = 0;
  int drains = 0;
  Status why;
  bool echo = false;
  std::function<void(Peer&, std::string_view)> on_read;
  std::function<void(Peer&, const Status&)> on_end;

  void on_stream_read(net::Stream&, std::string_view d) noexcept override {
    got.append(d.data(), d.size());
    if (echo) {
      Status st = s->write(d);
      EXPECT_TRUE(st.ok()) << st.to_string();
    }
    if (on_read) on_read(*this, d);
  }
  void on_stream_end(net::Stream&, const Status& w) noexcept override {
    ++ends;
    why = w;
    if (on_end) on_end(*this, w);
  }
  void on_stream_drain(net::Stream&) noexcept override { ++drains; }
};

inline ServerConfig server_config(const KeyCert& kc, std::vector<std::string> alpn = {}) {
  ServerConfig c;
  c.cert_chain_pem = kc.cert;
  c.private_key_pem = kc.key;
  c.alpn = std::move(alpn);
  return c;
}

inline ClientConfig pinned(const std::string& pin) {
  ClientConfig c;
  c.pins = {pin};
  return c;
}

inline ClientConfig trusting(const std::string& ca_pem) {
  ClientConfig c;
  c.ca_pem = ca_pem;
  return c;
}

// A TLS server on 127.0.0.1 that serves one connection with `peer`.
struct TlsServer {
  Loop& loop;
  net::TcpListener listener;
  std::shared_ptr<ServerContext> ctx;
  Peer peer;
  uint64_t handshake_timeout_ms = kWaitMs;
  std::function<void(Peer&)> on_accept;

  TlsServer(Loop& l, const ServerConfig& cfg) : loop(l), listener(l) {
    auto c = ServerContext::create(cfg);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    if (c.ok()) ctx = c.value();
    Status st = listener.listen("127.0.0.1", 0, [this](net::StreamPtr tcp) {
      peer.s = tls::accept(loop, std::move(tcp), ctx, handshake_timeout_ms);
      if (on_accept) on_accept(peer);
      peer.s->set_handler(&peer);
    });
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  uint16_t port() const { return listener.port(); }
};

// A TLS client; `peer.s` is set when the handshake succeeded, `failure` otherwise.
struct TlsClient {
  std::unique_ptr<Connector> connector;
  Peer peer;
  bool done = false;
  Status failure;

  TlsClient(Loop& loop, const ClientConfig& cfg) {
    auto c = ClientContext::create(cfg);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    connector = std::make_unique<Connector>(loop, c.ok() ? c.value() : nullptr);
  }
  void connect(uint16_t port, const std::string& name = "localhost", uint64_t timeout = kWaitMs) {
    Status st = connector->connect(
        "127.0.0.1", port, timeout,
        [this](Result<net::StreamPtr> r) {
          done = true;
          if (!r.ok()) {
            failure = r.status();
            return;
          }
          peer.s = std::move(r.value());
          peer.s->set_handler(&peer);
        },
        name);
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
};

}  // namespace tg::tls::test
