#include "hub/agent_commands.h"

#include <cjson/cJSON.h>

#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <vector>

#include "hub/agent_store.h"
#include "hub/command_util.h"
#include "hub/config.h"

namespace tg::hub {
namespace {

constexpr size_t kMaxEcho = 32;       // bytes of a bad argument quoted back
constexpr size_t kMaxRatioDigits = 7;  // integer part; anything longer is out of range anyway

std::string shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxEcho)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kMaxEcho) out += "...";
  return out;
}

bool all_digits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

Result<AgentStore> open_store(const cli::Parsed& args, bool create) {
  auto where = database_path(args);
  if (!where.ok()) return where.status();
  const std::string& path = *where;
  auto store = AgentStore::open(path, create);
  if (!store.ok() && store.status().code() == Errc::not_found) {
    return error(Errc::not_found, "registry '" + path +
                                      "' does not exist (it is created by 'agent approve', "
                                      "'enroll' or the hub; --db or --config names another file)");
  }
  return store;
}

// --tier, default 1.
Result<uint32_t> tier_option(const cli::Parsed& args) {
  if (!args.has("tier")) return kTierPpmMax;
  auto ppm = parse_ratio_ppm(args.get("tier"));
  if (!ppm.ok()) return error(Errc::invalid_argument, "--tier " + ppm.status().message());
  return ppm;
}

Result<std::string> owner_option(const cli::Parsed& args) {
  if (!args.has("owner")) return error(Errc::invalid_argument, "--owner NAME is required");
  std::string owner = args.get("owner");
  Status s = validate_owner(owner);
  if (!s.ok()) return error(Errc::invalid_argument, "--owner: " + s.message());
  return owner;
}

