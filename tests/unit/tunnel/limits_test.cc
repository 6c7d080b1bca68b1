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

std::string call_json(const std::string& model, const std::string& path, const std::string& headers,
                      const std::string& request_id = "r1") {
  return R"({"type":"call","id":1,"request_id":")" + request_id + R"(","model":")" + model +
         R"(","method":"POST","path":")" + path + R"(","headers":)" + headers +
         R"(,"stream":false,"deadline_ms":1000})";
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

// ---- numbers ----

constexpr const char* kKey32 = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

std::string welcome_json(uint64_t hb, uint64_t dead, uint64_t streams, uint64_t window,
                         uint64_t tier_ppm = 0, const std::string& ledger_key = kKey32) {
  return R"({"type":"welcome","owner":"o","heartbeat_ms":)" + std::to_string(hb) + R"(,"dead_after":)" +
         std::to_string(dead) + R"(,"max_streams":)" + std::to_string(streams) + R"(,"window":)" +
         std::to_string(window) + R"(,"ledger_key":")" + ledger_key + R"(","tier_ppm":)" +
         std::to_string(tier_ppm) + "}";
}

TEST(TunnelLimits, WelcomeRangesAtTheirEdgesAreAccepted) {
  EXPECT_TRUE(decode_status(welcome_json(kMinHeartbeatMs, 1, 1, kMinWindow), Phase::pre_auth).ok());
  EXPECT_TRUE(decode_status(welcome_json(kMaxHeartbeatMs, kMaxDeadAfter, kMaxMaxStreams, kMaxWindow,
                                         kMaxTierPpm),
                            Phase::pre_auth)
                  .ok());
}

TEST(TunnelLimits, WelcomeTierPpmOverMaximumIsRejected) {
  EXPECT_EQ(decode_status(welcome_json(15000, 3, 64, kMinWindow, kMaxTierPpm + 1), Phase::pre_auth).message(),
            "welcome.tier_ppm: must be an integer 0..1000000, got 1000001");
}

TEST(TunnelLimits, WelcomeLedgerKeyMustBe32Bytes) {
  // 31 and 33 bytes.
  EXPECT_EQ(decode_status(welcome_json(15000, 3, 64, kMinWindow, 0,
                                       "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMQ=="),
                          Phase::pre_auth)
                .message(),
            "welcome.ledger_key: must decode to 32 bytes, got 31");
  EXPECT_EQ(decode_status(welcome_json(15000, 3, 64, kMinWindow, 0,
                                       "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbgA"),
                          Phase::pre_auth)
                .message(),
            "welcome.ledger_key: must decode to 32 bytes, got 33");
}

