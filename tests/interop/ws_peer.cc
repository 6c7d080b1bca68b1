// Interop peer: our WebSocket server or client, driven by the node scripts
// next to it (which play the other side with the `ws` npm package).
//   ws_peer server [options]        listens on 127.0.0.1:0, prints "PORT <n>";
//                                   serves HTTP (http::Server) and upgrades
//                                   every request with ws::accept_upgrade
//   ws_peer client <port> [options] connects to 127.0.0.1:<port>, path /interop
// Options: --subprotocol P (repeatable), --require-subprotocol, --max-message N.
// Behaviour on both sides: echo every message with its type; text commands
//   cmd:close:<code>:<reason>  close with that code and reason
//   cmd:ping:<payload>         send a ping
//   cmd:fragments:<n>:<text>   send <text> back as one text message in n frames
// A pong is reported to the peer as the text message "pong:<payload>".
// Events go to stdout, one per line: OPEN <subprotocol|->, CLOSE <code> <clean> <reason>,
// ERROR <message>. The client exits 0 after its close, 2 if the handshake fails.
#include <csignal>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "shared/core/log.h"
#include "shared/core/loop.h"
#include "shared/http/server.h"
#include "shared/net/tcp.h"
#include "shared/ws/client.h"
#include "shared/ws/connection.h"
#include "shared/ws/server.h"

namespace {

using tg::ws::Connection;
using tg::ws::Opcode;

struct Args {
  std::string mode;
  uint16_t port = 0;
  std::vector<std::string> subprotocols;
  bool require_subprotocol = false;
  uint64_t max_message = tg::ws::kDefaultMaxMessageSize;
};

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// The HTTP application: every request is a WebSocket upgrade attempt.
class Upgrader final : public tg::http::ServerHandler {
 public:
  std::function<void(tg::http::Exchange&)> on_request_fn;
  void on_request(tg::http::Exchange& ex) noexcept override { on_request_fn(ex); }
};

class Session final : public tg::ws::Handler {
 public:
  Session(tg::ws::ConnectionPtr conn, std::function<void(Session*)> on_done)
      : conn_(std::move(conn)), on_done_(std::move(on_done)) {
    say("OPEN " + (conn_->subprotocol().empty() ? std::string("-") : conn_->subprotocol()));
    conn_->start(this);
  }

  void on_ws_message(Connection& c, Opcode type, std::string_view payload) noexcept override {
    const std::string p(payload);
    if (type == Opcode::text && p.rfind("cmd:", 0) == 0) {
      command(c, p.substr(4));
      return;
    }
    tg::Status s = type == Opcode::text ? c.send_text(p) : c.send_binary(p);
    if (!s.ok()) say("ERROR echo: " + s.to_string());
  }

  void on_ws_pong(Connection& c, std::string_view payload) noexcept override {
    (void)c.send_text("pong:" + std::string(payload));
  }

  void on_ws_close(Connection&, uint16_t code, std::string_view reason,
                   bool clean) noexcept override {
    say("CLOSE " + std::to_string(code) + " " + (clean ? "1" : "0") + " " + std::string(reason));
    on_done_(this);
  }

 private:
  void command(Connection& c, const std::string& cmd) {
    tg::Status s;
    if (cmd.rfind("close:", 0) == 0) {
      const std::string rest = cmd.substr(6);
      const size_t colon = rest.find(':');
      const auto code = static_cast<uint16_t>(std::stoul(rest.substr(0, colon)));
      s = c.close(code, colon == std::string::npos ? "" : rest.substr(colon + 1));
    } else if (cmd.rfind("ping:", 0) == 0) {
      s = c.ping(cmd.substr(5));
    } else if (cmd.rfind("fragments:", 0) == 0) {
      const std::string rest = cmd.substr(10);
      const size_t colon = rest.find(':');
      const size_t n = std::stoul(rest.substr(0, colon));
      const std::string text = rest.substr(colon + 1);
      const size_t piece = (text.size() + n - 1) / n;
      for (size_t i = 0; i < n && s.ok(); ++i) {
        const size_t at = i * piece;
        const std::string part = at < text.size() ? text.substr(at, piece) : std::string();
        s = c.send_fragment(Opcode::text, part, i + 1 == n);
      }
    } else {
      s = tg::error(tg::Errc::invalid_argument, "unknown command " + cmd);
    }
    if (!s.ok()) say("ERROR " + s.to_string());
  }