int run_approve(const cli::Parsed& args) {
  const std::string what = "agent approve";
  if (!only_options(args, {"owner", "tier", "db", "config"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes PUBKEY (the agent's public key)");
  auto key = canonical_pubkey(args.positional[1]);
  if (!key.ok()) return usage_error(what, key.status().message());
  auto owner = owner_option(args);
  if (!owner.ok()) return usage_error(what, owner.status().message());
  auto tier = tier_option(args);
  if (!tier.ok()) return usage_error(what, tier.status().message());

  auto store = open_store(args, true);
  if (!store.ok()) return fail(what, store.status(), 1);
  auto outcome = store->approve(*key, *owner, *tier);
  if (!outcome.ok()) return fail(what, outcome.status(), 1);
  const char* verb = "approved";
  switch (*outcome) {
    case ApproveOutcome::created: verb = "approved"; break;
    case ApproveOutcome::reapproved: verb = "approved again"; break;
    case ApproveOutcome::tier_changed: verb = "changed tier of"; break;
    case ApproveOutcome::unchanged: verb = "already approved:"; break;
  }
  std::printf("%s %s owner=%s tier=%s\n", verb, key->c_str(), owner->c_str(),
              format_ratio_ppm(*tier).c_str());
  return 0;
}

int run_revoke(const cli::Parsed& args) {
  const std::string what = "agent revoke";
  if (!only_options(args, {"db", "config"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes PUBKEY (the agent's public key)");
  auto key = canonical_pubkey(args.positional[1]);
  if (!key.ok()) return usage_error(what, key.status().message());
  auto store = open_store(args, false);
  if (!store.ok()) return fail(what, store.status(), 1);
  auto changed = store->revoke(*key);
  if (!changed.ok()) return fail(what, changed.status(), 1);
  if (*changed) {
    std::printf("revoked %s (a running hub drops its tunnel)\n", key->c_str());
  } else {
    std::printf("%s was already revoked\n", key->c_str());
  }
  return 0;
}

void print_json(const std::vector<AgentRecord>& agents) {
  std::unique_ptr<cJSON, decltype(&cJSON_Delete)> root(cJSON_CreateArray(), cJSON_Delete);
  for (const auto& a : agents) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddItemToArray(root.get(), o);
    cJSON_AddStringToObject(o, "pubkey", a.pubkey.c_str());
    cJSON_AddStringToObject(o, "owner", a.owner.c_str());
    cJSON_AddStringToObject(o, "status", agent_status_name(a.status));
    cJSON_AddNumberToObject(o, "tier_ppm", a.tier_ppm);
    cJSON_AddStringToObject(o, "tier", format_ratio_ppm(a.tier_ppm).c_str());
    cJSON_AddBoolToObject(o, "online", a.online);
    // Unix ms stay below 2^53, so a JSON number holds them exactly.
    auto add_time = [o](const char* name, std::optional<int64_t> ms) {
      if (ms) {
        cJSON_AddNumberToObject(o, name, static_cast<double>(*ms));
      } else {
        cJSON_AddNullToObject(o, name);
      }
    };
    add_time("first_seen_ms", a.first_seen_ms);
    add_time("last_seen_ms", a.last_seen_ms);
    if (a.last_addr.empty()) {
      cJSON_AddNullToObject(o, "last_addr");
    } else {
      cJSON_AddStringToObject(o, "last_addr", a.last_addr.c_str());
    }
    add_time("created_at_ms", a.created_at_ms);
    add_time("updated_at_ms", a.updated_at_ms);
  }
  char* text = cJSON_PrintUnformatted(root.get());
  if (text) {
    std::printf("%s\n", text);
    cJSON_free(text);
  }
}

void print_table(const std::vector<AgentRecord>& agents) {
  int owner_w = 5;
  for (const auto& a : agents) owner_w = std::max(owner_w, static_cast<int>(a.owner.size()));
  std::printf("%-44s  %-*s  %-8s  %-8s  %-6s  %-20s  %s\n", "PUBKEY", owner_w, "OWNER", "STATUS",
              "TIER", "ONLINE", "LAST SEEN", "LAST ADDRESS");
  for (const auto& a : agents) {
    std::printf("%-44s  %-*s  %-8s  %-8s  %-6s  %-20s  %s\n", a.pubkey.c_str(), owner_w,
                a.owner.c_str(), agent_status_name(a.status),
                format_ratio_ppm(a.tier_ppm).c_str(), a.online ? "yes" : "no",
                format_time(a.last_seen_ms, "never").c_str(), a.last_addr.empty() ? "-" : a.last_addr.c_str());
  }
}

int run_list(const cli::Parsed& args) {
  const std::string what = "agent list";
  if (!only_options(args, {"db", "config", "json"}, what)) return 2;
  if (args.positional.size() != 1) return usage_error(what, "takes no PUBKEY");
  auto store = open_store(args, false);
  if (!store.ok()) return fail(what, store.status(), 1);
  auto agents = store->list();
  if (!agents.ok()) return fail(what, agents.status(), 1);
  if (args.has("json")) {
    print_json(*agents);
  } else {
    print_table(*agents);
  }
  return 0;
}

}  // namespace

Result<uint32_t> parse_ratio_ppm(std::string_view text) {
  const std::string bad = "'" + shown(text) + "'";
  const char* hint = " (want a ratio between 0 and 1 with at most 6 decimals, like 0.85)";
  if (text.empty()) return error(Errc::invalid_argument, "is empty" + std::string(hint));
  if (text[0] == '-') return error(Errc::invalid_argument, bad + " is negative" + hint);
  std::string_view whole = text;
  std::string_view frac;
  bool has_dot = false;
  if (auto dot = text.find('.'); dot != std::string_view::npos) {
    whole = text.substr(0, dot);
    frac = text.substr(dot + 1);
    has_dot = true;
  }
  if (whole.empty() || !all_digits(whole) || (has_dot && (frac.empty() || !all_digits(frac)))) {
    return error(Errc::invalid_argument, bad + " is not a decimal number" + hint);
  }
  if (frac.size() > 6) {
    return error(Errc::invalid_argument, bad + " has more than 6 decimals" + hint);
  }
  while (whole.size() > 1 && whole[0] == '0') whole.remove_prefix(1);
  if (whole.size() > kMaxRatioDigits) return error(Errc::invalid_argument, bad + " is above 1" + hint);
  uint64_t value = 0;
  for (char c : whole) value = value * 10 + static_cast<uint64_t>(c - '0');
  value *= kTierPpmMax;
  uint64_t scale = 100000;
  for (char c : frac) {
    value += static_cast<uint64_t>(c - '0') * scale;
    scale /= 10;
  }
  if (value > kTierPpmMax) return error(Errc::invalid_argument, bad + " is above 1" + hint);
  return static_cast<uint32_t>(value);
}

std::string format_ratio_ppm(uint32_t ppm) {
  std::string out = std::to_string(ppm / kTierPpmMax);
  uint32_t frac = ppm % kTierPpmMax;
  if (frac == 0) return out;
  char digits[8];
  std::snprintf(digits, sizeof digits, "%06u", frac);
  std::string f = digits;
  while (!f.empty() && f.back() == '0') f.pop_back();
  return out + "." + f;
}

Result<int64_t> parse_ttl_ms(std::string_view text) {
  constexpr size_t kMaxDigits = 9;
  const std::string bad = "'" + shown(text) + "'";
  const char* hint = " (want a number and a unit s, m, h or d, like 24h)";
  if (text.size() < 2) return error(Errc::invalid_argument, bad + " is not a duration" + hint);
  std::string_view digits = text.substr(0, text.size() - 1);
  int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1000; break;
    case 'm': unit = 60 * 1000; break;
    case 'h': unit = 3600 * 1000; break;
    case 'd': unit = 24 * 3600 * 1000; break;
    default: return error(Errc::invalid_argument, bad + " has no unit" + hint);
  }
  if (!all_digits(digits) || digits.size() > kMaxDigits) {
    return error(Errc::invalid_argument, bad + " is not a duration" + hint);
  }
  int64_t n = 0;
  for (char c : digits) n = n * 10 + (c - '0');
  return n * unit;
}

cli::Command agent_command() {
  return {"agent",
          "manage agent keys: 'approve PUBKEY --owner NAME [--tier RATIO]', 'revoke PUBKEY', "
          "'list [--json]' (registry: --db FILE, or 'database' of --config FILE; default "
          "tokengo-hub.db)",
          {{"owner", true}, {"tier", true}, {"db", true}, {"config", true}, {"json", false}},
          1,
          2,
          "approve|revoke|list [PUBKEY]"};
}

cli::Command enroll_command() {
  return {"enroll",
          "print a one-time enrollment token that binds the first agent key presenting it to "
          "--owner (--tier RATIO, default 1; --ttl, default 24h; registry: --db or --config)",
          {{"owner", true}, {"tier", true}, {"ttl", true}, {"db", true}, {"config", true}}};
}

int run_agent(const cli::Parsed& args) {
  const std::string& sub = args.positional.empty() ? std::string() : args.positional[0];
  if (sub == "approve") return run_approve(args);
  if (sub == "revoke") return run_revoke(args);
  if (sub == "list") return run_list(args);
  return usage_error("agent", "unknown subcommand '" + shown(sub) +
                                  "' (want approve, revoke or list)");
}

int run_enroll(const cli::Parsed& args) {
  const std::string what = "enroll";
  auto owner = owner_option(args);
  if (!owner.ok()) return usage_error(what, owner.status().message());
  auto tier = tier_option(args);
  if (!tier.ok()) return usage_error(what, tier.status().message());
  const std::string ttl_text = args.get("ttl", kDefaultEnrollTtl);
  auto ttl = parse_ttl_ms(ttl_text);
  if (!ttl.ok()) return usage_error(what, "--ttl " + ttl.status().message());
  if (*ttl < kMinTokenTtlMs || *ttl > kMaxTokenTtlMs) {
    return usage_error(what, "--ttl '" + shown(ttl_text) + "' is outside 1m..30d");
  }
  auto store = open_store(args, true);
  if (!store.ok()) return fail(what, store.status(), 1);
  const int64_t now = unix_now_ms();
  auto token = store->create_enroll_token(*owner, *tier, *ttl, now);
  if (!token.ok()) return fail(what, token.status(), 1);
  std::printf("%s\n", token->c_str());
  std::fprintf(stderr,
               "one-time enrollment token for owner '%s' (tier %s), valid until %s; it is shown "
               "only this once\n",
               owner->c_str(), format_ratio_ppm(*tier).c_str(), format_time(now + *ttl, "never").c_str());
  return 0;
}

}  // namespace tg::hub
