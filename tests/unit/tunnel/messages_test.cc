// Control messages: round trips, types, phases, nesting, base64 fields and the
// error messages that name the bad field.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

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
  call.request_id = "!~" + std::string(62, 'r');
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

TEST(TunnelMessages, TicketsTravelInCallAndClaimAndAreOptional) {
  // The PROTOCOL.md examples of both, with a ticket added.
  Call call;
  Claim claim;
  for (const auto& ex : test::examples()) {
    if (auto* c = std::get_if<Call>(&ex.message)) call = *c;
    if (auto* c = std::get_if<Claim>(&ex.message)) claim = *c;
  }
  ASSERT_FALSE(call.request_id.empty());
  ASSERT_FALSE(claim.request_id.empty());
  call.ticket = "1.7.1.1700000000000." + std::string(64, 'a');
  claim.ticket = call.ticket;
  for (const Message& m : {Message(call), Message(claim)}) {
    ASSERT_TRUE(validate(m).ok());
    EXPECT_NE(encode(m).find("\"ticket\":\"" + call.ticket + "\""), std::string::npos);
    Result<Message> back = decode(encode(m), Phase::session);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_TRUE(*back == m);
  }
  // Without one (a hub without billing, an older agent's claim): no field.
  call.ticket.clear();
  EXPECT_EQ(encode(call).find("ticket"), std::string::npos);
  EXPECT_TRUE(decode(encode(call), Phase::session).ok());
  // Bounded and visible ASCII only.
  EXPECT_EQ(decode_status(R"({"type":"claim","request_id":"r","model":"m","input":0,"cached":0,)"
                          R"("output":0,"estimated":false,"ticket":")" +
                          std::string(kMaxTicket + 1, 't') + "\"}")
                .message(),
            "claim.ticket: length must be 1..160, got 161");
  EXPECT_EQ(decode_status(R"({"type":"claim","request_id":"r","model":"m","input":0,"cached":0,)"
                          R"("output":0,"estimated":false,"ticket":""})")
                .code(),
            Errc::protocol);
  claim.ticket = "a b";
  EXPECT_FALSE(validate(claim).ok());
}

TEST(TunnelMessages, FinishNoLongerCarriesUsage) {
  // The usage travels in `claim` now.
  Status s = decode_status(R"({"type":"finish","id":1,"upstream_status":200,"usage":{}})");
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message(), "finish: unknown field \"usage\"");
}

TEST(TunnelMessages, CallWithoutRequestIdIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"call","id":1,"model":"m","method":"POST","path":"/",)"
                          R"("headers":[],"stream":true,"deadline_ms":1})")
                .message(),
            "call.request_id: missing");
}