  tg::ws::ConnectionPtr conn_;
  std::function<void(Session*)> on_done_;
};

bool parse_args(int argc, char** argv, Args* a) {
  if (argc < 2) return false;
  a->mode = argv[1];
  int i = 2;
  if (a->mode == "client") {
    if (argc < 3) return false;
    a->port = static_cast<uint16_t>(std::atoi(argv[2]));
    i = 3;
  } else if (a->mode != "server") {
    return false;
  }
  for (; i < argc; ++i) {
    const std::string opt = argv[i];
    if (opt == "--subprotocol" && i + 1 < argc) {
      a->subprotocols.emplace_back(argv[++i]);
    } else if (opt == "--require-subprotocol") {
      a->require_subprotocol = true;
    } else if (opt == "--max-message" && i + 1 < argc) {
      a->max_message = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: ws_peer server|client <port> [--subprotocol P]... "
                 "[--require-subprotocol] [--max-message N]\n");
    return 64;
  }
  std::signal(SIGPIPE, SIG_IGN);
  tg::log::set_level(tg::log::Level::warn);
  tg::ws::Options opts;
  opts.max_message_size = args.max_message;
  opts.max_frame_payload = args.max_message;

  int exit_code = 0;
  {
    tg::Loop loop;
    tg::Signal sigterm(loop);
    tg::Timer reaper(loop);
    std::vector<std::unique_ptr<Session>> sessions;
    std::vector<std::unique_ptr<Session>> graveyard;
    Upgrader upgrader;  // outlives http_server
    tg::http::Server http_server(loop, &upgrader);
    tg::net::TcpListener listener(loop);
    tg::net::TcpConnector connector(loop);
    std::unique_ptr<tg::ws::ClientHandshake> client_hs;
    bool stop = false;

    // A session ends inside its own callback: park it and free it from the loop.
    std::function<void(Session*)> retire = [&](Session* s) {
      for (auto it = sessions.begin(); it != sessions.end(); ++it) {
        if (it->get() == s) {
          graveyard.push_back(std::move(*it));
          sessions.erase(it);
          break;
        }
      }
      reaper.start(0, 0, [&] { graveyard.clear(); });
      if (args.mode == "client") stop = true;
    };

    tg::Status st = sigterm.start(SIGTERM, [&](int) { stop = true; });
    if (!st.ok()) say("ERROR " + st.to_string());

    tg::ws::ServerHandshakeConfig cfg;
    cfg.subprotocols = args.subprotocols;
    cfg.require_subprotocol = args.require_subprotocol;
    upgrader.on_request_fn = [&](tg::http::Exchange& ex) {
      auto r = tg::ws::accept_upgrade(loop, ex, cfg, opts);
      if (r.ok()) {
        sessions.push_back(std::make_unique<Session>(std::move(r.value()), retire));
      } else {
        say("ERROR " + r.status().to_string());
      }
    };
    if (args.mode == "server") {
      st = listener.listen("127.0.0.1", 0,
                           [&](tg::net::StreamPtr stream) { http_server.accept(std::move(stream)); });
      if (!st.ok()) {
        say("ERROR " + st.to_string());
        return 1;
      }
      say("PORT " + std::to_string(listener.port()));
    } else {
      st = connector.connect("127.0.0.1", args.port, 5000, [&](tg::Result<tg::net::StreamPtr> r) {
        if (!r.ok()) {
          say("ERROR " + r.status().to_string());
          exit_code = 2;
          stop = true;
          return;
        }
        tg::ws::ConnectRequest req;
        req.host = "127.0.0.1:" + std::to_string(args.port);
        req.path = "/interop";
        req.subprotocols = args.subprotocols;
        req.options = opts;
        auto hs = tg::ws::connect(loop, std::move(r.value()), req,
                                  [&](tg::Result<tg::ws::ConnectionPtr> c) {
                                    if (c.ok()) {
                                      sessions.push_back(
                                          std::make_unique<Session>(std::move(c.value()), retire));
                                    } else {
                                      say("ERROR " + c.status().to_string());
                                      exit_code = 2;
                                      stop = true;
                                    }
                                    client_hs.reset();
                                  });
        if (!hs.ok()) {
          say("ERROR " + hs.status().to_string());
          exit_code = 2;
          stop = true;
          return;
        }
        client_hs = std::move(hs.value());
      });
      if (!st.ok()) {
        say("ERROR " + st.to_string());
        return 2;
      }
    }

    constexpr uint64_t kMaxRunMs = 10 * 60 * 1000;
    if (!loop.run_until([&] { return stop; }, kMaxRunMs)) exit_code = 3;
    client_hs.reset();
    sessions.clear();
    graveyard.clear();
    listener.close();
    connector.cancel();
    sigterm.stop();
  }  // handles close here; the Loop (declared first) is destroyed last and
     // aborts if any were leaked
  return exit_code;
}
