#include "shared/tunnel/messages.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <set>

#include "shared/crypto/hash.h"
#include "shared/json/doc.h"
#include "shared/json/writer.h"
#include "shared/tunnel/codes.h"

namespace tg::tunnel {

namespace {


bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Whether a JSON number literal denotes an integer exactly ("7", "7.0",
// "6.5536e4", "100e-2" do; "1.5", "1.0000000000000001" do not). Text that is
// not a JSON number counts as integral: the parser rejects it anyway.
bool literal_is_integral(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  const size_t int_begin = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  const size_t int_end = i;
  size_t frac_begin = i;
  size_t frac_end = i;
  if (i < s.size() && s[i] == '.') {
    frac_begin = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    frac_end = i;
  }
  int64_t exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
    while (i < s.size() && is_digit(s[i])) {
      if (exponent < 1000000000) exponent = exponent * 10 + (s[i] - '0');  // saturates
      ++i;
    }
    if (negative) exponent = -exponent;
  }
  if (int_end == int_begin || i != s.size()) return true;
  // The value is digits x 10^(exponent - fraction length); it is an integer
  // when the trailing zeros of the digits make up for a negative power.
  int64_t zeros = 0;
  bool nonzero = false;
  for (size_t k = frac_end; k > frac_begin && !nonzero; --k) {
    if (s[k - 1] == '0') ++zeros; else nonzero = true;
  }
  for (size_t k = int_end; k > int_begin && !nonzero; --k) {
    if (s[k - 1] == '0') ++zeros; else nonzero = true;
  }
  if (!nonzero) return true;  // zero
  return exponent - static_cast<int64_t>(frac_end - frac_begin) + zeros >= 0;
}

// Every number of this protocol is an integer. A literal that is not one
// but reads as one once parsed into a double (1.0000000000000001,
// 9007199254740991.4) is refused here: a field check on the double could
// not tell.
Status integral_literal(const json::Literal& lit) {
  if (literal_is_integral(lit.text)) return Status();
  const double d = std::strtod(std::string(lit.text).c_str(), nullptr);
  if (!std::isfinite(d) || std::floor(d) != d) return Status();  // the field check says why
  return error(Errc::parse, "message: number " + std::string(lit.text.substr(0, 40)) +
                                (lit.text.size() > 40 ? "..." : "") + " at offset " +
                                std::to_string(lit.offset) + " is not an integer but reads as one");
}

// Where a value sits in a message ("settle.seq", "call.headers[2][0]"), for
// error texts. It holds pointers and up to two indexes and becomes text only
// when there is an error to report: decoding a settle used to build a dozen
// such strings that nobody read. What it points to must outlive it (string
// literals, the Reader's type and field names).
class Where {
 public:
  Where(const char* path) : head_(path) {}  // NOLINT(google-explicit-constructor)
  Where(const char* type, const char* field) : head_(type), field_(field) {}

  // The element `i` of this array.
  Where operator[](size_t i) const {
    Where w = *this;
    if (w.depth_ < 2) w.index_[w.depth_++] = i;
    return w;
  }

  std::string text() const {
    std::string out(head_);
    if (field_ != nullptr) out.append(".").append(field_);
    for (int i = 0; i < depth_; ++i) out.append("[").append(std::to_string(index_[i])).append("]");
    return out;
  }

 private:
  const char* head_;
  const char* field_ = nullptr;
  size_t index_[2] = {0, 0};
  int depth_ = 0;
};

Status bad(const Where& where, const std::string& what) {
  return error(Errc::protocol, where.text() + ": " + what);
}

// Integral values print in full (a 2^53 range error must show the number);
// others in %g form.
std::string number_text(double d) {
  char buf[40];
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 1e17) {
    std::snprintf(buf, sizeof buf, "%.0f", d);
  } else {
    std::snprintf(buf, sizeof buf, "%.15g", d);
  }
  return buf;
}

std::string describe(const json::Value* j) {
  if (j->is_number()) return number_text(j->number());
  if (j->is_string()) return "a string";
  if (j->is_bool()) return "a boolean";
  if (j->is_null()) return "null";
  if (j->is_array()) return "an array";
  if (j->is_object()) return "an object";
  return "an invalid value";
}

// ---- character classes ----

bool is_code_char(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }
bool is_visible(unsigned char c) { return c >= 0x21 && c <= 0x7e; }
bool is_printable(unsigned char c) { return c >= 0x20 && c <= 0x7e; }
// RFC 9110 tchar, minus uppercase letters (names are lowercase, as in HTTP/2).
bool is_lower_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}
bool is_tchar(unsigned char c) { return is_lower_tchar(c) || (c >= 'A' && c <= 'Z'); }
// field-value bytes: HTAB, SP, VCHAR, obs-text.
bool is_header_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
// Human text: anything but NUL (the WebSocket layer guarantees UTF-8).
bool is_text_char(unsigned char c) { return c != 0; }

struct StringRule {
  size_t min;
  size_t max;
  bool (*ok)(unsigned char);
  const char* what;  // describes the allowed characters
};

constexpr StringRule kCodeRule{1, kMaxCode, is_code_char, "[a-z0-9_]"};
constexpr StringRule kPathRule{1, kMaxPath, is_visible, "visible ASCII"};
constexpr StringRule kModelRule{1, kMaxModel, is_visible, "visible ASCII"};
constexpr StringRule kMethodRule{1, kMaxMethod, is_tchar, "an HTTP token"};
constexpr StringRule kHeaderNameRule{1, kMaxHeaderName, is_lower_tchar, "a lowercase HTTP token"};
constexpr StringRule kHeaderValueRule{0, kMaxHeaderValue, is_header_value_char,
                                      "HTAB, SP, visible ASCII or bytes >= 0x80"};
constexpr StringRule kTextRule{0, kMaxText, is_text_char, "text without NUL"};
constexpr StringRule kOwnerRule{1, kMaxOwner, is_printable, "printable ASCII"};
constexpr StringRule kAgentVersionRule{1, kMaxAgentVersion, is_visible, "visible ASCII"};
constexpr StringRule kPlatformRule{1, kMaxPlatform, is_printable, "printable ASCII"};
constexpr StringRule kTokenRule{1, kMaxEnrollToken, is_visible, "visible ASCII"};
constexpr StringRule kRequestIdRule{1, kMaxRequestId, is_visible, "visible ASCII"};
constexpr StringRule kTicketRule{1, kMaxTicket, is_visible, "visible ASCII"};

Status check_string(const Where& where, std::string_view s, const StringRule& r) {
  if (s.size() < r.min || s.size() > r.max) {
    return bad(where, "length must be " + std::to_string(r.min) + ".." + std::to_string(r.max) +
                          ", got " + std::to_string(s.size()));
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (!r.ok(static_cast<unsigned char>(s[i]))) {
      return bad(where, std::string("must be ") + r.what + ", bad byte 0x" +
                            crypto::hex_encode(s.substr(i, 1)) + " at " + std::to_string(i));
    }
  }
  return Status();
}

