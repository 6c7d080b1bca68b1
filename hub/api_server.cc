#include "hub/api_server.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "hub/agent_store.h"
#include "hub/billing.h"
#include "hub/request_probe.h"
#include "shared/billing/include_usage.h"
#include "hub/tunnel_server.h"
#include "shared/core/log.h"
#include "shared/crypto/hash.h"
#include "shared/tls/connector.h"
#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"

namespace tg::hub {
namespace {

constexpr const char* kLog = "api";
constexpr std::string_view kChat = "/v1/chat/completions";
constexpr std::string_view kEmbeddings = "/v1/embeddings";
constexpr std::string_view kMessages = "/v1/messages";
constexpr std::string_view kModels = "/v1/models";
constexpr size_t kMaxLoggedModel = 64;

// Request headers forwarded to the agent (lowercase; x-request-id is ours).
constexpr std::string_view kForwardedRequestHeaders[] = {
    "content-type", "accept", "anthropic-version", "anthropic-beta", "openai-beta", "user-agent",
};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Response headers passed from the agent to the user (the agent filters the
// vendor's headers with the same list; we check again).
bool allowed_response_header(std::string_view lower) {
  return lower == "content-type" || lower == "retry-after" || lower == "openai-processing-ms" ||
         lower == "x-upstream-request-id" || starts_with(lower, "x-ratelimit-") ||
         starts_with(lower, "anthropic-ratelimit-");
}

// A header value the tunnel codec accepts: HTAB, 0x20..0x7e, 0x80..0xff.
bool forwardable_value(std::string_view v) {
  if (v.size() > kMaxForwardedHeaderValue) return false;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u != '\t' && (u < 0x20 || u == 0x7f)) return false;
  }
  return true;
}

// The tunnel's `visible` class: 0x21..0x7e.
bool visible_ascii(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// The token from "Authorization: Bearer sk-..." or "x-api-key: sk-...".
std::vector<std::string_view> credentials(const http::Headers& h) {
  std::vector<std::string_view> out;
  std::string_view auth = h.get("authorization");
  if (auth.size() > 7 && http::iequals(auth.substr(0, 7), "bearer ")) {
    std::string_view t = auth.substr(7);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    out.push_back(t);
  }
  std::string_view key = h.get("x-api-key");
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  if (!key.empty()) out.push_back(key);
  return out;
}

// %XX decoding of a path segment; nullopt for a bad escape.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// For log lines: model names come from users.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxLoggedModel)) out += (c >= 0x21 && c < 0x7f) ? c : '?';
  return out;
}

std::string short_key(const std::string& key) { return key.substr(0, 12); }

Result<uint64_t> content_length_of(const http::Headers& h) {
  std::string_view v = h.get("content-length");
  if (v.empty()) return static_cast<uint64_t>(0);
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return error(Errc::parse, "bad Content-Length");
    if (n > (UINT64_MAX - 9) / 10) return error(Errc::limit, "Content-Length overflows");
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

cJSON* model_json(const std::string& id, int64_t created) {
  cJSON* m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "id", id.c_str());
  cJSON_AddStringToObject(m, "object", "model");
  cJSON_AddNumberToObject(m, "created", static_cast<double>(created));
  cJSON_AddStringToObject(m, "owned_by", "tokengo");
  return m;
}

void reply_json(http::Exchange& ex, int status, const std::string& body,
                const std::string& request_id) {
  http::ResponseHead head;
  head.status = status;
  head.headers.add("content-type", "application/json");
  head.headers.add("content-length", std::to_string(body.size()));
  head.headers.add("x-request-id", request_id);
  if (!ex.respond(std::move(head)).ok()) return;
  (void)ex.write(body);
  (void)ex.finish();
}

}  // namespace

void reply_api_error(http::Exchange& ex, Dialect dialect, int status, std::string_view message,
                     std::string_view code, const std::string& request_id,
                     const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  const std::string body = error_body(dialect, status, message, code);
  http::ResponseHead head;
  head.status = status;
  head.headers.add("content-type", "application/json");
  head.headers.add("content-length", std::to_string(body.size()));
  head.headers.add("x-request-id", request_id);
  for (const auto& [name, value] : extra_headers) head.headers.add(name, value);
  if (status == 401) head.headers.add("www-authenticate", "Bearer");
  if (status == 503) head.headers.add("retry-after", "1");
  if (!ex.respond(std::move(head)).ok()) return;
  (void)ex.write(body);
  (void)ex.finish();
}

