// Control messages: round trips, types, phases, nesting, base64 fields and the
// error messages that name the bad field.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "shared/tunnel/codes.h"
#include "shared/tunnel/messages.h"
#include "tests/unit/tunnel/examples.h"

namespace tg::tunnel {
namespace {

Status decode_status(const std::string& json, Phase phase = Phase::session) {
  Result<Message> m = decode(json, phase);
  return m.ok() ? Status() : m.status();
}

TEST(TunnelMessages, EveryExampleDecodesToItsStruct) {
  for (const auto& ex : test::examples()) {
    Result<Message> m = decode(ex.json, ex.phase);
    ASSERT_TRUE(m.ok()) << ex.json << ": " << m.status().to_string();
    EXPECT_TRUE(*m == ex.message) << ex.json;
  }
}

TEST(TunnelMessages, EveryExampleEncodesToItsExactText) {
  for (const auto& ex : test::examples()) {
    EXPECT_TRUE(validate(ex.message).ok()) << ex.json;
    EXPECT_EQ(encode(ex.message), ex.json);
  }
}

TEST(TunnelMessages, ExamplesCoverEveryType) {
  std::set<size_t> seen;
  for (const auto& ex : test::examples()) seen.insert(ex.message.index());
  EXPECT_EQ(seen.size(), kTypeCount);
}

TEST(TunnelMessages, ReorderedFieldsAndWhitespaceDecodeToTheSameStruct) {
  Result<Message> m = decode(" {\"bytes\" : 65536,\n\"id\":7, \"type\":\"credit\"}\r\n", Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  Credit want;
  want.id = 7;
  want.bytes = 65536;
  EXPECT_TRUE(*m == Message(want));
  EXPECT_EQ(encode(*m), R"({"type":"credit","id":7,"bytes":65536})");
}

TEST(TunnelMessages, RoundTripKeepsUnusualButValidValues) {
  Call call;
  call.id = 4294967295u;
  call.model = "anthropic.claude-3-sonnet-20240229-v1:0";
  call.method = "GET";
  call.path = "/v1/models?x=%22a%22&y=\\";
  call.headers = {{"x-a", ""}, {"x-b", "caf\xc3\xa9 \"quoted\" \\ \t tab"}, {"x-a", "dup"}};
  call.stream = false;
  call.deadline_ms = kMaxDeadlineMs;
  ASSERT_TRUE(validate(call).ok()) << validate(call).to_string();
  Result<Message> back = decode(encode(call), Phase::session);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == Message(call));
}

TEST(TunnelMessages, UsageIsStoredCompact) {
  Result<Message> m = decode(
      R"({"type":"finish","id":1,"upstream_status":200,"usage": { "a" : [1, 2.5, "x", null, true], "b": {} } })",
      Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Finish>(*m).usage, R"({"a":[1,2.5,"x",null,true],"b":{}})");
}

TEST(TunnelMessages, FinishUsageMustBeAnObject) {
  Status s = decode_status(R"({"type":"finish","id":1,"upstream_status":200,"usage":[1]})");
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message(), "finish.usage: must be an object, got an array");
}

TEST(TunnelMessages, AuthWithoutEnrollTokenHasEmptyToken) {
  const auto ex = test::examples()[1];
  Result<Message> m = decode(ex.json, Phase::pre_auth);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(std::get<Auth>(*m).enroll_token.empty());
}

// ---- types and fields ----

TEST(TunnelMessages, NegativeIdIsRejectedWithFieldName) {
  Status s = decode_status(R"({"type":"abort","id":-1,"reason":"client_gone"})");
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message(), "abort.id: must be an integer 1..4294967295, got -1");
  EXPECT_EQ(close_code_for(s), close_code::bad_message);
}

TEST(TunnelMessages, CallIdErrorNamesTheValue) {
  Status s = decode_status(
      R"({"type":"call","id":-1,"model":"m","method":"POST","path":"/","headers":[],"stream":true,"deadline_ms":1})");
  EXPECT_EQ(s.message(), "call.id: must be an integer 1..4294967295, got -1");
}