TEST(TunnelMessages, WelcomeWithoutLedgerKeyIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"welcome","owner":"o","heartbeat_ms":15000,"dead_after":3,)"
                          R"("max_streams":64,"window":262144,"tier_ppm":0})",
                          Phase::pre_auth)
                .message(),
            "welcome.ledger_key: missing");
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
  EXPECT_EQ(decode_status(R"({"type":"call","id":1,"request_id":"r","model":"m","method":"POST","path":"/",)"
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
  EXPECT_EQ(decode_status(R"({"type":"call","id":1,"request_id":"r","model":"m","method":"POST","path":"v1/x",)"
                          R"("headers":[],"stream":true,"deadline_ms":1})")
                .message(),
            "call.path: must start with '/'");
}

TEST(TunnelMessages, PathWithSpaceIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"call","id":1,"request_id":"r","model":"m","method":"POST","path":"/a b",)"
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

TEST(TunnelMessages, BillingTypesAreSessionOnlyAndOneWay) {
  const Type from_hub[] = {Type::prices, Type::claim_rejected, Type::settle, Type::checkpoint};
  const Type from_agent[] = {Type::claim, Type::ack, Type::sync};
  for (Type t : from_hub) {
    EXPECT_TRUE(sent_by_hub(t) && !sent_by_agent(t)) << type_name(t);
    EXPECT_TRUE(allowed_in(t, Phase::session) && !allowed_in(t, Phase::pre_auth)) << type_name(t);
  }
  for (Type t : from_agent) {
    EXPECT_TRUE(!sent_by_hub(t) && sent_by_agent(t)) << type_name(t);
    EXPECT_TRUE(allowed_in(t, Phase::session) && !allowed_in(t, Phase::pre_auth)) << type_name(t);
  }
}

TEST(TunnelMessages, TypeNamesOfTheBillingMessages) {
  EXPECT_STREQ(type_name(Type::prices), "prices");
  EXPECT_STREQ(type_name(Type::claim), "claim");
  EXPECT_STREQ(type_name(Type::claim_rejected), "claim_rejected");
  EXPECT_STREQ(type_name(Type::settle), "settle");
  EXPECT_STREQ(type_name(Type::ack), "ack");
  EXPECT_STREQ(type_name(Type::sync), "sync");
  EXPECT_STREQ(type_name(Type::checkpoint), "checkpoint");
  EXPECT_EQ(type_of(Checkpoint{}), Type::checkpoint);
  EXPECT_EQ(type_of(Prices{}), Type::prices);
}

TEST(TunnelMessages, CapacityRoundTrip) {
  Capacity c;
  c.models = {"claude-3-5-haiku-latest", "anthropic.claude-3-sonnet-20240229-v1:0", "m"};
  c.ready_in_ms = 1;
  c.rpm = 1;
  const std::string text = encode(c);
  EXPECT_EQ(text, R"({"type":"capacity","models":["claude-3-5-haiku-latest",)"
                  R"("anthropic.claude-3-sonnet-20240229-v1:0","m"],"ready_in_ms":1,"rpm":1})");
  Result<Message> back = decode(text, Phase::session);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == Message(c));
  EXPECT_EQ(type_of(*back), Type::capacity);
  EXPECT_STREQ(type_name(Type::capacity), "capacity");
  // Field order on the wire does not matter; the order of models does.
  Result<Message> reordered =
      decode(R"({"rpm":1,"ready_in_ms":1,"type":"capacity","models":["m","claude-3-5-haiku-latest",)"
             R"("anthropic.claude-3-sonnet-20240229-v1:0"]})", Phase::session);
  ASSERT_TRUE(reordered.ok()) << reordered.status().to_string();
  EXPECT_FALSE(*reordered == Message(c));
}

TEST(TunnelMessages, RateLimitedIsAStreamErrorCode) {
  EXPECT_EQ(stream_error::rate_limited, "rate_limited");
  Result<Message> m = decode(R"({"type":"error","id":3,"code":"rate_limited","message":"retry in 1200 ms"})",
                             Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Error>(*m).code, stream_error::rate_limited);
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

// A response whose headers array holds `levels` nested arrays: the message
// object is level 1, so the whole text nests levels + 1 deep.
std::string nested_headers(size_t levels) {
  return R"({"type":"response","id":1,"status":200,"headers":)" + std::string(levels, '[') +
         std::string(levels, ']') + "}";
}

TEST(TunnelMessages, MessageAtNestingLimitReachesTheParser) {
  // 16 levels in total pass the pre-scan and fail only the headers rule.
  const Status s = decode_status(nested_headers(kMaxJsonDepth - 1));
  EXPECT_EQ(s.code(), Errc::protocol);
  EXPECT_EQ(s.message(), "response.headers[0]: must be a [name, value] array, got an array");
}

TEST(TunnelMessages, MessageOverNestingLimitIsRejectedBeforeParsing) {
  const Status s = decode_status(nested_headers(kMaxJsonDepth));
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

// ---- numbers beyond 32 bits ----

std::string sync_json(const std::string& seq) {
  return R"({"type":"sync","seq":)" + seq + R"(,"head":")" + std::string(64, '1') + R"("})";
}

TEST(TunnelMessages, LargestSafeIntegerIsExact) {
  Result<Message> m = decode(sync_json("9007199254740991"), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Sync>(*m).seq, kMaxSafeInteger);
  EXPECT_EQ(encode(*m), sync_json("9007199254740991"));
}

TEST(TunnelMessages, TwoToTheFiftyThirdIsRejected) {
  EXPECT_EQ(decode_status(sync_json("9007199254740992")).message(),
            "sync.seq: must be an integer 0..9007199254740991, got 9007199254740992");
}

TEST(TunnelMessages, IntegerThatRoundsIntoRangeIsStillRejected) {
  // 2^53 + 1 reads as the double 2^53: rejected by the range, named exactly.
  EXPECT_EQ(decode_status(sync_json("9007199254740993")).message(),
            "sync.seq: must be an integer 0..9007199254740991, got 9007199254740992");
}

TEST(TunnelMessages, FractionThatReadsAsAnIntegerIsRejected) {
  // Both parse to integral doubles; neither is an integer.
  Status s = decode_status(sync_json("9007199254740990.6"));
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "message: number 9007199254740990.6 at offset 21 is not an integer but reads as one");
  s = decode_status(R"({"type":"credit","id":1.0000000000000001,"bytes":1})");
  EXPECT_EQ(s.code(), Errc::parse);
  EXPECT_EQ(s.message(), "message: number 1.0000000000000001 at offset 22 is not an integer but reads as one");
}

TEST(TunnelMessages, IntegralLiteralsInOtherFormsAreAccepted) {
  Result<Message> m = decode(sync_json("4.2e1"), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Sync>(*m).seq, 42u);
  m = decode(sync_json("4200e-2"), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Sync>(*m).seq, 42u);
  m = decode(sync_json("9007199254740991.000"), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(std::get<Sync>(*m).seq, kMaxSafeInteger);
  m = decode(sync_json("1E15"), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(encode(*m), sync_json("1000000000000000"));  // written as plain digits
}

TEST(TunnelMessages, FractionInAPlainRangeKeepsTheFieldMessage) {
  EXPECT_EQ(decode_status(sync_json("4201e-2")).message(),
            "sync.seq: must be an integer 0..9007199254740991, got 42.01");
}

TEST(TunnelMessages, NegativeAmountIsRejected) {
  const std::string json =
      R"({"type":"checkpoint","seq":1,"head":")" + std::string(64, 'a') +
      R"(","total_cost":-1,"total_credit":0,"time_ms":0,"sig":")" + std::string(86, 'A') + R"(=="})";
  EXPECT_EQ(decode_status(json).message(),
            "checkpoint.total_cost: must be an integer 0..9000000000000000, got -1");
}

