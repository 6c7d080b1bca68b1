#include "shared/billing/usage.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "shared/billing/json_doc.h"

namespace tg::billing {
namespace {

using detail::member;
using json::Value;

bool is_object(const Value* v) { return v != nullptr && v->is_object(); }
bool is_array(const Value* v) { return v != nullptr && v->is_array(); }
bool is_null(const Value* v) { return v != nullptr && v->is_null(); }

struct Count {
  uint64_t value = 0;
  bool present = false;
};

// False if `name` is present (and not null) but not an integral number in
// 0..kMaxTokens. Numbers are read as doubles, exact for integers up to 2^53.
bool get_count(const Value* obj, const char* name, Count* out) {
  const Value* item = member(obj, name);
  if (item == nullptr || item->is_null()) return true;
  if (!item->is_number()) return false;
  const double d = item->number();
  if (!(d >= 0.0) || d > static_cast<double>(kMaxTokens) || std::floor(d) != d) return false;
  out->value = static_cast<uint64_t>(d);
  out->present = true;
  return true;
}

std::optional<Usage> openai_usage(const Value* u, bool need_completion) {
  if (!is_object(u)) return std::nullopt;
  Count prompt, completion, cached;
  if (!get_count(u, "prompt_tokens", &prompt) || !prompt.present) return std::nullopt;
  if (!get_count(u, "completion_tokens", &completion)) return std::nullopt;
  if (need_completion && !completion.present) return std::nullopt;
  const Value* details = member(u, "prompt_tokens_details");
  if (details != nullptr && !is_null(details)) {
    if (!is_object(details) || !get_count(details, "cached_tokens", &cached)) return std::nullopt;
  }
  Usage r;
  r.cached = std::min(cached.value, prompt.value);
  r.input = prompt.value - r.cached;
  r.output = completion.value;
  return r;
}

struct AnthropicCounts {
  Count input;        // input_tokens
  Count cache_write;  // cache_creation_input_tokens
  Count cache_read;   // cache_read_input_tokens
  Count output;       // output_tokens
};

bool anthropic_counts(const Value* u, AnthropicCounts* a) {
  return is_object(u) && get_count(u, "input_tokens", &a->input) &&
         get_count(u, "cache_creation_input_tokens", &a->cache_write) &&
         get_count(u, "cache_read_input_tokens", &a->cache_read) &&
         get_count(u, "output_tokens", &a->output);
}

// Usage fields stay within kMaxTokens, so input = I + W must too.
bool input_fits(uint64_t input, uint64_t cache_write) { return input + cache_write <= kMaxTokens; }

std::optional<Usage> anthropic_usage(const Value* u) {
  AnthropicCounts a;
  if (!anthropic_counts(u, &a) || !a.input.present || !a.output.present) return std::nullopt;
  if (!input_fits(a.input.value, a.cache_write.value)) return std::nullopt;
  Usage r;
  r.input = a.input.value + a.cache_write.value;
  r.cached = a.cache_read.value;
  r.output = a.output.value;
  return r;
}

std::optional<Usage> usage_of(Api api, const Value* u) {
  return api == Api::messages ? anthropic_usage(u) : openai_usage(u, api == Api::chat);
}

// ceil(bytes / 4), at most kMaxTokens.
uint64_t quarter_up(uint64_t bytes) {
  return std::min<uint64_t>(bytes / 4 + (bytes % 4 != 0 ? 1 : 0), kMaxTokens);
}

uint64_t string_bytes(const Value* obj, const char* name) {
  const Value* s = member(obj, name);
  return s != nullptr && s->is_string() ? s->text.size() : 0;
}

bool is_type(const Value* root, const char* type) {
  const Value* t = member(root, "type");
  return t != nullptr && t->is_string() && t->text == type;
}

}  // namespace

bool operator==(const Usage& a, const Usage& b) {
  return a.input == b.input && a.cached == b.cached && a.output == b.output &&
         a.estimated == b.estimated;
}

bool operator!=(const Usage& a, const Usage& b) { return !(a == b); }

bool is_zero(const Usage& u) { return u.input == 0 && u.cached == 0 && u.output == 0; }

std::optional<Usage> parse_usage(Api api, std::string_view json) {
  json::ScratchDoc doc(detail::kKeptDocBytes);
  if (!detail::parse_document(json, doc.get())) return std::nullopt;
  return usage_of(api, &doc->root());
}

// Copies the top-level "usage" value of a non-stream answer as it streams by.
struct UsageMeter::Capture final : JsonScanner::Handler {
  Capture(UsageMeter& meter, std::string_view p, uint64_t b) : m(meter), piece(p), base(b) {}

  void on_value_begin(int depth, int key, JsonKind kind, uint64_t offset) noexcept override {
    if (depth == 0) {
      m.top_object_ = kind == JsonKind::object;
      return;
    }
    if (key != 0) return;  // depth 1, a member other than "usage" or an array element
    m.capturing_ = true;
    m.capture_over_ = false;
    m.capture_start_ = offset;
    m.capture_.clear();
  }

  void on_value_end(int depth, uint64_t end) noexcept override {
    if (depth != 1 || !m.capturing_) return;
    copy(end);
    m.capturing_ = false;
    if (!m.capture_over_) {
      std::optional<Usage> u = parse_usage(m.api_, m.capture_);
      if (u) m.body_usage_ = u;  // the last valid top-level "usage" wins
    }
    std::string().swap(m.capture_);
  }

