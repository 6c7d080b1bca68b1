// libFuzzer target for the flat config parser: any input must give either a
// Config whose every getter works, or at least one bounded diagnostic, and
// never a secret's value inside a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "shared/config/config.h"

namespace {

using tg::config::Key;
using tg::config::Schema;
using tg::config::Section;
using tg::config::Type;

const Schema& schema() {
  static const Schema s{{
      {"", false, false,
       {
           {"hub", Type::string, nullptr, 0, 0, nullptr, nullptr},
           {"hub_pin", Type::string, ""},
           {"max_parallel", Type::integer, "16", 1, 256},
           {"offset", Type::integer, "0", INT64_MIN, INT64_MAX},
           {"verbose", Type::boolean, "false"},
           {"connect_timeout", Type::duration, "10s", 0, 3600000},
           {"max_body", Type::size, "1MiB", 1024, int64_t{1} << 32},
           {"log_level", Type::choice, "info", 0, 0, "debug|info|warn|error"},
           {"device_key", Type::secret, ""},
       }},
      {"provider", true, true,
       {
           {"kind", Type::choice, nullptr, 0, 0, "openai|anthropic|azure|local"},
           {"api_key", Type::secret, nullptr},
           {"base_url", Type::string, ""},
           {"max_parallel", Type::integer, "4", 1, 64},
       }},
      {"limits", false, false,
       {{"rps", Type::integer, "10", 1, 1000}, {"burst", Type::size, "64KiB", 0, 1 << 30}}},
      {"route", false, true, {{"model", Type::string, nullptr}}},
  }};
  return s;
}

void touch_all(const Section& s, const tg::config::SectionRule& rule) {
  for (const Key& k : rule.keys) {
    switch (k.type) {
      case Type::string:
      case Type::choice: (void)s.str(k.name); break;
      case Type::integer: (void)s.integer(k.name); break;
      case Type::boolean: (void)s.boolean(k.name); break;
      case Type::duration: (void)s.duration_ms(k.name); break;
      case Type::size: (void)s.size(k.name); break;
      case Type::secret: (void)s.secret(k.name).size(); break;
    }
    (void)s.line_of(k.name);
  }
}

bool upper_or_digit(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Runs of [A-Z0-9]{12,} with a letter, on lines that start with a secret key name, which do
// not occur on any other line: no message may quote them. (Such runs cannot
// come from the schema or from fixed message text.)
std::vector<std::string> secret_tokens(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  auto is_secret_line = [](std::string_view l) {
    while (!l.empty() && (l[0] == ' ' || l[0] == '\t')) l.remove_prefix(1);
    return l.substr(0, 7) == "api_key" || l.substr(0, 10) == "device_key";
  };
  std::vector<std::string> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!is_secret_line(lines[i])) continue;
    std::string_view l = lines[i];
    for (size_t a = 0; a < l.size();) {
      size_t b = a;
      while (b < l.size() && upper_or_digit(l[b])) ++b;
      bool has_letter = false;
      for (size_t k = a; k < b; ++k) has_letter = has_letter || (l[k] >= 'A' && l[k] <= 'Z');
      if (b - a >= 12 && has_letter) {  // digit runs also occur in range texts
        std::string_view tok = l.substr(a, b - a);
        bool elsewhere = false;
        for (size_t j = 0; j < lines.size() && !elsewhere; ++j) {
          elsewhere = !is_secret_line(lines[j]) && lines[j].find(tok) != std::string_view::npos;
        }
        if (!elsewhere) out.emplace_back(tok);
      }
      a = b == a ? a + 1 : b;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  tg::config::ParseResult r = tg::config::parse(text, "fuzz.conf", schema());
  if (r.config.has_value() == !r.errors.empty()) std::abort();
  if (r.errors.size() > tg::config::kMaxDiagnostics + 1) std::abort();
  for (const tg::config::Diagnostic& d : r.errors) {
    // Messages quote at most kMaxEchoBytes of input, escaped (4 bytes per byte).
    if (d.message.size() > 512) std::abort();
  }
  if (!r.errors.empty()) {
    for (const std::string& tok : secret_tokens(text)) {
      for (const tg::config::Diagnostic& d : r.errors) {
        if (d.message.find(tok) != std::string::npos) std::abort();
      }
    }
  }
  if (!r.config) return 0;
  for (const auto& rule : schema().sections) {
    for (const Section* s : r.config->sections(rule.type)) touch_all(*s, rule);
  }
  return 0;
}
