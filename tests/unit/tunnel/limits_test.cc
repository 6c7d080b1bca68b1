// Every control-message limit at its edge: at the limit accepted, one over
// rejected with a message naming the field. Checked on the wire (decode) and
// in memory (validate).
#include <gtest/gtest.h>

#include <string>

#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"

namespace tg::tunnel {
namespace {

Status decode_status(const std::string& json, Phase phase = Phase::session) {
  Result<Message> m = decode(json, phase);
  return m.ok() ? Status() : m.status();
}

std::string call_json(const std::string& model, const std::string& path, const std::string& headers) {
  return R"({"type":"call","id":1,"model":")" + model + R"(","method":"POST","path":")" + path +
         R"(","headers":)" + headers + R"(,"stream":false,"deadline_ms":1000})";
}

std::string headers_json(size_t count, const std::string& name, const std::string& value) {
  std::string out = "[";
  for (size_t i = 0; i < count; ++i) {
    if (i) out += ",";
    out += "[\"" + name + "\",\"" + value + "\"]";
  }
  return out + "]";
}

// ---- whole-message size ----

std::string padded(const std::string& json, size_t total) { return json + std::string(total - json.size(), ' '); }

TEST(TunnelLimits, PreAuthMessageAtLimitIsAccepted) {
  const std::string json = R"({"type":"refused","code":"protocol","message":""})";
  EXPECT_TRUE(decode_status(padded(json, kMaxPreAuthMessage), Phase::pre_auth).ok());
}

TEST(TunnelLimits, PreAuthMessageOverLimitIsTooBig) {
  const std::string json = R"({"type":"refused","code":"protocol","message":""})";
  const Status s = decode_status(padded(json, kMaxPreAuthMessage + 1), Phase::pre_auth);
  EXPECT_EQ(s.code(), Errc::limit);
  EXPECT_EQ(s.message(), "message: 4097 bytes, over the 4096-byte limit before authentication");
  EXPECT_EQ(close_code_for(s), close_code::message_too_big);
}

TEST(TunnelLimits, SessionMessageAtLimitIsAccepted) {
  const std::string json = R"({"type":"credit","id":1,"bytes":1})";
  EXPECT_TRUE(decode_status(padded(json, kMaxSessionMessage)).ok());
}

TEST(TunnelLimits, SessionMessageOverLimitIsTooBig) {
  const std::string json = R"({"type":"credit","id":1,"bytes":1})";
  const Status s = decode_status(padded(json, kMaxSessionMessage + 1));
  EXPECT_EQ(s.code(), Errc::limit);
  EXPECT_EQ(close_code_for(s), close_code::message_too_big);
}

// ---- strings ----

TEST(TunnelLimits, ModelAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(call_json(std::string(kMaxModel, 'm'), "/", "[]")).ok());
}

TEST(TunnelLimits, ModelOverLimitIsRejected) {
  EXPECT_EQ(decode_status(call_json(std::string(kMaxModel + 1, 'm'), "/", "[]")).message(),
            "call.model: length must be 1..128, got 129");
}

TEST(TunnelLimits, EmptyModelIsRejected) {
  EXPECT_EQ(decode_status(call_json("", "/", "[]")).message(), "call.model: length must be 1..128, got 0");
}

TEST(TunnelLimits, PathAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(call_json("m", "/" + std::string(kMaxPath - 1, 'p'), "[]")).ok());
}

TEST(TunnelLimits, PathOverLimitIsRejected) {
  EXPECT_EQ(decode_status(call_json("m", "/" + std::string(kMaxPath, 'p'), "[]")).message(),
            "call.path: length must be 1..2048, got 2049");
}

TEST(TunnelLimits, HeaderNameAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(call_json("m", "/", headers_json(1, std::string(kMaxHeaderName, 'h'), "v"))).ok());
}

TEST(TunnelLimits, HeaderNameOverLimitIsRejected) {
  EXPECT_EQ(decode_status(call_json("m", "/", headers_json(1, std::string(kMaxHeaderName + 1, 'h'), "v")))
                .message(),
            "call.headers[0][0]: length must be 1..128, got 129");
}

TEST(TunnelLimits, HeaderValueAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(call_json("m", "/", headers_json(1, "h", std::string(kMaxHeaderValue, 'v')))).ok());
}

