#include "shared/billing/include_usage.h"

#include "shared/billing/json_doc.h"
#include "shared/billing/json_scan.h"

namespace tg::billing {
namespace {

constexpr int kStreamOptions = 0;
constexpr int kIncludeUsage = 1;
constexpr size_t kKeepCapacity = 16 * 1024;  // held bytes kept between events

// Where the edit goes: the top-level object, its stream_options member and
// that member's include_usage.
struct EditPoints final : JsonScanner::Handler {
  void on_value_begin(int depth, int key, JsonKind kind, uint64_t offset) noexcept override {
    if (depth == 0) {
      top_object = kind == JsonKind::object;
    } else if (depth == 1) {
      ++top_members;
      if (key != kStreamOptions) return;
      options_twice = options_twice || options_seen;
      options_seen = true;
      options_kind = kind;
      in_options = true;
    } else if (in_options) {
      ++options_members;
      if (key != kIncludeUsage) return;
      include_twice = include_twice || include_seen;
      include_seen = true;
      include_begin = offset;
      in_include = true;
    }
  }
  void on_value_end(int depth, uint64_t end) noexcept override {
    if (depth == 0) {
      top_end = end;
    } else if (depth == 1 && in_options) {
      options_end = end;
      in_options = false;
    } else if (depth == 2 && in_include) {
      include_end = end;
      in_include = false;
    }
  }

  bool top_object = false;
  uint64_t top_end = 0;
  uint64_t top_members = 0;
  bool options_seen = false;
  bool options_twice = false;
  bool in_options = false;
  JsonKind options_kind = JsonKind::object;
  uint64_t options_end = 0;
  uint64_t options_members = 0;
  bool include_seen = false;
  bool include_twice = false;
  bool in_include = false;
  uint64_t include_begin = 0;
  uint64_t include_end = 0;
};

std::string spliced(std::string_view body, size_t from, size_t to, std::string_view with) {
  std::string out;
  out.reserve(body.size() - (to - from) + with.size());
  out.append(body.substr(0, from));
  out.append(with);
  out.append(body.substr(to));
  return out;
}

}  // namespace

Result<std::string> inject_include_usage(std::string_view body, bool* injected) {
  *injected = false;
  JsonScanner scanner({"stream_options", "include_usage"}, 2);
  EditPoints at;
  scanner.feed(body, at);
  scanner.finish(at);
  if (scanner.failed()) {
    return error(scanner.status().code(), "request body: " + scanner.status().message());
  }
  if (!at.top_object) return error(Errc::parse, "request body: the top level is not a JSON object");
  if (at.options_twice) {
    return error(Errc::invalid_argument, "request body: stream_options appears more than once");
  }
  if (at.options_seen && at.options_kind != JsonKind::object) {
    return error(Errc::invalid_argument, "request body: stream_options must be an object");
  }
  if (at.include_twice) {
    return error(Errc::invalid_argument,
                 "request body: stream_options.include_usage appears more than once");
  }

  if (at.include_seen) {
    const auto from = static_cast<size_t>(at.include_begin);
    const auto to = static_cast<size_t>(at.include_end);
    if (body.substr(from, to - from) == "true") return std::string(body);
    *injected = true;
    return spliced(body, from, to, "true");
  }
  *injected = true;
  if (at.options_seen) {  // before the closing '}' of stream_options
    const auto at_brace = static_cast<size_t>(at.options_end - 1);
    return spliced(body, at_brace, at_brace,
                   at.options_members ? ",\"include_usage\":true" : "\"include_usage\":true");
  }
  const auto at_brace = static_cast<size_t>(at.top_end - 1);
  return spliced(body, at_brace, at_brace,
                 at.top_members ? ",\"stream_options\":{\"include_usage\":true}"
                                : "\"stream_options\":{\"include_usage\":true}");
}

bool is_usage_only_chunk(std::string_view data) {
  json::ScratchDoc doc(detail::kKeptDocBytes);
  if (!detail::parse_document(data, doc.get()) || !doc->root().is_object()) return false;
  const json::Value* choices = detail::member(&doc->root(), "choices");
  const json::Value* usage = detail::member(&doc->root(), "usage");
  return choices != nullptr && choices->is_array() && choices->count == 0 && usage != nullptr &&
         !usage->is_null();
}

void UsageChunkFilter::feed(std::string_view piece, std::string* out) {
  while (!piece.empty()) {
    if (after_cr_) {
      after_cr_ = false;
      if (piece.front() == '\n') {  // the \n of the last event's \r\n
        (void)sse_.feed(piece.substr(0, 1));
        if (!last_dropped_) out->push_back('\n');
        piece.remove_prefix(1);
        continue;
      }
    }
    const SseParser::Step st = sse_.feed(piece);
    const std::string_view chunk = piece.substr(0, st.consumed);
    piece.remove_prefix(st.consumed);
    if (passthrough_) {
      out->append(chunk);
    } else if (held_.size() + chunk.size() > kMaxSseLine) {
      // Too long to hold: this event goes through unfiltered.
      out->append(held_);
      out->append(chunk);
      held_.clear();
      passthrough_ = true;
    } else {
      held_.append(chunk);
    }
    if (!st.ended) continue;
    last_dropped_ = !passthrough_ && sse_.has_data() && is_usage_only_chunk(sse_.data());
    if (last_dropped_) {
      ++dropped_;
    } else if (!passthrough_) {
      out->append(held_);
    }
    after_cr_ = chunk.back() == '\r';
    passthrough_ = false;
    if (held_.capacity() > kKeepCapacity) {
      std::string().swap(held_);
    } else {
      held_.clear();
    }
  }
}

void UsageChunkFilter::finish(std::string* out) {
  out->append(held_);
  std::string().swap(held_);
  passthrough_ = false;
  after_cr_ = false;
}

}  // namespace tg::billing
