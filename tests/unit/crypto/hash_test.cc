#include "shared/crypto/hash.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include <gtest/gtest.h>

#include <string>

namespace tg::crypto {
namespace {

std::string hex(const Sha256& h) { return hex_encode(as_view(h)); }
std::string hex(const std::array<uint8_t, 20>& h) {
  return hex_encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

TEST(Sha256, KnownAnswerAbc) {
  EXPECT_EQ(hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, KnownAnswerEmpty) {
  EXPECT_EQ(hex(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Stream, PiecesMatchOneShot) {
  Sha256Stream s;
  s.update("a");
  s.update("");
  s.update("bc");
  EXPECT_EQ(s.finish(), sha256("abc"));
}

TEST(Sha256Stream, FinishResetsForNextMessage) {
  Sha256Stream s;
  s.update("xyz");
  (void)s.finish();
  s.update("abc");
  EXPECT_EQ(s.finish(), sha256("abc"));
}

TEST(Sha1, KnownAnswerAbc) {
  EXPECT_EQ(hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(Sha1, WebSocketAcceptRfc6455Example) {
  auto digest = sha1(std::string("dGhlIHNhbXBsZSBub25jZQ==") +
                     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  EXPECT_EQ(base64_encode(std::string_view(reinterpret_cast<const char*>(digest.data()),
                                           digest.size())),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Base64, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, DecodesRfc4648Vectors) {
  const char* pairs[][2] = {{"", ""},         {"Zg==", "f"},         {"Zm8=", "fo"},
                            {"Zm9v", "foo"},  {"Zm9vYg==", "foob"},  {"Zm9vYmE=", "fooba"},
                            {"Zm9vYmFy", "foobar"}};
  for (auto& p : pairs) {
    auto r = base64_decode(p[0]);
    ASSERT_TRUE(r.ok()) << p[0] << ": " << r.status().to_string();
    EXPECT_EQ(*r, p[1]);
  }
}

TEST(Base64, RoundTripsBinary) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  auto r = base64_decode(base64_encode(all));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, all);
}

TEST(Base64, RejectsMalformedInput) {
  const char* bad[] = {
      "Zg",          // missing padding
      "Zg=",         // short padding
      "Zg===",       // too much padding
      "Zm9v\n",      // trailing newline
      " Zm9v",       // leading space
      "Zm 9v",       // inner space
      "Zm9vYmFy=",   // padding on a full block
      "Zm9v!A==",    // bad character
      "Zm9vYg==Zg==",  // data after padding
      "Zh==",        // non-zero unused bits
      "Zm9-",        // url-safe alphabet
      "=",
      "====",
  };
  for (const char* b : bad) {
    auto r = base64_decode(b);
    EXPECT_FALSE(r.ok()) << "accepted '" << b << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Errc::parse);
    }
  }
}

TEST(Hex, EncodesLowercase) { EXPECT_EQ(hex_encode("\x01\xab\xff"), "01abff"); }

TEST(Hex, DecodesBothCases) {
  auto r = hex_decode("01AbfF");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "\x01\xab\xff");
}

TEST(Hex, RejectsOddLengthAndBadDigits) {
  EXPECT_FALSE(hex_decode("abc").ok());
  EXPECT_FALSE(hex_decode("zz").ok());
  EXPECT_FALSE(hex_decode("ab ").ok());
  EXPECT_FALSE(hex_decode("a:bc").ok());
}

TEST(Hex, DecodesIntoAFixedBufferThatItMustFillExactly) {
  uint8_t out[3] = {0, 0, 0};
  ASSERT_TRUE(hex_decode_to("01AbfF", out, sizeof out).ok());
  EXPECT_EQ(out[0], 0x01);
  EXPECT_EQ(out[1], 0xab);
  EXPECT_EQ(out[2], 0xff);
  EXPECT_FALSE(hex_decode_to("01ab", out, sizeof out).ok());      // too short
  EXPECT_FALSE(hex_decode_to("01abff00", out, sizeof out).ok());  // too long
  EXPECT_FALSE(hex_decode_to("01abfg", out, sizeof out).ok());    // bad digit
  // The offset is where the bad pair starts (libsodium stops before it).
  EXPECT_EQ(hex_decode_to("01abfg", out, sizeof out).message(), "hex: invalid digit at offset 4");
}

TEST(Hex, LowerHexSpanStopsAtTheFirstOtherByte) {
  EXPECT_EQ(lower_hex_span(""), 0u);
  EXPECT_EQ(lower_hex_span("0123456789abcdef"), 16u);
  EXPECT_EQ(lower_hex_span("00aB"), 3u);  // uppercase is not our form
  EXPECT_EQ(lower_hex_span("0g"), 1u);
  EXPECT_EQ(lower_hex_span(std::string_view("ab\0cd", 5)), 2u);
  EXPECT_EQ(lower_hex_span(" ab"), 0u);
}

TEST(Random, IdIs32LowercaseHexAndVaries) {
  std::string a = random_id();
  std::string b = random_id();
  ASSERT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(Random, RequestIdStartsWithTheTimeAndSortsByIt) {
  const int64_t t = 1796609012345;  // 2026-12-07T02:03:32.345Z, 0x01a24e3df279
  std::string a = request_id(t);
  std::string b = request_id(t);
  ASSERT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  char want[13];
  std::snprintf(want, sizeof want, "%012llx", static_cast<unsigned long long>(t));
  EXPECT_EQ(a.substr(0, 12), want);
  EXPECT_NE(a, b);                   // 80 random bits after the time
  EXPECT_EQ(a.substr(0, 12), b.substr(0, 12));
  EXPECT_LT(a, request_id(t + 1));   // a later millisecond sorts after
  EXPECT_LT(request_id(t + 999), request_id(t + 1000));
  EXPECT_EQ(request_id(-5).substr(0, 12), "000000000000");
}

TEST(Random, BytesFillBuffer) {
  uint8_t a[32] = {};
  uint8_t b[32] = {};
  random_bytes(a, sizeof a);
  random_bytes(b, sizeof b);
  EXPECT_NE(std::string(reinterpret_cast<char*>(a), sizeof a),
            std::string(reinterpret_cast<char*>(b), sizeof b));
}

// The small requests come from a pool: across several refills no 16-byte
// value repeats, and every size up to the pool's limit and past it works.
TEST(Random, PooledBytesNeverRepeatAcrossRefills) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {  // 3,200 bytes: a dozen refills of the pool
    char raw[16];
    random_bytes(raw, sizeof raw);
    EXPECT_TRUE(seen.emplace(raw, sizeof raw).second) << "repeated at " << i;
  }
  for (size_t n : {1u, 7u, 24u, 31u, 32u, 33u, 64u, 300u}) {
    std::string a(n, '\0'), b(n, '\0');
    random_bytes(a.data(), n);
    random_bytes(b.data(), n);
    if (n >= 7) {
      EXPECT_NE(a, b) << n;
    }
  }
}

// A forked child must not hand out the bytes its parent is about to: the
// pool the child inherits is dropped at the fork.
TEST(Random, ForkedChildDoesNotRepeatTheParent) {
  char warm[8];
  random_bytes(warm, sizeof warm);  // the pool now holds unread bytes
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char mine[16];
    random_bytes(mine, sizeof mine);
    const bool sent = write(fds[1], mine, sizeof mine) == static_cast<ssize_t>(sizeof mine);
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  char parent[16];
  random_bytes(parent, sizeof parent);
  char child[16];
  size_t got = 0;
  while (got < sizeof child) {
    const ssize_t n = read(fds[0], child + got, sizeof child - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, sizeof child);
  EXPECT_NE(std::string(parent, sizeof parent), std::string(child, sizeof child));
}

}  // namespace
}  // namespace tg::crypto