Status check_path(const Where& where, std::string_view s) {
  TG_TRY(check_string(where, s, kPathRule));
  if (s[0] != '/') return bad(where, "must start with '/'");
  return Status();
}

Status check_range(const Where& where, uint64_t v, uint64_t min, uint64_t max) {
  if (v < min || v > max) {
    return bad(where, "must be an integer " + std::to_string(min) + ".." + std::to_string(max) +
                          ", got " + std::to_string(v));
  }
  return Status();
}

// For in-memory signed values (money, time); the wire never carries a sign.
Status check_signed(const Where& where, int64_t v, int64_t min, int64_t max) {
  if (v < min || v > max) {
    return bad(where, "must be an integer " + std::to_string(min) + ".." + std::to_string(max) +
                          ", got " + std::to_string(v));
  }
  return Status();
}

// Exactly 64 lowercase hex digits into 32 bytes.
Status parse_hash(const Where& where, std::string_view text, HashBytes* out) {
  if (text.size() != 2 * out->size()) {
    return bad(where, "must be " + std::to_string(2 * out->size()) + " lowercase hex digits, got " +
                          std::to_string(text.size()) + " characters");
  }
  if (const size_t i = crypto::lower_hex_span(text); i != text.size()) {
    return bad(where, "must be lowercase hex digits, bad byte 0x" +
                          crypto::hex_encode(text.substr(i, 1)) + " at " + std::to_string(i));
  }
  if (!crypto::hex_decode_to(text, out->data(), out->size()).ok()) return bad(where, "bad hex");
  return Status();
}

std::string hash_hex(const HashBytes& h) {
  return crypto::hex_encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

// ---- rules across fields, shared by decode() and validate() ----

Status check_ack_result(const Where& where, const std::string& result) {
  if (result != ack_result::ok && result != ack_result::dispute) {
    return bad(where, "must be \"ok\" or \"dispute\", got \"" + result + "\"");
  }
  return Status();
}

Status check_credit_within_cost(const Where& where, int64_t credit, int64_t cost,
                                const char* cost_name) {
  if (credit > cost) {
    return bad(where, std::string("must be at most ") + cost_name + " " + std::to_string(cost) +
                          ", got " + std::to_string(credit));
  }
  return Status();
}

Status check_sync_head(const Sync& m) {
  if (m.seq == 0 && m.head != HashBytes{}) return bad("sync.head", "must be all zeros when seq is 0");
  return Status();
}

Status check_headers(const Where& where, const Headers& h) {
  if (h.size() > kMaxHeaders) {
    return bad(where, "at most " + std::to_string(kMaxHeaders) + " headers, got " +
                          std::to_string(h.size()));
  }
  for (size_t i = 0; i < h.size(); ++i) {
    TG_TRY(check_string(where[i][0], h[i].first, kHeaderNameRule));
    TG_TRY(check_string(where[i][1], h[i].second, kHeaderValueRule));
  }
  return Status();
}

// What decode's reused json::Doc keeps between messages: the values of a
// large call message (512 values are 24 KiB).
constexpr size_t kKeptDocBytes = 32 * 1024;

Status parse_json(std::string_view text, const char* where, json::Doc* doc) {
  json::Rules rules;
  rules.what = where;
  rules.max_depth = kMaxJsonDepth;
  rules.on_number = integral_literal;
  return doc->parse(text, rules);
}

// ---- reading an object ----

// One JSON object being decoded as message `type`. Tracks which fields were
// read so unknown ones can be rejected.
class Reader {
 public:
  Reader(const json::Value* obj, const char* type) : obj_(obj), type_(type) {}

  // Rejects fields not in `allowed` and duplicate fields. "type" is implicit.
  // Every member is "type" or one of `allowed`, and none repeats. Messages
  // have a few dozen members at most (the decoder's limits), so the pairwise
  // duplicate check costs less than building a set.
  Status check_fields(std::initializer_list<std::string_view> allowed) const {
    for (const json::Value* c = obj_->child(); c != nullptr; c = c->next()) {
      const std::string_view name = c->key;
      // Lengths and first bytes first: most pairs differ there (2 % of the
      // agent's CPU went to these comparisons for `settle`, 15 fields).
      bool known = same(name, "type");
      for (std::string_view a : allowed) known = known || same(name, a);
      if (!known) return bad(type_, "unknown field \"" + std::string(name.substr(0, 64)) + "\"");
      for (const json::Value* d = obj_->child(); d != c; d = d->next()) {
        if (same(d->key, name)) {
          return bad(type_, "duplicate field \"" + std::string(name.substr(0, 64)) + "\"");
        }
      }
    }
    return Status();
  }

  Where where(const char* name) const { return Where(type_, name); }

  static bool same(std::string_view a, std::string_view b) {
    return a.size() == b.size() && (a.empty() || a[0] == b[0]) && a == b;
  }

  const json::Value* find(std::string_view name) const {
    for (const json::Value* c = obj_->child(); c != nullptr; c = c->next()) {
      if (same(c->key, name)) return c;
    }
    return nullptr;
  }

  Result<const json::Value*> required(const char* name) const {
    const json::Value* j = find(name);
    if (j == nullptr) return bad(where(name), "missing");
    return j;
  }

  Status get_uint(const char* name, uint64_t min, uint64_t max, uint64_t* out) const {
    Result<const json::Value*> j = required(name);
    if (!j.ok()) return j.status();
    return to_uint(where(name), *j, min, max, out);
  }

  // An integer field into any integer type that holds min..max.
  template <typename T>
  Status get_int(const char* name, uint64_t min, uint64_t max, T* out) const {
    uint64_t v = 0;
    TG_TRY(get_uint(name, min, max, &v));
    *out = static_cast<T>(v);
    return Status();
  }

  static Status to_uint(const Where& at, const json::Value* j, uint64_t min, uint64_t max,
                        uint64_t* out) {
    auto want = [&] { return "must be an integer " + std::to_string(min) + ".." + std::to_string(max); };
    if (!j->is_number()) return bad(at, want() + ", got " + describe(j));
    const double d = j->number();
    if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) ||
        d > static_cast<double>(max)) {
      return bad(at, want() + ", got " + number_text(d));
    }
    *out = static_cast<uint64_t>(d);
    return Status();
  }

  Status get_string(const char* name, const StringRule& rule, std::string* out) const {
    Result<const json::Value*> j = required(name);
    if (!j.ok()) return j.status();
    return to_string(where(name), *j, rule, out);
  }

  static Status to_string(const Where& at, const json::Value* j, const StringRule& rule,
                          std::string* out) {
    if (!j->is_string()) return bad(at, "must be a string, got " + describe(j));
    std::string s(j->text);
    TG_TRY(check_string(at, s, rule));
    *out = std::move(s);
    return Status();
  }

  Status get_bool(const char* name, bool* out) const {
    Result<const json::Value*> j = required(name);
    if (!j.ok()) return j.status();
    if (!(*j)->is_bool()) return bad(where(name), "must be true or false, got " + describe(*j));
    *out = (*j)->truth;
    return Status();
  }

  template <size_t N>
  Status get_base64(const char* name, std::array<uint8_t, N>* out) const {
    Result<const json::Value*> j = required(name);
    if (!j.ok()) return j.status();
    const Where at = where(name);
    if (!(*j)->is_string()) return bad(at, "must be a base64 string, got " + describe(*j));
    const std::string_view text = (*j)->text;
    if (text.size() != (N + 2) / 3 * 4) {
      return bad(at, "must be the base64 of " + std::to_string(N) + " bytes (" +
                         std::to_string((N + 2) / 3 * 4) + " characters), got " +
                         std::to_string(text.size()) + " characters");
    }
    Result<std::string> raw = crypto::base64_decode(text);
    if (!raw.ok()) return bad(at, raw.status().message());
    if (raw->size() != N) {
      return bad(at, "must decode to " + std::to_string(N) + " bytes, got " +
                         std::to_string(raw->size()));
    }
    std::memcpy(out->data(), raw->data(), N);
    return Status();
  }

  Status get_hash(const char* name, HashBytes* out) const {
    Result<const json::Value*> j = required(name);
    if (!j.ok()) return j.status();
    if (!(*j)->is_string()) return bad(where(name), "must be a hex string, got " + describe(*j));
    return parse_hash(where(name), (*j)->text, out);
  }

  Status get_headers(const char* name, Headers* out) const {
    Result<const json::Value*> j = required(name);
    if (!j.ok()) return j.status();
    const Where at = where(name);
    if (!(*j)->is_array()) return bad(at, "must be an array, got " + describe(*j));
    Headers h;
    for (const json::Value* e = (*j)->child(); e != nullptr; e = e->next()) {
      if (h.size() == kMaxHeaders) {
        return bad(at, "at most " + std::to_string(kMaxHeaders) + " headers");
      }
      const Where eat = at[h.size()];
      if (!e->is_array() || e->count != 2) {
        return bad(eat, "must be a [name, value] array, got " + describe(e));
      }
      std::pair<std::string, std::string> kv;
      const json::Value* first = e->child();
      TG_TRY(to_string(eat[0], first, kHeaderNameRule, &kv.first));
      TG_TRY(to_string(eat[1], first->next(), kHeaderValueRule, &kv.second));
      h.push_back(std::move(kv));
    }
    *out = std::move(h);
    return Status();
  }

 private:
  const json::Value* obj_;
  const char* type_;
};