namespace {

// A failover needs at least this much of the request deadline left.
constexpr uint64_t kMinFailoverMs = 100;

// How an agent's stream error counts for failover: a capacity refusal
// (another agent may take it, no penalty), a failure of the agent or its
// vendor (penalised), or nullopt: no other agent would do better (the
// request itself is bad, or its deadline passed).
std::optional<Outcome> failover_outcome(std::string_view code) {
  namespace se = tunnel::stream_error;
  if (code == se::busy || code == se::shutting_down || code == se::rate_limited ||
      code == se::upstream_rate_limited) {
    return Outcome::no_capacity;
  }
  if (code == se::bad_request || code == se::deadline_exceeded) return std::nullopt;
  return Outcome::failed;
}

// "retry in N ms..." (a rate_limited message) -> whole seconds, at least 1.
uint64_t retry_after_seconds(std::string_view message) {
  constexpr std::string_view kPrefix = "retry in ";
  if (message.substr(0, kPrefix.size()) != kPrefix) return 1;
  uint64_t ms = 0;
  size_t digits = 0;
  for (char c : message.substr(kPrefix.size())) {
    if (c < '0' || c > '9' || ++digits > 10) break;
    ms = ms * 10 + static_cast<uint64_t>(c - '0');
  }
  return std::max<uint64_t>((ms + 999) / 1000, 1);
}

// Stream errors an agent answers at once, without calling a vendor.
bool refused_before_vendor(std::string_view code) {
  namespace se = tunnel::stream_error;
  return code == se::busy || code == se::unknown_model || code == se::bad_request ||
         code == se::shutting_down || code == se::rate_limited;
}

}  // namespace

// ---- Request: one routed POST, from its head to the end of the answer ----

// Owned by the ApiServer (requests_), destroyed from its reap timer after
// complete(). Both the Exchange and the Channel call into it; `ex_` and
// `route_` say which of them is still alive.
class ApiServer::Request final : public http::ExchangeHandler, public tunnel::ChannelHandler {
 public:
  enum class State {
    reading,    // request body arriving
    routed,     // call sent (body being pumped), no response head yet
    streaming,  // response head sent to the user; relaying the body
    done,       // over; waiting to be destroyed
  };

  Request(ApiServer* server, http::Exchange& ex, std::string id, std::string path, Dialect d,
          TokenOwner who)
      : server_(server),
        ex_(&ex),
        id_(std::move(id)),
        path_(std::move(path)),
        dialect_(d),
        who_(std::move(who)),
        api_(billing::api_for_path(path_)),
        deadline_(server->loop_),
        keepalive_(server->loop_) {}

  ~Request() override {
    deadline_.stop();
    keepalive_.stop();
    end_channel(tunnel::abort_reason::shutdown);
    if (ex_) ex_->set_handler(nullptr);
  }

  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  void start() {
    started_ms_ = uv_now(server_->loop_);
    ex_->set_handler(this);
    deadline_.start(server_->settings_.request_deadline_ms, 0, [this] { on_deadline(); });
  }

 private:
  // ---- http::ExchangeHandler ----

  void on_request_body(http::Exchange&, std::string_view piece) noexcept override {
    if (state_ != State::reading) return;
    if (body_.size() + piece.size() > server_->settings_.max_request_body) {
      fail(413,
           "request body is larger than " + std::to_string(server_->settings_.max_request_body) +
               " bytes",
           api_code::request_too_large);
      return;
    }
    body_.append(piece);
  }

  void on_request_end(http::Exchange&) noexcept override {
    if (state_ != State::reading) return;
    route();
  }

  void on_response_drain(http::Exchange&) noexcept override {
    if (pending_credit_ > 0 && route_) {
      route_->channel->consumed(pending_credit_);
      pending_credit_ = 0;
    }
  }

  void on_abort(http::Exchange&, const Status& why) noexcept override {
    ex_ = nullptr;  // invalid from now on
    if (state_ == State::done) return;
    TG_DEBUG(kLog, "%s: client gone: %s", id_.c_str(), why.to_string().c_str());
    end_channel(tunnel::abort_reason::client_gone);
    if (status_ == 0) status_ = 499;  // for the log line: the client closed first
    complete();
  }

  // ---- tunnel::ChannelHandler ----

