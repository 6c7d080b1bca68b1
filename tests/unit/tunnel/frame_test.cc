// Binary data frames: layout, edge cases of flags, ids and payload sizes.
#include <gtest/gtest.h>

#include <string>

#include "shared/crypto/hash.h"
#include "shared/tunnel/frame.h"

namespace tg::tunnel {
namespace {

std::string hex(const std::string& s) { return crypto::hex_encode(s); }
std::string unhex(const char* h) { return crypto::hex_decode(h).value(); }

TEST(TunnelFrame, HeaderIsFlagsThenBigEndianId) {
  Result<FrameHeaderBytes> h = encode_frame_header(0x01020304u, true, 10);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(hex(std::string(reinterpret_cast<const char*>(h->data()), h->size())), "0101020304");
}

TEST(TunnelFrame, EncodeFrameIsHeaderPlusPayload) {
  Result<std::string> f = encode_frame(7, false, "hello");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(hex(*f), "000000000768656c6c6f");
}

TEST(TunnelFrame, DecodeReturnsAViewOfThePayload) {
  const std::string wire = unhex("010000000768656c6c6f");
  Result<DataFrame> f = decode_frame(wire);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->id, 7u);
  EXPECT_TRUE(f->fin);
  EXPECT_EQ(f->payload, "hello");
  EXPECT_EQ(f->payload.data(), wire.data() + kFrameHeaderSize);
}

TEST(TunnelFrame, LargestIdRoundTrips) {
  Result<std::string> wire = encode_frame(0xFFFFFFFFu, false, "x");
  ASSERT_TRUE(wire.ok());
  Result<DataFrame> f = decode_frame(*wire);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->id, 0xFFFFFFFFu);
}

TEST(TunnelFrame, EmptyPayloadWithFinIsValid) {
  Result<DataFrame> f = decode_frame(unhex("0100000007"));
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->fin);
  EXPECT_TRUE(f->payload.empty());
}

TEST(TunnelFrame, EmptyPayloadWithoutFinIsRejected) {
  Result<DataFrame> f = decode_frame(unhex("0000000007"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Errc::protocol);
  EXPECT_EQ(f.status().message(), "data frame: empty payload without FIN on stream 7");
}

TEST(TunnelFrame, IdZeroIsRejected) {
  Result<DataFrame> f = decode_frame(unhex("0100000000"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "data frame: stream id must be 1..4294967295, got 0");
}

TEST(TunnelFrame, UnknownFlagBitIsRejected) {
  Result<DataFrame> f = decode_frame(unhex("02000000077878"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "data frame: flags byte 0x02 has unknown bits (only bit 0, FIN, is defined)");
}

TEST(TunnelFrame, HighFlagBitIsRejected) {
  EXPECT_FALSE(decode_frame(unhex("81000000077878")).ok());
}

TEST(TunnelFrame, ShortFrameIsRejected) {
  Result<DataFrame> f = decode_frame(unhex("01000000"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "data frame: 4 bytes, shorter than the 5-byte header");
  EXPECT_FALSE(decode_frame("").ok());
}

TEST(TunnelFrame, PayloadAtLimitIsAccepted) {
  const std::string wire = unhex("0000000001") + std::string(kMaxFramePayload, 'p');
  Result<DataFrame> f = decode_frame(wire);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->payload.size(), kMaxFramePayload);
}

TEST(TunnelFrame, PayloadOverLimitIsRejected) {
  const std::string wire = unhex("0000000001") + std::string(kMaxFramePayload + 1, 'p');
  Result<DataFrame> f = decode_frame(wire);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "data frame: payload of 65537 bytes is over the limit of 65536");
}

TEST(TunnelFrame, EncoderRejectsWhatTheDecoderRejects) {
  EXPECT_EQ(encode_frame_header(0, true, 1).status().code(), Errc::invalid_argument);
  EXPECT_EQ(encode_frame_header(1, false, 0).status().code(), Errc::invalid_argument);
  EXPECT_EQ(encode_frame_header(1, true, kMaxFramePayload + 1).status().code(), Errc::invalid_argument);
  EXPECT_TRUE(encode_frame_header(1, true, kMaxFramePayload).ok());
  EXPECT_FALSE(encode_frame(1, false, "").ok());
}

}  // namespace
}  // namespace tg::tunnel
