#include "hub/ledger_commands.h"

#include <cjson/cJSON.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "hub/agent_store.h"
#include "hub/command_util.h"
#include "hub/config.h"
#include "hub/ledger_sqlite.h"
#include "shared/billing/money.h"
#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"
#include "shared/ledger/export.h"

namespace tg::hub {
namespace {

constexpr size_t kPage = 10000;
constexpr size_t kMaxImportBytes = 1024ull * 1024 * 1024;

template <size_t N>
std::string b64(const std::array<uint8_t, N>& a) {
  return crypto::base64_encode(std::string_view(reinterpret_cast<const char*>(a.data()), N));
}

Result<std::unique_ptr<SqliteLedgerStore>> open_ledger(const cli::Parsed& args) {
  auto where = database_path(args);
  if (!where.ok()) return where.status();
  auto store = SqliteLedgerStore::open(*where, false);
  if (!store.ok() && store.status().code() == Errc::not_found) {
    return error(Errc::not_found, "database '" + *where +
                                      "' does not exist (--db or --config names another file)");
  }
  return store;
}

// The public half of the checkpoint key: from --config's ledger_key, or the
// default key file next to the database.
Result<crypto::PublicKey> hub_ledger_key(const cli::Parsed& args) {
  std::string path = "hub.key";
  if (args.has("config")) {
    LoadResult loaded = load(args.get("config"));
    if (!loaded.config) return error(Errc::invalid_argument, "the --config file has errors");
    path = loaded.config->billing.ledger_key;
  }
  auto key = crypto::KeyPair::load(path);
  if (!key.ok()) return error(key.status().code(), "ledger key " + path + ": " + key.status().message());
  return key->public_key();
}

// Price versions, loaded once each.
class PriceCache {
 public:
  explicit PriceCache(LedgerStore* store) : store_(store) {}
  Result<const billing::PriceTable*> get(uint64_t version) {
    auto it = tables_.find(version);
    if (it != tables_.end()) return &it->second;
    auto t = store_->prices(version);
    if (!t.ok()) return t.status();
    if (!*t) return error(Errc::not_found, "price version " + std::to_string(version) + " is not recorded");
    return &tables_.emplace(version, std::move(**t)).first->second;
  }