  void on_channel_message(tunnel::Channel&, const tunnel::Message& m) noexcept override {
    switch (tunnel::type_of(m)) {
      case tunnel::Type::response:
        on_response(std::get<tunnel::Response>(m));
        return;
      case tunnel::Type::finish:
        if (state_ != State::streaming) report(Outcome::failed);
        forget_channel(true);  // the channel is gone once this returns
        if (state_ != State::streaming) {
          fail(502, "the agent finished without an answer", api_code::agent_failed);
          return;
        }
        flush_filter();
        finish_exchange();
        return;
      case tunnel::Type::error: {
        const auto& refusal = std::get<tunnel::Error>(m).code;
        if (state_ == State::routed && ticket_ && refused_before_vendor(refusal)) {
          // The agent never called a vendor for it: nothing will be claimed.
          server_->billing_->cancel(ticket_);
          ticket_ = nullptr;
        }
        const auto& e = std::get<tunnel::Error>(m);
        const std::optional<Outcome> outcome = failover_outcome(e.code);
        if (state_ == State::routed) report(outcome.value_or(Outcome::abandoned));
        forget_channel(true);
        int status = status_for_stream_error(e.code);
        if (e.code == tunnel::stream_error::rate_limited ||
            e.code == tunnel::stream_error::upstream_rate_limited) {
          status = 429;  // no capacity left anywhere: the user waits, as the vendor said
          retry_after_s_ = retry_after_seconds(e.message);
        }
        std::string text = "agent: " + e.code + (e.message.empty() ? "" : ": " + e.message);
        if (outcome && fail_over(*outcome, status, text, e.code)) return;
        fail(status, text, e.code);
        return;
      }
      default:
        return;
    }
  }

  void on_channel_data(tunnel::Channel& ch, std::string_view data, bool fin) noexcept override {
    (void)fin;  // the finish message that follows ends the exchange
    if (ticket_) ticket_->meter().response_body(data);  // every byte the agent sent counts
    if (state_ != State::streaming || !ex_) return;
    if (data.empty()) return;
    std::string_view out = data;
    if (filtering_) {
      // The usage-only chunk we asked for on the user's behalf is not theirs.
      filtered_.clear();
      filter_.feed(data, &filtered_);
      out = filtered_;
      if (out.empty()) {
        ch.consumed(data.size());
        return;
      }
    }
    Status s = ex_->write(out);
    if (!s.ok()) {
      // The client left; on_abort may or may not follow, so end here.
      end_channel(tunnel::abort_reason::client_gone);
      (void)ex_->finish();
      ex_ = nullptr;
      complete();
      return;
    }
    bytes_out_ += out.size();
    last_write_ms_ = uv_now(server_->loop_);
    if (ex_->write_blocked()) {
      pending_credit_ += data.size();  // returned on drain: the user holds the agent back
    } else {
      ch.consumed(data.size());
    }
  }

  void on_channel_writable(tunnel::Channel&) noexcept override { pump_body(); }

  void on_channel_closed(tunnel::Channel&, const Status& why) noexcept override {
    // The tunnel broke: the agent failed, even when it had started answering.
    if (route_) {
      reported_ = true;
      server_->router_.report(*route_, Outcome::failed, uv_now(server_->loop_) - attempt_started_ms_);
    }
    forget_channel(false);
    const std::string text = "the agent connection ended the request (" + why.message() + ")";
    if (fail_over(Outcome::failed, 502, text, api_code::agent_failed)) return;
    fail(502, text, api_code::agent_failed);
  }

  // ---- steps ----

  void transition(State next) {
    bool legal = false;
    switch (state_) {
      case State::reading: legal = next == State::routed || next == State::done; break;
      case State::routed: legal = next == State::streaming || next == State::done; break;
      case State::streaming: legal = next == State::done; break;
      case State::done: legal = false; break;
    }
    if (!legal) {
      TG_ERROR(kLog, "%s: illegal request transition %d -> %d", id_.c_str(),
               static_cast<int>(state_), static_cast<int>(next));
      return;
    }
    state_ = next;
  }

