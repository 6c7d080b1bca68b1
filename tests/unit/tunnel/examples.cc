#include "tests/unit/tunnel/examples.h"

#include <cstring>

#include "shared/crypto/hash.h"

namespace tg::tunnel::test {

namespace {

template <size_t N>
std::array<uint8_t, N> from_hex(const char* hex) {
  std::array<uint8_t, N> out{};
  const std::string raw = crypto::hex_decode(hex).value();
  std::memcpy(out.data(), raw.data(), N);
  return out;
}

}  // namespace

std::vector<Example> examples() {
  std::vector<Example> out;

  Challenge challenge;
  challenge.nonce.fill(0xa5);
  out.push_back({R"({"type":"challenge","v":1,"nonce":"paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU="})",
                 challenge, Phase::pre_auth});

  Auth auth;
  auth.pubkey = from_hex<32>("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
  auth.sig = from_hex<64>(
      "5496eb5632c5955c5563d98c3781739f44d48af3fe735a21a83a6d9652896ad0"
      "ff7421b1bc3a5743f9ad0d7f8390e39422f27474e041b58178116d57143cb807");
  auth.agent_version = "0.1.0";
  auth.platform = "linux x86_64";
  out.push_back({R"({"type":"auth","pubkey":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",)"
                 R"("sig":"VJbrVjLFlVxVY9mMN4Fzn0TUivP+c1ohqDptllKJatD/dCGxvDpXQ/mtDX+DkOOUIvJ0dOBBtYF4EW1XFDy4Bw==",)"
                 R"("agent_version":"0.1.0","platform":"linux x86_64"})",
                 auth, Phase::pre_auth});

  Auth enroll = auth;
  enroll.enroll_token = "tge_3kq9Zx7V";
  out.push_back({R"({"type":"auth","pubkey":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",)"
                 R"("sig":"VJbrVjLFlVxVY9mMN4Fzn0TUivP+c1ohqDptllKJatD/dCGxvDpXQ/mtDX+DkOOUIvJ0dOBBtYF4EW1XFDy4Bw==",)"
                 R"("agent_version":"0.1.0","platform":"linux x86_64","enroll_token":"tge_3kq9Zx7V"})",
                 enroll, Phase::pre_auth});

  Welcome welcome;
  welcome.owner = "alice";
  welcome.heartbeat_ms = 15000;
  welcome.dead_after = 3;
  welcome.max_streams = 64;
  welcome.window = 262144;
  out.push_back({R"({"type":"welcome","owner":"alice","heartbeat_ms":15000,"dead_after":3,)"
                 R"("max_streams":64,"window":262144})",
                 welcome, Phase::pre_auth});

  Refused refused;
  refused.code = "unknown_key";
  refused.message = "this key is not approved on this hub";
  out.push_back({R"({"type":"refused","code":"unknown_key","message":"this key is not approved on this hub"})",
                 refused, Phase::pre_auth});

  Register reg;
  reg.models = {"gpt-4o-mini", "claude-3-haiku"};
  reg.max_parallel = 4;
  out.push_back({R"({"type":"register","models":["gpt-4o-mini","claude-3-haiku"],"max_parallel":4})",
                 reg, Phase::session});

  Registered registered;
  registered.models = 2;
  out.push_back({R"({"type":"registered","models":2})", registered, Phase::session});

  Call call;
  call.id = 7;
  call.model = "gpt-4o-mini";
  call.method = "POST";
  call.path = "/v1/chat/completions";
  call.headers = {{"content-type", "application/json"}};
  call.stream = true;
  call.deadline_ms = 600000;
  out.push_back({R"({"type":"call","id":7,"model":"gpt-4o-mini","method":"POST",)"
                 R"("path":"/v1/chat/completions","headers":[["content-type","application/json"]],)"
                 R"("stream":true,"deadline_ms":600000})",
                 call, Phase::session});

  Response response;
  response.id = 7;
  response.status = 200;
  response.headers = {{"content-type", "text/event-stream"}};
  out.push_back({R"({"type":"response","id":7,"status":200,"headers":[["content-type","text/event-stream"]]})",
                 response, Phase::session});

  Finish finish;
  finish.id = 7;
  finish.upstream_status = 200;
  finish.usage = R"({"prompt_tokens":12,"completion_tokens":34,"total_tokens":46})";
  out.push_back({R"({"type":"finish","id":7,"upstream_status":200,)"
                 R"("usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}})",
                 finish, Phase::session});

  Error err;
  err.id = 7;
  err.code = "upstream_timeout";
  err.message = "no answer from the vendor within the deadline";
  out.push_back({R"({"type":"error","id":7,"code":"upstream_timeout",)"
                 R"("message":"no answer from the vendor within the deadline"})",
                 err, Phase::session});

  Abort abort;
  abort.id = 7;
  abort.reason = "client_gone";
  out.push_back({R"({"type":"abort","id":7,"reason":"client_gone"})", abort, Phase::session});

  Credit credit;
  credit.id = 7;
  credit.bytes = 65536;
  out.push_back({R"({"type":"credit","id":7,"bytes":65536})", credit, Phase::session});

  Goaway goaway;
  goaway.reason = "restart";
  goaway.reconnect_after_ms = 1234;
  out.push_back({R"({"type":"goaway","reason":"restart","reconnect_after_ms":1234})", goaway,
                 Phase::session});

  return out;
}

}  // namespace tg::tunnel::test