 private:
  LedgerStore* store_;
  std::map<uint64_t, billing::PriceTable> tables_;
};

// Cost and credit of `e` recomputed from its price version; "" when right.
std::string recompute(const ledger::Entry& e, PriceCache& prices) {
  auto table = prices.get(e.price_version);
  if (!table.ok()) return table.status().message();
  const billing::ModelPrice* p = (*table)->find(e.model);
  if (!p) return "model " + e.model + " has no price in version " + std::to_string(e.price_version);
  billing::Usage u;
  u.input = e.input;
  u.cached = e.cached;
  u.output = e.output;
  u.estimated = e.estimated;
  auto cost = billing::cost(u, *p);
  if (!cost.ok()) return cost.status().message();
  if (*cost != e.cost) return "cost " + std::to_string(e.cost) + " should be " + std::to_string(*cost);
  if (billing::credit(e.cost, e.tier_ppm) != e.credit) {
    return "credit " + std::to_string(e.credit) + " should be " +
           std::to_string(billing::credit(e.cost, e.tier_ppm));
  }
  return "";
}

struct ChainReport {
  std::string agent;
  uint64_t entries = 0;
  uint64_t estimated = 0;
  uint64_t head_seq = 0;
  ledger::Hash head{};
  int64_t cost = 0;
  int64_t credit = 0;
  uint64_t checkpoints = 0;
  uint64_t last_checkpoint = 0;
  std::vector<std::string> problems;
};

ChainReport verify_chain(LedgerStore& store, const ChainInfo& info, PriceCache& prices,
                         const std::optional<crypto::PublicKey>& hub_key) {
  ChainReport r;
  r.agent = info.agent;
  auto key = crypto::parse_public_key(info.agent);
  if (!key.ok()) {
    r.problems.push_back("bad agent key");
    return r;
  }
  auto cps = store.checkpoints(info.agent);
  std::map<uint64_t, StoredCheckpoint> by_seq;
  if (cps.ok()) {
    for (const auto& c : *cps) by_seq[c.checkpoint.seq] = c;
  } else {
    r.problems.push_back(cps.status().message());
  }
  ledger::ChainWalker walker(*key);
  uint64_t after = 0;
  for (;;) {
    auto page = store.entries(info.agent, after, kPage);
    if (!page.ok()) {
      r.problems.push_back(page.status().message());
      break;
    }
    for (const ledger::Entry& e : *page) {
      Status s = walker.add(e);
      if (!s.ok()) {
        r.problems.push_back(s.message());
        after = UINT64_MAX;
        break;
      }
      std::string bad = recompute(e, prices);
      if (!bad.empty()) r.problems.push_back("seq " + std::to_string(e.seq) + ": " + bad);
      auto cp = by_seq.find(e.seq);
      if (cp != by_seq.end()) {
        const ledger::Checkpoint& c = cp->second.checkpoint;
        ++r.checkpoints;
        r.last_checkpoint = c.seq;
        if (c.head != walker.head() || c.total_cost != walker.total_cost() ||
            c.total_credit != walker.total_credit()) {
          r.problems.push_back("checkpoint " + std::to_string(c.seq) +
                               " does not match the chain (head or totals)");
        }
        if (hub_key && !ledger::verify(*hub_key, c, cp->second.sig)) {
          r.problems.push_back("checkpoint " + std::to_string(c.seq) +
                               " is not signed by this hub's ledger key");
        }
        by_seq.erase(cp);
      }
      after = e.seq;
    }
    if (after == UINT64_MAX || page->size() < kPage) break;
  }
  for (const auto& [seq, c] : by_seq) {
    r.problems.push_back("checkpoint " + std::to_string(seq) + " names an entry the chain lacks");
  }
  r.entries = walker.count();
  r.estimated = walker.estimated_count();
  r.head_seq = walker.seq();
  r.head = walker.head();
  r.cost = walker.total_cost();
  r.credit = walker.total_credit();
  if (r.problems.empty() && (info.seq != walker.seq() || info.head != walker.head() ||
                             info.total_cost != walker.total_cost() ||
                             info.total_credit != walker.total_credit())) {
    r.problems.push_back("the recorded chain head or totals differ from the entries");
  }
  return r;
}

int ledger_verify(const cli::Parsed& args) {
  const std::string what = "ledger verify";
  if (!only_options(args, {"db", "config", "json"}, what)) return 2;
  if (args.positional.size() != 1) return usage_error(what, "takes no argument");
  auto store = open_ledger(args);
  if (!store.ok()) return fail(what, store.status());
  std::optional<crypto::PublicKey> hub_key;
  std::string key_note;
  auto k = hub_ledger_key(args);
  if (k.ok()) {
    hub_key = *k;
  } else {
    key_note = "checkpoint signatures not checked: " + k.status().message();
  }
  // One read transaction: a consistent snapshot while the hub settles.
  Status snap = (*store)->db().exec("BEGIN");
  if (!snap.ok()) return fail(what, snap);
  auto chains = (*store)->chains();
  if (!chains.ok()) return fail(what, chains.status());
  PriceCache prices(store->get());
  std::vector<ChainReport> reports;
  bool bad = false;
  int64_t settled_cost = 0;
  for (const ChainInfo& c : *chains) {
    reports.push_back(verify_chain(**store, c, prices, hub_key));
    bad = bad || !reports.back().problems.empty();
    settled_cost += reports.back().cost;
  }
  // Users: every balance is credits minus settled costs.
  auto balances = (*store)->balances();
  if (!balances.ok()) return fail(what, balances.status());
  int64_t credited = 0, balance = 0, spent = 0;
  std::vector<std::string> user_problems;
  for (const UserBalance& b : *balances) {
    credited += b.credited;
    balance += b.balance;
    spent += b.spent;
    if (b.balance != b.credited - b.spent) {
      user_problems.push_back("user " + b.name + ": balance " + billing::format_amount(b.balance) +
                              " != credited " + billing::format_amount(b.credited) + " - spent " +
                              billing::format_amount(b.spent));
    }
  }
  bad = bad || !user_problems.empty();

  if (args.has("json")) {
    std::unique_ptr<cJSON, decltype(&cJSON_Delete)> root(cJSON_CreateObject(), cJSON_Delete);
    cJSON_AddBoolToObject(root.get(), "ok", !bad);
    cJSON* arr = cJSON_AddArrayToObject(root.get(), "chains");
    for (const ChainReport& r : reports) {
      cJSON* o = cJSON_CreateObject();
      cJSON_AddItemToArray(arr, o);
      cJSON_AddStringToObject(o, "agent", r.agent.c_str());
      cJSON_AddNumberToObject(o, "entries", static_cast<double>(r.entries));
      cJSON_AddNumberToObject(o, "estimated", static_cast<double>(r.estimated));
      cJSON_AddNumberToObject(o, "head_seq", static_cast<double>(r.head_seq));
      cJSON_AddStringToObject(o, "head", ledger::to_hex(r.head).c_str());
      cJSON_AddNumberToObject(o, "total_cost", static_cast<double>(r.cost));
      cJSON_AddNumberToObject(o, "total_credit", static_cast<double>(r.credit));
      cJSON_AddNumberToObject(o, "checkpoints", static_cast<double>(r.checkpoints));
      cJSON* probs = cJSON_AddArrayToObject(o, "problems");
      for (const auto& p : r.problems) cJSON_AddItemToArray(probs, cJSON_CreateString(p.c_str()));
    }
    cJSON* users = cJSON_AddObjectToObject(root.get(), "users");
    cJSON_AddNumberToObject(users, "credited", static_cast<double>(credited));
    cJSON_AddNumberToObject(users, "balances", static_cast<double>(balance));
    cJSON_AddNumberToObject(users, "spent", static_cast<double>(spent));
    cJSON_AddNumberToObject(users, "settled_cost", static_cast<double>(settled_cost));
    cJSON* probs = cJSON_AddArrayToObject(users, "problems");
    for (const auto& p : user_problems) cJSON_AddItemToArray(probs, cJSON_CreateString(p.c_str()));
    if (!key_note.empty()) cJSON_AddStringToObject(root.get(), "note", key_note.c_str());
    char* text = cJSON_PrintUnformatted(root.get());
    if (text) {
      std::printf("%s\n", text);
      cJSON_free(text);
    }
    return bad ? 1 : 0;
  }
  for (const ChainReport& r : reports) {
    std::printf("agent %s\n  entries %llu (%llu estimated), head #%llu %s\n  cost %s, credit %s, "
                "%llu checkpoints (last #%llu)\n",
                r.agent.c_str(), static_cast<unsigned long long>(r.entries),
                static_cast<unsigned long long>(r.estimated),
                static_cast<unsigned long long>(r.head_seq), ledger::to_hex(r.head).c_str(),
                billing::format_amount(r.cost).c_str(), billing::format_amount(r.credit).c_str(),
                static_cast<unsigned long long>(r.checkpoints),
                static_cast<unsigned long long>(r.last_checkpoint));
    for (const auto& p : r.problems) std::printf("  PROBLEM: %s\n", p.c_str());
  }
  std::printf("users: credited %s, balances %s, spent %s (all chains: %s)\n",
              billing::format_amount(credited).c_str(), billing::format_amount(balance).c_str(),
              billing::format_amount(spent).c_str(), billing::format_amount(settled_cost).c_str());
  for (const auto& p : user_problems) std::printf("  PROBLEM: %s\n", p.c_str());
  if (!key_note.empty()) std::printf("note: %s\n", key_note.c_str());
  std::printf("ledger verify: %s (%zu chains)\n", bad ? "FAILED" : "ok", reports.size());
  return bad ? 1 : 0;
}

int ledger_import(const cli::Parsed& args) {
  const std::string what = "ledger import";
  if (!only_options(args, {"db", "config", "unsigned"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes FILE (an agent's 'ledger export')");
  std::ifstream in(args.positional[1], std::ios::binary);
  if (!in) return fail(what, error(Errc::not_found, "cannot read " + args.positional[1]));
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  if (text.size() > kMaxImportBytes) return fail(what, error(Errc::limit, "file is over 1 GiB"));
  auto file = ledger::parse_export(text);
  if (!file.ok()) return fail(what, file.status());
  if (file->entries.empty()) {
    std::printf("nothing to import: the file holds no entries\n");
    return 0;
  }
  auto store = open_ledger(args);
  if (!store.ok()) return fail(what, store.status());
  const std::string agent = b64(file->entries.front().agent);
  auto chain = (*store)->chain(agent);
  if (!chain.ok()) return fail(what, chain.status());

  // The part we hold must be identical; the rest must extend our head.
  ledger::ChainWalker walker(file->entries.front().agent);
  std::vector<const ledger::Entry*> missing;
  for (const ledger::Entry& e : file->entries) {
    Status s = walker.add(e);
    if (!s.ok()) return fail(what, s);
    if (e.seq <= chain->seq) {
      auto held = (*store)->entries(agent, e.seq - 1, 1);
      if (!held.ok()) return fail(what, held.status());
      if (held->empty() || ledger::hash(held->front()) != ledger::hash(e)) {
        return fail(what, error(Errc::protocol, "entry " + std::to_string(e.seq) +
                                                    " differs from the hub's: the chains diverged"));
      }
      continue;
    }
    missing.push_back(&e);
  }
  if (missing.empty()) {
    std::printf("the hub already holds all %zu entries of agent %s\n", file->entries.size(),
                agent.c_str());
    return 0;
  }
  // Restored entries need a checkpoint this hub signed at or after them.
  uint64_t covered = 0;
  auto key = hub_ledger_key(args);
  for (const ledger::SignedCheckpoint& c : file->checkpoints) {
    if (!key.ok()) break;
    if (c.checkpoint.agent != file->entries.front().agent) continue;
    if (!ledger::verify(*key, c.checkpoint, c.sig)) continue;
    if (c.checkpoint.seq > walker.seq() || c.checkpoint.seq < file->entries.front().seq) continue;
    // Its head must be the file's entry at that seq.
    const ledger::Entry& at =
        file->entries[static_cast<size_t>(c.checkpoint.seq - file->entries.front().seq)];
    if (at.seq != c.checkpoint.seq || ledger::hash(at) != c.checkpoint.head) continue;
    covered = std::max(covered, c.checkpoint.seq);
  }
  if (!args.has("unsigned") && missing.back()->seq > covered) {
    return fail(what, error(Errc::permission,
                            "entries " + std::to_string(std::max(covered, chain->seq) + 1) + ".." +
                                std::to_string(missing.back()->seq) +
                                " are not covered by a checkpoint this hub signed" +
                                (key.ok() ? "" : " (" + key.status().message() + ")") +
                                "; --unsigned restores them anyway"));
  }
  PriceCache prices(store->get());
  std::vector<SettleOrder> orders;
  uint64_t attributed = 0;
  for (const ledger::Entry* e : missing) {
    std::string bad = recompute(*e, prices);
    if (!bad.empty()) {
      return fail(what, error(Errc::protocol, "entry " + std::to_string(e->seq) + ": " + bad));
    }
    SettleOrder o;
    o.request_id = e->request_id;
    o.agent = agent;
    auto p = (*store)->pending(e->request_id);
    if (!p.ok()) return fail(what, p.status());
    if (*p && (*p)->agent == agent) {
      o.user_id = (*p)->user_id;
      ++attributed;
    }
    o.model = e->model;
    o.usage.input = e->input;
    o.usage.cached = e->cached;
    o.usage.output = e->output;
    o.usage.estimated = e->estimated;
    o.price_version = e->price_version;
    o.cost = e->cost;
    o.tier_ppm = e->tier_ppm;
    o.credit = e->credit;
    o.time_ms = e->time_ms;
    orders.push_back(std::move(o));
  }
  auto done = (*store)->settle(orders);
  if (!done.ok()) return fail(what, done.status());
  for (size_t i = 0; i < done->size(); ++i) {
    const Settled& s = (*done)[i];
    if (!s.created || s.hash != ledger::hash(*missing[i])) {
      return fail(what, error(Errc::internal,
                              "entry " + std::to_string(missing[i]->seq) +
                                  " was not restored identically (request " +
                                  missing[i]->request_id + " is settled elsewhere in the hub's ledger)"));
    }
  }
  for (const ledger::SignedCheckpoint& c : file->checkpoints) {
    if (key.ok() && c.checkpoint.agent == file->entries.front().agent &&
        ledger::verify(*key, c.checkpoint, c.sig)) {
      (void)(*store)->add_checkpoint(StoredCheckpoint{c.checkpoint, c.sig});
    }
  }
  std::printf("restored %zu entries (#%llu..#%llu) of agent %s; %llu debited to their users, "
              "%llu without a known user\n",
              missing.size(), static_cast<unsigned long long>(missing.front()->seq),
              static_cast<unsigned long long>(missing.back()->seq), agent.c_str(),
              static_cast<unsigned long long>(attributed),
              static_cast<unsigned long long>(missing.size() - attributed));
  return 0;
}

}  // namespace

cli::Command ledger_command() {
  return {"ledger",
          "the settlement ledger: 'verify [--json]' (walks every agent chain, checks hashes, "
          "costs, signed checkpoints and user balances; prints head hashes and totals), "
          "'import FILE [--unsigned]' (restores entries the hub lost from an agent's "
          "'tokengo-agent ledger export') (database: --db or --config)",
          {{"db", true}, {"config", true}, {"json", false}, {"unsigned", false}},
          1,
          2,
          "verify|import [FILE]"};
}

int run_ledger(const cli::Parsed& args) {
  const std::string sub = args.positional.empty() ? std::string() : args.positional[0];
  if (sub == "verify") return ledger_verify(args);
  if (sub == "import") return ledger_import(args);
  return usage_error("ledger", "unknown subcommand (want verify or import)");
}

}  // namespace tg::hub