  void route() {
    auto probe = probe_request(body_);
    if (!probe.ok()) {
      const bool json = probe.status().code() == Errc::parse;
      fail(400, (json ? "invalid JSON in the request body: " : "") + probe.status().message(),
           json ? api_code::invalid_json : std::string_view());
      return;
    }
    if (!probe->has_model || probe->model.empty()) {
      fail(400, "the request body has no 'model'", api_code::missing_model);
      return;
    }
    if (!visible_ascii(probe->model)) {
      fail(404, "model '" + printable(probe->model) + "' does not exist", api_code::model_not_found);
      return;
    }
    model_ = probe->model;
    stream_ = probe->stream;
    if (server_->stopping_ || server_->tunnels_->stopping()) {
      fail(503, "the hub is shutting down", api_code::shutting_down);
      return;
    }
    Billing* billing = server_->billing_;
    if (billing) {
      Status bal = billing->check_balance(who_.user_id);
      if (bal.code() == Errc::limit) {
        fail(402, bal.message() + "; ask the operator to credit your account",
             api_code::insufficient_balance);
        return;
      }
      if (!bal.ok()) {
        TG_ERROR(kLog, "%s: balance check: %s", id_.c_str(), bal.to_string().c_str());
        fail(503, "billing is unavailable; retry later", api_code::internal);
        return;
      }
      if (stream_ && api_ == billing::Api::chat) {
        // Usage comes in a last chunk only when asked for: ask, and hide
        // that chunk from a user who did not.
        bool injected = false;
        auto edited = billing::inject_include_usage(body_, &injected);
        if (edited.ok() && injected) {
          body_ = std::move(*edited);
          injected_ = true;
        }
      }
    }
    // Per-token limits (GCRA); the headers go on every answer.
    Limits limits = server_->limits_;
    if (who_.rpm) limits.rpm = *who_.rpm;
    if (who_.tpm) limits.tpm = *who_.tpm;
    limits_ = limits;
    RateDecision rate = server_->limiter_.admit(who_.token_id, limits, uv_now(server_->loop_));
    rate_headers_ = std::move(rate.headers);
    if (!rate.allowed) {
      retry_after_s_ = static_cast<uint64_t>((rate.retry_after_ms + 999) / 1000);
      fail(429, "rate limit of this token reached (requests or tokens per minute); retry in " +
                    std::to_string(retry_after_s_) + " s",
           api_code::rate_limited);
      return;
    }
    const http::RequestHead& req = ex_->request();
    call_.model = model_;
    call_.method = "POST";
    call_.path = path_;
    call_.stream = stream_;
    for (const http::Header& h : req.headers) {
      const std::string name = lowercase(h.name);
      bool wanted = false;
      for (std::string_view f : kForwardedRequestHeaders) wanted = wanted || name == f;
      if (!wanted || !forwardable_value(h.value)) continue;
      if (call_.headers.size() >= tunnel::kMaxHeaders - 1) break;
      call_.headers.emplace_back(name, h.value);
    }
    call_.headers.emplace_back("x-request-id", id_);
    dispatch();
  }

  // Sends the request to the best agent not tried yet: attempt 1, or a
  // failover attempt after a failure before any byte reached the user. Each
  // attempt has its own request id (the settlement key): <id>, <id>-2, ...
  void dispatch() {
    ++attempt_;
    tunnel::Call call = call_;
    call.request_id = attempt_ == 1 ? id_ : id_ + "-" + std::to_string(attempt_);
    const uint64_t now = uv_now(server_->loop_);
    const uint64_t end = started_ms_ + server_->settings_.request_deadline_ms;
    call.deadline_ms = static_cast<uint32_t>(
        std::clamp<uint64_t>(end > now ? end - now : 1, 1, tunnel::kMaxDeadlineMs));

    Billing* billing = server_->billing_;
    CallHooks hooks;
    Status billing_error;
    if (billing) {
      hooks.before = [&](const std::string& agent, tunnel::Call& c) -> Status {
        auto t = billing->open(c.request_id, agent, who_.user_id, model_, api_, stream_,
                               body_.size());
        if (!t.ok()) {
          billing_error = t.status();
          return t.status();
        }
        ticket_ = *t;
        c.ticket = ticket_->token();
        return Status::success();
      };
      hooks.undo = [&](const std::string&) {
        billing->unsent(ticket_);
        ticket_ = nullptr;
      };
    }
    auto routed = server_->router_.open(call, this, hooks, tried_);
    if (!routed.ok()) {
      const Status& s = routed.status();
      if (!billing_error.ok()) {
        TG_ERROR(kLog, "%s: not billed, not sent: %s", id_.c_str(), billing_error.to_string().c_str());
        if (billing_error.code() == Errc::not_found) {
          fail(404, "model '" + model_ + "' has no price on this hub", api_code::model_not_found);
        } else {
          fail(503, "billing is unavailable; retry later", api_code::internal);
        }
        return;
      }
      if (attempt_ > 1) {
        fail(last_failure_status_, last_failure_, last_failure_code_);
      } else if (s.code() == Errc::not_found) {
        fail(404, "model '" + model_ + "' does not exist or no agent serves it",
             api_code::model_not_found);
      } else if (s.code() == Errc::limit || s.code() == Errc::closed) {
        fail(503, "no agent for model '" + model_ + "' is available now; retry later",
             api_code::no_agent);
      } else {
        TG_WARN(kLog, "%s: call not sent: %s", id_.c_str(), s.to_string().c_str());
        fail(502, "the request could not be sent to an agent", api_code::agent_failed);
      }
      return;
    }
    route_ = std::move(routed.value());
    tried_.push_back(route_->pubkey);
    attempt_started_ms_ = uv_now(server_->loop_);
    reported_ = false;
    body_sent_ = 0;
    body_fin_sent_ = false;
    if (state_ == State::reading) transition(State::routed);
    TG_DEBUG(kLog, "%s: user %s model %s -> agent %s stream %u (attempt %u)", id_.c_str(),
             who_.user.c_str(), printable(model_).c_str(), short_key(route_->pubkey).c_str(),
             route_->channel->id(), attempt_);
    pump_body();
  }

