// The HTTP client leaves no copy of a request head behind: the head carries a
// vendor key (authorization, x-api-key), and every buffer shared/http
// serialises it into is wiped before it is freed. Checked with the scanning
// operator new/delete of tests/support/freed_scan.h, which searches every
// freed block for the key while armed; the stream under the client is a fake
// that copies what it is given into one buffer the test owns (the
// transports' own buffers are the business of shared/net and shared/tls, and
// tls_wipe_test). Its own executable: the allocator replacement must not
// leak into other tests.
#include <gtest/gtest.h>
#include <sodium.h>

#include <memory>
#include <string>
#include <string_view>

#include "shared/core/loop.h"
#include "shared/http/client.h"
#include "shared/http/message.h"
#include "shared/net/stream.h"
#include "tests/support/freed_scan.h"

namespace tg::http {
namespace {

namespace freed_scan = test::freed_scan;

// A transport that keeps what the client writes in the test's buffer
// (reserved up front, so it never reallocates) and never calls back.
class KeepStream final : public net::Stream {
 public:
  explicit KeepStream(std::string* out) : out_(out) {}
  void set_handler(net::StreamHandler*) noexcept override {}
  Status write(std::string_view data) override { return writev(&data, 1); }
  Status writev(const std::string_view* parts, size_t count) override {
    for (size_t i = 0; i < count; ++i) {
      if (out_->size() + parts[i].size() > out_->capacity()) {
        return error(Errc::limit, "test sink full");
      }
      out_->append(parts[i]);
    }
    return Status();
  }
  size_t queued_bytes() const noexcept override { return 0; }
  void set_write_watermarks(size_t, size_t) noexcept override {}
  size_t high_water() const noexcept override { return 256 * 1024; }
  void pause_reading() noexcept override {}
  void resume_reading() noexcept override {}
  void shutdown() noexcept override {}
  void close() noexcept override {}
  const std::string& peer_address() const noexcept override { return peer_; }

 private:
  std::string* out_;
  std::string peer_ = "127.0.0.1:443";
};

struct NoAnswer final : ClientHandler {
  void on_response_head(ClientConnection&, const ResponseHead&) noexcept override {}
  void on_response_body(ClientConnection&, std::string_view) noexcept override {}
  void on_response_end(ClientConnection&) noexcept override {}
  void on_error(ClientConnection&, const Status&) noexcept override {}
};

void wipe(std::string& s) { sodium_memzero(s.data(), s.capacity()); }

class ClientWipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    key = "sk-vendor-wipe-test-";
    for (int i = 0; i < 4; ++i) key += std::to_string(randombytes_random());
    sent.reserve(64 * 1024);
  }
  void TearDown() override {
    (void)freed_scan::disarm();
    wipe(sent);
    wipe(key);
    EXPECT_TRUE(loop.close().ok());
  }
  void arm() { freed_scan::arm(key); }
  size_t disarm() { return freed_scan::disarm(); }
  // A vendor request head; the target is long enough that a head buffer
  // sized from the header bytes alone would have to grow.
  RequestHead head(const std::string& key_header) {
    RequestHead h;
    h.method = "POST";
    h.target = "/v1/chat/completions?" + std::string(300, 'q');
    h.headers.add("host", "api.openai.com");
    h.headers.add("content-type", "application/json");
    h.headers.add(key_header, key_header == "authorization" ? "Bearer " + key : key);
    h.headers.add("accept-encoding", "identity");
    h.headers.add("transfer-encoding", "chunked");
    return h;
  }
  static void wipe_head(RequestHead& h) {
    for (const Header& f : h.headers) wipe(const_cast<std::string&>(f.value));
  }

  Loop loop;
  std::string key;
  std::string sent;
};

// The scan is real: a freed copy of the key is found.
TEST_F(ClientWipeTest, ScannerFindsAFreedCopyOfTheKey) {
  arm();
  {
    auto copy = std::make_unique<std::string>("Bearer " + key);
    ASSERT_NE(copy->find(key), std::string::npos);
  }
  EXPECT_EQ(disarm(), 1u);
}

TEST_F(ClientWipeTest, SentHeadLeavesNoCopyInTheClient) {
  for (const char* name : {"authorization", "x-api-key", "api-key"}) {
    SCOPED_TRACE(name);
    RequestHead h = head(name);
    NoAnswer answer;
    sent.clear();
    arm();
    {
      ClientConnection conn(loop, std::make_unique<KeepStream>(&sent));
      ASSERT_TRUE(conn.request(h, &answer).ok());
      ASSERT_TRUE(conn.write(R"({"model":"gpt-4o-mini"})").ok());
      ASSERT_TRUE(conn.finish().ok());
    }  // the connection and all its buffers are gone
    EXPECT_EQ(disarm(), 0u) << "a freed buffer still held the key";
    // The head did go out, once.
    EXPECT_EQ(sent.rfind("POST /v1/chat/completions?", 0), 0u);
    EXPECT_NE(sent.find(key), std::string::npos);
    EXPECT_EQ(sent.find(key), sent.rfind(key));
    wipe_head(h);
  }
}

// A head refused half-way (a bad field after the key) leaves nothing either.
TEST_F(ClientWipeTest, RefusedHeadLeavesNoCopy) {
  RequestHead h = head("authorization");
  h.headers.add("bad name", "x");
  NoAnswer answer;
  arm();
  {
    ClientConnection conn(loop, std::make_unique<KeepStream>(&sent));
    EXPECT_EQ(conn.request(h, &answer).code(), Errc::invalid_argument);
    auto direct = serialize(h);
    EXPECT_FALSE(direct.ok());
  }
  EXPECT_EQ(disarm(), 0u);
  EXPECT_TRUE(sent.empty());
  wipe_head(h);
}

// serialize() itself: the caller gets the only copy.
TEST_F(ClientWipeTest, SerializeMakesOneCopy) {
  RequestHead h = head("authorization");
  arm();
  {
    auto bytes = serialize(h);
    ASSERT_TRUE(bytes.ok());
    EXPECT_NE(bytes->find(key), std::string::npos);
    EXPECT_EQ(disarm(), 0u) << "serialize() freed a buffer holding the key";
    wipe(*bytes);
  }
  wipe_head(h);
}

}  // namespace
}  // namespace tg::http
