// Plain TCP over libuv: a listener that hands out accepted Streams and a
// connector that resolves a name (again on every call) and dials it.
// TCP_NODELAY is always on: we stream small SSE events and must not wait.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "shared/core/status.h"
#include "shared/net/stream.h"

namespace tg::net {

struct TcpOptions {
  unsigned keepalive_idle_s = 0;   // TCP keepalive after this idle time; 0 = off
  unsigned user_timeout_ms = 0;    // TCP_USER_TIMEOUT (Linux); 0 = kernel default
  std::string bind_address;        // connector only: numeric source address; "" = any
};

// Applies TcpOptions to a connected or accepted socket.
Status apply_tcp_options(uv_tcp_t* tcp, const TcpOptions& opts);

class TcpListener {
 public:
  // Receives each accepted connection; the callee owns it.
  using AcceptFn = std::function<void(StreamPtr)>;

  explicit TcpListener(uv_loop_t* loop);
  ~TcpListener();  // stops listening at once
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // Binds `host` (numeric IPv4/IPv6 address) and `port` (0 = ephemeral).
  Status listen(const std::string& host, uint16_t port, AcceptFn on_accept,
                const TcpOptions& opts = {}, int backlog = 511);
  uint16_t port() const noexcept { return port_; }
  void close() noexcept;

 private:
  static void on_connection(uv_stream_t* server, int status) noexcept;
  uv_loop_t* loop_;
  uv_tcp_t* handle_ = nullptr;
  AcceptFn on_accept_;
  TcpOptions opts_;
  uint16_t port_ = 0;
};

// Resolves and connects; `done` fires exactly once from the loop, unless the
// connector is destroyed or cancel()ed first, in which case it never fires.
class TcpConnector {
 public:
  using DoneFn = std::function<void(Result<StreamPtr>)>;

  explicit TcpConnector(uv_loop_t* loop);
  ~TcpConnector();
  TcpConnector(const TcpConnector&) = delete;
  TcpConnector& operator=(const TcpConnector&) = delete;

  // Starts resolving `host` and connecting to each address in turn until one
  // answers or `timeout_ms` passes. Fails at once only for bad arguments or
  // when a connect is already in progress.
  Status connect(const std::string& host, uint16_t port, uint64_t timeout_ms, DoneFn done,
                 const TcpOptions& opts = {});
  void cancel() noexcept;
  bool busy() const noexcept { return op_ != nullptr; }

 private:
  struct Op;
  friend struct Op;
  uv_loop_t* loop_;
  Op* op_ = nullptr;
};

}  // namespace tg::net