  // The attempt failed before any byte reached the user. Tries the next
  // agent when one may still help; false: the caller answers the failure.
  bool fail_over(Outcome outcome, int status, const std::string& message, std::string_view code) {
    report(outcome);
    last_failure_status_ = status;
    last_failure_ = message;
    last_failure_code_ = std::string(code);
    if (state_ != State::routed || !ex_ || server_->stopping_ || server_->tunnels_->stopping()) {
      return false;
    }
    if (attempt_ >= server_->routing_.max_attempts) return false;
    const uint64_t now = uv_now(server_->loop_);
    if (now + kMinFailoverMs >= started_ms_ + server_->settings_.request_deadline_ms) return false;
    if (!server_->router_.has_candidate(model_, tried_)) return false;
    TG_INFO(kLog, "%s: attempt %u on agent %s failed (%s); trying another agent", id_.c_str(),
            attempt_, tried_.empty() ? "-" : short_key(tried_.back()).c_str(), message.c_str());
    end_channel(tunnel::abort_reason::shutdown);
    dispatch();
    return true;
  }

  // Tells the router how the current attempt went (once per attempt).
  void report(Outcome outcome) {
    if (reported_ || !route_) return;
    reported_ = true;
    server_->router_.report(*route_, outcome, uv_now(server_->loop_) - attempt_started_ms_);
  }

  // Sends the buffered body within the channel's credit; resumed by
  // on_channel_writable.
  void pump_body() {
    if (!route_ || body_fin_sent_) return;
    tunnel::Channel* ch = route_->channel;
    while (!body_fin_sent_) {
      const size_t left = body_.size() - body_sent_;
      size_t n = 0;
      if (left > 0) {
        n = std::min(ch->send_capacity(), left);
        if (n == 0) return;
      }
      const bool fin = n == left;
      Status s = ch->send_data(std::string_view(body_).substr(body_sent_, n), fin);
      if (!s.ok()) {
        end_channel(tunnel::abort_reason::shutdown);
        fail(502, "the agent connection failed while sending the request", api_code::agent_failed);
        return;
      }
      body_sent_ += n;
      if (fin) {
        body_fin_sent_ = true;
        // body_ stays until an answer reaches the user: a failover sends it again.
      }
    }
  }

  void on_response(const tunnel::Response& r) {
    if (state_ != State::routed || !ex_) return;
    if (r.status < 200) {
      report(Outcome::failed);
      end_channel(tunnel::abort_reason::shutdown);
      fail(502, "the agent answered with status " + std::to_string(r.status),
           api_code::agent_failed);
      return;
    }
    if (r.status >= 500 || r.status == 429) {
      // Nothing reached the user yet: another agent may answer. Without one,
      // the vendor's answer goes through as it is.
      const Outcome o = r.status == 429 ? Outcome::no_capacity : Outcome::failed;
      if (fail_over(o, 502, "the vendor answered " + std::to_string(r.status), api_code::agent_failed)) {
        return;
      }
    }
    report(r.status == 429 ? Outcome::no_capacity : Outcome::answered);
    std::string().swap(body_);  // answered: no failover from here on
    http::ResponseHead head;
    head.status = static_cast<int>(r.status);
    for (const auto& [name, value] : r.headers) {
      const std::string lower = lowercase(name);
      if (!allowed_response_header(lower)) continue;
      if (lower == "content-type" && starts_with(lowercase(value), "text/event-stream")) sse_ = true;
      head.headers.add(lower, value);
    }
    head.headers.add("x-request-id", id_);
    for (const auto& [name, value] : rate_headers_) head.headers.add(name, value);
    if (sse_) {
      head.headers.add("cache-control", "no-cache");
      head.headers.add("x-accel-buffering", "no");
    }
    Status s = ex_->respond(std::move(head));
    if (!s.ok()) {
      TG_WARN(kLog, "%s: agent response head refused: %s", id_.c_str(), s.message().c_str());
      end_channel(tunnel::abort_reason::shutdown);
      sse_ = false;
      fail(502, "the agent sent an invalid response head", api_code::agent_failed);
      return;
    }
    status_ = head.status;
    if (ticket_) ticket_->meter().response_status(head.status);
    filtering_ = injected_ && sse_;
    transition(State::streaming);
    last_write_ms_ = uv_now(server_->loop_);
    if (sse_ && server_->settings_.sse_keepalive_ms > 0) {
      keepalive_.start(server_->settings_.sse_keepalive_ms, 0, [this] { on_keepalive(); });
    }
  }