// ---- per-type decoders ----

Result<Message> read_challenge(const Reader& r) {
  TG_TRY(r.check_fields({"v", "nonce"}));
  Challenge m;
  uint64_t v = 0;
  TG_TRY(r.get_uint("v", 1, 255, &v));
  if (v != static_cast<uint64_t>(kProtocolVersion)) {
    return bad(r.where("v"), "unsupported protocol version " + std::to_string(v) +
                                 ", this build speaks " + std::to_string(kProtocolVersion));
  }
  m.v = static_cast<int>(v);
  TG_TRY(r.get_base64("nonce", &m.nonce));
  return Message(std::move(m));
}

Result<Message> read_auth(const Reader& r) {
  TG_TRY(r.check_fields({"pubkey", "sig", "agent_version", "platform", "enroll_token"}));
  Auth m;
  TG_TRY(r.get_base64("pubkey", &m.pubkey));
  TG_TRY(r.get_base64("sig", &m.sig));
  TG_TRY(r.get_string("agent_version", kAgentVersionRule, &m.agent_version));
  TG_TRY(r.get_string("platform", kPlatformRule, &m.platform));
  if (r.find("enroll_token") != nullptr) {
    TG_TRY(r.get_string("enroll_token", kTokenRule, &m.enroll_token));
  }
  return Message(std::move(m));
}

Result<Message> read_welcome(const Reader& r) {
  TG_TRY(r.check_fields(
      {"owner", "heartbeat_ms", "dead_after", "max_streams", "window", "ledger_key", "tier_ppm"}));
  Welcome m;
  TG_TRY(r.get_string("owner", kOwnerRule, &m.owner));
  TG_TRY(r.get_int("heartbeat_ms", kMinHeartbeatMs, kMaxHeartbeatMs, &m.heartbeat_ms));
  TG_TRY(r.get_int("dead_after", 1, kMaxDeadAfter, &m.dead_after));
  TG_TRY(r.get_int("max_streams", 1, kMaxMaxStreams, &m.max_streams));
  TG_TRY(r.get_int("window", kMinWindow, kMaxWindow, &m.window));
  TG_TRY(r.get_base64("ledger_key", &m.ledger_key));
  TG_TRY(r.get_int("tier_ppm", 0, kMaxTierPpm, &m.tier_ppm));
  return Message(std::move(m));
}

Result<Message> read_refused(const Reader& r) {
  TG_TRY(r.check_fields({"code", "message"}));
  Refused m;
  TG_TRY(r.get_string("code", kCodeRule, &m.code));
  TG_TRY(r.get_string("message", kTextRule, &m.message));
  return Message(std::move(m));
}

// The models of a register or capacity message: an array of unique model
// names, min_count..kMaxModels of them.
Status read_models(const Reader& r, size_t min_count, std::vector<std::string>* out) {
  Result<const json::Value*> list = r.required("models");
  if (!list.ok()) return list.status();
  const Where at = r.where("models");
  if (!(*list)->is_array()) return bad(at, "must be an array, got " + describe(*list));
  std::set<std::string> seen;
  std::vector<std::string> models;
  for (const json::Value* e = (*list)->child(); e != nullptr; e = e->next()) {
    if (models.size() == kMaxModels) {
      return bad(at, "at most " + std::to_string(kMaxModels) + " models");
    }
    std::string model;
    TG_TRY(Reader::to_string(at[models.size()], e, kModelRule, &model));
    if (!seen.insert(model).second) return bad(at, "duplicate model \"" + model + "\"");
    models.push_back(std::move(model));
  }
  if (models.size() < min_count) {
    return bad(at, "at least " + std::to_string(min_count) + " model, got " +
                       std::to_string(models.size()));
  }
  *out = std::move(models);
  return Status();
}

Result<Message> read_register(const Reader& r) {
  TG_TRY(r.check_fields({"models", "max_parallel"}));
  Register m;
  TG_TRY(read_models(r, 0, &m.models));
  TG_TRY(r.get_int("max_parallel", 1, kMaxMaxParallel, &m.max_parallel));
  return Message(std::move(m));
}

Result<Message> read_registered(const Reader& r) {
  TG_TRY(r.check_fields({"models"}));
  Registered m;
  TG_TRY(r.get_int("models", 0, kMaxModels, &m.models));
  return Message(m);
}

