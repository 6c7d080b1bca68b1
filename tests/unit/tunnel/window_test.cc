// Credit windows: sender and receiver accounting, batching, overflow.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"
#include "shared/tunnel/window.h"

namespace tg::tunnel {
namespace {

TEST(TunnelWindow, SenderStartsWithTheWholeWindow) {
  SendWindow w(1000);
  EXPECT_EQ(w.available(), 1000u);
  EXPECT_TRUE(w.can_send(1000));
  EXPECT_FALSE(w.can_send(1001));
}

TEST(TunnelWindow, SendingConsumesTheWindow) {
  SendWindow w(1000);
  ASSERT_TRUE(w.on_sent(600).ok());
  EXPECT_EQ(w.available(), 400u);
  EXPECT_TRUE(w.can_send(400));
  EXPECT_FALSE(w.can_send(401));
}

TEST(TunnelWindow, SendingBeyondTheWindowIsACallerError) {
  SendWindow w(1000);
  ASSERT_TRUE(w.on_sent(1000).ok());
  const Status s = w.on_sent(1);
  EXPECT_EQ(s.code(), Errc::internal);
  EXPECT_EQ(w.available(), 0u);
}

TEST(TunnelWindow, HugeSendIsRejectedWithoutWrapping) {
  SendWindow w(1000);
  EXPECT_FALSE(w.on_sent(std::numeric_limits<size_t>::max()).ok());
  EXPECT_EQ(w.available(), 1000u);
}

TEST(TunnelWindow, CreditReopensTheWindow) {
  SendWindow w(1000);
  ASSERT_TRUE(w.on_sent(1000).ok());
  ASSERT_TRUE(w.on_credit(250).ok());
  EXPECT_EQ(w.available(), 250u);
}

TEST(TunnelWindow, CreditBeyondOutstandingIsAProtocolError) {
  SendWindow w(1000);
  ASSERT_TRUE(w.on_sent(100).ok());
  const Status s = w.on_credit(101);
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message(), "flow control: credit of 101 bytes with 100 bytes outstanding");
  EXPECT_EQ(w.available(), 900u);
}

TEST(TunnelWindow, CreditWithNothingOutstandingIsAProtocolError) {
  SendWindow w(1000);
  EXPECT_EQ(w.on_credit(1).code(), Errc::protocol);
}

TEST(TunnelWindow, ZeroCreditIsAProtocolError) {
  SendWindow w(1000);
  ASSERT_TRUE(w.on_sent(10).ok());
  EXPECT_EQ(w.on_credit(0).code(), Errc::protocol);
}

TEST(TunnelWindow, HugeCreditDoesNotOverflow) {
  SendWindow w(kMaxWindow);
  ASSERT_TRUE(w.on_sent(kMaxWindow).ok());
  EXPECT_FALSE(w.on_credit(std::numeric_limits<uint64_t>::max()).ok());
  EXPECT_FALSE(w.on_credit(uint64_t{1} << 32).ok());
  EXPECT_TRUE(w.on_credit(kMaxWindow).ok());
  EXPECT_EQ(w.available(), kMaxWindow);
}

TEST(TunnelWindow, ReceiverAcceptsUpToTheWindow) {
  RecvWindow w(1000);
  ASSERT_TRUE(w.on_received(1000).ok());
  EXPECT_EQ(w.buffered(), 1000u);
}

TEST(TunnelWindow, ReceivingBeyondTheWindowIsAProtocolError) {
  RecvWindow w(1000);
  ASSERT_TRUE(w.on_received(999).ok());
  const Status s = w.on_received(2);
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message(), "flow control: 2 bytes received with 1 bytes of window left (window 1000)");
  EXPECT_EQ(w.buffered(), 999u);
}

TEST(TunnelWindow, HugeReceiveIsRejectedWithoutWrapping) {
  RecvWindow w(kMaxWindow);
  EXPECT_FALSE(w.on_received(std::numeric_limits<size_t>::max()).ok());
  EXPECT_EQ(w.buffered(), 0u);
}

TEST(TunnelWindow, SmallConsumptionIsBatched) {
  RecvWindow w(1000);  // threshold 250
  ASSERT_TRUE(w.on_received(1000).ok());
  Result<uint32_t> c = w.consumed(100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 0u);
  c = w.consumed(149);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 0u);
  EXPECT_EQ(w.pending_credit(), 249u);
}

TEST(TunnelWindow, CreditIsReturnedAtAQuarterWindow) {
  RecvWindow w(1000);
  ASSERT_TRUE(w.on_received(1000).ok());
  ASSERT_EQ(*w.consumed(249), 0u);
  Result<uint32_t> c = w.consumed(1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 250u);
  EXPECT_EQ(w.pending_credit(), 0u);
  EXPECT_EQ(w.buffered(), 750u);
}

TEST(TunnelWindow, PendingCreditStillCountsAgainstTheWindow) {
  RecvWindow w(1000);
  ASSERT_TRUE(w.on_received(1000).ok());
  ASSERT_EQ(*w.consumed(100), 0u);  // 100 pending, not yet returned
  EXPECT_FALSE(w.on_received(1).ok());
}

TEST(TunnelWindow, ConsumingMoreThanBufferedIsACallerError) {
  RecvWindow w(1000);
  ASSERT_TRUE(w.on_received(10).ok());
  EXPECT_EQ(w.consumed(11).status().code(), Errc::internal);
  EXPECT_EQ(w.buffered(), 10u);
}

TEST(TunnelWindow, SenderAndReceiverStayInStepUntilDrained) {
  // A sender that always fills the window and a consumer taking odd-sized
  // chunks: the sender never stalls for good and never overruns.
  SendWindow tx(kDefaultWindow);
  RecvWindow rx(kDefaultWindow);
  uint64_t sent = 0;
  uint64_t total = 10 * 1024 * 1024;
  int rounds = 0;
  while (sent < total && rounds++ < 100000) {
    const uint32_t n = tx.available() < 65536 ? tx.available() : 65536;
    if (n > 0) {
      ASSERT_TRUE(tx.on_sent(n).ok());
      ASSERT_TRUE(rx.on_received(n).ok());
      sent += n;
    }
    const uint32_t take = rx.buffered() < 7777 ? rx.buffered() : 7777;
    Result<uint32_t> credit = rx.consumed(take);
    ASSERT_TRUE(credit.ok());
    if (*credit > 0) {
      ASSERT_TRUE(tx.on_credit(*credit).ok());
    }
  }
  EXPECT_GE(sent, total);
}

}  // namespace
}  // namespace tg::tunnel