TEST(TunnelLimits, HeaderValueOverLimitIsRejected) {
  EXPECT_EQ(decode_status(call_json("m", "/", headers_json(1, "h", std::string(kMaxHeaderValue + 1, 'v'))))
                .message(),
            "call.headers[0][1]: length must be 0..8192, got 8193");
}

TEST(TunnelLimits, HeaderCountAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(call_json("m", "/", headers_json(kMaxHeaders, "h", "v"))).ok());
}

TEST(TunnelLimits, HeaderCountOverLimitIsRejected) {
  EXPECT_EQ(decode_status(call_json("m", "/", headers_json(kMaxHeaders + 1, "h", "v"))).message(),
            "call.headers: at most 64 headers");
}

std::string error_json(const std::string& code, const std::string& message) {
  return R"({"type":"error","id":1,"code":")" + code + R"(","message":")" + message + R"("})";
}

TEST(TunnelLimits, MessageTextAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(error_json("x", std::string(kMaxText, 't'))).ok());
}

TEST(TunnelLimits, MessageTextOverLimitIsRejected) {
  EXPECT_EQ(decode_status(error_json("x", std::string(kMaxText + 1, 't'))).message(),
            "error.message: length must be 0..512, got 513");
}

TEST(TunnelLimits, MessageTextLimitCountsBytesNotCharacters) {
  // 256 two-byte characters are 512 bytes; one more ASCII byte is over.
  std::string text;
  for (int i = 0; i < 256; ++i) text += "\xc3\xa9";
  EXPECT_TRUE(decode_status(error_json("x", text)).ok());
  EXPECT_EQ(decode_status(error_json("x", text + "t")).message(),
            "error.message: length must be 0..512, got 513");
}

TEST(TunnelLimits, CodeAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(error_json(std::string(kMaxCode, 'c'), "")).ok());
}

TEST(TunnelLimits, CodeOverLimitIsRejected) {
  EXPECT_EQ(decode_status(error_json(std::string(kMaxCode + 1, 'c'), "")).message(),
            "error.code: length must be 1..64, got 65");
}

std::string register_json(size_t count, size_t model_len) {
  std::string out = R"({"type":"register","models":[)";
  for (size_t i = 0; i < count; ++i) {
    if (i) out += ",";
    std::string name = "m" + std::to_string(i);
    name += std::string(model_len > name.size() ? model_len - name.size() : 0, 'x');
    out += "\"" + name + "\"";
  }
  return out + R"(],"max_parallel":4})";
}

TEST(TunnelLimits, ModelListAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(register_json(kMaxModels, 8)).ok());
}

TEST(TunnelLimits, ModelListOverLimitIsRejected) {
  EXPECT_EQ(decode_status(register_json(kMaxModels + 1, 8)).message(), "register.models: at most 256 models");
}

TEST(TunnelLimits, LongestModelListFitsInASessionMessage) {
  const std::string json = register_json(kMaxModels, kMaxModel);
  EXPECT_LE(json.size(), kMaxSessionMessage);
  EXPECT_TRUE(decode_status(json).ok());
}

TEST(TunnelLimits, EmptyModelListIsAccepted) {
  EXPECT_TRUE(decode_status(register_json(0, 8)).ok());
}

std::string auth_json(const std::string& extra) {
  return R"({"type":"auth","pubkey":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",)"
         R"("sig":"VJbrVjLFlVxVY9mMN4Fzn0TUivP+c1ohqDptllKJatD/dCGxvDpXQ/mtDX+DkOOUIvJ0dOBBtYF4EW1XFDy4Bw==",)"
         R"("agent_version":"0.1.0","platform":"linux x86_64")" + extra + "}";
}

TEST(TunnelLimits, EnrollTokenAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(auth_json(R"(,"enroll_token":")" + std::string(kMaxEnrollToken, 'k') + "\""),
                            Phase::pre_auth)
                  .ok());
}

TEST(TunnelLimits, EnrollTokenOverLimitIsRejected) {
  EXPECT_EQ(decode_status(auth_json(R"(,"enroll_token":")" + std::string(kMaxEnrollToken + 1, 'k') + "\""),
                          Phase::pre_auth)
                .message(),
            "auth.enroll_token: length must be 1..128, got 129");
}