TEST(TunnelMessages, IdZeroIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":0,"bytes":1})").message(),
            "credit.id: must be an integer 1..4294967295, got 0");
}

TEST(TunnelMessages, IdAtMaximumIsAccepted) {
  EXPECT_TRUE(decode_status(R"({"type":"credit","id":4294967295,"bytes":1})").ok());
}

TEST(TunnelMessages, IdOverMaximumIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":4294967296,"bytes":1})").message(),
            "credit.id: must be an integer 1..4294967295, got 4294967296");
}

TEST(TunnelMessages, FractionalNumberIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1.5,"bytes":1})").message(),
            "credit.id: must be an integer 1..4294967295, got 1.5");
}

TEST(TunnelMessages, HugeNumberIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1e300,"bytes":1})").message(),
            "credit.id: must be an integer 1..4294967295, got 1e+300");
}

TEST(TunnelMessages, IntegralNumberInExponentFormIsAccepted) {
  Result<Message> m = decode(R"({"type":"credit","id":7.0,"bytes":6.5536e4})", Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Credit>(*m).bytes, 65536u);
}

TEST(TunnelMessages, NumberAsStringIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":"7","bytes":1})").message(),
            "credit.id: must be an integer 1..4294967295, got a string");
}

TEST(TunnelMessages, StringAsNumberIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"abort","id":7,"reason":7})").message(),
            "abort.reason: must be a string, got 7");
}

TEST(TunnelMessages, BooleanAsStringIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"call","id":1,"model":"m","method":"POST","path":"/",)"
                          R"("headers":[],"stream":"true","deadline_ms":1})")
                .message(),
            "call.stream: must be true or false, got a string");
}

TEST(TunnelMessages, HeadersAsObjectIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"response","id":1,"status":200,"headers":{"a":"b"}})").message(),
            "response.headers: must be an array, got an object");
}

TEST(TunnelMessages, HeaderPairOfThreeIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"response","id":1,"status":200,"headers":[["a","b","c"]]})").message(),
            "response.headers[0]: must be a [name, value] array, got an array");
}

TEST(TunnelMessages, HeaderValueNumberIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"response","id":1,"status":200,"headers":[["a",1]]})").message(),
            "response.headers[0][1]: must be a string, got 1");
}

TEST(TunnelMessages, UppercaseHeaderNameIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"response","id":1,"status":200,"headers":[["Content-Type","x"]]})").message(),
            "response.headers[0][0]: must be a lowercase HTTP token, bad byte 0x43 at 0");
}

TEST(TunnelMessages, HeaderValueWithCrLfIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"response","id":1,"status":200,"headers":[["a","x\r\nb: y"]]})").message(),
            "response.headers[0][1]: must be HTAB, SP, visible ASCII or bytes >= 0x80, bad byte 0x0d at 1");
}

TEST(TunnelMessages, PathMustStartWithSlash) {
  EXPECT_EQ(decode_status(R"({"type":"call","id":1,"model":"m","method":"POST","path":"v1/x",)"
                          R"("headers":[],"stream":true,"deadline_ms":1})")
                .message(),
            "call.path: must start with '/'");
}

TEST(TunnelMessages, PathWithSpaceIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"call","id":1,"model":"m","method":"POST","path":"/a b",)"
                          R"("headers":[],"stream":true,"deadline_ms":1})")
                .message(),
            "call.path: must be visible ASCII, bad byte 0x20 at 2");
}

TEST(TunnelMessages, StatusOutOfRangeIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"response","id":1,"status":600,"headers":[]})").message(),
            "response.status: must be an integer 100..599, got 600");
}

TEST(TunnelMessages, CodeWithUppercaseIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"error","id":1,"code":"Busy","message":""})").message(),
            "error.code: must be [a-z0-9_], bad byte 0x42 at 0");
}

TEST(TunnelMessages, EmptyCodeIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"abort","id":1,"reason":""})").message(),
            "abort.reason: length must be 1..64, got 0");
}

