#include "shared/tls/connector.h"

#include "shared/tls/tls_stream.h"

namespace tg::tls {

net::StreamPtr accept(uv_loop_t* loop, net::StreamPtr tcp, std::shared_ptr<ServerContext> ctx,
                      uint64_t handshake_timeout_ms) {
  return TlsStream::server(loop, std::move(tcp), std::move(ctx), handshake_timeout_ms);
}

Connector::Connector(uv_loop_t* loop, std::shared_ptr<ClientContext> ctx)
    : loop_(loop), ctx_(std::move(ctx)), tcp_(loop), timer_(loop) {}

Connector::~Connector() { cancel(); }

void Connector::cancel() noexcept {
  tcp_.cancel();
  timer_.stop();
  stream_.reset();
  done_ = nullptr;
  state_ = State::idle;
}

Status Connector::connect(const std::string& host, uint16_t port, uint64_t timeout_ms,
                          DoneFn done, const std::string& server_name,
                          const net::TcpOptions& opts) {
  if (state_ != State::idle) return Status(Errc::invalid_argument, "a TLS connect is already in progress");
  if (!ctx_) return Status(Errc::invalid_argument, "no TLS client context");
  if (timeout_ms == 0) return Status(Errc::invalid_argument, "TLS connect timeout must be > 0");
  target_ = host + ":" + std::to_string(port);
  server_name_ = !server_name.empty() ? server_name
                 : !ctx_->config().server_name.empty() ? ctx_->config().server_name
                                                      : host;
  TG_TRY(tcp_.connect(host, port, timeout_ms,
                      [this](Result<net::StreamPtr> r) { on_tcp(std::move(r)); }, opts));
  done_ = std::move(done);
  state_ = State::connecting;
  timer_.start(timeout_ms, 0, [this, timeout_ms] {
    tcp_.cancel();
    stream_.reset();
    complete(Status(Errc::timeout, "TLS connect to " + target_ + " did not complete within " +
                                       std::to_string(timeout_ms) + " ms"));
  });
  return Status();
}

void Connector::on_tcp(Result<net::StreamPtr> result) {
  if (!result.ok()) {
    complete(result.status());
    return;
  }
  state_ = State::handshaking;
  // The connector's own timer bounds connect + handshake together.
  stream_ = TlsStream::client(loop_, std::move(result.value()), ctx_, server_name_, 0);
  stream_->set_handshake_callback([this](const Status& st) { on_handshake(st); });
}

void Connector::on_handshake(const Status& status) {
  if (!status.ok()) {
    stream_.reset();  // inside the stream's own callback: it guards itself
    complete(status);
    return;
  }
  net::StreamPtr out(stream_.release());
  complete(std::move(out));
}

void Connector::complete(Result<net::StreamPtr> result) {
  timer_.stop();
  state_ = State::idle;
  DoneFn done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(result));  // may destroy this Connector
}

}  // namespace tg::tls
