#include "shared/ledger/export.h"

#include <cstdint>

#include "shared/crypto/hash.h"
#include "shared/json/doc.h"
#include "shared/json/json.h"

namespace tg::ledger {
namespace {

// Digits of a checkpoint number: 2^53-1 has 16, so more are never in range.
constexpr size_t kMaxDigits = 16;

// A number of the checkpoint object, exactly as written (the parse refused
// any literal but a plain integer), if it is at most `max`.
bool exact_uint(const json::Value* v, uint64_t max, uint64_t* out) {
  uint64_t n = 0;
  if (v == nullptr || !v->is_number() || !json::read_plain_integer(v->text, kMaxDigits, &n) ||
      n > max) {
    return false;
  }
  *out = n;
  return true;
}

Result<SignedCheckpoint> checkpoint_from(const json::Value* o, const crypto::PublicKey& agent) {
  if (o == nullptr || !o->is_object()) return error(Errc::protocol, "checkpoint is not an object");
  SignedCheckpoint c;
  c.checkpoint.agent = agent;
  uint64_t v = 0;
  if (o->count != 6) return error(Errc::protocol, "checkpoint must have exactly seq, head, total_cost, total_credit, time_ms, sig");
  if (!exact_uint(o->member("seq"), kMaxSeq, &v) || v == 0) {
    return error(Errc::protocol, "checkpoint.seq must be an integer 1..2^53-1");
  }
  c.checkpoint.seq = v;
  const json::Value* head = o->member("head");
  if (head == nullptr || !head->is_string()) return error(Errc::protocol, "checkpoint.head must be a hex string");
  auto h = parse_hash(head->text);
  if (!h.ok()) return error(Errc::protocol, "checkpoint.head: " + h.status().message());
  c.checkpoint.head = *h;
  if (!exact_uint(o->member("total_cost"), kMaxAmount, &v)) {
    return error(Errc::protocol, "checkpoint.total_cost must be an integer 0..9e15");
  }
  c.checkpoint.total_cost = static_cast<int64_t>(v);
  if (!exact_uint(o->member("total_credit"), kMaxAmount, &v)) {
    return error(Errc::protocol, "checkpoint.total_credit must be an integer 0..9e15");
  }
  c.checkpoint.total_credit = static_cast<int64_t>(v);
  if (!exact_uint(o->member("time_ms"), kMaxTimeMs, &v)) {
    return error(Errc::protocol, "checkpoint.time_ms must be an integer 0..2^53-1");
  }
  c.checkpoint.time_ms = static_cast<int64_t>(v);
  const json::Value* sig = o->member("sig");
  if (sig == nullptr || !sig->is_string()) return error(Errc::protocol, "checkpoint.sig must be base64");
  auto raw = crypto::base64_decode(sig->text);
  if (!raw.ok() || raw->size() != c.sig.size()) {
    return error(Errc::protocol, "checkpoint.sig must be base64 of 64 bytes");
  }
  for (size_t i = 0; i < c.sig.size(); ++i) c.sig[i] = static_cast<uint8_t>((*raw)[i]);
  return c;
}

}  // namespace

std::string checkpoint_to_json(const SignedCheckpoint& c) {
  const Checkpoint& k = c.checkpoint;
  return "{\"checkpoint\":{\"seq\":" + std::to_string(k.seq) + ",\"head\":\"" + to_hex(k.head) +
         "\",\"total_cost\":" + std::to_string(k.total_cost) +
         ",\"total_credit\":" + std::to_string(k.total_credit) +
         ",\"time_ms\":" + std::to_string(k.time_ms) + ",\"sig\":\"" +
         crypto::base64_encode(std::string_view(reinterpret_cast<const char*>(c.sig.data()), c.sig.size())) +
         "\"}}";
}

Result<ExportFile> parse_export(std::string_view text) {
  ExportFile out;
  size_t pos = 0;
  size_t line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line_no > kMaxExportLines) return error(Errc::limit, "more than 100000000 lines");
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    if (line.size() > kMaxJsonLine) return error(Errc::limit, where + "longer than 4096 bytes");
    if (line.rfind("{\"checkpoint\":", 0) == 0) {
      if (out.entries.empty()) return error(Errc::protocol, where + "checkpoint before any entry");
      json::Rules rules;
      rules.what = "checkpoint";
      rules.max_depth = 4;  // {"checkpoint":{...}}, a little slack for errors
      // Numbers as the exporter writes them: plain integers (a double could
      // not tell 1.0000000000000001 from 1).
      rules.on_number = [](const json::Literal& n) {
        if (json::is_plain_integer(n.text, kMaxDigits)) return Status();
        return error(Errc::parse, "checkpoint: number " + std::string(n.text.substr(0, 40)) +
                                      " at offset " + std::to_string(n.offset) +
                                      " is not a plain integer");
      };
      json::Doc doc;
      Status parsed = doc.parse(line, rules);
      if (!parsed.ok()) return error(Errc::parse, where + parsed.message());
      const json::Value* root = &doc.root();
      if (!root->is_object() || root->count != 1) {
        return error(Errc::parse, where + "not a checkpoint object");
      }
      auto c = checkpoint_from(root->member("checkpoint"), out.entries.front().agent);
      if (!c.ok()) return error(c.status().code(), where + c.status().message());
      out.checkpoints.push_back(*c);
      continue;
    }
    auto e = from_json(line);
    if (!e.ok()) return error(e.status().code(), where + e.status().message());
    if (!out.entries.empty() && e->agent != out.entries.front().agent) {
      return error(Errc::protocol, where + "an entry of another agent's chain");
    }
    out.entries.push_back(std::move(*e));
  }
  return out;
}

}  // namespace tg::ledger
