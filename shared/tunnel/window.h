// Per-stream, per-direction credit accounting for tunnel flow control: the
// sender may have at most `window` body bytes unacknowledged; the receiver
// returns credit as its consumer takes bytes, in batches of at least window/4
// so credits are not sent per tiny chunk. Pure arithmetic: no I/O, no timers.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>

#include "shared/core/status.h"

namespace tg::tunnel {

// Sender side: how many body bytes may still go out.
class SendWindow {
 public:
  explicit SendWindow(uint32_t window) noexcept : window_(window), available_(window) {
    assert(window > 0);
  }

  uint32_t window() const noexcept { return window_; }
  uint32_t available() const noexcept { return available_; }
  bool can_send(size_t n) const noexcept { return n <= available_; }

  // Records `n` bytes sent. Errc::internal when n > available(): the caller
  // must check can_send() first.
  Status on_sent(size_t n) {
    if (n > available_) {
      return error(Errc::internal, "flow control: sending " + std::to_string(n) +
                                       " bytes with only " + std::to_string(available_) +
                                       " bytes of window");
    }
    available_ -= static_cast<uint32_t>(n);
    return Status();
  }

  // A `credit` from the peer. Errc::protocol (close 4000) for 0 bytes or for
  // more credit than bytes outstanding (available() would exceed window()).
  Status on_credit(uint64_t n) {
    const uint64_t outstanding = window_ - available_;
    if (n == 0 || n > outstanding) {
      return error(Errc::protocol, "flow control: credit of " + std::to_string(n) +
                                       " bytes with " + std::to_string(outstanding) +
                                       " bytes outstanding");
    }
    available_ += static_cast<uint32_t>(n);
    return Status();
  }

 private:
  uint32_t window_;
  uint32_t available_;
};

// Receiver side: checks the peer stays within the window and decides when to
// return credit. Invariant: buffered() + pending_credit() <= window().
// Deadlock-free: a blocked sender has window() bytes outstanding; once the
// consumer took them all, pending reaches window() >= the batch threshold.
class RecvWindow {
 public:
  explicit RecvWindow(uint32_t window) noexcept
      : window_(window), threshold_(window / 4 > 0 ? window / 4 : 1) {
    assert(window > 0);
  }

  uint32_t window() const noexcept { return window_; }
  // Received bytes the consumer has not taken yet.
  uint32_t buffered() const noexcept { return buffered_; }
  // Consumed bytes not credited back yet.
  uint32_t pending_credit() const noexcept { return pending_; }

  // `n` body bytes arrived. Errc::protocol (close 4000) when the peer went
  // beyond the window.
  Status on_received(size_t n) {
    const uint64_t in_flight = static_cast<uint64_t>(buffered_) + pending_;
    if (n > window_ - in_flight) {
      return error(Errc::protocol, "flow control: " + std::to_string(n) +
                                       " bytes received with " +
                                       std::to_string(window_ - in_flight) +
                                       " bytes of window left (window " +
                                       std::to_string(window_) + ")");
    }
    buffered_ += static_cast<uint32_t>(n);
    return Status();
  }

  // The consumer took `n` buffered bytes. Returns the credit to send now
  // (then counted as returned), or 0 while fewer than window/4 bytes are
  // pending. Errc::internal when n > buffered().
  Result<uint32_t> consumed(size_t n) {
    if (n > buffered_) {
      return error(Errc::internal, "flow control: consumed " + std::to_string(n) +
                                       " bytes with only " + std::to_string(buffered_) +
                                       " buffered");
    }
    buffered_ -= static_cast<uint32_t>(n);
    pending_ += static_cast<uint32_t>(n);
    if (pending_ < threshold_) return 0u;
    const uint32_t credit = pending_;
    pending_ = 0;
    return credit;
  }

 private:
  uint32_t window_;
  uint32_t threshold_;
  uint32_t buffered_ = 0;
  uint32_t pending_ = 0;
};

}  // namespace tg::tunnel