Result<Message> read_call(const Reader& r) {
  TG_TRY(r.check_fields(
      {"id", "request_id", "model", "method", "path", "headers", "stream", "deadline_ms", "ticket"}));
  Call m;
  TG_TRY(r.get_int("id", 1, kMaxStreamId, &m.id));
  TG_TRY(r.get_string("request_id", kRequestIdRule, &m.request_id));
  TG_TRY(r.get_string("model", kModelRule, &m.model));
  TG_TRY(r.get_string("method", kMethodRule, &m.method));
  TG_TRY(r.get_string("path", kPathRule, &m.path));
  if (m.path[0] != '/') return bad(r.where("path"), "must start with '/'");
  TG_TRY(r.get_headers("headers", &m.headers));
  TG_TRY(r.get_bool("stream", &m.stream));
  TG_TRY(r.get_int("deadline_ms", 1, kMaxDeadlineMs, &m.deadline_ms));
  if (r.find("ticket") != nullptr) TG_TRY(r.get_string("ticket", kTicketRule, &m.ticket));
  return Message(std::move(m));
}

Result<Message> read_response(const Reader& r) {
  TG_TRY(r.check_fields({"id", "status", "headers"}));
  Response m;
  TG_TRY(r.get_int("id", 1, kMaxStreamId, &m.id));
  TG_TRY(r.get_int("status", 100, 599, &m.status));
  TG_TRY(r.get_headers("headers", &m.headers));
  return Message(std::move(m));
}

Result<Message> read_finish(const Reader& r) {
  TG_TRY(r.check_fields({"id", "upstream_status"}));
  Finish m;
  TG_TRY(r.get_int("id", 1, kMaxStreamId, &m.id));
  TG_TRY(r.get_int("upstream_status", 100, 599, &m.upstream_status));
  return Message(m);
}

Result<Message> read_error(const Reader& r) {
  TG_TRY(r.check_fields({"id", "code", "message"}));
  Error m;
  TG_TRY(r.get_int("id", 1, kMaxStreamId, &m.id));
  TG_TRY(r.get_string("code", kCodeRule, &m.code));
  TG_TRY(r.get_string("message", kTextRule, &m.message));
  return Message(std::move(m));
}

Result<Message> read_abort(const Reader& r) {
  TG_TRY(r.check_fields({"id", "reason"}));
  Abort m;
  TG_TRY(r.get_int("id", 1, kMaxStreamId, &m.id));
  TG_TRY(r.get_string("reason", kCodeRule, &m.reason));
  return Message(std::move(m));
}

Result<Message> read_credit(const Reader& r) {
  TG_TRY(r.check_fields({"id", "bytes"}));
  Credit m;
  TG_TRY(r.get_int("id", 1, kMaxStreamId, &m.id));
  TG_TRY(r.get_int("bytes", 1, kMaxWindow, &m.bytes));
  return Message(m);
}

Result<Message> read_goaway(const Reader& r) {
  TG_TRY(r.check_fields({"reason", "reconnect_after_ms"}));
  Goaway m;
  TG_TRY(r.get_string("reason", kCodeRule, &m.reason));
  TG_TRY(r.get_int("reconnect_after_ms", 0, kMaxReconnectAfterMs, &m.reconnect_after_ms));
  return Message(std::move(m));
}

Result<Message> read_prices(const Reader& r) {
  TG_TRY(r.check_fields({"version", "models"}));
  Prices m;
  TG_TRY(r.get_int("version", 1, kMaxSafeInteger, &m.version));
  Result<const json::Value*> list = r.required("models");
  if (!list.ok()) return list.status();
  const Where at = r.where("models");
  if (!(*list)->is_array()) return bad(at, "must be an array, got " + describe(*list));
  std::set<std::string> seen;
  for (const json::Value* e = (*list)->child(); e != nullptr; e = e->next()) {
    if (m.models.size() == kMaxPriceModels) {
      return bad(at, "at most " + std::to_string(kMaxPriceModels) + " models");
    }
    const Where eat = at[m.models.size()];
    if (!e->is_array() || e->count != 4) {
      return bad(eat, "must be a [model, input, cached_input, output] array, got " + describe(e));
    }
    PriceEntry p;
    const json::Value* c = e->child();
    TG_TRY(Reader::to_string(eat[0], c, kModelRule, &p.model));
    uint64_t v = 0;
    c = c->next();
    TG_TRY(Reader::to_uint(eat[1], c, 0, kMaxPrice, &v));
    p.input = static_cast<int64_t>(v);
    c = c->next();
    TG_TRY(Reader::to_uint(eat[2], c, 0, kMaxPrice, &v));
    p.cached_input = static_cast<int64_t>(v);
    c = c->next();
    TG_TRY(Reader::to_uint(eat[3], c, 0, kMaxPrice, &v));
    p.output = static_cast<int64_t>(v);
    if (!seen.insert(p.model).second) return bad(at, "duplicate model \"" + p.model + "\"");
    m.models.push_back(std::move(p));
  }
  return Message(std::move(m));
}

Result<Message> read_claim(const Reader& r) {
  TG_TRY(r.check_fields(
      {"request_id", "model", "input", "cached", "output", "estimated", "ticket"}));
  Claim m;
  TG_TRY(r.get_string("request_id", kRequestIdRule, &m.request_id));
  TG_TRY(r.get_string("model", kModelRule, &m.model));
  TG_TRY(r.get_int("input", 0, kMaxTokens, &m.input));
  TG_TRY(r.get_int("cached", 0, kMaxTokens, &m.cached));
  TG_TRY(r.get_int("output", 0, kMaxTokens, &m.output));
  TG_TRY(r.get_bool("estimated", &m.estimated));
  if (r.find("ticket") != nullptr) TG_TRY(r.get_string("ticket", kTicketRule, &m.ticket));
  return Message(std::move(m));
}

Result<Message> read_claim_rejected(const Reader& r) {
  TG_TRY(r.check_fields({"request_id", "code", "message"}));
  ClaimRejected m;
  TG_TRY(r.get_string("request_id", kRequestIdRule, &m.request_id));
  TG_TRY(r.get_string("code", kCodeRule, &m.code));
  TG_TRY(r.get_string("message", kTextRule, &m.message));
  return Message(std::move(m));
}

