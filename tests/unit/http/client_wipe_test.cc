// The HTTP client leaves no copy of a request head behind: the head carries a
// vendor key (authorization, x-api-key), and every buffer shared/http
// serialises it into is wiped before it is freed. Checked with this test
// program's own global operator new/delete, which scans every freed block for
// the key while armed; the stream under the client is a fake that copies what
// it is given into one buffer the test owns (the transports' own buffers are
// the business of shared/net and shared/tls). Its own executable: the
// allocator replacement must not leak into other tests.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "shared/core/loop.h"
#include "shared/http/client.h"
#include "shared/http/message.h"
#include "shared/net/stream.h"

namespace {

// Every block starts with its size; 16 bytes keep malloc's alignment.
constexpr size_t kBlockHeader = 16;

// While armed, frees of blocks holding `g_needle` are counted.
bool g_armed = false;
std::string_view g_needle;
size_t g_hits = 0;

void* allocate(size_t n) {
  void* base = std::malloc(n + kBlockHeader);
  if (!base) std::abort();  // a test program: out of memory ends it
  std::memcpy(base, &n, sizeof n);
  return static_cast<char*>(base) + kBlockHeader;
}

void release(void* p) noexcept {
  if (!p) return;
  char* base = static_cast<char*>(p) - kBlockHeader;
  size_t n = 0;
  std::memcpy(&n, base, sizeof n);
  if (g_armed && !g_needle.empty() &&
      std::string_view(static_cast<const char*>(p), n).find(g_needle) != std::string_view::npos) {
    ++g_hits;
  }
  std::free(base);
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }

namespace tg::http {
namespace {

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
    g_armed = false;
    g_needle = {};
    wipe(sent);
    wipe(key);
    EXPECT_TRUE(loop.close().ok());
  }
  void arm() {
    g_needle = key;
    g_hits = 0;
    g_armed = true;
  }
  size_t disarm() {
    g_armed = false;
    return g_hits;
  }
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
