#include "shared/ledger/entry.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "shared/crypto/hash.h"
#include "shared/json/doc.h"
#include "shared/json/json.h"

namespace tg::ledger {

namespace {

constexpr int kMaxJsonDepth = 4;     // the line is one flat object; a little slack for errors
constexpr size_t kMaxDigits = 16;    // 2^53-1 has 16 digits; more can never be in range
constexpr size_t kMaxShown = 40;     // bytes of a bad value quoted in an error message

// ---- ranges and characters ----

bool is_visible(unsigned char c) { return c >= 0x21 && c <= 0x7e; }

bool all_zero(const Hash& h) {
  for (uint8_t b : h) {
    if (b != 0) return false;
  }
  return true;
}

std::string shown(std::string_view s) {
  if (s.size() <= kMaxShown) return std::string(s);
  return std::string(s.substr(0, kMaxShown)) + "...";
}

Status invalid(const char* field, const std::string& what) {
  return error(Errc::invalid_argument, std::string("entry.") + field + ": " + what);
}

Status check_uint(const char* field, uint64_t v, uint64_t min, uint64_t max) {
  if (v < min || v > max) {
    return invalid(field, "must be " + std::to_string(min) + ".." + std::to_string(max) +
                              ", got " + std::to_string(v));
  }
  return Status();
}

Status check_int(const char* field, int64_t v, int64_t min, int64_t max) {
  if (v < min || v > max) {
    return invalid(field, "must be " + std::to_string(min) + ".." + std::to_string(max) +
                              ", got " + std::to_string(v));
  }
  return Status();
}

// Empty when `s` is 1..max visible ASCII bytes, else what is wrong with it.
std::string visible_problem(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) {
    return "length must be 1.." + std::to_string(max) + ", got " + std::to_string(s.size());
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (!is_visible(static_cast<unsigned char>(s[i]))) {
      return "must be visible ASCII (0x21..0x7e), bad byte 0x" +
             crypto::hex_encode(s.substr(i, 1)) + " at " + std::to_string(i);
    }
  }
  return std::string();
}

// Empty when `hex` is 64 lowercase hex digits, else what is wrong with it.
std::string hex_problem(std::string_view hex) {
  if (hex.size() != 64) {
    return "must be 64 lowercase hex digits, got " + std::to_string(hex.size()) + " characters";
  }
  if (const size_t i = crypto::lower_hex_span(hex); i != hex.size()) {
    return "must be 64 lowercase hex digits, bad character 0x" +
           crypto::hex_encode(hex.substr(i, 1)) + " at " + std::to_string(i);
  }
  return std::string();
}

// ---- canonical bytes ----

void put_u64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void put_u32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

template <size_t N>
void put_bytes(std::string* out, const std::array<uint8_t, N>& a) {
  out->append(reinterpret_cast<const char*>(a.data()), N);
}

void put_short_string(std::string* out, const std::string& s) {
  if (s.size() > 255) std::abort();  // caller broke the validate() precondition
  out->push_back(static_cast<char>(s.size()));
  out->append(s);
}

// ---- JSON writing ----

void put_json_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out->append(buf);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

void put_field(std::string* out, const char* name) {
  out->push_back(out->empty() ? '{' : ',');
  out->push_back('"');
  out->append(name);
  out->append("\":");
}

// ---- JSON reading ----

Status bad(const std::string& where, const std::string& what) {
  return error(Errc::protocol, where + ": " + what);
}

std::string describe(const json::Value* j) {
  switch (j->type) {
    case json::Type::number: return shown(j->text);
    case json::Type::string: return "a string";
    case json::Type::boolean: return "a boolean";
    case json::Type::null: return "null";
    case json::Type::array: return "an array";
    case json::Type::object: return "an object";
  }
  return "an invalid value";
}

// The top-level object of a line, read field by field.
class Reader {
 public:
  explicit Reader(const json::Value* obj) : obj_(obj) {}