Result<Message> read_settle(const Reader& r) {
  TG_TRY(r.check_fields({"seq", "request_id", "model", "input", "cached", "output", "estimated",
                         "price_version", "cost", "tier_ppm", "credit", "time_ms", "prev",
                         "hash"}));
  Settle m;
  TG_TRY(r.get_int("seq", 1, kMaxSafeInteger, &m.seq));
  TG_TRY(r.get_string("request_id", kRequestIdRule, &m.request_id));
  TG_TRY(r.get_string("model", kModelRule, &m.model));
  TG_TRY(r.get_int("input", 0, kMaxTokens, &m.input));
  TG_TRY(r.get_int("cached", 0, kMaxTokens, &m.cached));
  TG_TRY(r.get_int("output", 0, kMaxTokens, &m.output));
  TG_TRY(r.get_bool("estimated", &m.estimated));
  TG_TRY(r.get_int("price_version", 1, kMaxSafeInteger, &m.price_version));
  TG_TRY(r.get_int("cost", 0, kMaxAmount, &m.cost));
  TG_TRY(r.get_int("tier_ppm", 0, kMaxTierPpm, &m.tier_ppm));
  TG_TRY(r.get_int("credit", 0, kMaxAmount, &m.credit));
  TG_TRY(check_credit_within_cost(r.where("credit"), m.credit, m.cost, "cost"));
  TG_TRY(r.get_int("time_ms", 0, kMaxSafeInteger, &m.time_ms));
  TG_TRY(r.get_hash("prev", &m.prev));
  TG_TRY(r.get_hash("hash", &m.hash));
  return Message(std::move(m));
}

Result<Message> read_ack(const Reader& r) {
  TG_TRY(r.check_fields({"seq", "hash", "result", "message"}));
  Ack m;
  TG_TRY(r.get_int("seq", 1, kMaxSafeInteger, &m.seq));
  TG_TRY(r.get_hash("hash", &m.hash));
  TG_TRY(r.get_string("result", kCodeRule, &m.result));
  TG_TRY(check_ack_result(r.where("result"), m.result));
  TG_TRY(r.get_string("message", kTextRule, &m.message));
  return Message(std::move(m));
}

Result<Message> read_sync(const Reader& r) {
  TG_TRY(r.check_fields({"seq", "head"}));
  Sync m;
  TG_TRY(r.get_int("seq", 0, kMaxSafeInteger, &m.seq));
  TG_TRY(r.get_hash("head", &m.head));
  TG_TRY(check_sync_head(m));
  return Message(m);
}

Result<Message> read_checkpoint(const Reader& r) {
  TG_TRY(r.check_fields({"seq", "head", "total_cost", "total_credit", "time_ms", "sig"}));
  Checkpoint m;
  TG_TRY(r.get_int("seq", 1, kMaxSafeInteger, &m.seq));
  TG_TRY(r.get_hash("head", &m.head));
  TG_TRY(r.get_int("total_cost", 0, kMaxAmount, &m.total_cost));
  TG_TRY(r.get_int("total_credit", 0, kMaxAmount, &m.total_credit));
  TG_TRY(check_credit_within_cost(r.where("total_credit"), m.total_credit, m.total_cost,
                                  "total_cost"));
  TG_TRY(r.get_int("time_ms", 0, kMaxSafeInteger, &m.time_ms));
  TG_TRY(r.get_base64("sig", &m.sig));
  return Message(m);
}

Result<Message> read_capacity(const Reader& r) {
  TG_TRY(r.check_fields({"models", "ready_in_ms", "rpm"}));
  Capacity m;
  TG_TRY(read_models(r, 1, &m.models));
  TG_TRY(r.get_int("ready_in_ms", 0, kMaxReadyInMs, &m.ready_in_ms));
  TG_TRY(r.get_int("rpm", 0, kMaxCapacityRpm, &m.rpm));
  return Message(std::move(m));
}

using ReadFn = Result<Message> (*)(const Reader&);

struct TypeInfo {
  const char* name;
  ReadFn read;
  bool by_hub;
  bool by_agent;
  bool pre_auth;
  bool session;
};

// Indexed by Type.
constexpr TypeInfo kTypes[kTypeCount] = {
    {"challenge", read_challenge, true, false, true, false},
    {"auth", read_auth, false, true, true, false},
    {"welcome", read_welcome, true, false, true, false},
    {"refused", read_refused, true, false, true, true},
    {"register", read_register, false, true, false, true},
    {"registered", read_registered, true, false, false, true},
    {"call", read_call, true, false, false, true},
    {"response", read_response, false, true, false, true},
    {"finish", read_finish, false, true, false, true},
    {"error", read_error, true, true, false, true},
    {"abort", read_abort, true, true, false, true},
    {"credit", read_credit, true, true, false, true},
    {"goaway", read_goaway, true, false, false, true},
    {"prices", read_prices, true, false, false, true},
    {"claim", read_claim, false, true, false, true},
    {"claim_rejected", read_claim_rejected, true, false, false, true},
    {"settle", read_settle, true, false, false, true},
    {"ack", read_ack, false, true, false, true},
    {"sync", read_sync, false, true, false, true},
    {"checkpoint", read_checkpoint, true, false, false, true},
    {"capacity", read_capacity, false, true, false, true},
};

static_assert(std::variant_size_v<Message> == kTypeCount, "kTypes must list every message");

const TypeInfo& info(Type t) { return kTypes[static_cast<size_t>(t)]; }

// ---- validation of in-memory messages ----