  void on_keepalive() {
    if (state_ != State::streaming || !ex_) return;
    const uint64_t ka = server_->settings_.sse_keepalive_ms;
    const uint64_t now = uv_now(server_->loop_);
    const uint64_t due = last_write_ms_ + ka;
    if (now < due) {
      keepalive_.start(due - now, 0, [this] { on_keepalive(); });
      return;
    }
    if (!ex_->write_blocked()) {
      Status s = ex_->write(kSseKeepalive);
      if (!s.ok()) TG_DEBUG(kLog, "%s: keep-alive not written: %s", id_.c_str(), s.message().c_str());
    }
    last_write_ms_ = now;
    keepalive_.start(ka, 0, [this] { on_keepalive(); });
  }

  void on_deadline() {
    if (state_ == State::done) return;
    end_channel(tunnel::abort_reason::deadline);
    fail(504,
         "the request did not complete within " +
             std::to_string(server_->settings_.request_deadline_ms) + " ms",
         api_code::timeout);
  }

  // Ends the exchange with a failure: an error answer before the head; after
  // it, a final SSE error event, or (other bodies) the end of the response
  // so the client does not wait. The channel must be gone already.
  void fail(int status, const std::string& message, std::string_view code) {
    if (state_ == State::done) return;
    if (!ex_) {
      complete();
      return;
    }
    if (state_ != State::streaming) {
      status_ = status;
      error_code_ = std::string(code);
      std::vector<std::pair<std::string, std::string>> extra = rate_headers_;
      if (status == 429) extra.emplace_back("retry-after", std::to_string(std::max<uint64_t>(retry_after_s_, 1)));
      reply_api_error(*ex_, dialect_, status, message, code, id_, extra);
      ex_ = nullptr;
      complete();
      return;
    }
    error_code_ = std::string(code);
    if (sse_) {
      // An SSE client reads a final error event, then a clean end.
      (void)ex_->write(sse_error_event(dialect_, status, message, code));
      (void)ex_->finish();
    } else {
      // A JSON body broke mid-way: drop the connection so the client sees a
      // truncated body rather than a complete-looking document.
      ex_->abort();
    }
    ex_ = nullptr;
    complete();
  }

  void finish_exchange() {
    if (ex_) {
      Status s = ex_->finish();
      if (!s.ok()) TG_DEBUG(kLog, "%s: finish: %s", id_.c_str(), s.message().c_str());
      ex_ = nullptr;
    }
    complete();
  }

  // Closes the channel if it is still open (abort with `reason` unless both
  // directions are done) and releases its routing slot.
  void end_channel(std::string_view reason) {
    if (!route_) return;
    report(Outcome::abandoned);
    charge_tokens();
    tunnel::Channel* ch = route_->channel;
    server_->router_.release(*route_);
    route_.reset();
    if (ticket_) {
      // Abort, but keep metering what the agent sent before it saw the
      // abort: billing ends the linger when the agent's claim arrives.
      ch->abort_linger(reason);
      server_->billing_->linger(ticket_, ch);
      ticket_ = nullptr;
      return;
    }
    ch->close(reason);
  }

  // The channel ended by itself: release the slot. `complete`: finish or
  // error arrived, the hub saw every byte; otherwise the tunnel was lost.
  void forget_channel(bool complete) {
    if (!route_) return;
    report(Outcome::abandoned);
    charge_tokens();
    server_->router_.release(*route_);
    route_.reset();
    if (ticket_) {
      if (complete) {
        server_->billing_->ended(ticket_);
      } else {
        server_->billing_->lost(ticket_);
      }
      ticket_ = nullptr;
    }
  }

  // The answer's tokens count against the token's tokens-per-minute limit
  // (the hub's own reading; the rest that crossed an abort is not counted).
  void charge_tokens() {
    if (!ticket_ || state_ != State::streaming || limits_.tpm == 0) return;
    const billing::Usage u = ticket_->meter().result();
    server_->limiter_.charge_tokens(who_.token_id, limits_, u.input + u.cached + u.output,
                                    uv_now(server_->loop_));
  }

  // Forwards what the usage-chunk filter still holds (the stream ended).
  void flush_filter() {
    if (!filtering_ || !ex_) return;
    std::string rest;
    filter_.finish(&rest);
    if (!rest.empty()) (void)ex_->write(rest);
  }