TEST(TunnelMessages, NumbersInStringsAreNotScanned) {
  // The number check runs outside strings only.
  Result<Message> m = decode(
      R"({"type":"error","id":1,"code":"x","message":"1.0000000000000001 and 9007199254740990.6"})",
      Phase::session);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
}

TEST(TunnelMessages, LargeIntegersEncodeAsPlainDigits) {
  Settle st;
  st.seq = kMaxSafeInteger;
  st.request_id = "r";
  st.model = "m";
  st.input = kMaxTokens;
  st.cached = kMaxTokens;
  st.output = kMaxTokens;
  st.price_version = kMaxSafeInteger;
  st.cost = kMaxAmount;
  st.tier_ppm = kMaxTierPpm;
  st.credit = kMaxAmount;
  st.time_ms = static_cast<int64_t>(kMaxSafeInteger);
  ASSERT_TRUE(validate(st).ok()) << validate(st).to_string();
  const std::string text = encode(st);
  EXPECT_NE(text.find(R"("seq":9007199254740991,)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("input":1000000000000,)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("cost":9000000000000000,)"), std::string::npos) << text;
  EXPECT_EQ(text.find("e+"), std::string::npos) << text;
  Result<Message> back = decode(text, Phase::session);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(*back == Message(st));
}

// ---- billing messages: shapes and rules ----

std::string settle_json(const std::string& cost, const std::string& credit) {
  return R"({"type":"settle","seq":1,"request_id":"r","model":"m","input":1,"cached":0,"output":1,)"
         R"("estimated":true,"price_version":1,"cost":)" + cost + R"(,"tier_ppm":500000,"credit":)" +
         credit + R"(,"time_ms":0,"prev":")" + std::string(64, '0') + R"(","hash":")" +
         std::string(64, 'f') + R"("})";
}

TEST(TunnelMessages, SettleCreditEqualToCostIsAccepted) {
  Result<Message> m = decode(settle_json("10", "10"), Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Settle& st = std::get<Settle>(*m);
  EXPECT_TRUE(st.estimated);
  EXPECT_EQ(st.prev, HashBytes{});
  HashBytes ff;
  ff.fill(0xff);
  EXPECT_EQ(st.hash, ff);
}

TEST(TunnelMessages, SettleCreditOverCostIsRejected) {
  EXPECT_EQ(decode_status(settle_json("10", "11")).message(),
            "settle.credit: must be at most cost 10, got 11");
}

TEST(TunnelMessages, UppercaseHexIsRejected) {
  const std::string json = R"({"type":"sync","seq":1,"head":")" + std::string(63, 'a') + R"(A"})";
  EXPECT_EQ(decode_status(json).message(), "sync.head: must be lowercase hex digits, bad byte 0x41 at 63");
}

TEST(TunnelMessages, NonHexCharacterIsRejected) {
  const std::string json = R"({"type":"sync","seq":1,"head":"g)" + std::string(63, 'a') + R"("})";
  EXPECT_EQ(decode_status(json).message(), "sync.head: must be lowercase hex digits, bad byte 0x67 at 0");
}

TEST(TunnelMessages, HashAsNumberIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"sync","seq":1,"head":7})").message(),
            "sync.head: must be a hex string, got 7");
}