TEST(TunnelLimits, EmptyEnrollTokenIsRejected) {
  EXPECT_EQ(decode_status(auth_json(R"(,"enroll_token":"")"), Phase::pre_auth).message(),
            "auth.enroll_token: length must be 1..128, got 0");
}

// ---- usage ----

std::string finish_json(const std::string& usage) {
  return R"({"type":"finish","id":1,"upstream_status":200,"usage":)" + usage + "}";
}

// {"k":"xxx..."} encoding to exactly `n` bytes.
std::string usage_of_size(size_t n) { return R"({"k":")" + std::string(n - 8, 'x') + R"("})"; }

TEST(TunnelLimits, UsageAtLimitIsAccepted) {
  ASSERT_EQ(usage_of_size(kMaxUsageBytes).size(), kMaxUsageBytes);
  EXPECT_TRUE(decode_status(finish_json(usage_of_size(kMaxUsageBytes))).ok());
}

TEST(TunnelLimits, UsageOverLimitIsRejected) {
  EXPECT_EQ(decode_status(finish_json(usage_of_size(kMaxUsageBytes + 1))).message(),
            "finish.usage: encodes to 4097 bytes, over the limit of 4096");
}

TEST(TunnelLimits, UsageLimitAppliesToTheCompactEncoding) {
  // Whitespace on the wire does not count.
  const std::string spaced = R"({ "k" : ")" + std::string(kMaxUsageBytes - 8, 'x') + R"(" })";
  EXPECT_TRUE(decode_status(finish_json(spaced)).ok());
}

// ---- numbers ----

std::string welcome_json(uint64_t hb, uint64_t dead, uint64_t streams, uint64_t window) {
  return R"({"type":"welcome","owner":"o","heartbeat_ms":)" + std::to_string(hb) + R"(,"dead_after":)" +
         std::to_string(dead) + R"(,"max_streams":)" + std::to_string(streams) + R"(,"window":)" +
         std::to_string(window) + "}";
}

TEST(TunnelLimits, WelcomeRangesAtTheirEdgesAreAccepted) {
  EXPECT_TRUE(decode_status(welcome_json(kMinHeartbeatMs, 1, 1, kMinWindow), Phase::pre_auth).ok());
  EXPECT_TRUE(decode_status(welcome_json(kMaxHeartbeatMs, kMaxDeadAfter, kMaxMaxStreams, kMaxWindow),
                            Phase::pre_auth)
                  .ok());
}

TEST(TunnelLimits, WelcomeWindowBelowOneFrameIsRejected) {
  EXPECT_EQ(decode_status(welcome_json(15000, 3, 64, kMinWindow - 1), Phase::pre_auth).message(),
            "welcome.window: must be an integer 65536..16777216, got 65535");
}

TEST(TunnelLimits, WelcomeWindowOverMaximumIsRejected) {
  EXPECT_EQ(decode_status(welcome_json(15000, 3, 64, kMaxWindow + 1), Phase::pre_auth).message(),
            "welcome.window: must be an integer 65536..16777216, got 16777217");
}

TEST(TunnelLimits, WelcomeHeartbeatBelowMinimumIsRejected) {
  EXPECT_EQ(decode_status(welcome_json(kMinHeartbeatMs - 1, 3, 64, kMinWindow), Phase::pre_auth).message(),
            "welcome.heartbeat_ms: must be an integer 1000..600000, got 999");
}

TEST(TunnelLimits, WelcomeMaxStreamsOverMaximumIsRejected) {
  EXPECT_EQ(decode_status(welcome_json(15000, 3, kMaxMaxStreams + 1, kMinWindow), Phase::pre_auth).message(),
            "welcome.max_streams: must be an integer 1..4096, got 4097");
}

TEST(TunnelLimits, CreditBytesRange) {
  EXPECT_TRUE(decode_status(R"({"type":"credit","id":1,"bytes":16777216})").ok());
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1,"bytes":16777217})").message(),
            "credit.bytes: must be an integer 1..16777216, got 16777217");
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1,"bytes":0})").message(),
            "credit.bytes: must be an integer 1..16777216, got 0");
}