TEST(TunnelMessages, MissingFieldIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1})").message(), "credit.bytes: missing");
}

TEST(TunnelMessages, UnknownFieldIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1,"bytes":1,"extra":0})").message(),
            "credit: unknown field \"extra\"");
}

TEST(TunnelMessages, FieldNamesAreCaseSensitive) {
  EXPECT_EQ(decode_status(R"({"type":"credit","ID":1,"bytes":1})").message(),
            "credit: unknown field \"ID\"");
}

TEST(TunnelMessages, DuplicateFieldIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1,"bytes":1,"id":2})").message(),
            "credit: duplicate field \"id\"");
}

TEST(TunnelMessages, DuplicateTypeIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1,"bytes":1,"type":"abort"})").message(),
            "credit: duplicate field \"type\"");
}

TEST(TunnelMessages, DuplicateModelIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"register","models":["a","b","a"],"max_parallel":1})").message(),
            "register.models: duplicate model \"a\"");
}

TEST(TunnelMessages, UnknownTypeIsRejected) {
  Status s = decode_status(R"({"type":"hello"})");
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message(), "message: unknown type \"hello\"");
  EXPECT_EQ(close_code_for(s), close_code::bad_message);
}

TEST(TunnelMessages, TypeNamesAreCaseSensitive) {
  EXPECT_EQ(decode_status(R"({"type":"Credit","id":1,"bytes":1})").message(),
            "message: unknown type \"Credit\"");
}

TEST(TunnelMessages, MissingTypeIsRejected) {
  EXPECT_EQ(decode_status(R"({"id":1,"bytes":1})").message(), "message: missing field \"type\"");
}

TEST(TunnelMessages, NonStringTypeIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":3})").message(), "message.type: must be a string, got 3");
}

TEST(TunnelMessages, NonObjectIsRejected) {
  EXPECT_EQ(decode_status(R"(["credit"])").message(), "message: must be a JSON object, got an array");
}

TEST(TunnelMessages, InvalidJsonIsAParseError) {
  Status s = decode_status(R"({"type":"credit",)");
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(close_code_for(s), close_code::bad_message);
}

TEST(TunnelMessages, EmptyInputIsAParseError) {
  EXPECT_EQ(decode_status("").code(), Errc::parse);
}

TEST(TunnelMessages, TrailingBytesAreRejected) {
  Status s = decode_status(R"({"type":"credit","id":1,"bytes":1}x)");
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "message: trailing bytes after the JSON value at offset 34");
}

TEST(TunnelMessages, SecondObjectIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1,"bytes":1}{})").code(), Errc::parse);
}

TEST(TunnelMessages, RawControlCharacterInStringIsRejected) {
  Status s = decode_status(std::string("{\"type\":\"abort\",\"id\":1,\"reason\":\"a\x01\"}"));
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "message: control character in a string at offset 34");
}

TEST(TunnelMessages, EscapedNulIsRejected) {
  Status s = decode_status(R"({"type":"error","id":1,"code":"x","message":"a\u0000b"})");
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "message: \\u0000 in a string at offset 46");
}

TEST(TunnelMessages, RawNulIsRejected) {
  EXPECT_EQ(decode_status(std::string("{\"type\":\"credit\",\"id\":1,\"bytes\":1}\0", 35)).code(),
            Errc::parse);
}

TEST(TunnelMessages, EscapedBackslashBeforeU0000TextIsNotNul) {
  // "\\u0000" is a backslash followed by the text u0000: allowed in free text.
  Result<Message> m = decode(R"({"type":"error","id":1,"code":"x","message":"\\u0000"})", Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Error>(*m).message, "\\u0000");
}

// ---- phases ----

TEST(TunnelMessages, SessionTypeBeforeAuthenticationIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"credit","id":1,"bytes":1})", Phase::pre_auth).message(),
            "message: type \"credit\" is not allowed before authentication");
}