TEST(TunnelLimits, LargestWelcomeFitsBeforeAuthentication) {
  Welcome w;
  w.owner = std::string(kMaxOwner, 'o');
  w.heartbeat_ms = kMaxHeartbeatMs;
  w.dead_after = kMaxDeadAfter;
  w.max_streams = kMaxMaxStreams;
  w.window = kMaxWindow;
  w.tier_ppm = kMaxTierPpm;
  EXPECT_TRUE(encode_checked(w, Phase::pre_auth).ok());
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
  const std::string over = R"({"type":"call","id":1,"request_id":"r","model":"m","method":"POST","path":"/","headers":[],)"
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

TEST(TunnelLimits, ValidateChecksFinishRanges) {
  Finish f;
  f.id = 1;
  f.upstream_status = 200;
  EXPECT_TRUE(validate(f).ok());
  f.upstream_status = 99;
  EXPECT_EQ(validate(f).message(), "finish.upstream_status: must be an integer 100..599, got 99");
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
  c.request_id = std::string(kMaxRequestId, 'r');
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

// ---- call.request_id ----

TEST(TunnelLimits, RequestIdAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(call_json("m", "/", "[]", std::string(kMaxRequestId, 'r'))).ok());
}

TEST(TunnelLimits, RequestIdOverLimitIsRejected) {
  EXPECT_EQ(decode_status(call_json("m", "/", "[]", std::string(kMaxRequestId + 1, 'r'))).message(),
            "call.request_id: length must be 1..64, got 65");
}

TEST(TunnelLimits, EmptyRequestIdIsRejected) {
  EXPECT_EQ(decode_status(call_json("m", "/", "[]", "")).message(),
            "call.request_id: length must be 1..64, got 0");
}

TEST(TunnelLimits, RequestIdOutsideVisibleAsciiIsRejected) {
  EXPECT_EQ(decode_status(call_json("m", "/", "[]", "a\x7f")).message(),
            "call.request_id: must be visible ASCII, bad byte 0x7f at 1");
  EXPECT_EQ(decode_status(call_json("m", "/", "[]", "caf\xc3\xa9")).message(),
            "call.request_id: must be visible ASCII, bad byte 0xc3 at 3");
}

// ---- prices ----

std::string prices_json(const std::string& version, const std::string& rows) {
  return R"({"type":"prices","version":)" + version + R"(,"models":)" + rows + "}";
}

std::string price_rows(size_t count, size_t model_len, const std::string& price) {
  std::string out = "[";
  for (size_t i = 0; i < count; ++i) {
    if (i) out += ",";
    std::string name = "m" + std::to_string(i);
    name += std::string(model_len > name.size() ? model_len - name.size() : 0, 'x');
    out += "[\"" + name + "\"," + price + "," + price + "," + price + "]";
  }
  return out + "]";
}

TEST(TunnelLimits, PriceVersionRange) {
  EXPECT_TRUE(decode_status(prices_json("1", "[]")).ok());
  EXPECT_TRUE(decode_status(prices_json("9007199254740991", "[]")).ok());
  EXPECT_EQ(decode_status(prices_json("0", "[]")).message(),
            "prices.version: must be an integer 1..9007199254740991, got 0");
  EXPECT_EQ(decode_status(prices_json("9007199254740992", "[]")).message(),
            "prices.version: must be an integer 1..9007199254740991, got 9007199254740992");
}

TEST(TunnelLimits, PriceAtLimitIsAccepted) {
  Result<Message> m = decode(prices_json("1", price_rows(1, 1, "1000000000000")), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const PriceEntry& p = std::get<Prices>(*m).models[0];
  EXPECT_EQ(p.input, kMaxPrice);
  EXPECT_EQ(p.cached_input, kMaxPrice);
  EXPECT_EQ(p.output, kMaxPrice);
  EXPECT_TRUE(decode_status(prices_json("1", price_rows(1, 1, "0"))).ok());
}

TEST(TunnelLimits, PriceOverLimitIsRejected) {
  EXPECT_EQ(decode_status(prices_json("1", price_rows(1, 1, "1000000000001"))).message(),
            "prices.models[0][1]: must be an integer 0..1000000000000, got 1000000000001");
  EXPECT_EQ(decode_status(prices_json("1", R"([["m",0,0,1000000000001]])")).message(),
            "prices.models[0][3]: must be an integer 0..1000000000000, got 1000000000001");
}

TEST(TunnelLimits, PriceModelAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(prices_json("1", price_rows(1, kMaxModel, "1"))).ok());
}

TEST(TunnelLimits, PriceModelOverLimitIsRejected) {
  EXPECT_EQ(decode_status(prices_json("1", price_rows(1, kMaxModel + 1, "1"))).message(),
            "prices.models[0][0]: length must be 1..128, got 129");
  EXPECT_EQ(decode_status(prices_json("1", R"([["",1,1,1]])")).message(),
            "prices.models[0][0]: length must be 1..128, got 0");
}

TEST(TunnelLimits, WildcardPriceModelIsAccepted) {
  Result<Message> m = decode(prices_json("1", R"([["*",1,2,3]])"), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Prices>(*m).models[0].model, "*");
}

TEST(TunnelLimits, PriceModelCountAtLimitIsAccepted) {
  EXPECT_TRUE(decode_status(prices_json("1", price_rows(kMaxPriceModels, 8, "1"))).ok());
}

TEST(TunnelLimits, PriceModelCountOverLimitIsRejected) {
  EXPECT_EQ(decode_status(prices_json("1", price_rows(kMaxPriceModels + 1, 8, "1"))).message(),
            "prices.models: at most 256 models");
}

TEST(TunnelLimits, LargestPriceTableFitsInASessionMessage) {
  Prices p;
  p.version = kMaxSafeInteger;
  for (size_t i = 0; i < kMaxPriceModels; ++i) {
    std::string name = "m" + std::to_string(i);
    name += std::string(kMaxModel - name.size(), 'x');
    p.models.push_back({name, kMaxPrice, kMaxPrice, kMaxPrice});
  }
  Result<std::string> text = encode_checked(p, Phase::session);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_LE(text->size(), kMaxSessionMessage);
  Result<Message> back = decode(*text, Phase::session);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == Message(p));
}