  // Every field exactly once: no unknown, duplicate or missing field.
  Status check_fields(std::initializer_list<const char*> fields) const {
    std::set<std::string_view> seen;
    for (const json::Value* c = obj_->child(); c != nullptr; c = c->next()) {
      bool known = false;
      for (const char* f : fields) known = known || c->key == f;
      if (!known) return bad("entry", "unknown field \"" + shown(c->key) + "\"");
      if (!seen.insert(c->key).second) {
        return bad("entry", "duplicate field \"" + std::string(c->key) + "\"");
      }
    }
    for (const char* f : fields) {
      if (seen.count(f) == 0) return bad(std::string("entry.") + f, "missing");
    }
    return Status();
  }

  Status get_uint(const char* name, uint64_t min, uint64_t max, uint64_t* out) const {
    const json::Value* j = find(name);
    const std::string at = std::string("entry.") + name;
    const std::string want = "must be an integer " + std::to_string(min) + ".." + std::to_string(max);
    if (!j->is_number()) return bad(at, want + ", got " + describe(j));
    // Read from the literal as written: a plain integer of at most 16
    // digits (2^53-1 has 16), read exactly.
    uint64_t v = 0;
    if (!json::read_plain_integer(j->text, kMaxDigits, &v) || v < min || v > max) {
      return bad(at, want + ", got " + shown(j->text));
    }
    *out = v;
    return Status();
  }

  Status get_int(const char* name, int64_t max, int64_t* out) const {
    uint64_t v = 0;
    TG_TRY(get_uint(name, 0, static_cast<uint64_t>(max), &v));
    *out = static_cast<int64_t>(v);
    return Status();
  }

  Status get_string(const char* name, size_t max, std::string* out) const {
    const json::Value* j = find(name);
    const std::string at = std::string("entry.") + name;
    if (!j->is_string()) return bad(at, "must be a string, got " + describe(j));
    const std::string problem = visible_problem(j->text, max);
    if (!problem.empty()) return bad(at, problem);
    *out = std::string(j->text);
    return Status();
  }

  Status get_bool(const char* name, bool* out) const {
    const json::Value* j = find(name);
    if (!j->is_bool()) {
      return bad(std::string("entry.") + name, "must be true or false, got " + describe(j));
    }
    *out = j->truth;
    return Status();
  }

  Status get_hash(const char* name, Hash* out) const {
    const json::Value* j = find(name);
    const std::string at = std::string("entry.") + name;
    if (!j->is_string()) return bad(at, "must be a hex string, got " + describe(j));
    Result<Hash> h = parse_hash(j->text);
    if (!h.ok()) return bad(at, hex_problem(j->text));
    *out = *h;
    return Status();
  }

  Status get_key(const char* name, crypto::PublicKey* out) const {
    const json::Value* j = find(name);
    const std::string at = std::string("entry.") + name;
    if (!j->is_string()) return bad(at, "must be a base64 string, got " + describe(j));
    const std::string_view text = j->text;
    constexpr size_t kChars = (32 + 2) / 3 * 4;
    if (text.size() != kChars) {
      return bad(at, "must be the base64 of 32 bytes (" + std::to_string(kChars) +
                         " characters), got " + std::to_string(text.size()) + " characters");
    }
    Result<std::string> raw = crypto::base64_decode(text);
    if (!raw.ok()) return bad(at, raw.status().message());
    if (raw->size() != out->size()) {
      return bad(at, "must decode to 32 bytes, got " + std::to_string(raw->size()));
    }
    std::memcpy(out->data(), raw->data(), out->size());
    return Status();
  }

 private:
  // check_fields() ran first, so every field is present exactly once.
  const json::Value* find(const char* name) const {
    const json::Value* v = obj_->member(name);
    if (v == nullptr) std::abort();  // unreachable after check_fields()
    return v;
  }

  const json::Value* obj_;
};

}  // namespace

