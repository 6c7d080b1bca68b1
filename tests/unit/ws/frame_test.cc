// Frame codec tests: RFC 6455 section 5.7 examples, every header rule, the
// close payload helpers and UTF-8 validation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shared/ws/frame.h"
#include "shared/ws/utf8.h"

namespace tg::ws {
namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

struct Decoded {
  FrameHeader header;
  std::string payload;
};

// Decodes every frame in `wire`, feeding it in pieces of `piece` bytes.
Result<std::vector<Decoded>> decode_all(const std::string& wire, size_t piece,
                                        uint64_t max = kDefaultMaxFramePayload) {
  FrameDecoder dec(max);
  std::vector<Decoded> frames;
  Decoded cur;
  for (size_t at = 0; at < wire.size(); at += piece) {
    std::string_view in(wire.data() + at, std::min(piece, wire.size() - at));
    for (;;) {
      auto step = dec.next(in, &cur.payload);
      if (!step.ok()) return step.status();
      if (*step == FrameDecoder::Step::need_more) break;
      if (*step == FrameDecoder::Step::header_ready) {
        cur.header = dec.header();
      } else {
        frames.push_back(cur);
        cur = Decoded();
      }
    }
  }
  return frames;
}

Status decode_error(const std::string& wire, uint64_t max = kDefaultMaxFramePayload) {
  auto r = decode_all(wire, wire.size(), max);
  if (r.ok()) return Status();
  return r.status();
}

TEST(WsFrame, RfcSingleFrameUnmaskedText) {
  auto r = decode_all(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), 64);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE((*r)[0].header.fin);
  EXPECT_EQ((*r)[0].header.opcode, Opcode::text);
  EXPECT_FALSE((*r)[0].header.masked);
  EXPECT_EQ((*r)[0].header.header_len, 2u);
  EXPECT_EQ((*r)[0].payload, "Hello");
}

TEST(WsFrame, RfcSingleFrameMaskedText) {
  auto r = decode_all(
      bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}), 64);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE((*r)[0].header.masked);
  EXPECT_EQ((*r)[0].header.mask, (MaskKey{0x37, 0xfa, 0x21, 0x3d}));
  EXPECT_EQ((*r)[0].header.header_len, 6u);
  EXPECT_EQ((*r)[0].payload, "Hello");
}

TEST(WsFrame, RfcFragmentedUnmaskedText) {
  auto r = decode_all(bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}), 64);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_FALSE((*r)[0].header.fin);
  EXPECT_EQ((*r)[0].header.opcode, Opcode::text);
  EXPECT_EQ((*r)[0].payload, "Hel");
  EXPECT_TRUE((*r)[1].header.fin);
  EXPECT_EQ((*r)[1].header.opcode, Opcode::continuation);
  EXPECT_EQ((*r)[1].payload, "lo");
}

TEST(WsFrame, RfcPingAndMaskedPong) {
  auto r = decode_all(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x8a, 0x85, 0x37, 0xfa,
                             0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}),
                      64);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].header.opcode, Opcode::ping);
  EXPECT_EQ((*r)[0].payload, "Hello");
  EXPECT_EQ((*r)[1].header.opcode, Opcode::pong);
  EXPECT_EQ((*r)[1].payload, "Hello");
}

TEST(WsFrame, Rfc256ByteBinaryUses16BitLength) {
  std::string payload(256, '\x5a');
  std::string wire = bytes({0x82, 0x7E, 0x01, 0x00}) + payload;
  auto r = decode_all(wire, 7);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].header.payload_len, 256u);
  EXPECT_EQ((*r)[0].header.header_len, 4u);
  EXPECT_EQ((*r)[0].payload, payload);
  std::string enc;
  encode_frame(enc, true, Opcode::binary, payload, nullptr);
  EXPECT_EQ(enc, wire);
}

TEST(WsFrame, Rfc64KiBBinaryUses64BitLength) {
  std::string payload(65536, '\x01');
  std::string wire =
      bytes({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}) + payload;
  auto r = decode_all(wire, 1000);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].header.payload_len, 65536u);
  EXPECT_EQ((*r)[0].header.header_len, 10u);
  EXPECT_EQ((*r)[0].payload, payload);
  std::string enc;
  encode_frame(enc, true, Opcode::binary, payload, nullptr);
  EXPECT_EQ(enc, wire);
}