// ---- claim, claim_rejected ----

std::string claim_json(const std::string& request_id, const std::string& model, const std::string& input,
                       const std::string& cached, const std::string& output) {
  return R"({"type":"claim","request_id":")" + request_id + R"(","model":")" + model + R"(","input":)" +
         input + R"(,"cached":)" + cached + R"(,"output":)" + output + R"(,"estimated":false})";
}

TEST(TunnelLimits, ClaimAtLimitsIsAccepted) {
  Result<Message> m = decode(claim_json(std::string(kMaxRequestId, 'r'), std::string(kMaxModel, 'm'),
                                        "1000000000000", "1000000000000", "1000000000000"),
                             Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Claim& c = std::get<Claim>(*m);
  EXPECT_EQ(c.input, kMaxTokens);
  EXPECT_EQ(c.cached, kMaxTokens);
  EXPECT_EQ(c.output, kMaxTokens);
  EXPECT_TRUE(decode_status(claim_json("r", "m", "0", "0", "0")).ok());
}

TEST(TunnelLimits, ClaimOverLimitsIsRejected) {
  EXPECT_EQ(decode_status(claim_json(std::string(kMaxRequestId + 1, 'r'), "m", "0", "0", "0")).message(),
            "claim.request_id: length must be 1..64, got 65");
  EXPECT_EQ(decode_status(claim_json("r", std::string(kMaxModel + 1, 'm'), "0", "0", "0")).message(),
            "claim.model: length must be 1..128, got 129");
  EXPECT_EQ(decode_status(claim_json("r", "m", "1000000000001", "0", "0")).message(),
            "claim.input: must be an integer 0..1000000000000, got 1000000000001");
  EXPECT_EQ(decode_status(claim_json("r", "m", "0", "1000000000001", "0")).message(),
            "claim.cached: must be an integer 0..1000000000000, got 1000000000001");
  EXPECT_EQ(decode_status(claim_json("r", "m", "0", "0", "1000000000001")).message(),
            "claim.output: must be an integer 0..1000000000000, got 1000000000001");
  EXPECT_EQ(decode_status(claim_json("r", "m", "-1", "0", "0")).message(),
            "claim.input: must be an integer 0..1000000000000, got -1");
}

std::string claim_rejected_json(const std::string& request_id, const std::string& code,
                                const std::string& message) {
  return R"({"type":"claim_rejected","request_id":")" + request_id + R"(","code":")" + code +
         R"(","message":")" + message + R"("})";
}

TEST(TunnelLimits, ClaimRejectedAtLimitsIsAccepted) {
  EXPECT_TRUE(decode_status(claim_rejected_json(std::string(kMaxRequestId, 'r'), std::string(kMaxCode, 'c'),
                                                std::string(kMaxText, 't')))
                  .ok());
  EXPECT_TRUE(decode_status(claim_rejected_json("r", "expired", "")).ok());
}

TEST(TunnelLimits, ClaimRejectedOverLimitsIsRejected) {
  EXPECT_EQ(decode_status(claim_rejected_json(std::string(kMaxRequestId + 1, 'r'), "expired", "")).message(),
            "claim_rejected.request_id: length must be 1..64, got 65");
  EXPECT_EQ(decode_status(claim_rejected_json("r", std::string(kMaxCode + 1, 'c'), "")).message(),
            "claim_rejected.code: length must be 1..64, got 65");
  EXPECT_EQ(decode_status(claim_rejected_json("r", "", "")).message(),
            "claim_rejected.code: length must be 1..64, got 0");
  EXPECT_EQ(decode_status(claim_rejected_json("r", "expired", std::string(kMaxText + 1, 't'))).message(),
            "claim_rejected.message: length must be 0..512, got 513");
}

