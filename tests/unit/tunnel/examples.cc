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
  welcome.ledger_key = from_hex<32>(kLedgerKeyHex);
  welcome.tier_ppm = 800000;
  out.push_back({R"({"type":"welcome","owner":"alice","heartbeat_ms":15000,"dead_after":3,)"
                 R"("max_streams":64,"window":262144,)"
                 R"("ledger_key":"Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=","tier_ppm":800000})",
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
  call.request_id = "9f86d081884c7d659a2feaa0c55ad015";
  call.model = "gpt-4o-mini";
  call.method = "POST";
  call.path = "/v1/chat/completions";
  call.headers = {{"content-type", "application/json"}};
  call.stream = true;
  call.deadline_ms = 600000;
  out.push_back({R"({"type":"call","id":7,"request_id":"9f86d081884c7d659a2feaa0c55ad015",)"
                 R"("model":"gpt-4o-mini","method":"POST",)"
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
  out.push_back({R"({"type":"finish","id":7,"upstream_status":200})", finish, Phase::session});

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

  Prices prices;
  prices.version = 3;
  prices.models = {{"gpt-4o-mini", 150000, 75000, 600000}, {"*", 1000000, 500000, 4000000}};
  out.push_back({R"({"type":"prices","version":3,"models":[["gpt-4o-mini",150000,75000,600000],)"
                 R"(["*",1000000,500000,4000000]]})",
                 prices, Phase::session});

  Claim claim;
  claim.request_id = "9f86d081884c7d659a2feaa0c55ad015";
  claim.model = "gpt-4o-mini";
  claim.input = 100;
  claim.cached = 0;
  claim.output = 50;
  claim.estimated = false;
  out.push_back({R"({"type":"claim","request_id":"9f86d081884c7d659a2feaa0c55ad015",)"
                 R"("model":"gpt-4o-mini","input":100,"cached":0,"output":50,"estimated":false})",
                 claim, Phase::session});

  ClaimRejected rejected;
  rejected.request_id = "9f86d081884c7d659a2feaa0c55ad015";
  rejected.code = "unknown_request";
  rejected.message = "no attempt with this request id";
  out.push_back({R"({"type":"claim_rejected","request_id":"9f86d081884c7d659a2feaa0c55ad015",)"
                 R"("code":"unknown_request","message":"no attempt with this request id"})",
                 rejected, Phase::session});

  Settle settle;
  settle.seq = 42;
  settle.request_id = "9f86d081884c7d659a2feaa0c55ad015";
  settle.model = "gpt-4o-mini";
  settle.input = 100;
  settle.cached = 0;
  settle.output = 50;
  settle.estimated = false;
  settle.price_version = 3;
  settle.cost = 45;
  settle.tier_ppm = 800000;
  settle.credit = 36;
  settle.time_ms = 1767225600000;
  settle.prev.fill(0x11);
  settle.hash.fill(0x22);
  out.push_back({R"({"type":"settle","seq":42,"request_id":"9f86d081884c7d659a2feaa0c55ad015",)"
                 R"("model":"gpt-4o-mini","input":100,"cached":0,"output":50,"estimated":false,)"
                 R"("price_version":3,"cost":45,"tier_ppm":800000,"credit":36,"time_ms":1767225600000,)"
                 R"("prev":"1111111111111111111111111111111111111111111111111111111111111111",)"
                 R"("hash":"2222222222222222222222222222222222222222222222222222222222222222"})",
                 settle, Phase::session});

  Ack ack;
  ack.seq = 42;
  ack.hash.fill(0x22);
  ack.result = "ok";
  out.push_back({R"({"type":"ack","seq":42,)"
                 R"("hash":"2222222222222222222222222222222222222222222222222222222222222222",)"
                 R"("result":"ok","message":""})",
                 ack, Phase::session});

  Sync sync;
  sync.seq = 41;
  sync.head.fill(0x11);
  out.push_back({R"({"type":"sync","seq":41,)"
                 R"("head":"1111111111111111111111111111111111111111111111111111111111111111"})",
                 sync, Phase::session});

  Checkpoint checkpoint;
  checkpoint.seq = 42;
  checkpoint.head.fill(0x22);
  checkpoint.total_cost = 9000000000000000;
  checkpoint.total_credit = 7200000000000000;
  checkpoint.time_ms = 1767225600000;
  checkpoint.sig.fill(0x33);
  out.push_back({R"({"type":"checkpoint","seq":42,)"
                 R"("head":"2222222222222222222222222222222222222222222222222222222222222222",)"
                 R"("total_cost":9000000000000000,"total_credit":7200000000000000,)"
                 R"("time_ms":1767225600000,)"
                 R"("sig":"MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMw=="})",
                 checkpoint, Phase::session});

  Capacity capacity;
  capacity.models = {"gpt-4o-mini", "gpt-4o"};
  capacity.ready_in_ms = 2000;
  capacity.rpm = 30;
  out.push_back({R"({"type":"capacity","models":["gpt-4o-mini","gpt-4o"],"ready_in_ms":2000,"rpm":30})",
                 capacity, Phase::session});

  return out;
}

}  // namespace tg::tunnel::test