TEST(TunnelMessages, HashOfWrongLengthIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"sync","seq":1,"head":")" + std::string(63, 'a') + R"("})").message(),
            "sync.head: must be 64 lowercase hex digits, got 63 characters");
  EXPECT_EQ(decode_status(R"({"type":"sync","seq":1,"head":")" + std::string(65, 'a') + R"("})").message(),
            "sync.head: must be 64 lowercase hex digits, got 65 characters");
}

TEST(TunnelMessages, EmptyChainSyncNeedsAZeroHead) {
  EXPECT_TRUE(decode_status(R"({"type":"sync","seq":0,"head":")" + std::string(64, '0') + R"("})").ok());
  EXPECT_EQ(decode_status(R"({"type":"sync","seq":0,"head":")" + std::string(63, '0') + R"(1"})").message(),
            "sync.head: must be all zeros when seq is 0");
}

std::string ack_json(const std::string& result) {
  return R"({"type":"ack","seq":1,"hash":")" + std::string(64, 'a') + R"(","result":")" + result +
         R"(","message":""})";
}

TEST(TunnelMessages, AckResultIsOkOrDispute) {
  EXPECT_TRUE(decode_status(ack_json("ok")).ok());
  EXPECT_TRUE(decode_status(ack_json("dispute")).ok());
  EXPECT_EQ(decode_status(ack_json("maybe")).message(),
            "ack.result: must be \"ok\" or \"dispute\", got \"maybe\"");
  EXPECT_EQ(decode_status(ack_json("OK")).message(), "ack.result: must be [a-z0-9_], bad byte 0x4f at 0");
}

TEST(TunnelMessages, ClaimRejectedAcceptsAnyWellFormedCode) {
  EXPECT_TRUE(decode_status(R"({"type":"claim_rejected","request_id":"r","code":"something_new","message":""})").ok());
  EXPECT_EQ(decode_status(R"({"type":"claim_rejected","request_id":"r","code":"Expired","message":""})").message(),
            "claim_rejected.code: must be [a-z0-9_], bad byte 0x45 at 0");
}

TEST(TunnelMessages, ClaimEstimatedMustBeABoolean) {
  EXPECT_EQ(decode_status(R"({"type":"claim","request_id":"r","model":"m","input":1,"cached":0,)"
                          R"("output":1,"estimated":0})")
                .message(),
            "claim.estimated: must be true or false, got 0");
}

TEST(TunnelMessages, RequestIdWithSpaceIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"claim","request_id":"a b","model":"m","input":1,"cached":0,)"
                          R"("output":1,"estimated":false})")
                .message(),
            "claim.request_id: must be visible ASCII, bad byte 0x20 at 1");
}

TEST(TunnelMessages, PriceRowMustHaveFourElements) {
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[["m",1,2]]})").message(),
            "prices.models[0]: must be a [model, input, cached_input, output] array, got an array");
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[["m",1,2,3,4]]})").message(),
            "prices.models[0]: must be a [model, input, cached_input, output] array, got an array");
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[{"m":1}]})").message(),
            "prices.models[0]: must be a [model, input, cached_input, output] array, got an object");
}

TEST(TunnelMessages, PriceRowElementsAreTyped) {
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[[1,1,2,3]]})").message(),
            "prices.models[0][0]: must be a string, got 1");
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[["m","1",2,3]]})").message(),
            "prices.models[0][1]: must be an integer 0..1000000000000, got a string");
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[["m",1,2.5,3]]})").message(),
            "prices.models[0][2]: must be an integer 0..1000000000000, got 2.5");
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[["m",1,2,-3]]})").message(),
            "prices.models[0][3]: must be an integer 0..1000000000000, got -3");
}

