#include "shared/ws/client.h"

#include <utility>

#include "shared/core/log.h"
#include "shared/ws/handshake.h"

namespace tg::ws {
namespace {

// The 101 head is small; a server that sends more is not a websocket server.
http::ParserLimits response_limits() {
  http::ParserLimits l;
  l.head_bytes = 8 * 1024;
  l.header_count = 32;
  l.body_bytes = 4 * 1024;
  return l;
}

}  // namespace

ClientHandshake::ClientHandshake(uv_loop_t* loop, net::StreamPtr stream, ConnectRequest req,
                                 DoneFn done)
    : loop_(loop),
      stream_(std::move(stream)),
      req_(std::move(req)),
      done_(std::move(done)),
      parser_(http::Parser::Mode::response, response_limits()),
      timer_(loop) {}

ClientHandshake::~ClientHandshake() {
  if (stream_) stream_->set_handler(nullptr);
}

Status ClientHandshake::start() {
  if (state_ != State::idle || !stream_) {
    return error(Errc::invalid_argument, "ws connect: handshake already started");
  }
  key_ = make_client_key();
  auto head = make_upgrade_request(req_.host, req_.path, req_.subprotocols, key_);
  if (!head.ok()) return head.status();
  auto bytes = http::serialize(*head);
  if (!bytes.ok()) return bytes.status();
  TG_TRY(stream_->write(*bytes));
  state_ = State::waiting;
  stream_->set_handler(this);
  timer_.start(req_.timeout_ms, 0, [this] {
    complete(error(Errc::timeout, "ws handshake with " + stream_->peer_address() +
                                      ": no 101 within " + std::to_string(req_.timeout_ms) +
                                      " ms"));
  });
  return Status();
}

void ClientHandshake::on_stream_read(net::Stream& s, std::string_view data) noexcept {
  (void)s;
  while (state_ == State::waiting) {
    auto step = parser_.step(data);
    if (!step.ok()) {
      complete(error(Errc::protocol, "ws handshake with " + stream_->peer_address() +
                                         ": bad HTTP response: " + step.status().message()));
      return;
    }
    data.remove_prefix(step->consumed);
    switch (step->event) {
      case http::ParseEvent::need_more:
        return;
      case http::ParseEvent::head: {
        auto chosen = check_upgrade_response(parser_.response_head(), key_, req_.subprotocols);
        if (!chosen.ok()) {
          complete(error(chosen.status().code(),
                         chosen.status().message() + " (" + stream_->peer_address() + ")"));
          return;
        }
        subprotocol_ = std::move(*chosen);
        break;
      }
      case http::ParseEvent::body:
        break;
      case http::ParseEvent::message_end: {
        if (!parser_.upgrade()) {
          complete(error(Errc::protocol, "ws handshake: 101 did not switch protocols"));
          return;
        }
        stream_->set_handler(nullptr);
        auto conn = std::make_unique<Connection>(loop_, std::move(stream_), std::string(data),
                                                 Role::client, req_.options,
                                                 std::move(subprotocol_));
        complete(std::move(conn));
        return;
      }
    }
  }
}

void ClientHandshake::on_stream_end(net::Stream& s, const Status& why) noexcept {
  (void)s;
  complete(error(why.ok() ? Errc::closed : why.code(),
                 "ws handshake: connection ended before the 101" +
                     (why.ok() ? std::string() : ": " + why.message())));
}

void ClientHandshake::complete(Result<ConnectionPtr> result) {
  if (state_ != State::waiting) return;
  state_ = State::finished;
  timer_.stop();
  if (!result.ok() && stream_) {
    stream_->set_handler(nullptr);
    stream_->close();
  }
  DoneFn done = std::move(done_);
  done(std::move(result));  // may destroy this
}

Result<std::unique_ptr<ClientHandshake>> connect(uv_loop_t* loop, net::StreamPtr stream,
                                                 ConnectRequest req,
                                                 ClientHandshake::DoneFn done) {
  auto hs = std::make_unique<ClientHandshake>(loop, std::move(stream), std::move(req),
                                              std::move(done));
  TG_TRY(hs->start());
  return hs;
}

}  // namespace tg::ws