bool operator==(const Entry& a, const Entry& b) {
  return a.agent == b.agent && a.seq == b.seq && a.request_id == b.request_id &&
         a.model == b.model && a.input == b.input && a.cached == b.cached &&
         a.output == b.output && a.estimated == b.estimated &&
         a.price_version == b.price_version && a.cost == b.cost && a.tier_ppm == b.tier_ppm &&
         a.credit == b.credit && a.time_ms == b.time_ms && a.prev == b.prev;
}

bool operator!=(const Entry& a, const Entry& b) { return !(a == b); }

Status validate(const Entry& e) {
  TG_TRY(check_uint("seq", e.seq, 1, kMaxSeq));
  std::string problem = visible_problem(e.request_id, kMaxRequestId);
  if (!problem.empty()) return invalid("request_id", problem);
  problem = visible_problem(e.model, kMaxModel);
  if (!problem.empty()) return invalid("model", problem);
  TG_TRY(check_uint("input", e.input, 0, kMaxTokens));
  TG_TRY(check_uint("cached", e.cached, 0, kMaxTokens));
  TG_TRY(check_uint("output", e.output, 0, kMaxTokens));
  TG_TRY(check_uint("price_version", e.price_version, 1, kMaxPriceVersion));
  TG_TRY(check_int("cost", e.cost, 0, kMaxAmount));
  TG_TRY(check_uint("tier_ppm", e.tier_ppm, 0, kMaxTierPpm));
  if (e.credit < 0 || e.credit > e.cost) {
    return invalid("credit", "must be 0..cost (" + std::to_string(e.cost) + "), got " +
                                 std::to_string(e.credit));
  }
  TG_TRY(check_int("time_ms", e.time_ms, 0, kMaxTimeMs));
  if (e.seq == 1 && !all_zero(e.prev)) {
    return invalid("prev", "must be all zero for seq 1, got " + to_hex(e.prev));
  }
  if (e.seq > 1 && all_zero(e.prev)) {
    return invalid("prev", "must be the hash of entry " + std::to_string(e.seq - 1) +
                               ", got all zero");
  }
  return Status();
}

std::string canonical(const Entry& e) {
  std::string out;
  out.reserve(kEntryLabel.size() + 32 + 8 + 1 + e.request_id.size() + 1 + e.model.size() +
              3 * 8 + 1 + 8 + 8 + 4 + 8 + 8 + 32);
  out.append(kEntryLabel);
  put_bytes(&out, e.agent);
  put_u64(&out, e.seq);
  put_short_string(&out, e.request_id);
  put_short_string(&out, e.model);
  put_u64(&out, e.input);
  put_u64(&out, e.cached);
  put_u64(&out, e.output);
  out.push_back(e.estimated ? '\x01' : '\x00');
  put_u64(&out, e.price_version);
  put_u64(&out, static_cast<uint64_t>(e.cost));
  put_u32(&out, e.tier_ppm);
  put_u64(&out, static_cast<uint64_t>(e.credit));
  put_u64(&out, static_cast<uint64_t>(e.time_ms));
  put_bytes(&out, e.prev);
  return out;
}

Hash hash(const Entry& e) { return crypto::sha256(canonical(e)); }

std::string to_hex(const Hash& h) { return crypto::hex_encode(crypto::as_view(h)); }

Result<Hash> parse_hash(std::string_view hex) {
  const std::string problem = hex_problem(hex);
  if (!problem.empty()) return error(Errc::parse, "hash: " + problem);
  Hash h;
  if (!crypto::hex_decode_to(hex, h.data(), h.size()).ok()) {
    return error(Errc::parse, "hash: not 32 bytes of hex");
  }
  return h;
}