TEST(TunnelMessages, HandshakeTypeAfterAuthenticationIsRejected) {
  const auto ex = test::examples()[0];  // challenge
  EXPECT_EQ(decode_status(ex.json, Phase::session).message(),
            "message: type \"challenge\" is not allowed after authentication");
}

TEST(TunnelMessages, RefusedIsAllowedInBothPhases) {
  const std::string json = R"({"type":"refused","code":"revoked","message":""})";
  EXPECT_TRUE(decode_status(json, Phase::pre_auth).ok());
  EXPECT_TRUE(decode_status(json, Phase::session).ok());
}

TEST(TunnelMessages, PhaseTableMatchesTheDesign) {
  for (size_t i = 0; i < kTypeCount; ++i) {
    const auto t = static_cast<Type>(i);
    const bool handshake = t == Type::challenge || t == Type::auth || t == Type::welcome;
    EXPECT_EQ(allowed_in(t, Phase::pre_auth), handshake || t == Type::refused) << type_name(t);
    EXPECT_EQ(allowed_in(t, Phase::session), !handshake) << type_name(t);
  }
}

TEST(TunnelMessages, DirectionTableMatchesTheDesign) {
  EXPECT_TRUE(sent_by_hub(Type::challenge) && !sent_by_agent(Type::challenge));
  EXPECT_TRUE(!sent_by_hub(Type::auth) && sent_by_agent(Type::auth));
  EXPECT_TRUE(sent_by_hub(Type::call) && !sent_by_agent(Type::call));
  EXPECT_TRUE(!sent_by_hub(Type::finish) && sent_by_agent(Type::finish));
  EXPECT_TRUE(sent_by_hub(Type::credit) && sent_by_agent(Type::credit));
  EXPECT_TRUE(sent_by_hub(Type::abort) && sent_by_agent(Type::abort));
  EXPECT_TRUE(sent_by_hub(Type::error) && sent_by_agent(Type::error));
  EXPECT_TRUE(sent_by_hub(Type::goaway) && !sent_by_agent(Type::goaway));
}

TEST(TunnelMessages, ChallengeVersionOtherThanOneIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"challenge","v":2,"nonce":"paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU="})",
                          Phase::pre_auth)
                .message(),
            "challenge.v: unsupported protocol version 2, this build speaks 1");
}

// ---- nesting ----

std::string nested_usage(int levels) {
  // usage object at depth 2 of the message, then `levels - 1` more objects.
  std::string inner = "{}";
  for (int i = 1; i < levels; ++i) inner = "{\"a\":" + inner + "}";
  return R"({"type":"finish","id":1,"upstream_status":200,"usage":)" + inner + "}";
}

TEST(TunnelMessages, UsageAtDepthLimitIsAccepted) {
  EXPECT_TRUE(decode_status(nested_usage(kMaxUsageDepth)).ok());
}

TEST(TunnelMessages, UsageOverDepthLimitIsRejected) {
  EXPECT_EQ(decode_status(nested_usage(kMaxUsageDepth + 1)).message(),
            "finish.usage: nesting must be at most 8, got 9");
}

TEST(TunnelMessages, MessageAtNestingLimitReachesTheParser) {
  // 16 levels in total pass the pre-scan and fail only the usage rule.
  const Status s = decode_status(nested_usage(kMaxJsonDepth - 1));
  EXPECT_EQ(s.code(), Errc::protocol);
}

TEST(TunnelMessages, MessageOverNestingLimitIsRejectedBeforeParsing) {
  const Status s = decode_status(nested_usage(kMaxJsonDepth));
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_NE(s.message().find("nesting deeper than 16"), std::string::npos) << s.message();
}

TEST(TunnelMessages, HostileNestingIsRejectedCheaply) {
  const std::string deep(60000, '[');
  const Status s = decode_status(deep);
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "message: nesting deeper than 16 at offset 16");
}

TEST(TunnelMessages, BracketsInsideStringsDoNotCountAsNesting) {
  const std::string text(300, '[');
  EXPECT_TRUE(decode_status(R"({"type":"error","id":1,"code":"x","message":")" + text + R"("})").ok());
}