// ---- settle ----

struct SettleFields {
  std::string seq = "1", request_id = "r", model = "m", input = "0", cached = "0", output = "0";
  std::string price_version = "1", cost = "0", tier_ppm = "0", credit = "0", time_ms = "0";
  std::string prev = std::string(64, '0'), hash = std::string(64, 'a');
  std::string json() const {
    return R"({"type":"settle","seq":)" + seq + R"(,"request_id":")" + request_id + R"(","model":")" +
           model + R"(","input":)" + input + R"(,"cached":)" + cached + R"(,"output":)" + output +
           R"(,"estimated":false,"price_version":)" + price_version + R"(,"cost":)" + cost +
           R"(,"tier_ppm":)" + tier_ppm + R"(,"credit":)" + credit + R"(,"time_ms":)" + time_ms +
           R"(,"prev":")" + prev + R"(","hash":")" + hash + R"("})";
  }
};

TEST(TunnelLimits, SettleAtLimitsIsAccepted) {
  SettleFields f;
  f.seq = "9007199254740991";
  f.request_id = std::string(kMaxRequestId, 'r');
  f.model = std::string(kMaxModel, 'm');
  f.input = f.cached = f.output = "1000000000000";
  f.price_version = "9007199254740991";
  f.cost = f.credit = "9000000000000000";
  f.tier_ppm = "1000000";
  f.time_ms = "9007199254740991";
  Result<Message> m = decode(f.json(), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Settle& st = std::get<Settle>(*m);
  EXPECT_EQ(st.seq, kMaxSafeInteger);
  EXPECT_EQ(st.price_version, kMaxSafeInteger);
  EXPECT_EQ(st.cost, kMaxAmount);
  EXPECT_EQ(st.credit, kMaxAmount);
  EXPECT_EQ(st.tier_ppm, kMaxTierPpm);
  EXPECT_EQ(st.time_ms, static_cast<int64_t>(kMaxSafeInteger));
  EXPECT_EQ(encode(*m), f.json());
}

TEST(TunnelLimits, SettleOverLimitsIsRejected) {
  struct Case {
    std::string SettleFields::*field;
    std::string value;
    std::string message;
  };
  const Case cases[] = {
      {&SettleFields::seq, "0", "settle.seq: must be an integer 1..9007199254740991, got 0"},
      {&SettleFields::seq, "9007199254740992",
       "settle.seq: must be an integer 1..9007199254740991, got 9007199254740992"},
      {&SettleFields::request_id, std::string(kMaxRequestId + 1, 'r'),
       "settle.request_id: length must be 1..64, got 65"},
      {&SettleFields::request_id, "", "settle.request_id: length must be 1..64, got 0"},
      {&SettleFields::model, std::string(kMaxModel + 1, 'm'), "settle.model: length must be 1..128, got 129"},
      {&SettleFields::input, "1000000000001",
       "settle.input: must be an integer 0..1000000000000, got 1000000000001"},
      {&SettleFields::cached, "1000000000001",
       "settle.cached: must be an integer 0..1000000000000, got 1000000000001"},
      {&SettleFields::output, "1000000000001",
       "settle.output: must be an integer 0..1000000000000, got 1000000000001"},
      {&SettleFields::price_version, "0", "settle.price_version: must be an integer 1..9007199254740991, got 0"},
      {&SettleFields::price_version, "9007199254740992",
       "settle.price_version: must be an integer 1..9007199254740991, got 9007199254740992"},
      {&SettleFields::cost, "9000000000000001",
       "settle.cost: must be an integer 0..9000000000000000, got 9000000000000001"},
      {&SettleFields::tier_ppm, "1000001", "settle.tier_ppm: must be an integer 0..1000000, got 1000001"},
      {&SettleFields::credit, "1", "settle.credit: must be at most cost 0, got 1"},
      {&SettleFields::time_ms, "9007199254740992",
       "settle.time_ms: must be an integer 0..9007199254740991, got 9007199254740992"},
      {&SettleFields::time_ms, "-1", "settle.time_ms: must be an integer 0..9007199254740991, got -1"},
      {&SettleFields::prev, std::string(63, '0'), "settle.prev: must be 64 lowercase hex digits, got 63 characters"},
      {&SettleFields::hash, std::string(65, 'a'), "settle.hash: must be 64 lowercase hex digits, got 65 characters"},
      {&SettleFields::hash, std::string(63, 'a') + "F", "settle.hash: must be lowercase hex digits, bad byte 0x46 at 63"},
  };
  for (const Case& c : cases) {
    SettleFields f;
    f.*c.field = c.value;
    EXPECT_EQ(decode_status(f.json()).message(), c.message) << f.json();
  }
}

TEST(TunnelLimits, SettleCreditOverTheAmountLimitIsRejected) {
  SettleFields f;
  f.cost = "9000000000000000";
  f.credit = "9000000000000001";
  EXPECT_EQ(decode_status(f.json()).message(),
            "settle.credit: must be an integer 0..9000000000000000, got 9000000000000001");
}

// ---- ack, sync, checkpoint ----

std::string ack_json(const std::string& seq, const std::string& message) {
  return R"({"type":"ack","seq":)" + seq + R"(,"hash":")" + std::string(64, 'b') +
         R"(","result":"dispute","message":")" + message + R"("})";
}