  void complete() {
    if (state_ == State::done) return;
    transition(State::done);
    deadline_.stop();
    keepalive_.stop();
    end_channel(tunnel::abort_reason::client_gone);
    const uint64_t ms = uv_now(server_->loop_) - started_ms_;
    TG_INFO(kLog, "%s user=%s %s model=%s stream=%s status=%d%s%s bytes=%llu ms=%llu",
            id_.c_str(), who_.user.c_str(), path_.c_str(),
            model_.empty() ? "-" : printable(model_).c_str(), stream_ ? "true" : "false", status_,
            error_code_.empty() ? "" : " error=", error_code_.c_str(),
            static_cast<unsigned long long>(bytes_out_), static_cast<unsigned long long>(ms));
    server_->request_done(this);
  }

  ApiServer* server_;
  http::Exchange* ex_;  // nullptr once finished or aborted
  State state_ = State::reading;
  std::string id_;
  std::string path_;
  Dialect dialect_;
  TokenOwner who_;
  std::string body_;
  size_t body_sent_ = 0;
  bool body_fin_sent_ = false;
  std::optional<Route> route_;  // set while the channel is open
  tunnel::Call call_;           // the call of every attempt but its id and deadline
  uint32_t attempt_ = 0;        // 1.. max_attempts
  std::vector<std::string> tried_;  // agents of earlier attempts
  uint64_t attempt_started_ms_ = 0;
  bool reported_ = false;       // the router heard how the current attempt went
  int last_failure_status_ = 502;
  std::string last_failure_;
  std::string last_failure_code_;
  Limits limits_;
  std::vector<std::pair<std::string, std::string>> rate_headers_;
  uint64_t retry_after_s_ = 0;
  billing::Api api_ = billing::Api::chat;
  Ticket* ticket_ = nullptr;    // metering this attempt; handed to billing when the channel ends
  bool injected_ = false;       // include_usage was added to the user's request
  bool filtering_ = false;      // ... and the answer is SSE: drop the usage-only chunk
  billing::UsageChunkFilter filter_;
  std::string filtered_;
  std::string model_;
  bool stream_ = false;
  bool sse_ = false;
  size_t pending_credit_ = 0;
  uint64_t started_ms_ = 0;
  uint64_t last_write_ms_ = 0;
  uint64_t bytes_out_ = 0;
  int status_ = 0;
  std::string error_code_;
  Timer deadline_;
  Timer keepalive_;
};

// ---- ApiServer ----

ApiServer::ApiServer(uv_loop_t* loop, const ApiSettings& settings, TunnelServer* tunnels,
                     UserStore* users, std::shared_ptr<tls::ServerContext> tls, Billing* billing,
                     const LimitSettings& limits, const RoutingSettings& routing)
    : loop_(loop),
      settings_(settings),
      tunnels_(tunnels),
      users_(users),
      billing_(billing),
      tls_(std::move(tls)),
      router_(loop, tunnels->tunnels(), routing.penalty_ms),
      routing_(routing),
      limits_{limits.rpm, limits.tpm},
      listener_(loop),
      reaper_(loop) {
  created_s_ = unix_now_ms() / 1000;
  if (billing_) router_.set_admit([b = billing_](const std::string& agent) { return b->takes_calls(agent); });
}

ApiServer::~ApiServer() {
  stopping_ = true;
  listener_.close();
  router_.stop();
  requests_.clear();  // aborts open streams; the exchanges die with http_
  dead_.clear();
  http_.reset();
}

Status ApiServer::start(const net::HostPort& listen) {
  if (http_) return error(Errc::invalid_argument, "API server already started");
  http::ServerOptions ho;
  ho.limits.head_bytes = kApiHeadBytes;
  ho.limits.header_count = kApiHeaderCount;
  ho.limits.url_bytes = kApiUrlBytes;
  // The body limit is enforced per request (413 in the API's own format);
  // the parser's own limit is only a backstop far above it.
  ho.limits.body_bytes = 0;
  ho.header_timeout_ms = settings_.header_timeout_ms;
  ho.idle_timeout_ms = settings_.idle_timeout_ms;
  ho.body_timeout_ms = settings_.body_timeout_ms;
  ho.max_connections = settings_.max_connections;
  ho.max_connections_per_address = settings_.max_connections_per_address;
  http_ = std::make_unique<http::Server>(loop_, static_cast<http::ServerHandler*>(this), ho);
  Status s = listener_.listen(listen.host, listen.port,
                              [this](net::StreamPtr tcp) { on_accept(std::move(tcp)); });
  if (!s.ok()) {
    http_.reset();
    return error(s.code(), "user_listen " + listen.host + ":" + std::to_string(listen.port) +
                               ": " + s.message());
  }
  router_.start();
  return Status::success();
}

void ApiServer::shutdown() noexcept {
  if (stopping_) return;
  stopping_ = true;
  listener_.close();
  if (http_) http_->drain();
}

