#include "agent/ledger_commands.h"

#include <cjson/cJSON.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "agent/config.h"
#include "agent/ledger_mirror.h"
#include "shared/billing/money.h"
#include "shared/cli/output.h"
#include "shared/crypto/hash.h"
#include "shared/ledger/chain.h"
#include "shared/ledger/export.h"

namespace tg::agent {
namespace {

constexpr size_t kPage = 10000;
constexpr size_t kDefaultShow = 20;

int fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "tokengo-agent: %s: %s\n", what.c_str(), s.message().c_str());
  return 1;
}

int usage_error(const std::string& what, const std::string& message) {
  std::fprintf(stderr, "tokengo-agent: %s: %s\nrun 'tokengo-agent --help' for usage\n",
               what.c_str(), message.c_str());
  return 2;
}

Result<std::string> ledger_path(const cli::Parsed& args) {
  if (args.has("ledger")) return args.get("ledger");
  LoadResult loaded = load(args.get("config", kDefaultConfigPath));
  if (!loaded.config) {
    std::string msg;
    for (const auto& d : loaded.errors) msg += (msg.empty() ? "" : "\n") + d.to_string();
    return error(Errc::invalid_argument, msg);
  }
  return loaded.config->ledger;
}

Result<std::unique_ptr<LedgerMirror>> open_mirror(const cli::Parsed& args) {
  auto path = ledger_path(args);
  if (!path.ok()) return path.status();
  auto m = LedgerMirror::open_existing(*path);
  if (!m.ok() && m.status().code() == Errc::not_found) {
    return error(Errc::not_found, "ledger '" + *path + "' does not exist or was never used "
                                                     "(the agent creates it on its first run)");
  }
  return m;
}