struct Validator {
  Status operator()(const Challenge& m) const {
    if (m.v != kProtocolVersion) {
      return bad("challenge.v", "must be " + std::to_string(kProtocolVersion) + ", got " +
                                    std::to_string(m.v));
    }
    return Status();
  }
  Status operator()(const Auth& m) const {
    TG_TRY(check_string("auth.agent_version", m.agent_version, kAgentVersionRule));
    TG_TRY(check_string("auth.platform", m.platform, kPlatformRule));
    if (!m.enroll_token.empty()) TG_TRY(check_string("auth.enroll_token", m.enroll_token, kTokenRule));
    return Status();
  }
  Status operator()(const Welcome& m) const {
    TG_TRY(check_string("welcome.owner", m.owner, kOwnerRule));
    TG_TRY(check_range("welcome.heartbeat_ms", m.heartbeat_ms, kMinHeartbeatMs, kMaxHeartbeatMs));
    TG_TRY(check_range("welcome.dead_after", m.dead_after, 1, kMaxDeadAfter));
    TG_TRY(check_range("welcome.max_streams", m.max_streams, 1, kMaxMaxStreams));
    TG_TRY(check_range("welcome.window", m.window, kMinWindow, kMaxWindow));
    return check_range("welcome.tier_ppm", m.tier_ppm, 0, kMaxTierPpm);
  }
  Status operator()(const Refused& m) const {
    TG_TRY(check_string("refused.code", m.code, kCodeRule));
    return check_string("refused.message", m.message, kTextRule);
  }
  Status operator()(const Register& m) const {
    if (m.models.size() > kMaxModels) {
      return bad("register.models", "at most " + std::to_string(kMaxModels) + " models");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < m.models.size(); ++i) {
      TG_TRY(check_string(Where("register.models")[i], m.models[i], kModelRule));
      if (!seen.insert(m.models[i]).second) {
        return bad("register.models", "duplicate model \"" + m.models[i] + "\"");
      }
    }
    return check_range("register.max_parallel", m.max_parallel, 1, kMaxMaxParallel);
  }
  Status operator()(const Registered& m) const {
    return check_range("registered.models", m.models, 0, kMaxModels);
  }
  Status operator()(const Call& m) const {
    TG_TRY(check_range("call.id", m.id, 1, kMaxStreamId));
    TG_TRY(check_string("call.request_id", m.request_id, kRequestIdRule));
    TG_TRY(check_string("call.model", m.model, kModelRule));
    TG_TRY(check_string("call.method", m.method, kMethodRule));
    TG_TRY(check_path("call.path", m.path));
    TG_TRY(check_headers("call.headers", m.headers));
    if (!m.ticket.empty()) TG_TRY(check_string("call.ticket", m.ticket, kTicketRule));
    return check_range("call.deadline_ms", m.deadline_ms, 1, kMaxDeadlineMs);
  }
  Status operator()(const Response& m) const {
    TG_TRY(check_range("response.id", m.id, 1, kMaxStreamId));
    TG_TRY(check_range("response.status", m.status, 100, 599));
    return check_headers("response.headers", m.headers);
  }
  Status operator()(const Finish& m) const {
    TG_TRY(check_range("finish.id", m.id, 1, kMaxStreamId));
    return check_range("finish.upstream_status", m.upstream_status, 100, 599);
  }
  Status operator()(const Error& m) const {
    TG_TRY(check_range("error.id", m.id, 1, kMaxStreamId));
    TG_TRY(check_string("error.code", m.code, kCodeRule));
    return check_string("error.message", m.message, kTextRule);
  }
  Status operator()(const Abort& m) const {
    TG_TRY(check_range("abort.id", m.id, 1, kMaxStreamId));
    return check_string("abort.reason", m.reason, kCodeRule);
  }
  Status operator()(const Credit& m) const {
    TG_TRY(check_range("credit.id", m.id, 1, kMaxStreamId));
    return check_range("credit.bytes", m.bytes, 1, kMaxWindow);
  }
  Status operator()(const Goaway& m) const {
    TG_TRY(check_string("goaway.reason", m.reason, kCodeRule));
    return check_range("goaway.reconnect_after_ms", m.reconnect_after_ms, 0, kMaxReconnectAfterMs);
  }
  Status operator()(const Prices& m) const {
    TG_TRY(check_range("prices.version", m.version, 1, kMaxSafeInteger));
    if (m.models.size() > kMaxPriceModels) {
      return bad("prices.models", "at most " + std::to_string(kMaxPriceModels) + " models, got " +
                                      std::to_string(m.models.size()));
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < m.models.size(); ++i) {
      const Where at = Where("prices.models")[i];
      const PriceEntry& p = m.models[i];
      TG_TRY(check_string(at[0], p.model, kModelRule));
      TG_TRY(check_signed(at[1], p.input, 0, kMaxPrice));
      TG_TRY(check_signed(at[2], p.cached_input, 0, kMaxPrice));
      TG_TRY(check_signed(at[3], p.output, 0, kMaxPrice));
      if (!seen.insert(p.model).second) {
        return bad("prices.models", "duplicate model \"" + p.model + "\"");
      }
    }
    return Status();
  }
  Status operator()(const Claim& m) const {
    TG_TRY(check_string("claim.request_id", m.request_id, kRequestIdRule));
    TG_TRY(check_string("claim.model", m.model, kModelRule));
    TG_TRY(check_range("claim.input", m.input, 0, kMaxTokens));
    TG_TRY(check_range("claim.cached", m.cached, 0, kMaxTokens));
    if (!m.ticket.empty()) TG_TRY(check_string("claim.ticket", m.ticket, kTicketRule));
    return check_range("claim.output", m.output, 0, kMaxTokens);
  }
  Status operator()(const ClaimRejected& m) const {
    TG_TRY(check_string("claim_rejected.request_id", m.request_id, kRequestIdRule));
    TG_TRY(check_string("claim_rejected.code", m.code, kCodeRule));
    return check_string("claim_rejected.message", m.message, kTextRule);
  }
  Status operator()(const Settle& m) const {
    TG_TRY(check_range("settle.seq", m.seq, 1, kMaxSafeInteger));
    TG_TRY(check_string("settle.request_id", m.request_id, kRequestIdRule));
    TG_TRY(check_string("settle.model", m.model, kModelRule));
    TG_TRY(check_range("settle.input", m.input, 0, kMaxTokens));
    TG_TRY(check_range("settle.cached", m.cached, 0, kMaxTokens));
    TG_TRY(check_range("settle.output", m.output, 0, kMaxTokens));
    TG_TRY(check_range("settle.price_version", m.price_version, 1, kMaxSafeInteger));
    TG_TRY(check_signed("settle.cost", m.cost, 0, kMaxAmount));
    TG_TRY(check_range("settle.tier_ppm", m.tier_ppm, 0, kMaxTierPpm));
    TG_TRY(check_signed("settle.credit", m.credit, 0, kMaxAmount));
    TG_TRY(check_credit_within_cost("settle.credit", m.credit, m.cost, "cost"));
    return check_signed("settle.time_ms", m.time_ms, 0, static_cast<int64_t>(kMaxSafeInteger));
  }
  Status operator()(const Ack& m) const {
    TG_TRY(check_range("ack.seq", m.seq, 1, kMaxSafeInteger));
    TG_TRY(check_string("ack.result", m.result, kCodeRule));
    TG_TRY(check_ack_result("ack.result", m.result));
    return check_string("ack.message", m.message, kTextRule);
  }
  Status operator()(const Sync& m) const {
    TG_TRY(check_range("sync.seq", m.seq, 0, kMaxSafeInteger));
    return check_sync_head(m);
  }
  Status operator()(const Checkpoint& m) const {
    TG_TRY(check_range("checkpoint.seq", m.seq, 1, kMaxSafeInteger));
    TG_TRY(check_signed("checkpoint.total_cost", m.total_cost, 0, kMaxAmount));
    TG_TRY(check_signed("checkpoint.total_credit", m.total_credit, 0, kMaxAmount));
    TG_TRY(check_credit_within_cost("checkpoint.total_credit", m.total_credit, m.total_cost,
                                    "total_cost"));
    return check_signed("checkpoint.time_ms", m.time_ms, 0, static_cast<int64_t>(kMaxSafeInteger));
  }
  Status operator()(const Capacity& m) const {
    if (m.models.empty() || m.models.size() > kMaxModels) {
      return bad("capacity.models", "must hold 1.." + std::to_string(kMaxModels) + " models, got " +
                                        std::to_string(m.models.size()));
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < m.models.size(); ++i) {
      TG_TRY(check_string(Where("capacity.models")[i], m.models[i], kModelRule));
      if (!seen.insert(m.models[i]).second) {
        return bad("capacity.models", "duplicate model \"" + m.models[i] + "\"");
      }
    }
    TG_TRY(check_range("capacity.ready_in_ms", m.ready_in_ms, 0, kMaxReadyInMs));
    return check_range("capacity.rpm", m.rpm, 0, kMaxCapacityRpm);
  }
};

