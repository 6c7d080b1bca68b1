// Pure pieces of the user API: the request probe and the error formats.
#include <gtest/gtest.h>

#include <string>

#include "hub/api_errors.h"
#include "hub/request_probe.h"

namespace tg::hub {
namespace {

TEST(RequestProbe, FindsModelAndStream) {
  auto p = probe_request(R"( {"messages":[{"model":"inner"}],"model":"gpt-4o","stream":true} )");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_TRUE(p->has_model);
  EXPECT_EQ(p->model, "gpt-4o");
  EXPECT_TRUE(p->stream);
}

TEST(RequestProbe, StreamDefaultsToFalseAndAcceptsNull) {
  auto p = probe_request(R"({"model":"m","stream":null,"n":-1.5e3,"x":[true,false,null,"\u00e9\"\\"]})");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_FALSE(p->stream);
}

TEST(RequestProbe, MissingModelIsReportedNotAnError) {
  auto p = probe_request(R"({"max_tokens":1})");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_model);
}

TEST(RequestProbe, MalformedJsonIsAParseError) {
  for (const char* bad : {"", "[]", "{", R"({"model":"m",})", R"({"model":"m"} x)", R"({"a":01})",
                          R"({"a":tru})", "{\"a\":\"\x01\"}", R"({"a":"\q"})", R"({"a" 1})"}) {
    auto p = probe_request(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), Errc::parse) << bad;
  }
}

TEST(RequestProbe, WrongTypesAreInvalidArguments) {
  EXPECT_EQ(probe_request(R"({"model":5})").status().code(), Errc::invalid_argument);
  EXPECT_EQ(probe_request(R"({"model":"m","stream":"yes"})").status().code(), Errc::invalid_argument);
  EXPECT_EQ(probe_request("{\"model\":\"" + std::string(200, 'a') + "\"}").status().code(),
            Errc::invalid_argument);
}

TEST(RequestProbe, DeepNestingIsRefused) {
  std::string deep = "{\"a\":" + std::string(1000, '[') + std::string(1000, ']') + "}";
  EXPECT_EQ(probe_request(deep).status().code(), Errc::parse);
}

TEST(ApiErrors, OpenAIFormat) {
  EXPECT_EQ(error_body(Dialect::openai, 404, "no \"x\"", "model_not_found"),
            R"({"error":{"message":"no \"x\"","type":"invalid_request_error","param":null,"code":"model_not_found"}})");
  EXPECT_EQ(error_body(Dialect::openai, 502, "m", ""),
            R"({"error":{"message":"m","type":"server_error","param":null,"code":null}})");
}

TEST(ApiErrors, AnthropicFormat) {
  EXPECT_EQ(error_body(Dialect::anthropic, 401, "bad key", "invalid_api_key"),
            R"({"type":"error","error":{"type":"authentication_error","message":"bad key"}})");
  EXPECT_EQ(sse_error_event(Dialect::anthropic, 503, "busy", ""),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n");
  EXPECT_EQ(sse_error_event(Dialect::openai, 502, "gone", "upstream_error"),
            "data: {\"error\":{\"message\":\"gone\",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_error\"}}\n\n");
}

TEST(ApiErrors, DialectByPath) {
  EXPECT_EQ(dialect_for_path("/v1/messages"), Dialect::anthropic);
  EXPECT_EQ(dialect_for_path("/v1/messages/count_tokens"), Dialect::anthropic);
  EXPECT_EQ(dialect_for_path("/v1/messagesx"), Dialect::openai);
  EXPECT_EQ(dialect_for_path("/v1/chat/completions"), Dialect::openai);
}

TEST(ApiErrors, StreamErrorStatuses) {
  EXPECT_EQ(status_for_stream_error("unknown_model"), 404);
  EXPECT_EQ(status_for_stream_error("bad_request"), 400);
  EXPECT_EQ(status_for_stream_error("busy"), 503);
  EXPECT_EQ(status_for_stream_error("shutting_down"), 503);
  EXPECT_EQ(status_for_stream_error("upstream_unreachable"), 502);
  EXPECT_EQ(status_for_stream_error("upstream_timeout"), 504);
  EXPECT_EQ(status_for_stream_error("deadline_exceeded"), 504);
  EXPECT_EQ(status_for_stream_error("internal"), 502);
  EXPECT_EQ(status_for_stream_error("something_new"), 502);
}

}  // namespace
}  // namespace tg::hub
