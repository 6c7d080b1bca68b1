// The vendor passthrough: a CallHandler that runs each tunnel call as one
// HTTP/1.1 request to its provider's vendor (endpoints and rewriting from
// vendors.h) and streams both bodies through with end-to-end flow control:
// credit goes back to the hub only once bytes reached the vendor socket, and
// the vendor is not read while the channel has no send capacity. Each
// provider's rate limits (limiter.h) are checked before its vendor is
// called; a vendor 429 is never forwarded, and a 5xx or a failed connection
// before any response byte is retried. Owns the vendor connections (one per
// call), the TLS context for vendors and the limiter. The vendor CA bundle
// is held only while vendor TLS connections exist (kVendorCaLingerMs). Never
// logs or sends into the tunnel a vendor key, a header value or a body byte.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/limiter.h"
#include "agent/tunnel_client.h"
#include "shared/billing/usage.h"
#include "shared/core/loop.h"
#include "shared/core/status.h"
#include "shared/http/client.h"
#include "shared/tls/context.h"
#include "shared/tunnel/session.h"

namespace tg::agent {

// A call that reached a vendor ended (finished, failed or aborted), with the
// usage the agent read from the bytes it forwarded (shared/billing meter).
struct FinishedCall {
  std::string request_id;
  std::string model;
  std::string ticket;  // the call's ticket from the hub (empty: none)
  billing::Usage usage;
  int status = 0;  // upstream status, 0 when no response head came
};

// Told of every such call after its last byte went into the tunnel (the
// agent's settlement: outbox, then claim).
class CallReporter {
 public:
  virtual void call_finished(const FinishedCall& f) noexcept = 0;

 protected:
  virtual ~CallReporter() = default;
};

// The parsed vendor CA bundle (ca_file) is the largest part of an idle
// agent's heap: about 600 KiB for the 144 roots of Debian's bundle. It is
// checked once at start-up and freed; the first vendor TLS connection parses
// it again (a few ms: docs/BENCH.md, "Agent footprint"), and it stays while
// any vendor connection (in a call or kept alive) holds it and for
// ca_linger_ms after the last one closed, then it is freed again and the
// freed heap returned to the system. Same file, same verification each time.
constexpr uint64_t kVendorCaLingerMs = 60000;

struct PassthroughOptions {
  uint64_t connect_timeout_ms = 10000;    // resolve + TCP + TLS, capped by the call's deadline
  uint64_t response_timeout_ms = 300000;  // request sent -> response head (upstream_timeout)
  // After the head: the longest silence between body bytes from the vendor
  // while we read (our own backpressure does not count); then the call ends
  // with upstream_timeout instead of holding its slot until the deadline.
  uint64_t body_idle_timeout_ms = 120000;
  // A vendor connection that ended its response with keep-alive waits this
  // long for the provider's next call (0: one connection per call). Kept
  // well below vendors' own idle timeouts, so a reused connection is rarely
  // closed under us.
  uint64_t idle_ms = 2000;
  // The vendor CA bundle is freed this long after the last vendor TLS
  // connection closed (kVendorCaLingerMs).
  uint64_t ca_linger_ms = kVendorCaLingerMs;
};

// Request body bytes a call keeps until the vendor's answer is accepted, so
// that it can be sent again on a new connection (a reused connection the
// vendor closed, a 5xx, a failed connection). Past this, the call is not
// retried.
constexpr size_t kMaxReplayBytes = 64 * 1024;

// A 5xx answer or a failed connection (resolve, connect, TLS, reset before
// the response head) is retried this many times on a new connection, after
// a jittered back-off, while the call's deadline allows it. A TLS
// certificate refusal and a connect timeout are not retried.
constexpr int kMaxVendorRetries = 2;
struct RetryBackoff {
  uint64_t min_ms;
  uint64_t max_ms;
};
constexpr RetryBackoff kVendorRetryBackoff[kMaxVendorRetries] = {{100, 300}, {200, 600}};

// Counters, for logs and tests.
struct PassthroughStats {
  uint64_t calls = 0;          // calls taken (a vendor request was attempted)
  uint64_t refused = 0;        // answered at once: unknown_model, bad_request, busy, rate_limited
  uint64_t rate_limited = 0;   // of which refused by the limiter
  uint64_t finished = 0;       // ended with finish
  uint64_t failed = 0;         // ended with error
  uint64_t aborted = 0;        // the hub aborted or the tunnel ended
  uint64_t connections = 0;    // vendor connections opened
  uint64_t reused = 0;         // calls sent on a kept-alive connection
  uint64_t retried = 0;        // calls sent again after a reused connection closed
  uint64_t vendor_retries = 0; // requests sent again after a 5xx or a failed connection
  uint64_t vendor_429 = 0;     // vendor 429s answered error{rate_limited}
  uint64_t capacity_reports = 0;  // `capacity` messages sent
  uint64_t ca_loads = 0;       // vendor CA bundle parsed for a connection (not the start-up check)
  uint64_t ca_releases = 0;    // vendor CA bundle freed after ca_linger_ms without a connection
  size_t ca_certificates = 0;  // certificates in the bundle, as last parsed
  size_t max_held_bytes = 0;   // most body bytes one call ever held (either direction)
};

class Passthrough final : public CallHandler {
 public:
  // Sends a control message on the live tunnel (Errc::closed when there is none).
  using SendFn = std::function<Status(const tunnel::Message& m)>;