  // Appends the captured value's bytes of this piece that lie before `end`.
  void copy(uint64_t end) {
    if (m.capture_over_) return;
    const uint64_t from = std::max(m.capture_start_, base) - base;
    const uint64_t to = end - base;
    if (to <= from) return;
    if (m.capture_.size() + (to - from) > kMaxUsageBytes) {
      m.capture_over_ = true;
      std::string().swap(m.capture_);
      return;
    }
    m.capture_.append(piece.substr(static_cast<size_t>(from), static_cast<size_t>(to - from)));
  }

  UsageMeter& m;
  std::string_view piece;
  uint64_t base;  // absolute offset of piece[0]
};

UsageMeter::UsageMeter(Api api, bool stream) : api_(api), stream_(stream) {}

void UsageMeter::request_body(size_t bytes) { request_bytes_ += bytes; }

void UsageMeter::response_status(int status) { status_ = status; }

void UsageMeter::response_body(std::string_view piece) {
  response_bytes_ += piece.size();
  if (!stream_) {
    if (scanner_.failed()) return;  // a broken answer: nothing more to learn
    Capture cap(*this, piece, scanner_.offset());
    scanner_.feed(piece, cap);
    if (scanner_.failed()) {
      capturing_ = false;
      std::string().swap(capture_);
    } else if (capturing_) {
      cap.copy(scanner_.offset());
    }
    return;
  }
  while (!piece.empty()) {
    const SseParser::Step st = sse_.feed(piece);
    piece.remove_prefix(st.consumed);
    if (st.ended && sse_.has_data()) on_event(sse_.data());
  }
}

void UsageMeter::on_event(std::string_view data) {
  if (data == "[DONE]") return;
  json::ScratchDoc doc(detail::kKeptDocBytes);
  if (!detail::parse_document(data, doc.get())) return;
  const Value* root = &doc->root();
  if (!root->is_object()) return;

  if (api_ != Api::messages) {
    if (std::optional<Usage> u = openai_usage(member(root, "usage"), api_ == Api::chat)) {
      chunk_usage_ = u;
    }
    const Value* choices = member(root, "choices");
    if (!is_array(choices)) return;
    for (const Value* choice = choices->child(); choice != nullptr; choice = choice->next()) {
      const Value* delta = member(choice, "delta");
      content_bytes_ += string_bytes(delta, "content") + string_bytes(delta, "reasoning_content");
      const Value* calls = member(delta, "tool_calls");
      if (!is_array(calls)) continue;
      for (const Value* call = calls->child(); call != nullptr; call = call->next()) {
        content_bytes_ += string_bytes(member(call, "function"), "arguments");
      }
    }
    return;
  }

  AnthropicCounts a;
  if (is_type(root, "message_start")) {
    if (!anthropic_counts(member(member(root, "message"), "usage"), &a) || !a.input.present ||
        !a.output.present || !input_fits(a.input.value, a.cache_write.value)) {
      return;
    }
    start_seen_ = true;
    input_ = a.input.value;
    cache_write_ = a.cache_write.value;
    cache_read_ = a.cache_read.value;
    start_output_ = a.output.value;
  } else if (is_type(root, "message_delta")) {
    if (!anthropic_counts(member(root, "usage"), &a) || !a.output.present) return;
    if (!input_fits(a.input.present ? a.input.value : input_,
                    a.cache_write.present ? a.cache_write.value : cache_write_)) {
      return;
    }
    delta_seen_ = true;
    delta_output_ = a.output.value;  // cumulative
    if (a.input.present) input_ = a.input.value;
    if (a.cache_write.present) cache_write_ = a.cache_write.value;
    if (a.cache_read.present) cache_read_ = a.cache_read.value;
  } else if (is_type(root, "content_block_delta")) {
    const Value* delta = member(root, "delta");
    content_bytes_ += string_bytes(delta, "text") + string_bytes(delta, "partial_json") +
                      string_bytes(delta, "thinking");
  }
}

Usage UsageMeter::estimate(uint64_t output) const {
  Usage u;
  u.input = quarter_up(request_bytes_);
  u.output = output;
  u.estimated = true;
  return u;
}

Usage UsageMeter::result() const {
  if (status_ < 200 || status_ > 299) return Usage();
  if (!stream_) {
    if (body_usage_) return *body_usage_;
    if (scanner_.done() && top_object_) {
      return estimate(api_ == Api::embeddings ? 0 : quarter_up(response_bytes_));
    }
    return Usage();  // a truncated or broken answer is a failed answer
  }
  if (api_ == Api::messages) {
    if (delta_seen_ || start_seen_) {
      Usage u;
      u.input = input_ + cache_write_;
      u.cached = cache_read_;
      if (delta_seen_) {
        u.output = delta_output_;
      } else {
        u.output = std::max(start_output_, quarter_up(content_bytes_));
        u.estimated = true;
      }
      return u;
    }
  } else if (chunk_usage_) {
    return *chunk_usage_;
  }
  if (content_bytes_ == 0) return Usage();  // an empty answer costs nothing
  return estimate(quarter_up(content_bytes_));
}

Api api_for_path(std::string_view path) noexcept {
  const std::string_view base = path.substr(0, path.find('?'));
  if (base == "/v1/embeddings") return Api::embeddings;
  if (base == "/v1/messages") return Api::messages;
  return Api::chat;
}

}  // namespace tg::billing