TEST(WsFrame, EncodeReproducesRfcBytes) {
  std::string plain;
  encode_frame(plain, true, Opcode::text, "Hello", nullptr);
  EXPECT_EQ(plain, bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  const MaskKey key{0x37, 0xfa, 0x21, 0x3d};
  std::string masked;
  encode_frame(masked, true, Opcode::text, "Hello", &key);
  EXPECT_EQ(masked, bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  std::string frag;
  encode_frame(frag, false, Opcode::text, "Hel", nullptr);
  encode_frame(frag, true, Opcode::continuation, "lo", nullptr);
  EXPECT_EQ(frag, bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}));
}

TEST(WsFrame, ByteByByteFeedingMatchesWholeBuffer) {
  const MaskKey key{1, 2, 3, 4};
  std::string wire;
  encode_frame(wire, false, Opcode::binary, std::string(300, 'x'), &key);
  encode_frame(wire, true, Opcode::ping, "p", &key);
  encode_frame(wire, true, Opcode::continuation, std::string(70000, 'y'), &key);
  encode_frame(wire, true, Opcode::text, "", &key);
  auto whole = decode_all(wire, wire.size());
  auto split = decode_all(wire, 1);
  ASSERT_TRUE(whole.ok() && split.ok());
  ASSERT_EQ(whole->size(), 4u);
  ASSERT_EQ(split->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*whole)[i].payload, (*split)[i].payload);
    EXPECT_EQ((*whole)[i].header.opcode, (*split)[i].header.opcode);
  }
  EXPECT_EQ((*whole)[2].payload, std::string(70000, 'y'));
  EXPECT_EQ((*whole)[3].payload, "");
}

TEST(WsFrame, RejectsRsvBits) {
  for (int rsv : {0x40, 0x20, 0x10}) {
    Status s = decode_error(bytes({0x81 | rsv, 0x00}));
    EXPECT_EQ(s.code(), Errc::protocol) << rsv;
    EXPECT_NE(s.message().find("RSV"), std::string::npos);
  }
}

TEST(WsFrame, RejectsUnknownOpcodes) {
  for (int op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    EXPECT_EQ(decode_error(bytes({0x80 | op, 0x00})).code(), Errc::protocol) << op;
  }
}

TEST(WsFrame, RejectsFragmentedControlFrame) {
  for (int op : {0x8, 0x9, 0xA}) {
    EXPECT_EQ(decode_error(bytes({op, 0x00})).code(), Errc::protocol) << op;
  }
}

TEST(WsFrame, RejectsControlFrameOver125Bytes) {
  EXPECT_EQ(decode_error(bytes({0x89, 126, 0x00, 0x7E})).code(), Errc::protocol);
  std::string ok = bytes({0x89, 125}) + std::string(125, 'a');
  EXPECT_TRUE(decode_error(ok).ok());
}

TEST(WsFrame, RejectsNonMinimal16BitLength) {
  EXPECT_EQ(decode_error(bytes({0x82, 126, 0x00, 125})).code(), Errc::protocol);
}

TEST(WsFrame, RejectsNonMinimal64BitLength) {
  EXPECT_EQ(decode_error(bytes({0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF})).code(),
            Errc::protocol);
}

TEST(WsFrame, Rejects64BitLengthWithTopBitSet) {
  EXPECT_EQ(decode_error(bytes({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0})).code(),
            Errc::protocol);
}

TEST(WsFrame, PayloadOverLimitIsLimitError) {
  Status s = decode_error(bytes({0x82, 126, 0x01, 0x00}), 255);
  EXPECT_EQ(s.code(), Errc::limit);
  EXPECT_NE(s.message().find("256"), std::string::npos);
  EXPECT_TRUE(decode_error(bytes({0x82, 126, 0x00, 0xFF}) + std::string(255, 'z'), 255).ok());
}

TEST(WsFrame, DecoderStaysBrokenAfterError) {
  FrameDecoder dec;
  std::string bad = bytes({0xC1, 0x00});
  std::string_view in(bad);
  EXPECT_FALSE(dec.next(in, nullptr).ok());
  std::string good = bytes({0x81, 0x00});
  std::string_view in2(good);
  auto r = dec.next(in2, nullptr);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::protocol);
}

TEST(WsFrame, ParseHeaderReportsBytesNeeded) {
  FrameHeader h;
  size_t need = 0;
  ASSERT_TRUE(parse_header(bytes({0x82}), 1 << 20, &h, &need).ok());
  EXPECT_EQ(need, 2u);
  ASSERT_TRUE(parse_header(bytes({0x82, 0xFF}), 1 << 20, &h, &need).ok());
  EXPECT_EQ(need, 14u);
  ASSERT_TRUE(parse_header(bytes({0x82, 0xFE, 0x01}), 1 << 20, &h, &need).ok());
  EXPECT_EQ(need, 8u);
}

