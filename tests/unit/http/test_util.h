// Shared helpers for the HTTP tests: a raw byte client, a lambda-driven
// server application and a loopback fixture (server + listener + fresh loop).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shared/core/loop.h"
#include "shared/http/server.h"
#include "shared/net/tcp.h"

namespace tg::http::test {

// Collects what a stream delivers.
struct Sink : net::StreamHandler {
  std::string data;
  int ends = 0;
  Status why;
  std::function<void(net::Stream&, std::string_view)> on_read;
  void on_stream_read(net::Stream& s, std::string_view d) noexcept override {
    data.append(d);
    if (on_read) on_read(s, d);
  }
  void on_stream_end(net::Stream&, const Status& w) noexcept override {
    ++ends;
    why = w;
  }
};

// The server application: `on_req` runs for each request head.
struct App : ServerHandler {
  int requests = 0;
  std::function<void(Exchange&)> on_req;
  void on_request(Exchange& ex) noexcept override {
    ++requests;
    if (on_req) on_req(ex);
  }
};

// Per-request observer recording everything.
struct Recorder : ExchangeHandler {
  std::string body;
  std::vector<size_t> pieces;
  int ends = 0;
  int aborts = 0;
  int drains = 0;
  Status why;
  std::function<void(Exchange&, std::string_view)> on_body;
  std::function<void(Exchange&)> on_end;
  std::function<void(Exchange&)> on_drain;
  void on_request_body(Exchange& ex, std::string_view piece) noexcept override {
    body.append(piece);
    pieces.push_back(piece.size());
    if (on_body) on_body(ex, piece);
  }
  void on_request_end(Exchange& ex) noexcept override {
    ++ends;
    if (on_end) on_end(ex);
  }
  void on_response_drain(Exchange& ex) noexcept override {
    ++drains;
    if (on_drain) on_drain(ex);
  }
  void on_abort(Exchange&, const Status& w) noexcept override {
    ++aborts;
    why = w;
  }
};

inline std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

inline int count_of(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

class HttpFixture : public ::testing::Test {
 public:
  Loop loop;
  App app;
  std::unique_ptr<Server> server;
  std::unique_ptr<net::TcpListener> listener;
  std::vector<std::unique_ptr<net::TcpConnector>> connectors;
  std::vector<net::StreamPtr> clients;

  void start(const ServerOptions& opts = {}) {
    server = std::make_unique<Server>(loop, &app, opts);
    listener = std::make_unique<net::TcpListener>(loop);
    ASSERT_TRUE(listener
                    ->listen("127.0.0.1", 0,
                             [this](net::StreamPtr s) { server->accept(std::move(s)); })
                    .ok());
  }

  uint16_t port() const { return listener->port(); }

  // Connects a raw client whose bytes go to `sink`.
  net::Stream* connect(Sink* sink) {
    connectors.push_back(std::make_unique<net::TcpConnector>(loop));
    net::StreamPtr got;
    bool done = false;
    EXPECT_TRUE(connectors.back()
                    ->connect("127.0.0.1", port(), 2000,
                              [&](Result<net::StreamPtr> r) {
                                done = true;
                                if (r.ok()) got = std::move(r.value());
                              })
                    .ok());
    EXPECT_TRUE(loop.run_until([&] { return done; }, 3000));
    if (!got) return nullptr;
    got->set_handler(sink);
    clients.push_back(std::move(got));
    return clients.back().get();
  }

  bool run_until(const std::function<bool()>& done, uint64_t ms = 5000) {
    return loop.run_until(done, ms);
  }

  void TearDown() override {
    clients.clear();
    connectors.clear();
    listener.reset();
    server.reset();
    EXPECT_TRUE(loop.close().ok());
  }
};

}  // namespace tg::http::test