void ApiServer::on_accept(net::StreamPtr tcp) {
  if (!tcp || !http_) return;
  if (tls_) {
    http_->accept(tls::accept(loop_, std::move(tcp), tls_, settings_.header_timeout_ms));
  } else {
    http_->accept(std::move(tcp));
  }
}

void ApiServer::on_request(http::Exchange& ex) noexcept {
  const http::RequestHead& req = ex.request();
  const std::string id = crypto::request_id(unix_now_ms());
  const std::string_view target = req.target;
  const std::string path(target.substr(0, target.find('?')));
  const Dialect dialect = dialect_for_path(path);

  const bool models = path == kModels || starts_with(path, std::string(kModels) + "/");
  const bool post_endpoint = path == kChat || path == kEmbeddings || path == kMessages;
  if (!models && !post_endpoint) {
    reply_api_error(ex, dialect, 404, "unknown request URL: " + req.method + " " + printable(path),
                    api_code::unknown_url, id);
    return;
  }
  if ((models && req.method != "GET") || (post_endpoint && req.method != "POST")) {
    reply_api_error(ex, dialect, 405,
                    "method " + req.method + " is not allowed on " + path + " (use " +
                        (models ? "GET" : "POST") + ")",
                    api_code::method_not_allowed, id);
    return;
  }

  std::optional<TokenOwner> who;
  for (std::string_view token : credentials(req.headers)) {
    auto r = users_->authenticate(token, uv_now(loop_));
    if (!r.ok()) {
      TG_ERROR(kLog, "%s: token lookup failed: %s", id.c_str(), r.status().to_string().c_str());
      reply_api_error(ex, dialect, 500, "internal error while checking the API key",
                      api_code::internal, id);
      return;
    }
    if (r->has_value()) {
      who = std::move(*r);
      break;
    }
  }
  if (!who) {
    TG_DEBUG(kLog, "%s: %s %s from %s: missing or invalid API key", id.c_str(), req.method.c_str(),
             path.c_str(), ex.peer_address().c_str());
    reply_api_error(ex, dialect, 401,
                    "missing or invalid API key: send 'Authorization: Bearer sk-tg-...' or "
                    "'x-api-key: sk-tg-...'",
                    api_code::invalid_api_key, id);
    return;
  }

  if (models) {
    serve_models(ex, id, path.size() > kModels.size() ? std::string_view(path).substr(kModels.size() + 1)
                                                     : std::string_view());
    return;
  }
  if (stopping_ || tunnels_->stopping()) {
    reply_api_error(ex, dialect, 503, "the hub is shutting down", api_code::shutting_down, id);
    return;
  }
  auto length = content_length_of(req.headers);
  if (!length.ok() || *length > settings_.max_request_body) {
    reply_api_error(ex, dialect, 413,
                    "request body is larger than " + std::to_string(settings_.max_request_body) +
                        " bytes",
                    api_code::request_too_large, id);
    return;
  }
  auto r = std::make_unique<Request>(this, ex, id, path, dialect, std::move(*who));
  Request* raw = r.get();
  requests_.emplace(raw, std::move(r));
  raw->start();
}

void ApiServer::serve_models(http::Exchange& ex, const std::string& request_id,
                             std::string_view model_id) {
  std::vector<std::string> names = router_.online_models();
  std::unique_ptr<cJSON, decltype(&cJSON_Delete)> root(nullptr, cJSON_Delete);
  if (model_id.empty()) {
    root.reset(cJSON_CreateObject());
    cJSON_AddStringToObject(root.get(), "object", "list");
    cJSON* data = cJSON_AddArrayToObject(root.get(), "data");
    for (const auto& n : names) cJSON_AddItemToArray(data, model_json(n, created_s_));
  } else {
    auto id = percent_decode(model_id);
    if (!id || std::find(names.begin(), names.end(), *id) == names.end()) {
      reply_api_error(ex, Dialect::openai, 404,
                      "model '" + printable(id ? *id : std::string(model_id)) +
                          "' does not exist or no agent serves it",
                      api_code::model_not_found, request_id);
      return;
    }
    root.reset(model_json(*id, created_s_));
  }
  char* text = cJSON_PrintUnformatted(root.get());
  const std::string body = text ? text : "{}";
  if (text) cJSON_free(text);
  reply_json(ex, 200, body, request_id);
}

void ApiServer::request_done(Request* r) {
  auto it = requests_.find(r);
  if (it == requests_.end()) return;
  dead_.push_back(std::move(it->second));
  requests_.erase(it);
  if (!reaper_.pending()) reaper_.post([this] { on_reap(); });
}

void ApiServer::on_reap() noexcept { dead_.clear(); }

}  // namespace tg::hub