// ---- encoding ----

// Integers are written as plain decimal digits (cJSON's own number printer
// switched to exponent form at 1e15 and lost digits near 2^53).
void add_string(json::Writer& w, const char* name, std::string_view v) { w.key(name).string(v); }
void add_number(json::Writer& w, const char* name, uint64_t v) { w.key(name).number(v); }
void add_number(json::Writer& w, const char* name, int64_t v) { w.key(name).number(v); }
void add_number(json::Writer& w, const char* name, uint32_t v) { add_number(w, name, uint64_t{v}); }
void add_bool(json::Writer& w, const char* name, bool v) { w.key(name).boolean(v); }
void add_hash(json::Writer& w, const char* name, const HashBytes& v) {
  w.key(name).string(hash_hex(v));
}
template <size_t N>
void add_base64(json::Writer& w, const char* name, const std::array<uint8_t, N>& v) {
  const std::string b64 = crypto::base64_encode(
      std::string_view(reinterpret_cast<const char*>(v.data()), v.size()));
  add_string(w, name, b64);
}
void add_strings(json::Writer& w, const char* name, const std::vector<std::string>& list) {
  w.key(name).begin_array();
  for (const auto& item : list) w.string(item);
  w.end_array();
}
void add_headers(json::Writer& w, const char* name, const Headers& h) {
  w.key(name).begin_array();
  for (const auto& kv : h) w.begin_array().string(kv.first).string(kv.second).end_array();
  w.end_array();
}

struct Encoder {
  json::Writer& o;
  void operator()(const Challenge& m) const {
    add_number(o, "v", static_cast<uint64_t>(m.v));
    add_base64(o, "nonce", m.nonce);
  }
  void operator()(const Auth& m) const {
    add_base64(o, "pubkey", m.pubkey);
    add_base64(o, "sig", m.sig);
    add_string(o, "agent_version", m.agent_version);
    add_string(o, "platform", m.platform);
    if (!m.enroll_token.empty()) add_string(o, "enroll_token", m.enroll_token);
  }
  void operator()(const Welcome& m) const {
    add_string(o, "owner", m.owner);
    add_number(o, "heartbeat_ms", m.heartbeat_ms);
    add_number(o, "dead_after", m.dead_after);
    add_number(o, "max_streams", m.max_streams);
    add_number(o, "window", m.window);
    add_base64(o, "ledger_key", m.ledger_key);
    add_number(o, "tier_ppm", m.tier_ppm);
  }
  void operator()(const Refused& m) const {
    add_string(o, "code", m.code);
    add_string(o, "message", m.message);
  }
  void operator()(const Register& m) const {
    add_strings(o, "models", m.models);
    add_number(o, "max_parallel", m.max_parallel);
  }
  void operator()(const Registered& m) const { add_number(o, "models", m.models); }
  void operator()(const Call& m) const {
    add_number(o, "id", m.id);
    add_string(o, "request_id", m.request_id);
    add_string(o, "model", m.model);
    add_string(o, "method", m.method);
    add_string(o, "path", m.path);
    add_headers(o, "headers", m.headers);
    add_bool(o, "stream", m.stream);
    add_number(o, "deadline_ms", m.deadline_ms);
    if (!m.ticket.empty()) add_string(o, "ticket", m.ticket);
  }
  void operator()(const Response& m) const {
    add_number(o, "id", m.id);
    add_number(o, "status", m.status);
    add_headers(o, "headers", m.headers);
  }
  void operator()(const Finish& m) const {
    add_number(o, "id", m.id);
    add_number(o, "upstream_status", m.upstream_status);
  }
  void operator()(const Error& m) const {
    add_number(o, "id", m.id);
    add_string(o, "code", m.code);
    add_string(o, "message", m.message);
  }
  void operator()(const Abort& m) const {
    add_number(o, "id", m.id);
    add_string(o, "reason", m.reason);
  }
  void operator()(const Credit& m) const {
    add_number(o, "id", m.id);
    add_number(o, "bytes", m.bytes);
  }
  void operator()(const Goaway& m) const {
    add_string(o, "reason", m.reason);
    add_number(o, "reconnect_after_ms", m.reconnect_after_ms);
  }
  void operator()(const Prices& m) const {
    add_number(o, "version", m.version);
    o.key("models").begin_array();
    for (const PriceEntry& p : m.models) {
      o.begin_array().string(p.model).number(p.input).number(p.cached_input).number(p.output);
      o.end_array();
    }
    o.end_array();
  }
  void operator()(const Claim& m) const {
    add_string(o, "request_id", m.request_id);
    add_string(o, "model", m.model);
    add_number(o, "input", m.input);
    add_number(o, "cached", m.cached);
    add_number(o, "output", m.output);
    add_bool(o, "estimated", m.estimated);
    if (!m.ticket.empty()) add_string(o, "ticket", m.ticket);
  }
  void operator()(const ClaimRejected& m) const {
    add_string(o, "request_id", m.request_id);
    add_string(o, "code", m.code);
    add_string(o, "message", m.message);
  }
  void operator()(const Settle& m) const {
    add_number(o, "seq", m.seq);
    add_string(o, "request_id", m.request_id);
    add_string(o, "model", m.model);
    add_number(o, "input", m.input);
    add_number(o, "cached", m.cached);
    add_number(o, "output", m.output);
    add_bool(o, "estimated", m.estimated);
    add_number(o, "price_version", m.price_version);
    add_number(o, "cost", m.cost);
    add_number(o, "tier_ppm", m.tier_ppm);
    add_number(o, "credit", m.credit);
    add_number(o, "time_ms", m.time_ms);
    add_hash(o, "prev", m.prev);
    add_hash(o, "hash", m.hash);
  }
  void operator()(const Ack& m) const {
    add_number(o, "seq", m.seq);
    add_hash(o, "hash", m.hash);
    add_string(o, "result", m.result);
    add_string(o, "message", m.message);
  }
  void operator()(const Sync& m) const {
    add_number(o, "seq", m.seq);
    add_hash(o, "head", m.head);
  }
  void operator()(const Checkpoint& m) const {
    add_number(o, "seq", m.seq);
    add_hash(o, "head", m.head);
    add_number(o, "total_cost", m.total_cost);
    add_number(o, "total_credit", m.total_credit);
    add_number(o, "time_ms", m.time_ms);
    add_base64(o, "sig", m.sig);
  }
  void operator()(const Capacity& m) const {
    add_strings(o, "models", m.models);
    add_number(o, "ready_in_ms", m.ready_in_ms);
    add_number(o, "rpm", m.rpm);
  }
};

}  // namespace

const char* type_name(Type t) noexcept { return info(t).name; }
bool sent_by_hub(Type t) noexcept { return info(t).by_hub; }
bool sent_by_agent(Type t) noexcept { return info(t).by_agent; }