  // Checks that the vendor CA bundle (config.ca_file) parses when a provider
  // needs TLS, then frees it: the vendor TLS context (that bundle, full
  // chain and host name verification) is built again for the first vendor
  // TLS connection. `config` must outlive the Passthrough.
  static Result<std::unique_ptr<Passthrough>> create(uv_loop_t* loop, const AgentConfig& config,
                                                     PassthroughOptions options = {});
  // Closes every vendor connection (busy or idle) at once; no callback fires and no channel
  // is touched (destroy the tunnel first: its channels point here).
  ~Passthrough() override;
  Passthrough(const Passthrough&) = delete;
  Passthrough& operator=(const Passthrough&) = delete;

  // Answers error{unknown_model | bad_request | busy | rate_limited} and
  // closes the channel at once, or takes the stream over: the vendor request
  // starts from the loop, and the stream ends with response + body + FIN +
  // finish, or with error (before the response head: rate_limited for a
  // vendor 429, upstream_unreachable, upstream_timeout, upstream_error,
  // deadline_exceeded; after it: upstream_error or deadline_exceeded). An
  // abort or the tunnel's end closes the vendor connection at once.
  void on_call(tunnel::Channel& ch, const tunnel::Call& call) noexcept override;

  // Calls running now, in all or for one provider (by index in config.providers).
  size_t in_flight() const noexcept { return calls_.size(); }
  int in_flight(size_t provider) const noexcept { return busy_.at(provider); }
  // Kept-alive vendor connections waiting for a call and still open.
  size_t idle_connections() const noexcept;
  const PassthroughStats& stats() const noexcept { return stats_; }
  // Receives every ended call (may be null: nothing is reported).
  void set_reporter(CallReporter* r) noexcept { reporter_ = r; }
  // Where `capacity` reports go (may be empty: they are dropped).
  void set_sender(SendFn send) { send_ = std::move(send); }
  // A tunnel (re)registered: the hub knows nothing of our capacity, so
  // providers unavailable now are reported again at once.
  void on_tunnel_ready() noexcept;
  const Limiter& limiter() const noexcept { return limiter_; }
  // Whether the parsed vendor CA bundle is held now.
  bool vendor_ca_held() const noexcept { return tls_ != nullptr; }

 private:
  class Call;
  friend class Call;

  Passthrough(uv_loop_t* loop, const AgentConfig& config, PassthroughOptions options);
  // The vendor TLS context, parsing the CA bundle if it is not held.
  Result<std::shared_ptr<tls::ClientContext>> vendor_tls();
  // A vendor connection may have closed: the CA bundle is freed
  // ca_linger_ms from now unless a connection holds it then.
  void linger_vendor_tls();
  void on_ca_linger();
  // A call ended: it leaves calls_ now and is destroyed from the loop.
  void retire(Call* c);
  // The provider's most recent idle connection that is still open, or null.
  std::unique_ptr<http::ClientConnection> take_idle(size_t provider);
  // Keeps a connection that finished a response with keep-alive.
  void give_back(size_t provider, std::unique_ptr<http::ClientConnection> conn);
  void sweep_idle();
  // A call admitted at `admitted_ms` got a vendor 429: lowers the provider's
  // rate, reports it; returns when the provider can take calls again.
  uint64_t vendor_throttled(size_t provider, uint64_t admitted_ms,
                            std::optional<uint64_t> retry_after_ms);
  // A call of `provider` ended: its tokens and status go to the limiter.
  void call_ended(size_t provider, int status, const billing::Usage& usage);
  // Sends the capacity reports due and arms capacity_timer_ for the next.
  void flush_capacity();

  struct Idle {
    std::unique_ptr<http::ClientConnection> conn;
    uint64_t since_ms = 0;
  };

  uv_loop_t* loop_;
  const AgentConfig& config_;
  PassthroughOptions options_;
  std::shared_ptr<tls::ClientContext> tls_;   // null while no vendor connection needs it
  Timer ca_timer_;                              // frees tls_ (unref'd)
  std::vector<int> busy_;                       // in-flight calls per provider
  std::vector<std::vector<Idle>> idle_;         // per provider, most recent last; <= max_parallel
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<Call>> graveyard_;
  Deferred reaper_;
  Timer sweeper_;                               // closes idle connections past idle_ms
  Limiter limiter_;
  Timer capacity_timer_;                        // unref'd: never keeps the loop alive
  SendFn send_;
  PassthroughStats stats_;
  CallReporter* reporter_ = nullptr;
};

}  // namespace tg::agent