TEST(TunnelLimits, AckRanges) {
  EXPECT_TRUE(decode_status(ack_json("1", "")).ok());
  EXPECT_TRUE(decode_status(ack_json("9007199254740991", std::string(kMaxText, 't'))).ok());
  EXPECT_EQ(decode_status(ack_json("0", "")).message(), "ack.seq: must be an integer 1..9007199254740991, got 0");
  EXPECT_EQ(decode_status(ack_json("9007199254740992", "")).message(),
            "ack.seq: must be an integer 1..9007199254740991, got 9007199254740992");
  EXPECT_EQ(decode_status(ack_json("1", std::string(kMaxText + 1, 't'))).message(),
            "ack.message: length must be 0..512, got 513");
}

TEST(TunnelLimits, SyncRanges) {
  const std::string zero(64, '0');
  EXPECT_TRUE(decode_status(R"({"type":"sync","seq":9007199254740991,"head":")" + zero + R"("})").ok());
  EXPECT_EQ(decode_status(R"({"type":"sync","seq":-1,"head":")" + zero + R"("})").message(),
            "sync.seq: must be an integer 0..9007199254740991, got -1");
}

struct CheckpointFields {
  std::string seq = "1", total_cost = "0", total_credit = "0", time_ms = "0";
  std::string head = std::string(64, 'c');
  std::string sig = std::string(86, 'A') + "==";
  std::string json() const {
    return R"({"type":"checkpoint","seq":)" + seq + R"(,"head":")" + head + R"(","total_cost":)" +
           total_cost + R"(,"total_credit":)" + total_credit + R"(,"time_ms":)" + time_ms +
           R"(,"sig":")" + sig + R"("})";
  }
};

TEST(TunnelLimits, CheckpointAtLimitsIsAccepted) {
  CheckpointFields f;
  f.seq = f.time_ms = "9007199254740991";
  f.total_cost = f.total_credit = "9000000000000000";
  Result<Message> m = decode(f.json(), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Checkpoint>(*m).total_credit, kMaxAmount);
  EXPECT_EQ(encode(*m), f.json());
}

