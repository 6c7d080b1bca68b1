#include "tests/unit/ledger/examples.h"


namespace tg::ledger::test {

crypto::KeyPair key_from_seed(int first) {
  std::string seed;
  for (int i = 0; i < 32; ++i) seed.push_back(static_cast<char>(first + i));
  return crypto::KeyPair::from_seed(seed).value();
}

crypto::KeyPair agent_key() { return key_from_seed(0x00); }
crypto::KeyPair hub_key() { return key_from_seed(0x20); }

std::vector<Entry> chain() {
  const crypto::PublicKey agent = agent_key().public_key();
  Entry e1;
  e1.agent = agent;
  e1.seq = 1;
  e1.request_id = "req-0001";
  e1.model = "gpt-4o-mini";
  e1.input = 1200;
  e1.cached = 200;
  e1.output = 350;
  e1.estimated = false;
  e1.price_version = 3;
  e1.cost = 390;
  e1.tier_ppm = 800000;
  e1.credit = 312;
  e1.time_ms = 1717171717000;

  Entry e2;
  e2.agent = agent;
  e2.seq = 2;
  e2.request_id = "req-0002";
  e2.model = "claude-3-haiku";
  e2.input = 5000;
  e2.cached = 0;
  e2.output = 1024;
  e2.estimated = true;
  e2.price_version = 3;
  e2.cost = 2530;
  e2.tier_ppm = 800000;
  e2.credit = 2024;
  e2.time_ms = 1717171718500;
  e2.prev = hash(e1);

  Entry e3;
  e3.agent = agent;
  e3.seq = 3;
  e3.request_id = "r\"3\\";
  e3.model = "deepseek-chat";
  e3.price_version = 4;
  e3.tier_ppm = 800000;
  e3.time_ms = 1717171720000;
  e3.prev = hash(e2);
  return {e1, e2, e3};
}

Checkpoint checkpoint() {
  const std::vector<Entry> c = chain();
  Checkpoint cp;
  cp.agent = agent_key().public_key();
  cp.seq = 3;
  cp.head = hash(c[2]);
  cp.total_cost = 390 + 2530 + 0;
  cp.total_credit = 312 + 2024 + 0;
  cp.time_ms = 1717171800000;
  return cp;
}

Entry simple() {
  Entry e;
  e.agent = agent_key().public_key();
  e.seq = 1;
  e.request_id = "r1";
  e.model = "m";
  e.input = 10;
  e.cached = 2;
  e.output = 5;
  e.price_version = 1;
  e.cost = 100;
  e.tier_ppm = 500000;
  e.credit = 50;
  e.time_ms = 1700000000000;
  return e;
}

}  // namespace tg::ledger::test