TEST(TunnelMessages, DuplicatePriceModelIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":[["*",1,1,1],["m",1,1,1],["*",2,2,2]]})").message(),
            "prices.models: duplicate model \"*\"");
}

TEST(TunnelMessages, PricesModelsAsObjectIsRejected) {
  EXPECT_EQ(decode_status(R"({"type":"prices","version":1,"models":{}})").message(),
            "prices.models: must be an array, got an object");
}

TEST(TunnelMessages, EmptyPriceTableIsAccepted) {
  Result<Message> m = decode(R"({"type":"prices","version":1,"models":[]})", Phase::session);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_TRUE(std::get<Prices>(*m).models.empty());
}

TEST(TunnelMessages, CheckpointSignatureIsBase64Of64Bytes) {
  const std::string head = std::string(64, 'a');
  const std::string sig63 = std::string(84, 'M');  // 84 characters: 63 bytes
  EXPECT_EQ(decode_status(R"({"type":"checkpoint","seq":1,"head":")" + head +
                          R"(","total_cost":0,"total_credit":0,"time_ms":0,"sig":")" + sig63 + R"("})")
                .message(),
            "checkpoint.sig: must be the base64 of 64 bytes (88 characters), got 84 characters");
}

TEST(TunnelMessages, CheckpointCreditOverCostIsRejected) {
  const std::string json = R"({"type":"checkpoint","seq":1,"head":")" + std::string(64, 'a') +
                           R"(","total_cost":5,"total_credit":6,"time_ms":0,"sig":")" +
                           std::string(86, 'A') + R"(=="})";
  EXPECT_EQ(decode_status(json).message(), "checkpoint.total_credit: must be at most total_cost 5, got 6");
}

// The top-level members of a compact JSON object, as [begin, end) spans of
// `"name":value` (strings are skipped whole, nesting is tracked).
struct Member {
  std::string name;
  size_t begin;
  size_t end;
};
std::vector<Member> members(const std::string& json) {
  std::vector<Member> out;
  int depth = 0;
  bool in_string = false;
  size_t begin = 1;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if ((c == ',' && depth == 1) || (c == '}' && depth == 1)) {
      const size_t q = json.find('"', begin + 1);
      out.push_back({json.substr(begin + 1, q - begin - 1), begin, i});
      begin = i + 1;
      if (c == '}') --depth;
    } else if (c == '}' || c == ']') --depth;
  }
  return out;
}

TEST(TunnelMessages, EveryFieldOfTheNewMessagesIsRequired) {
  for (const auto& ex : test::examples()) {
    const Type t = type_of(ex.message);
    if (static_cast<size_t>(t) < static_cast<size_t>(Type::prices) && t != Type::call &&
        t != Type::welcome) {
      continue;
    }
    const std::vector<Member> fields = members(ex.json);
    ASSERT_GE(fields.size(), 2u) << ex.json;
    EXPECT_EQ(fields[0].name, "type");
    for (size_t k = 1; k < fields.size(); ++k) {
      // Drop the member and the comma before it.
      const std::string without =
          ex.json.substr(0, fields[k].begin - 1) + ex.json.substr(fields[k].end);
      EXPECT_EQ(decode_status(without, ex.phase).message(),
                std::string(type_name(t)) + "." + fields[k].name + ": missing")
          << without;
    }
  }
}

TEST(TunnelMessages, EveryFieldOfTheNewMessagesRejectsADuplicate) {
  for (const auto& ex : test::examples()) {
    const Type t = type_of(ex.message);
    if (static_cast<size_t>(t) < static_cast<size_t>(Type::prices)) continue;
    const std::vector<Member> fields = members(ex.json);
    for (size_t k = 1; k < fields.size(); ++k) {
      const std::string twice = ex.json.substr(0, ex.json.size() - 1) + "," +
                                ex.json.substr(fields[k].begin, fields[k].end - fields[k].begin) +
                                "}";
      EXPECT_EQ(decode_status(twice, ex.phase).message(),
                std::string(type_name(t)) + ": duplicate field \"" + fields[k].name + "\"")
          << twice;
    }
    const std::string extra = ex.json.substr(0, ex.json.size() - 1) + R"(,"extra":1})";
    EXPECT_EQ(decode_status(extra, ex.phase).message(),
              std::string(type_name(t)) + ": unknown field \"extra\"");
  }
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