TEST(TunnelLimits, CheckpointOverLimitsIsRejected) {
  struct Case {
    std::string CheckpointFields::*field;
    std::string value;
    std::string message;
  };
  const Case cases[] = {
      {&CheckpointFields::seq, "0", "checkpoint.seq: must be an integer 1..9007199254740991, got 0"},
      {&CheckpointFields::seq, "9007199254740992",
       "checkpoint.seq: must be an integer 1..9007199254740991, got 9007199254740992"},
      {&CheckpointFields::total_cost, "9000000000000001",
       "checkpoint.total_cost: must be an integer 0..9000000000000000, got 9000000000000001"},
      {&CheckpointFields::total_credit, "9000000000000001",
       "checkpoint.total_credit: must be an integer 0..9000000000000000, got 9000000000000001"},
      {&CheckpointFields::total_credit, "1", "checkpoint.total_credit: must be at most total_cost 0, got 1"},
      {&CheckpointFields::time_ms, "9007199254740992",
       "checkpoint.time_ms: must be an integer 0..9007199254740991, got 9007199254740992"},
      {&CheckpointFields::head, std::string(64, 'C'), "checkpoint.head: must be lowercase hex digits, bad byte 0x43 at 0"},
      {&CheckpointFields::sig, std::string(87, 'A') + "=",
       "checkpoint.sig: must decode to 64 bytes, got 65"},
  };
  for (const Case& c : cases) {
    CheckpointFields f;
    f.*c.field = c.value;
    EXPECT_EQ(decode_status(f.json()).message(), c.message) << f.json();
  }
}

// ---- validate() on billing messages built in memory ----

Settle valid_settle() {
  Settle s;
  s.seq = 1;
  s.request_id = "r";
  s.model = "m";
  s.price_version = 1;
  s.cost = 10;
  s.credit = 8;
  s.tier_ppm = 800000;
  return s;
}

TEST(TunnelLimits, ValidateAcceptsAValidSettle) { EXPECT_TRUE(validate(valid_settle()).ok()); }

TEST(TunnelLimits, ValidateRejectsNegativeMoneyAndTime) {
  Settle s = valid_settle();
  s.cost = -1;
  s.credit = -2;
  EXPECT_EQ(validate(s).message(), "settle.cost: must be an integer 0..9000000000000000, got -1");
  s = valid_settle();
  s.credit = -1;
  EXPECT_EQ(validate(s).message(), "settle.credit: must be an integer 0..9000000000000000, got -1");
  s = valid_settle();
  s.time_ms = -1;
  EXPECT_EQ(validate(s).message(), "settle.time_ms: must be an integer 0..9007199254740991, got -1");
  s = valid_settle();
  s.time_ms = static_cast<int64_t>(kMaxSafeInteger) + 1;
  EXPECT_EQ(validate(s).message(),
            "settle.time_ms: must be an integer 0..9007199254740991, got 9007199254740992");
}

TEST(TunnelLimits, ValidateRejectsCreditOverCost) {
  Settle s = valid_settle();
  s.credit = 11;
  EXPECT_EQ(validate(s).message(), "settle.credit: must be at most cost 10, got 11");
}

TEST(TunnelLimits, ValidateRejectsTokensOverLimit) {
  Settle s = valid_settle();
  s.output = kMaxTokens + 1;
  EXPECT_EQ(validate(s).message(), "settle.output: must be an integer 0..1000000000000, got 1000000000001");
  Claim c;
  c.request_id = "r";
  c.model = "m";
  c.cached = kMaxTokens + 1;
  EXPECT_EQ(validate(c).message(), "claim.cached: must be an integer 0..1000000000000, got 1000000000001");
}

TEST(TunnelLimits, ValidateRejectsSettleSeqZero) {
  Settle s = valid_settle();
  s.seq = 0;
  EXPECT_EQ(validate(s).message(), "settle.seq: must be an integer 1..9007199254740991, got 0");
}

TEST(TunnelLimits, ValidateRejectsBadPriceTables) {
  Prices p;
  p.version = 1;
  p.models = {{"m", -1, 0, 0}};
  EXPECT_EQ(validate(p).message(), "prices.models[0][1]: must be an integer 0..1000000000000, got -1");
  p.models = {{"m", 0, kMaxPrice + 1, 0}};
  EXPECT_EQ(validate(p).message(),
            "prices.models[0][2]: must be an integer 0..1000000000000, got 1000000000001");
  p.models = {{"m", 1, 1, 1}, {"m", 2, 2, 2}};
  EXPECT_EQ(validate(p).message(), "prices.models: duplicate model \"m\"");
  p.models = {{"a b", 1, 1, 1}};
  EXPECT_EQ(validate(p).message(), "prices.models[0][0]: must be visible ASCII, bad byte 0x20 at 1");
  p.models.assign(kMaxPriceModels + 1, {"m", 1, 1, 1});
  EXPECT_EQ(validate(p).message(), "prices.models: at most 256 models, got 257");
  p.models.clear();
  p.version = 0;
  EXPECT_EQ(validate(p).message(), "prices.version: must be an integer 1..9007199254740991, got 0");
}