TEST(TunnelLimits, MaxParallelRange) {
  EXPECT_TRUE(decode_status(R"({"type":"register","models":[],"max_parallel":256})").ok());
  EXPECT_EQ(decode_status(R"({"type":"register","models":[],"max_parallel":257})").message(),
            "register.max_parallel: must be an integer 1..256, got 257");
}

TEST(TunnelLimits, DeadlineRange) {
  const std::string over = R"({"type":"call","id":1,"model":"m","method":"POST","path":"/","headers":[],)"
                           R"("stream":false,"deadline_ms":86400001})";
  EXPECT_EQ(decode_status(over).message(), "call.deadline_ms: must be an integer 1..86400000, got 86400001");
}

TEST(TunnelLimits, ReconnectAfterRange) {
  EXPECT_TRUE(decode_status(R"({"type":"goaway","reason":"restart","reconnect_after_ms":0})").ok());
  EXPECT_TRUE(decode_status(R"({"type":"goaway","reason":"restart","reconnect_after_ms":3600000})").ok());
  EXPECT_EQ(decode_status(R"({"type":"goaway","reason":"restart","reconnect_after_ms":3600001})").message(),
            "goaway.reconnect_after_ms: must be an integer 0..3600000, got 3600001");
}

// ---- validate() on messages built in memory ----

TEST(TunnelLimits, ValidateRejectsIdZero) {
  Credit c;
  c.bytes = 1;
  EXPECT_EQ(validate(c).message(), "credit.id: must be an integer 1..4294967295, got 0");
}

TEST(TunnelLimits, ValidateRejectsHeaderWithNewline) {
  Response r;
  r.id = 1;
  r.status = 200;
  r.headers = {{"x", "a\nb"}};
  EXPECT_EQ(validate(r).message(),
            "response.headers[0][1]: must be HTAB, SP, visible ASCII or bytes >= 0x80, bad byte 0x0a at 1");
}

TEST(TunnelLimits, ValidateRejectsTooManyHeaders) {
  Response r;
  r.id = 1;
  r.status = 200;
  r.headers.assign(kMaxHeaders + 1, {"x", "y"});
  EXPECT_EQ(validate(r).message(), "response.headers: at most 64 headers, got 65");
}

TEST(TunnelLimits, ValidateRejectsNulInText) {
  Error e;
  e.id = 1;
  e.code = "x";
  e.message = std::string("a\0b", 3);
  EXPECT_EQ(validate(e).message(), "error.message: must be text without NUL, bad byte 0x00 at 1");
}

TEST(TunnelLimits, ValidateRejectsUsageThatIsNotJson) {
  Finish f;
  f.id = 1;
  f.upstream_status = 200;
  f.usage = "{";
  EXPECT_FALSE(validate(f).ok());
  f.usage = "[]";
  EXPECT_EQ(validate(f).message(), "finish.usage: must be an object, got an array");
  f.usage = "{} x";
  EXPECT_FALSE(validate(f).ok());
}

TEST(TunnelLimits, ValidateRejectsDuplicateModels) {
  Register r;
  r.models = {"a", "a"};
  r.max_parallel = 1;
  EXPECT_EQ(validate(r).message(), "register.models: duplicate model \"a\"");
}

TEST(TunnelLimits, ValidateRejectsOtherChallengeVersion) {
  Challenge c;
  c.v = 2;
  EXPECT_EQ(validate(c).message(), "challenge.v: must be 1, got 2");
}

TEST(TunnelLimits, EncodeCheckedRefusesAnOversizedCall) {
  Call c;
  c.id = 1;
  c.model = "m";
  c.method = "POST";
  c.path = "/";
  c.deadline_ms = 1;
  c.headers.assign(kMaxHeaders, {"x", std::string(kMaxHeaderValue, 'v')});
  ASSERT_TRUE(validate(c).ok());
  Result<std::string> text = encode_checked(c, Phase::session);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), Errc::limit);
}

TEST(TunnelLimits, EncodeCheckedRefusesTheWrongPhase) {
  Credit c;
  c.id = 1;
  c.bytes = 1;
  EXPECT_EQ(encode_checked(c, Phase::pre_auth).status().message(),
            "message: type \"credit\" is not allowed before authentication");
  Result<std::string> ok = encode_checked(c, Phase::session);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, R"({"type":"credit","id":1,"bytes":1})");
}

}  // namespace
}  // namespace tg::tunnel
