#include "hub/user_commands.h"

#include <cjson/cJSON.h>

#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/agent_commands.h"
#include "hub/agent_store.h"
#include "hub/command_util.h"
#include "hub/config.h"
#include "hub/ledger_sqlite.h"
#include "hub/user_store.h"
#include "shared/billing/money.h"

namespace tg::hub {
namespace {

constexpr size_t kMaxEcho = 32;

std::string shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxEcho)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kMaxEcho) out += "...";
  return out;
}

Result<UserStore> open_store(const cli::Parsed& args, bool create) {
  auto where = database_path(args);
  if (!where.ok()) return where.status();
  auto store = UserStore::open(*where, create);
  if (!store.ok() && store.status().code() == Errc::not_found) {
    return error(Errc::not_found, "database '" + *where +
                                      "' does not exist (it is created by 'user add' or the hub; "
                                      "--db or --config names another file)");
  }
  return store;
}

void print_json(cJSON* root) {
  char* text = cJSON_PrintUnformatted(root);
  if (text) {
    std::printf("%s\n", text);
    cJSON_free(text);
  }
}

int user_add(const cli::Parsed& args) {
  const std::string what = "user add";
  if (!only_options(args, {"db", "config"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes NAME");
  Status v = validate_user_name(args.positional[1]);
  if (!v.ok()) return usage_error(what, v.message());
  auto store = open_store(args, true);
  if (!store.ok()) return fail(what, store.status());
  auto rec = store->add_user(args.positional[1], unix_now_ms());
  if (!rec.ok()) return fail(what, rec.status());
  std::printf("added user %s (create a token with: tokengo-hub token create %s)\n",
              rec->name.c_str(), rec->name.c_str());
  return 0;
}

int user_list(const cli::Parsed& args) {
  const std::string what = "user list";
  if (!only_options(args, {"db", "config", "json"}, what)) return 2;
  if (args.positional.size() != 1) return usage_error(what, "takes no argument");
  auto store = open_store(args, false);
  if (!store.ok()) return fail(what, store.status());
  auto users = store->list_users();
  if (!users.ok()) return fail(what, users.status());
  if (args.has("json")) {
    std::unique_ptr<cJSON, decltype(&cJSON_Delete)> root(cJSON_CreateArray(), cJSON_Delete);
    for (const auto& u : *users) {
      cJSON* o = cJSON_CreateObject();
      cJSON_AddItemToArray(root.get(), o);
      cJSON_AddStringToObject(o, "name", u.name.c_str());
      cJSON_AddNumberToObject(o, "active_tokens", static_cast<double>(u.active_tokens));
      cJSON_AddNumberToObject(o, "created_at_ms", static_cast<double>(u.created_at_ms));
    }
    print_json(root.get());
    return 0;
  }
  int name_w = 4;
  for (const auto& u : *users) name_w = std::max(name_w, static_cast<int>(u.name.size()));
  std::printf("%-*s  %-6s  %s\n", name_w, "NAME", "TOKENS", "CREATED");
  for (const auto& u : *users) {
    std::printf("%-*s  %-6lld  %s\n", name_w, u.name.c_str(),
                static_cast<long long>(u.active_tokens), format_time(u.created_at_ms, "-").c_str());
  }
  return 0;
}

Result<std::unique_ptr<SqliteLedgerStore>> open_ledger(const cli::Parsed& args) {
  auto where = database_path(args);
  if (!where.ok()) return where.status();
  auto store = SqliteLedgerStore::open(*where, false);
  if (!store.ok() && store.status().code() == Errc::not_found) {
    return error(Errc::not_found, "database '" + *where + "' does not exist (--db or --config names another file)");
  }
  return store;
}

void print_balance(const UserBalance& b, bool json) {
  if (json) {
    std::unique_ptr<cJSON, decltype(&cJSON_Delete)> o(cJSON_CreateObject(), cJSON_Delete);
    cJSON_AddStringToObject(o.get(), "name", b.name.c_str());
    cJSON_AddNumberToObject(o.get(), "balance_micros", static_cast<double>(b.balance));
    cJSON_AddStringToObject(o.get(), "balance", billing::format_amount(b.balance).c_str());
    cJSON_AddNumberToObject(o.get(), "credited_micros", static_cast<double>(b.credited));
    cJSON_AddNumberToObject(o.get(), "spent_micros", static_cast<double>(b.spent));
    cJSON_AddNumberToObject(o.get(), "requests", static_cast<double>(b.requests));
    print_json(o.get());
    return;
  }
  std::printf("user %s\n  balance   %s\n  credited  %s\n  spent     %s (%llu settled requests)\n",
              b.name.c_str(), billing::format_amount(b.balance).c_str(),
              billing::format_amount(b.credited).c_str(), billing::format_amount(b.spent).c_str(),
              static_cast<unsigned long long>(b.requests));
}

int user_credit(const cli::Parsed& args) {
  const std::string what = "user credit";
  if (!only_options(args, {"db", "config", "json"}, what)) return 2;
  if (args.positional.size() != 3) {
    return usage_error(what, "takes NAME AMOUNT (currency units, up to 6 decimals; negative debits)");
  }
  Status v = validate_user_name(args.positional[1]);
  if (!v.ok()) return usage_error(what, v.message());
  auto amount = billing::parse_amount(args.positional[2], true);
  if (!amount.ok()) return usage_error(what, amount.status().message());
  auto store = open_ledger(args);
  if (!store.ok()) return fail(what, store.status());
  auto b = (*store)->credit_user(args.positional[1], *amount, unix_now_ms());
  if (!b.ok()) return fail(what, b.status());
  if (!args.has("json")) {
    std::printf("credited %s to %s\n", billing::format_amount(*amount).c_str(), b->name.c_str());
  }
  print_balance(*b, args.has("json"));
  return 0;
}

int user_show(const cli::Parsed& args) {
  const std::string what = "user show";
  if (!only_options(args, {"db", "config", "json"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes NAME");
  Status v = validate_user_name(args.positional[1]);
  if (!v.ok()) return usage_error(what, v.message());
  auto store = open_ledger(args);
  if (!store.ok()) return fail(what, store.status());
  auto b = (*store)->user_balance(args.positional[1]);
  if (!b.ok()) return fail(what, b.status());
  if (!*b) return fail(what, error(Errc::not_found, "no user '" + args.positional[1] + "'"));
  print_balance(**b, args.has("json"));
  return 0;
}

// --rpm / --tpm: a count (0 = no limit) or "default" (hub.conf applies).
Result<std::optional<std::optional<uint64_t>>> limit_option(const cli::Parsed& args,
                                                            const char* name) {
  if (!args.has(name)) return std::optional<std::optional<uint64_t>>();
  const std::string v = args.get(name);
  if (v == "default") return std::optional<std::optional<uint64_t>>(std::optional<uint64_t>());
  uint64_t n = 0;
  if (v.empty() || v.size() > 13) {
    return error(Errc::invalid_argument, std::string("--") + name + " wants a count or 'default'");
  }
  for (char c : v) {
    if (c < '0' || c > '9') {
      return error(Errc::invalid_argument,
                   std::string("--") + name + " wants a count or 'default', got '" + shown(v) + "'");
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return std::optional<std::optional<uint64_t>>(std::optional<uint64_t>(n));
}

std::string limit_text(const std::optional<uint64_t>& v, const char* unit) {
  if (!v) return std::string("hub.conf default");
  if (*v == 0) return "no limit";
  return std::to_string(*v) + " " + unit;
}

int user_limits(const cli::Parsed& args) {
  const std::string what = "user limits";
  if (!only_options(args, {"db", "config", "rpm", "tpm"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes NAME");
  Status v = validate_user_name(args.positional[1]);
  if (!v.ok()) return usage_error(what, v.message());
  auto rpm = limit_option(args, "rpm");
  if (!rpm.ok()) return usage_error(what, rpm.status().message());
  auto tpm = limit_option(args, "tpm");
  if (!tpm.ok()) return usage_error(what, tpm.status().message());
  auto store = open_store(args, false);
  if (!store.ok()) return fail(what, store.status());
  if (*rpm || *tpm) {
    Status set = store->set_limits(args.positional[1], *rpm, *tpm);
    if (!set.ok()) return fail(what, set);
  }
  auto now = store->limits(args.positional[1]);
  if (!now.ok()) return fail(what, now.status());
  std::printf("user %s: %s, %s (the running hub applies changes to the next request)\n",
              args.positional[1].c_str(), limit_text(now->first, "requests/minute").c_str(),
              limit_text(now->second, "tokens/minute").c_str());
  return 0;
}

int token_create(const cli::Parsed& args) {
  const std::string what = "token create";
  if (!only_options(args, {"db", "config"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes NAME (an existing user)");
  Status v = validate_user_name(args.positional[1]);
  if (!v.ok()) return usage_error(what, v.message());
  auto store = open_store(args, false);
  if (!store.ok()) return fail(what, store.status());
  auto created = store->create_token(args.positional[1], unix_now_ms());
  if (!created.ok()) return fail(what, created.status());
  std::printf("%s\n", created->token.c_str());
  std::fprintf(stderr,
               "token %lld for user '%s'; it is shown only this once (revoke it with "
               "'tokengo-hub token revoke %lld')\n",
               static_cast<long long>(created->id), args.positional[1].c_str(),
               static_cast<long long>(created->id));
  return 0;
}

int token_revoke(const cli::Parsed& args) {
  const std::string what = "token revoke";
  if (!only_options(args, {"db", "config"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes TOKEN or ID");
  auto store = open_store(args, false);
  if (!store.ok()) return fail(what, store.status());
  bool changed = false;
  auto rec = store->revoke_token(args.positional[1], unix_now_ms(), &changed);
  if (!rec.ok()) {
    if (rec.status().code() == Errc::invalid_argument) return usage_error(what, rec.status().message());
    return fail(what, rec.status());
  }
  if (changed) {
    std::printf("revoked token %lld (%s) of user %s\n", static_cast<long long>(rec->id),
                rec->hint.c_str(), rec->user.c_str());
  } else {
    std::printf("token %lld (%s) of user %s was already revoked\n", static_cast<long long>(rec->id),
                rec->hint.c_str(), rec->user.c_str());
  }
  return 0;
}

int token_list(const cli::Parsed& args) {
  const std::string what = "token list";
  if (!only_options(args, {"db", "config", "json"}, what)) return 2;
  if (args.positional.size() != 2) return usage_error(what, "takes NAME (a user)");
  Status v = validate_user_name(args.positional[1]);
  if (!v.ok()) return usage_error(what, v.message());
  auto store = open_store(args, false);
  if (!store.ok()) return fail(what, store.status());
  auto tokens = store->list_tokens(args.positional[1]);
  if (!tokens.ok()) return fail(what, tokens.status());
  if (args.has("json")) {
    std::unique_ptr<cJSON, decltype(&cJSON_Delete)> root(cJSON_CreateArray(), cJSON_Delete);
    for (const auto& t : *tokens) {
      cJSON* o = cJSON_CreateObject();
      cJSON_AddItemToArray(root.get(), o);
      cJSON_AddNumberToObject(o, "id", static_cast<double>(t.id));
      cJSON_AddStringToObject(o, "user", t.user.c_str());
      cJSON_AddStringToObject(o, "hint", t.hint.c_str());
      cJSON_AddNumberToObject(o, "created_at_ms", static_cast<double>(t.created_at_ms));
      if (t.revoked_at_ms) {
        cJSON_AddNumberToObject(o, "revoked_at_ms", static_cast<double>(*t.revoked_at_ms));
      } else {
        cJSON_AddNullToObject(o, "revoked_at_ms");
      }
    }
    print_json(root.get());
    return 0;
  }
  std::printf("%-6s  %-16s  %-20s  %s\n", "ID", "TOKEN", "CREATED", "REVOKED");
  for (const auto& t : *tokens) {
    std::printf("%-6lld  %-16s  %-20s  %s\n", static_cast<long long>(t.id), t.hint.c_str(),
                format_time(t.created_at_ms, "-").c_str(), format_time(t.revoked_at_ms, "-").c_str());
  }
  return 0;
}

}  // namespace

cli::Command user_command() {
  return {"user",
          "manage API users: 'add NAME', 'list [--json]', 'credit NAME AMOUNT' (adds to the "
          "balance; AMOUNT in currency units with up to 6 decimals, negative to debit), "
          "'show NAME [--json]' (balance, credits, spending), 'limits NAME [--rpm N|default] "
          "[--tpm N|default]' (the user's own rate limits; 0 = none) (database: --db FILE, or "
          "'database' of --config FILE; default tokengo-hub.db)",
          {{"db", true}, {"config", true}, {"json", false}, {"rpm", true}, {"tpm", true}},
          1,
          3,
          "add|list|credit|show|limits [NAME] [AMOUNT]"};
}

cli::Command token_command() {
  return {"token",
          "manage API tokens: 'create NAME' (prints an sk-tg- token once), 'revoke TOKEN|ID', "
          "'list NAME [--json]' (database: --db or --config)",
          {{"db", true}, {"config", true}, {"json", false}},
          2,
          2,
          "create|revoke|list NAME|TOKEN|ID"};
}

int run_user(const cli::Parsed& args) {
  const std::string sub = args.positional.empty() ? std::string() : args.positional[0];
  if (sub == "add") return user_add(args);
  if (sub == "list") return user_list(args);
  if (sub == "credit") return user_credit(args);
  if (sub == "show") return user_show(args);
  if (sub == "limits") return user_limits(args);
  return usage_error("user", "unknown subcommand '" + shown(sub) +
                                 "' (want add, list, credit, show or limits)");
}

int run_token(const cli::Parsed& args) {
  const std::string sub = args.positional.empty() ? std::string() : args.positional[0];
  if (sub == "create") return token_create(args);
  if (sub == "revoke") return token_revoke(args);
  if (sub == "list") return token_list(args);
  return usage_error("token", "unknown subcommand '" + shown(sub) +
                                  "' (want create, revoke or list)");
}

}  // namespace tg::hub