TEST(TunnelLimits, ValidateRejectsAnUnknownAckResult) {
  Ack a;
  a.seq = 1;
  a.result = "accepted";
  EXPECT_EQ(validate(a).message(), "ack.result: must be \"ok\" or \"dispute\", got \"accepted\"");
  a.result = "";
  EXPECT_EQ(validate(a).message(), "ack.result: length must be 1..64, got 0");
}

TEST(TunnelLimits, ValidateRejectsAnEmptyChainWithAHead) {
  Sync s;
  s.head[0] = 1;
  EXPECT_EQ(validate(s).message(), "sync.head: must be all zeros when seq is 0");
  s.seq = 1;
  EXPECT_TRUE(validate(s).ok());
}

TEST(TunnelLimits, ValidateRejectsCheckpointCreditOverCost) {
  Checkpoint c;
  c.seq = 1;
  c.total_cost = 5;
  c.total_credit = 6;
  EXPECT_EQ(validate(c).message(), "checkpoint.total_credit: must be at most total_cost 5, got 6");
}

TEST(TunnelLimits, ValidateRejectsCallWithoutRequestId) {
  Call c;
  c.id = 1;
  c.model = "m";
  c.method = "POST";
  c.path = "/";
  c.deadline_ms = 1;
  EXPECT_EQ(validate(c).message(), "call.request_id: length must be 1..64, got 0");
  EXPECT_EQ(encode_checked(c, Phase::session).status().code(), Errc::protocol);
}

TEST(TunnelLimits, ValidateRejectsWelcomeTierOverMaximum) {
  Welcome w;
  w.owner = "o";
  w.heartbeat_ms = kMinHeartbeatMs;
  w.dead_after = 1;
  w.max_streams = 1;
  w.window = kMinWindow;
  w.tier_ppm = kMaxTierPpm + 1;
  EXPECT_EQ(validate(w).message(), "welcome.tier_ppm: must be an integer 0..1000000, got 1000001");
}

// ---- capacity ----

std::string capacity_json(const std::string& models, const std::string& ready, const std::string& rpm) {
  return R"({"type":"capacity","models":)" + models + R"(,"ready_in_ms":)" + ready + R"(,"rpm":)" + rpm +
         "}";
}

std::string model_list(size_t count, size_t model_len) {
  std::string out = "[";
  for (size_t i = 0; i < count; ++i) {
    std::string name = "m" + std::to_string(i);
    name += std::string(model_len - name.size(), 'x');
    out += (i ? ",\"" : "\"") + name + "\"";
  }
  return out + "]";
}