// ---- base64 ----

std::string challenge_with(const std::string& nonce) {
  return R"({"type":"challenge","v":1,"nonce":")" + nonce + R"("})";
}

TEST(TunnelMessages, NonceOf31BytesIsRejected) {
  // 31 bytes encode to 44 characters too: the decoded length is checked.
  EXPECT_EQ(decode_status(challenge_with("paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpQ=="), Phase::pre_auth).message(),
            "challenge.nonce: must decode to 32 bytes, got 31");
}

TEST(TunnelMessages, NonceOf33BytesIsRejected) {
  EXPECT_EQ(decode_status(challenge_with("paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWl"), Phase::pre_auth).message(),
            "challenge.nonce: must decode to 32 bytes, got 33");
}

TEST(TunnelMessages, ShortNonceTextIsRejected) {
  EXPECT_EQ(decode_status(challenge_with("paWl"), Phase::pre_auth).message(),
            "challenge.nonce: must be the base64 of 32 bytes (44 characters), got 4 characters");
}

TEST(TunnelMessages, NonceWithBadCharacterIsRejected) {
  const Status s = decode_status(challenge_with("paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpa*="), Phase::pre_auth);
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message().rfind("challenge.nonce: base64:", 0), 0u) << s.message();
}

TEST(TunnelMessages, UrlSafeBase64IsRejected) {
  const std::string auth =
      R"({"type":"auth","pubkey":"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","sig":"VJbrVjLFlVxVY9mMN4Fzn0TUivP+c1ohqDptllKJatD/dCGxvDpXQ/mtDX+DkOOUIvJ0dOBBtYF4EW1XFDy4Bw==","agent_version":"0.1.0","platform":"x"})";
  EXPECT_EQ(decode_status(auth, Phase::pre_auth).message().rfind("auth.pubkey: base64:", 0), 0u);
}

TEST(TunnelMessages, SignatureOf63BytesIsRejected) {
  const std::string auth =
      R"({"type":"auth","pubkey":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","sig":"VJbrVjLFlVxVY9mMN4Fzn0TUivP+c1ohqDptllKJatD/dCGxvDpXQ/mtDX+DkOOUIvJ0dOBBtYF4EW1XFDy4","agent_version":"0.1.0","platform":"x"})";
  EXPECT_EQ(decode_status(auth, Phase::pre_auth).message(),
            "auth.sig: must be the base64 of 64 bytes (88 characters), got 84 characters");
}

TEST(TunnelMessages, SignatureOf66BytesIsRejected) {
  const std::string auth =
      R"({"type":"auth","pubkey":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","sig":"VJbrVjLFlVxVY9mMN4Fzn0TUivP+c1ohqDptllKJatD/dCGxvDpXQ/mtDX+DkOOUIvJ0dOBBtYF4EW1XFDy4BwAA","agent_version":"0.1.0","platform":"x"})";
  EXPECT_EQ(decode_status(auth, Phase::pre_auth).message(), "auth.sig: must decode to 64 bytes, got 66");
}

// ---- close codes ----

TEST(TunnelMessages, RefusalCodesMapToCloseCodes) {
  EXPECT_EQ(close_code_for_refusal(refusal::unknown_key), 4001);
  EXPECT_EQ(close_code_for_refusal(refusal::bad_signature), 4001);
  EXPECT_EQ(close_code_for_refusal(refusal::bad_nonce), 4001);
  EXPECT_EQ(close_code_for_refusal(refusal::bad_enroll_token), 4001);
  EXPECT_EQ(close_code_for_refusal(refusal::revoked), 4003);
  EXPECT_EQ(close_code_for_refusal(refusal::replaced), 4004);
  EXPECT_EQ(close_code_for_refusal(refusal::rate_limited), 4029);
  EXPECT_EQ(close_code_for_refusal(refusal::protocol), 4000);
  EXPECT_EQ(close_code_for_refusal("something_new"), 4000);
}

}  // namespace
}  // namespace tg::tunnel