TEST(WsFrame, MaskOffsetContinuesAcrossPieces) {
  const MaskKey key{0xAA, 0xBB, 0xCC, 0xDD};
  std::string data = "abcdefghij";
  std::string whole = data;
  apply_mask(reinterpret_cast<uint8_t*>(&whole[0]), whole.size(), key, 0);
  std::string parts = data;
  apply_mask(reinterpret_cast<uint8_t*>(&parts[0]), 3, key, 0);
  apply_mask(reinterpret_cast<uint8_t*>(&parts[3]), 7, key, 3);
  EXPECT_EQ(whole, parts);
  apply_mask(reinterpret_cast<uint8_t*>(&whole[0]), whole.size(), key, 0);
  EXPECT_EQ(whole, data);
}

TEST(WsFrame, ParseClosePayload) {
  auto empty = parse_close_payload("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->code, close_code::no_status);
  auto good = parse_close_payload(bytes({0x0F, 0xA1}) + "bye");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->code, 4001);
  EXPECT_EQ(good->reason, "bye");
  EXPECT_EQ(parse_close_payload(bytes({0x03})).status().code(), Errc::protocol);
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    EXPECT_FALSE(parse_close_payload(bytes({code >> 8, code & 0xFF})).ok()) << code;
  }
  for (int code : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999}) {
    EXPECT_TRUE(parse_close_payload(bytes({code >> 8, code & 0xFF})).ok()) << code;
  }
  EXPECT_FALSE(parse_close_payload(bytes({0x03, 0xE8, 0xC0, 0xAF})).ok());
}

TEST(WsFrame, MakeClosePayload) {
  auto p = make_close_payload(1001, "going");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, bytes({0x03, 0xE9}) + "going");
  auto none = make_close_payload(close_code::no_status, "");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(make_close_payload(close_code::no_status, "x").ok());
  EXPECT_FALSE(make_close_payload(1006, "").ok());
  EXPECT_FALSE(make_close_payload(1000, std::string(124, 'r')).ok());
  EXPECT_TRUE(make_close_payload(1000, std::string(123, 'r')).ok());
  EXPECT_FALSE(make_close_payload(1000, "\xff").ok());
}

TEST(WsUtf8, AcceptsValidText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9t\xc3\xa9"));                  // été
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));                       // U+20AC
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));                   // U+1F600
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));                   // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));                       // U+D7FF
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));
}

TEST(WsUtf8, RejectsInvalidText) {
  EXPECT_FALSE(is_valid_utf8("\x80"));              // stray continuation
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong 3-byte
  EXPECT_FALSE(is_valid_utf8("\xf0\x80\x80\xaf"));  // overlong 4-byte
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xc3\x28"));          // bad continuation
}

TEST(WsUtf8, IncrementalAcrossSplits) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xf0\x9f"));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed("\x98"));
  EXPECT_TRUE(v.feed("\x80ok"));
  EXPECT_TRUE(v.complete());
  EXPECT_FALSE(v.feed("\xed\xa0"));
  EXPECT_FALSE(v.feed("a"));  // sticky
  EXPECT_FALSE(v.complete());
}

TEST(WsUtf8, WordAtATimeAgreesWithByteAtATime) {
  // Whole texts take the eight-byte ASCII path; byte-by-byte feeds never do.
  // Sequences land on every offset around the words, valid and not.
  const std::vector<std::string> pieces = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                           "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xff", "\xe2\x82",
                                           std::string(1, '\0')};
  for (size_t lead = 0; lead < 17; ++lead) {
    for (const std::string& p : pieces) {
      for (size_t tail = 0; tail < 10; tail += 3) {
        const std::string text = std::string(lead, 'x') + p + std::string(tail, 'y');
        Utf8Validator by_byte;
        bool ok = true;
        for (char c : text) ok = by_byte.feed(std::string_view(&c, 1)) && ok;
        EXPECT_EQ(is_valid_utf8(text), ok && by_byte.complete()) << lead << " " << tail;
      }
    }
  }
  EXPECT_FALSE(is_valid_utf8(std::string(64, 'a') + "\x80" + std::string(64, 'a')));
  EXPECT_TRUE(is_valid_utf8(std::string(64, 'a') + "\xc3\xa9" + std::string(64, 'a')));
}

}  // namespace
}  // namespace tg::ws