std::string to_json(const Entry& e) {
  std::string out;
  out.reserve(512);
  put_field(&out, "agent");
  put_json_string(&out, crypto::base64_encode(std::string_view(
                            reinterpret_cast<const char*>(e.agent.data()), e.agent.size())));
  put_field(&out, "seq");
  out += std::to_string(e.seq);
  put_field(&out, "request_id");
  put_json_string(&out, e.request_id);
  put_field(&out, "model");
  put_json_string(&out, e.model);
  put_field(&out, "input");
  out += std::to_string(e.input);
  put_field(&out, "cached");
  out += std::to_string(e.cached);
  put_field(&out, "output");
  out += std::to_string(e.output);
  put_field(&out, "estimated");
  out += e.estimated ? "true" : "false";
  put_field(&out, "price_version");
  out += std::to_string(e.price_version);
  put_field(&out, "cost");
  out += std::to_string(e.cost);
  put_field(&out, "tier_ppm");
  out += std::to_string(e.tier_ppm);
  put_field(&out, "credit");
  out += std::to_string(e.credit);
  put_field(&out, "time_ms");
  out += std::to_string(e.time_ms);
  put_field(&out, "prev");
  put_json_string(&out, to_hex(e.prev));
  put_field(&out, "hash");
  put_json_string(&out, to_hex(hash(e)));
  out.push_back('}');
  return out;
}

Result<Entry> from_json(std::string_view line) {
  if (line.size() > kMaxJsonLine) {
    return error(Errc::limit, "entry: line of " + std::to_string(line.size()) +
                                  " bytes, over the limit of " + std::to_string(kMaxJsonLine));
  }
  json::Rules rules;
  rules.what = "entry";
  rules.max_depth = kMaxJsonDepth;
  json::Doc doc;
  TG_TRY(doc.parse(line, rules));
  const json::Value* root = &doc.root();
  if (!root->is_object()) return bad("entry", "must be a JSON object, got " + describe(root));
  // The values view `line` and `doc`, which outlive the reader.
  const Reader r(root);
  TG_TRY(r.check_fields({"agent", "seq", "request_id", "model", "input", "cached", "output",
                         "estimated", "price_version", "cost", "tier_ppm", "credit", "time_ms",
                         "prev", "hash"}));
  Entry e;
  uint64_t tier = 0;
  Hash claimed{};
  TG_TRY(r.get_key("agent", &e.agent));
  TG_TRY(r.get_uint("seq", 1, kMaxSeq, &e.seq));
  TG_TRY(r.get_string("request_id", kMaxRequestId, &e.request_id));
  TG_TRY(r.get_string("model", kMaxModel, &e.model));
  TG_TRY(r.get_uint("input", 0, kMaxTokens, &e.input));
  TG_TRY(r.get_uint("cached", 0, kMaxTokens, &e.cached));
  TG_TRY(r.get_uint("output", 0, kMaxTokens, &e.output));
  TG_TRY(r.get_bool("estimated", &e.estimated));
  TG_TRY(r.get_uint("price_version", 1, kMaxPriceVersion, &e.price_version));
  TG_TRY(r.get_int("cost", kMaxAmount, &e.cost));
  TG_TRY(r.get_uint("tier_ppm", 0, kMaxTierPpm, &tier));
  e.tier_ppm = static_cast<uint32_t>(tier);
  TG_TRY(r.get_int("credit", kMaxAmount, &e.credit));
  TG_TRY(r.get_int("time_ms", kMaxTimeMs, &e.time_ms));
  TG_TRY(r.get_hash("prev", &e.prev));
  TG_TRY(r.get_hash("hash", &claimed));
  // Cross-field rules (credit <= cost, prev zero exactly for seq 1).
  const Status valid = validate(e);
  if (!valid.ok()) return error(Errc::protocol, valid.message());
  const Hash computed = hash(e);
  if (computed != claimed) {
    return error(Errc::protocol, "hash mismatch at seq " + std::to_string(e.seq) + ": line says " +
                                     to_hex(claimed) + ", the entry hashes to " + to_hex(computed));
  }
  return e;
}

}  // namespace tg::ledger