int ledger_verify(const cli::Parsed& args) {
  const std::string what = "ledger verify";
  auto m = open_mirror(args);
  if (!m.ok()) return fail(what, m.status());
  LedgerMirror& mirror = **m;
  // One read transaction: a consistent snapshot while the agent appends.
  Status snap = mirror.db().exec("BEGIN");
  if (!snap.ok()) return fail(what, snap);
  std::vector<std::string> problems;
  std::map<uint64_t, std::optional<billing::PriceTable>> prices;
  auto cps = mirror.checkpoints();
  if (!cps.ok()) return fail(what, cps.status());
  std::map<uint64_t, MirrorCheckpoint> by_seq;
  for (const auto& c : *cps) by_seq[c.checkpoint.seq] = c;
  ledger::ChainWalker walker(mirror.self());
  uint64_t agreed = 0, disputed = 0, unobserved = 0, checked_cps = 0, last_cp = 0;
  uint64_t after = 0;
  bool broken = false;
  while (!broken) {
    auto page = mirror.entries(after, kPage);
    if (!page.ok()) return fail(what, page.status());
    for (const StoredEntry& s : *page) {
      Status st = walker.add(s.entry);
      if (!st.ok()) {
        problems.push_back(st.message());
        broken = true;
        break;
      }
      if (ledger::hash(s.entry) != s.hash) {
        problems.push_back("seq " + std::to_string(s.entry.seq) + ": stored hash does not match the fields");
      }
      switch (s.status) {
        case EntryStatus::agreed: ++agreed; break;
        case EntryStatus::disputed: ++disputed; break;
        case EntryStatus::unobserved: ++unobserved; break;
      }
      auto& table = prices[s.entry.price_version];
      if (!table) {
        auto t = mirror.prices(s.entry.price_version);
        if (t.ok() && *t) table = std::move(**t);
      }
      if (s.status != EntryStatus::disputed) {
        billing::Usage u{s.entry.input, s.entry.cached, s.entry.output, s.entry.estimated};
        const billing::ModelPrice* p = table ? table->find(s.entry.model) : nullptr;
        auto cost = p ? billing::cost(u, *p) : Result<billing::Micros>(error(Errc::not_found, ""));
        if (!cost.ok() || *cost != s.entry.cost ||
            billing::credit(s.entry.cost, s.entry.tier_ppm) != s.entry.credit) {
          problems.push_back("seq " + std::to_string(s.entry.seq) +
                             ": cost or credit does not follow from the prices");
        }
      }
      auto cp = by_seq.find(s.entry.seq);
      if (cp != by_seq.end()) {
        const ledger::Checkpoint& c = cp->second.checkpoint;
        ++checked_cps;
        last_cp = c.seq;
        if (c.head != walker.head() || c.total_cost != walker.total_cost() ||
            c.total_credit != walker.total_credit()) {
          problems.push_back("checkpoint " + std::to_string(c.seq) + " does not match the chain");
        }
        if (!ledger::verify(cp->second.hub_key, c, cp->second.sig)) {
          problems.push_back("checkpoint " + std::to_string(c.seq) + " has a bad signature");
        }
        by_seq.erase(cp);
      }
      after = s.entry.seq;
    }
    if (page->size() < kPage) break;
  }
  for (const auto& [seq, c] : by_seq) {
    (void)c;
    if (seq <= walker.seq()) problems.push_back("checkpoint " + std::to_string(seq) + " names a missing entry");
  }
  auto head = mirror.head();
  if (!head.ok()) return fail(what, head.status());
  if (!broken && (head->seq != walker.seq() || head->head != walker.head() ||
                  head->total_cost != walker.total_cost() || head->total_credit != walker.total_credit())) {
    problems.push_back("the recorded head or totals differ from the entries");
  }
  auto outbox = mirror.outbox_count();
  auto disputes = mirror.disputes();
  auto rejected = mirror.rejected_claims();
  const bool ok = problems.empty();
  if (args.has("json")) {
    std::unique_ptr<cJSON, decltype(&cJSON_Delete)> o(cJSON_CreateObject(), cJSON_Delete);
    cJSON_AddBoolToObject(o.get(), "ok", ok);
    cJSON_AddStringToObject(o.get(), "agent",
                            crypto::base64_encode(std::string_view(
                                reinterpret_cast<const char*>(mirror.self().data()), 32)).c_str());
    cJSON_AddNumberToObject(o.get(), "entries", static_cast<double>(walker.count()));
    cJSON_AddNumberToObject(o.get(), "agreed", static_cast<double>(agreed));
    cJSON_AddNumberToObject(o.get(), "disputed", static_cast<double>(disputed));
    cJSON_AddNumberToObject(o.get(), "unobserved", static_cast<double>(unobserved));
    cJSON_AddNumberToObject(o.get(), "estimated", static_cast<double>(walker.estimated_count()));
    cJSON_AddNumberToObject(o.get(), "head_seq", static_cast<double>(walker.seq()));
    cJSON_AddStringToObject(o.get(), "head", ledger::to_hex(walker.head()).c_str());
    cJSON_AddNumberToObject(o.get(), "total_cost", static_cast<double>(walker.total_cost()));
    cJSON_AddNumberToObject(o.get(), "total_credit", static_cast<double>(walker.total_credit()));
    cJSON_AddNumberToObject(o.get(), "checkpoints", static_cast<double>(checked_cps));
    cJSON_AddNumberToObject(o.get(), "outbox", outbox.ok() ? static_cast<double>(*outbox) : -1);
    cJSON_AddNumberToObject(o.get(), "rejected_claims",
                            rejected.ok() ? static_cast<double>(rejected->size()) : -1);
    cJSON* probs = cJSON_AddArrayToObject(o.get(), "problems");
    for (const auto& p : problems) cJSON_AddItemToArray(probs, cJSON_CreateString(p.c_str()));
    char* text = cJSON_PrintUnformatted(o.get());
    if (text) {
      std::printf("%s\n", text);
      cJSON_free(text);
    }
    return ok ? 0 : 1;
  }
  std::printf("entries   %llu (%llu agreed, %llu disputed, %llu without our own reading; %llu estimated)\n",
              static_cast<unsigned long long>(walker.count()), static_cast<unsigned long long>(agreed),
              static_cast<unsigned long long>(disputed), static_cast<unsigned long long>(unobserved),
              static_cast<unsigned long long>(walker.estimated_count()));
  std::printf("head      #%llu %s\n", static_cast<unsigned long long>(walker.seq()),
              ledger::to_hex(walker.head()).c_str());
  std::printf("totals    cost %s, credit %s\n", billing::format_amount(walker.total_cost()).c_str(),
              billing::format_amount(walker.total_credit()).c_str());
  std::printf("signed    %llu checkpoints verified (last #%llu)\n",
              static_cast<unsigned long long>(checked_cps), static_cast<unsigned long long>(last_cp));
  if (outbox.ok()) std::printf("outbox    %llu calls not settled yet\n", static_cast<unsigned long long>(*outbox));
  if (disputes.ok() && !disputes->empty()) std::printf("disputes  %zu (see 'ledger show')\n", disputes->size());
  if (rejected.ok() && !rejected->empty()) std::printf("refused   %zu claims (see 'ledger show')\n", rejected->size());
  for (const auto& p : problems) std::printf("PROBLEM: %s\n", p.c_str());
  std::printf("ledger verify: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

int ledger_show(const cli::Parsed& args) {
  const std::string what = "ledger show";
  size_t last = kDefaultShow;
  if (args.has("last")) {
    const std::string v = args.get("last");
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n == 0 || n > 1000000) {
      return usage_error(what, "--last wants a count 1..1000000, got '" + v.substr(0, 32) + "'");
    }
    last = static_cast<size_t>(n);
  }
  auto m = open_mirror(args);
  if (!m.ok()) return fail(what, m.status());
  LedgerMirror& mirror = **m;
  auto head = mirror.head();
  if (!head.ok()) return fail(what, head.status());
  const uint64_t from = head->seq > last ? head->seq - last : 0;
  auto entries = mirror.entries(from, last);
  if (!entries.ok()) return fail(what, entries.status());
  std::printf("%-8s %-20s %-34s %-24s %10s %10s %14s %14s  %s\n", "SEQ", "TIME", "REQUEST", "MODEL",
              "IN", "OUT", "COST", "CREDIT", "STATUS");
  for (const StoredEntry& s : *entries) {
    const ledger::Entry& e = s.entry;
    std::printf("%-8llu %-20s %-34s %-24s %10llu %10llu %14s %14s  %s%s\n",
                static_cast<unsigned long long>(e.seq), cli::utc_time(e.time_ms).c_str(),
                e.request_id.c_str(), e.model.c_str(),
                static_cast<unsigned long long>(e.input + e.cached),
                static_cast<unsigned long long>(e.output), billing::format_amount(e.cost).c_str(),
                billing::format_amount(e.credit).c_str(), entry_status_name(s.status),
                e.estimated ? " estimated" : "");
  }
  std::printf("head #%llu %s, total credit %s\n", static_cast<unsigned long long>(head->seq),
              ledger::to_hex(head->head).c_str(), billing::format_amount(head->total_credit).c_str());
  auto disputes = mirror.disputes();
  if (disputes.ok()) {
    for (const Dispute& d : *disputes) {
      std::printf("dispute #%llu %s: %s\n", static_cast<unsigned long long>(d.seq), d.request_id.c_str(),
                  d.reason.c_str());
    }
  }
  auto rejected = mirror.rejected_claims();
  if (rejected.ok()) {
    for (const RejectedClaim& r : *rejected) {
      std::printf("refused claim %s (%s): %s\n", r.request_id.c_str(), r.code.c_str(), r.message.c_str());
    }
  }
  auto outbox = mirror.outbox(last);
  if (outbox.ok()) {
    for (const OutboxItem& o : *outbox) {
      std::printf("unsettled %s %s in=%llu out=%llu%s (finished %s)\n", o.request_id.c_str(),
                  o.model.c_str(), static_cast<unsigned long long>(o.usage.input + o.usage.cached),
                  static_cast<unsigned long long>(o.usage.output), o.usage.estimated ? " estimated" : "",
                  cli::utc_time(o.finished_ms).c_str());
    }
  }
  auto cps = mirror.checkpoints();
  if (cps.ok() && !cps->empty()) {
    const MirrorCheckpoint& c = cps->back();
    std::printf("last checkpoint #%llu at %s: cost %s, credit %s, signed by %s\n",
                static_cast<unsigned long long>(c.checkpoint.seq), cli::utc_time(c.checkpoint.time_ms).c_str(),
                billing::format_amount(c.checkpoint.total_cost).c_str(),
                billing::format_amount(c.checkpoint.total_credit).c_str(),
                crypto::base64_encode(std::string_view(reinterpret_cast<const char*>(c.hub_key.data()), 32)).c_str());
  }
  return 0;
}

int ledger_export(const cli::Parsed& args) {
  const std::string what = "ledger export";
  auto m = open_mirror(args);
  if (!m.ok()) return fail(what, m.status());
  LedgerMirror& mirror = **m;
  Status snap = mirror.db().exec("BEGIN");  // entries and checkpoints from one snapshot
  if (!snap.ok()) return fail(what, snap);
  uint64_t after = 0;
  for (;;) {
    auto page = mirror.entries(after, kPage);
    if (!page.ok()) return fail(what, page.status());
    for (const StoredEntry& s : *page) {
      std::printf("%s\n", ledger::to_json(s.entry).c_str());
      after = s.entry.seq;
    }
    if (page->size() < kPage) break;
  }
  auto cps = mirror.checkpoints();
  if (!cps.ok()) return fail(what, cps.status());
  for (const MirrorCheckpoint& c : *cps) {
    std::printf("%s\n", ledger::checkpoint_to_json(ledger::SignedCheckpoint{c.checkpoint, c.sig}).c_str());
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

cli::Command ledger_command() {
  return {"ledger",
          "the agent's mirrored ledger: 'verify [--json]' (walks the chain, checks hashes, costs "
          "and the hub's signed checkpoints; prints the head hash and totals), 'show [--last N]', "
          "'export' (JSON lines for the hub's 'ledger import') (file: --ledger FILE, or 'ledger' "
          "of --config FILE)",
          {{"config", true}, {"ledger", true}, {"json", false}, {"last", true}},
          1,
          1,
          "verify|show|export"};
}

int run_ledger(const cli::Parsed& args) {
  const std::string sub = args.positional.empty() ? std::string() : args.positional[0];
  if (sub == "verify") return ledger_verify(args);
  if (sub == "show") return ledger_show(args);
  if (sub == "export") return ledger_export(args);
  return usage_error("ledger", "unknown subcommand (want verify, show or export)");
}

}  // namespace tg::agent