TEST(TunnelLimits, CapacityAtLimitsIsAccepted) {
  Result<Message> m = decode(capacity_json(model_list(kMaxModels, kMaxModel), "3600000", "10000000"),
                             Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Capacity& c = std::get<Capacity>(*m);
  EXPECT_EQ(c.models.size(), kMaxModels);
  EXPECT_EQ(c.models[0].size(), kMaxModel);
  EXPECT_EQ(c.ready_in_ms, kMaxReadyInMs);
  EXPECT_EQ(c.rpm, kMaxCapacityRpm);
  EXPECT_TRUE(validate(*m).ok());
  // The lower edges: one model, available now, no limit.
  EXPECT_TRUE(decode_status(capacity_json(R"(["a"])", "0", "0")).ok());
}

TEST(TunnelLimits, CapacityOverLimitsIsRejected) {
  struct Case {
    std::string json;
    std::string message;
  };
  const Case cases[] = {
      {capacity_json("[]", "0", "0"), "capacity.models: at least 1 model, got 0"},
      {capacity_json(model_list(kMaxModels + 1, 8), "0", "0"), "capacity.models: at most 256 models"},
      {capacity_json(R"(["a","b","a"])", "0", "0"), "capacity.models: duplicate model \"a\""},
      {capacity_json("[\"" + std::string(kMaxModel + 1, 'm') + "\"]", "0", "0"),
       "capacity.models[0]: length must be 1..128, got 129"},
      {capacity_json(R"(["a b"])", "0", "0"), "capacity.models[0]: must be visible ASCII, bad byte 0x20 at 1"},
      {capacity_json(R"(["a",""])", "0", "0"), "capacity.models[1]: length must be 1..128, got 0"},
      {capacity_json(R"(["a",7])", "0", "0"), "capacity.models[1]: must be a string, got 7"},
      {capacity_json(R"("a")", "0", "0"), "capacity.models: must be an array, got a string"},
      {capacity_json(R"(["a"])", "3600001", "0"), "capacity.ready_in_ms: must be an integer 0..3600000, got 3600001"},
      {capacity_json(R"(["a"])", "-1", "0"), "capacity.ready_in_ms: must be an integer 0..3600000, got -1"},
      {capacity_json(R"(["a"])", "1.5", "0"), "capacity.ready_in_ms: must be an integer 0..3600000, got 1.5"},
      {capacity_json(R"(["a"])", "0", "10000001"), "capacity.rpm: must be an integer 0..10000000, got 10000001"},
      {capacity_json(R"(["a"])", "0", "true"), "capacity.rpm: must be an integer 0..10000000, got a boolean"},
      {R"({"type":"capacity","models":["a"],"ready_in_ms":0})", "capacity.rpm: missing"},
      {R"({"type":"capacity","ready_in_ms":0,"rpm":0})", "capacity.models: missing"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(decode_status(c.json).message(), c.message) << c.json;
  }
}

TEST(TunnelLimits, CapacityIsASessionMessageFromTheAgentOnly) {
  const std::string json = capacity_json(R"(["a"])", "10", "0");
  EXPECT_EQ(decode_status(json, Phase::pre_auth).message(),
            "message: type \"capacity\" is not allowed before authentication");
  EXPECT_TRUE(sent_by_agent(Type::capacity));
  EXPECT_FALSE(sent_by_hub(Type::capacity));
}

TEST(TunnelLimits, ValidateChecksCapacityInMemory) {
  Capacity c;
  EXPECT_EQ(validate(c).message(), "capacity.models: must hold 1..256 models, got 0");
  c.models.assign(kMaxModels + 1, "m");
  EXPECT_EQ(validate(c).message(), "capacity.models: must hold 1..256 models, got 257");
  c.models = {"a", "a"};
  EXPECT_EQ(validate(c).message(), "capacity.models: duplicate model \"a\"");
  c.models = {"a", "b\x7f"};
  EXPECT_EQ(validate(c).message(), "capacity.models[1]: must be visible ASCII, bad byte 0x7f at 1");
  c.models = {"a"};
  c.ready_in_ms = kMaxReadyInMs + 1;
  EXPECT_EQ(validate(c).message(), "capacity.ready_in_ms: must be an integer 0..3600000, got 3600001");
  c.ready_in_ms = kMaxReadyInMs;
  c.rpm = kMaxCapacityRpm + 1;
  EXPECT_EQ(validate(c).message(), "capacity.rpm: must be an integer 0..10000000, got 10000001");
  EXPECT_EQ(encode_checked(c, Phase::session).status().code(), Errc::protocol);
  c.rpm = kMaxCapacityRpm;
  EXPECT_TRUE(validate(c).ok());
  EXPECT_EQ(encode_checked(c, Phase::pre_auth).status().code(), Errc::protocol);
}

TEST(TunnelLimits, LargestCapacityFitsASessionMessage) {
  // 256 models of 128 bytes: the whole message stays far below 64 KiB.
  Capacity c;
  for (size_t i = 0; i < kMaxModels; ++i) {
    std::string name = "model-" + std::to_string(i);
    c.models.push_back(name + std::string(kMaxModel - name.size(), 'z'));
  }
  c.ready_in_ms = kMaxReadyInMs;
  c.rpm = kMaxCapacityRpm;
  Result<std::string> text = encode_checked(c, Phase::session);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_LT(text->size(), kMaxSessionMessage);
  Result<Message> back = decode(*text, Phase::session);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == Message(c));
}

}  // namespace
}  // namespace tg::tunnel
