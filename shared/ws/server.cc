#include "shared/ws/server.h"

#include <utility>

#include "shared/core/log.h"

namespace tg::ws {
namespace {

constexpr uint64_t kRefusalLingerMs = 2000;

http::ParserLimits request_limits() {
  http::ParserLimits l;
  l.head_bytes = 8 * 1024;
  l.header_count = 32;
  l.url_bytes = 2 * 1024;
  l.body_bytes = 0;
  return l;
}

}  // namespace

ServerHandshake::ServerHandshake(uv_loop_t* loop, net::StreamPtr stream, AcceptConfig config,
                                 DoneFn done)
    : loop_(loop),
      stream_(std::move(stream)),
      config_(std::move(config)),
      done_(std::move(done)),
      parser_(http::Parser::Mode::request, request_limits()),
      timer_(loop) {}

ServerHandshake::~ServerHandshake() {
  if (stream_) stream_->set_handler(nullptr);
}

void ServerHandshake::start() {
  if (state_ != State::idle) return;
  state_ = State::reading;
  stream_->set_handler(this);
  timer_.start(config_.timeout_ms, 0, [this] {
    complete(refusal_.ok() ? error(Errc::timeout, "ws handshake with " + stream_->peer_address() +
                                                      ": no upgrade request within " +
                                                      std::to_string(config_.timeout_ms) + " ms")
                           : refusal_);
  });
}

void ServerHandshake::on_stream_read(net::Stream& s, std::string_view data) noexcept {
  (void)s;
  while (state_ == State::reading) {
    auto step = parser_.step(data);
    if (!step.ok()) {
      http::ResponseHead head;
      head.status = parser_.error_http_status() ? parser_.error_http_status() : 400;
      refuse(std::move(head), "bad upgrade request: " + step.status().message());
      return;
    }
    data.remove_prefix(step->consumed);
    switch (step->event) {
      case http::ParseEvent::need_more:
        return;
      case http::ParseEvent::head: {
        if (parser_.has_body()) {
          http::ResponseHead head;
          head.status = 400;
          refuse(std::move(head), "websocket upgrade request must not have a body");
          return;
        }
        decision_ = check_upgrade_request(parser_.request_head(), config_.handshake);
        if (!decision_.accepted) {
          refuse(std::move(decision_.response), decision_.error);
          return;
        }
        break;
      }
      case http::ParseEvent::body:
        break;
      case http::ParseEvent::message_end: {
        if (!parser_.upgrade()) {
          http::ResponseHead head;
          head.status = 400;
          refuse(std::move(head), "request did not ask for a protocol switch");
          return;
        }
        auto bytes = http::serialize(decision_.response);
        Status w = bytes.ok() ? stream_->write(*bytes) : bytes.status();
        if (!w.ok()) {
          complete(w);
          return;
        }
        stream_->set_handler(nullptr);
        auto conn = std::make_unique<Connection>(loop_, std::move(stream_), std::string(data),
                                                 Role::server, config_.options,
                                                 std::move(decision_.subprotocol));
        complete(std::move(conn));
        return;
      }
    }
  }
}

void ServerHandshake::refuse(http::ResponseHead head, const std::string& why) {
  TG_INFO("ws", "%s: refusing upgrade with %d: %s", stream_->peer_address().c_str(), head.status,
          why.c_str());
  const std::string body = why + "\n";
  head.headers.set("Content-Type", "text/plain; charset=utf-8");
  head.headers.set("Content-Length", std::to_string(body.size()));
  head.headers.set("Connection", head.status == 426 ? "Upgrade, close" : "close");
  auto bytes = http::serialize(head);
  if (bytes.ok()) (void)stream_->write(*bytes + body);
  stream_->shutdown();
  state_ = State::refusing;
  refusal_ = error(Errc::protocol, "ws handshake with " + stream_->peer_address() +
                                       ": refused with " + std::to_string(head.status) + ": " +
                                       why);
  timer_.start(std::min(config_.timeout_ms, kRefusalLingerMs), 0, [this] { complete(refusal_); });
}

void ServerHandshake::on_stream_end(net::Stream& s, const Status& why) noexcept {
  (void)s;
  if (state_ == State::refusing) {
    complete(refusal_);
    return;
  }
  complete(error(why.ok() ? Errc::closed : why.code(),
                 "ws handshake: connection ended before the upgrade request" +
                     (why.ok() ? std::string() : ": " + why.message())));
}

void ServerHandshake::complete(Result<ConnectionPtr> result) {
  if (state_ != State::reading && state_ != State::refusing) return;
  state_ = State::finished;
  timer_.stop();
  if (!result.ok() && stream_) {
    stream_->set_handler(nullptr);
    stream_->close();
  }
  DoneFn done = std::move(done_);
  done(std::move(result));  // may destroy this
}

}  // namespace tg::ws