size_t max_message_size(Phase p) noexcept {
  return p == Phase::pre_auth ? kMaxPreAuthMessage : kMaxSessionMessage;
}

bool allowed_in(Type t, Phase p) noexcept {
  return p == Phase::pre_auth ? info(t).pre_auth : info(t).session;
}

Result<Message> decode(std::string_view json, Phase phase) {
  const size_t limit = max_message_size(phase);
  if (json.size() > limit) {
    return error(Errc::limit, "message: " + std::to_string(json.size()) + " bytes, over the " +
                                  std::to_string(limit) + "-byte limit " +
                                  (phase == Phase::pre_auth ? "before authentication"
                                                            : "of a session"));
  }
  json::ScratchDoc doc(kKeptDocBytes);
  TG_TRY(parse_json(json, "message", doc.get()));
  const json::Value* obj = &doc->root();
  if (!obj->is_object()) return bad("message", "must be a JSON object, got " + describe(obj));
  const json::Value* type = obj->member("type");
  if (type == nullptr) return bad("message", "missing field \"type\"");
  if (!type->is_string()) return bad("message.type", "must be a string, got " + describe(type));
  const std::string_view name = type->text;
  for (size_t i = 0; i < kTypeCount; ++i) {
    if (name != kTypes[i].name) continue;
    const auto t = static_cast<Type>(i);
    if (!allowed_in(t, phase)) {
      return bad("message", "type \"" + std::string(name) + "\" is not allowed " +
                                (phase == Phase::pre_auth ? "before authentication"
                                                          : "after authentication"));
    }
    return kTypes[i].read(Reader(obj, kTypes[i].name));
  }
  return bad("message", "unknown type \"" + std::string(name.substr(0, kMaxCode)) + "\"");
}

uint16_t close_code_for(const Status& s) noexcept {
  if (s.ok()) return close_code::normal;
  return s.code() == Errc::limit ? close_code::message_too_big : close_code::bad_message;
}

Status validate(const Message& m) { return std::visit(Validator{}, m); }

std::string encode(const Message& m) {
  std::string out;
  out.reserve(256);
  json::Writer w(out);
  w.begin_object();
  add_string(w, "type", type_name(type_of(m)));
  std::visit(Encoder{w}, m);
  w.end_object();
  return out;
}

Result<std::string> encode_checked(const Message& m, Phase phase) {
  TG_TRY(validate(m));
  const Type t = type_of(m);
  if (!allowed_in(t, phase)) {
    return bad("message", std::string("type \"") + type_name(t) + "\" is not allowed " +
                              (phase == Phase::pre_auth ? "before authentication"
                                                        : "after authentication"));
  }
  std::string text = encode(m);
  if (text.size() > max_message_size(phase)) {
    return error(Errc::limit, std::string(type_name(t)) + ": encodes to " +
                                  std::to_string(text.size()) + " bytes, over the " +
                                  std::to_string(max_message_size(phase)) + "-byte limit");
  }
  return text;
}

bool operator==(const Challenge& a, const Challenge& b) { return a.v == b.v && a.nonce == b.nonce; }
bool operator==(const Auth& a, const Auth& b) {
  return a.pubkey == b.pubkey && a.sig == b.sig && a.agent_version == b.agent_version &&
         a.platform == b.platform && a.enroll_token == b.enroll_token;
}
bool operator==(const Welcome& a, const Welcome& b) {
  return a.owner == b.owner && a.heartbeat_ms == b.heartbeat_ms && a.dead_after == b.dead_after &&
         a.max_streams == b.max_streams && a.window == b.window && a.ledger_key == b.ledger_key &&
         a.tier_ppm == b.tier_ppm;
}
bool operator==(const Refused& a, const Refused& b) {
  return a.code == b.code && a.message == b.message;
}
bool operator==(const Register& a, const Register& b) {
  return a.models == b.models && a.max_parallel == b.max_parallel;
}
bool operator==(const Registered& a, const Registered& b) { return a.models == b.models; }
bool operator==(const Call& a, const Call& b) {
  return a.id == b.id && a.request_id == b.request_id && a.model == b.model &&
         a.method == b.method && a.path == b.path && a.headers == b.headers &&
         a.stream == b.stream && a.deadline_ms == b.deadline_ms && a.ticket == b.ticket;
}
bool operator==(const Response& a, const Response& b) {
  return a.id == b.id && a.status == b.status && a.headers == b.headers;
}
bool operator==(const Finish& a, const Finish& b) {
  return a.id == b.id && a.upstream_status == b.upstream_status;
}
bool operator==(const Error& a, const Error& b) {
  return a.id == b.id && a.code == b.code && a.message == b.message;
}
bool operator==(const Abort& a, const Abort& b) { return a.id == b.id && a.reason == b.reason; }
bool operator==(const Credit& a, const Credit& b) { return a.id == b.id && a.bytes == b.bytes; }
bool operator==(const Goaway& a, const Goaway& b) {
  return a.reason == b.reason && a.reconnect_after_ms == b.reconnect_after_ms;
}
bool operator==(const PriceEntry& a, const PriceEntry& b) {
  return a.model == b.model && a.input == b.input && a.cached_input == b.cached_input &&
         a.output == b.output;
}
bool operator==(const Prices& a, const Prices& b) {
  return a.version == b.version && a.models == b.models;
}
bool operator==(const Claim& a, const Claim& b) {
  return a.request_id == b.request_id && a.model == b.model && a.input == b.input &&
         a.cached == b.cached && a.output == b.output && a.estimated == b.estimated &&
         a.ticket == b.ticket;
}
bool operator==(const ClaimRejected& a, const ClaimRejected& b) {
  return a.request_id == b.request_id && a.code == b.code && a.message == b.message;
}
bool operator==(const Settle& a, const Settle& b) {
  return a.seq == b.seq && a.request_id == b.request_id && a.model == b.model &&
         a.input == b.input && a.cached == b.cached && a.output == b.output &&
         a.estimated == b.estimated && a.price_version == b.price_version && a.cost == b.cost &&
         a.tier_ppm == b.tier_ppm && a.credit == b.credit && a.time_ms == b.time_ms &&
         a.prev == b.prev && a.hash == b.hash;
}
bool operator==(const Ack& a, const Ack& b) {
  return a.seq == b.seq && a.hash == b.hash && a.result == b.result && a.message == b.message;
}
bool operator==(const Sync& a, const Sync& b) { return a.seq == b.seq && a.head == b.head; }
bool operator==(const Checkpoint& a, const Checkpoint& b) {
  return a.seq == b.seq && a.head == b.head && a.total_cost == b.total_cost &&
         a.total_credit == b.total_credit && a.time_ms == b.time_ms && a.sig == b.sig;
}
bool operator==(const Capacity& a, const Capacity& b) {
  return a.models == b.models && a.ready_in_ms == b.ready_in_ms && a.rpm == b.rpm;
}

}  // namespace tg::tunnel
