#include "hub/request_probe.h"

namespace tg::hub {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view in) : in_(in) {}

  Result<RequestProbe> run() {
    skip_ws();
    if (pos_ >= in_.size() || in_[pos_] != '{') {
      return fail_at("the request body must be a JSON object");
    }
    Status s = object(1, true);
    if (!s.ok()) return s;
    skip_ws();
    if (pos_ != in_.size()) return fail_at("unexpected bytes after the JSON object");
    return out_;
  }

 private:
  Status fail_at(const std::string& what) const {
    return error(Errc::parse, what + " (at byte " + std::to_string(pos_) + ")");
  }

  void skip_ws() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool eat(char c) {
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A string at pos_ (the opening quote). With `out`, its decoded bytes are
  // appended up to `limit` (then *over is set).
  Status string(std::string* out, size_t limit, bool* over) {
    if (!eat('"')) return fail_at("expected a string");
    for (;;) {
      if (pos_ >= in_.size()) return fail_at("unterminated string");
      const char c = in_[pos_++];
      if (c == '"') return Status::success();
      if (static_cast<unsigned char>(c) < 0x20) return fail_at("control character in a string");
      if (c != '\\') {
        append(out, limit, over, c);
        continue;
      }
      if (pos_ >= in_.size()) return fail_at("unterminated string");
      const char e = in_[pos_++];
      switch (e) {
        case '"': append(out, limit, over, '"'); break;
        case '\\': append(out, limit, over, '\\'); break;
        case '/': append(out, limit, over, '/'); break;
        case 'b': append(out, limit, over, '\b'); break;
        case 'f': append(out, limit, over, '\f'); break;
        case 'n': append(out, limit, over, '\n'); break;
        case 'r': append(out, limit, over, '\r'); break;
        case 't': append(out, limit, over, '\t'); break;
        case 'u': {
          if (in_.size() - pos_ < 4) return fail_at("bad \\u escape");
          unsigned v = 0;
          for (int i = 0; i < 4; ++i) {
            const int d = hex_digit(in_[pos_++]);
            if (d < 0) return fail_at("bad \\u escape");
            v = v * 16 + static_cast<unsigned>(d);
          }
          // Any escaped character makes a model name invalid anyway
          // (visible ASCII only); record a placeholder that fails that check.
          append(out, limit, over, v >= 0x21 && v < 0x7f ? static_cast<char>(v) : '\x01');
          break;
        }
        default: return fail_at("bad escape in a string");
      }
    }
  }

  static void append(std::string* out, size_t limit, bool* over, char c) {
    if (!out) return;
    if (out->size() >= limit) {
      *over = true;
      return;
    }
    out->push_back(c);
  }

  bool digits() {
    const size_t start = pos_;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  Status number() {
    eat('-');
    if (eat('0')) {
      // no leading zeros
    } else if (pos_ < in_.size() && in_[pos_] >= '1' && in_[pos_] <= '9') {
      digits();
    } else {
      return fail_at("bad number");
    }
    if (eat('.') && !digits()) return fail_at("bad number");
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (!eat('+')) eat('-');
      if (!digits()) return fail_at("bad number");
    }
    return Status::success();
  }

  bool literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  enum class Kind { string, number, boolean_true, boolean_false, null, object, array };

  Status value(int depth, Kind* kind) {
    skip_ws();
    if (pos_ >= in_.size()) return fail_at("unexpected end of the body");
    const char c = in_[pos_];
    if (c == '{') {
      *kind = Kind::object;
      return object(depth + 1, false);
    }
    if (c == '[') {
      *kind = Kind::array;
      return array(depth + 1);
    }
    if (c == '"') {
      *kind = Kind::string;
      return string(nullptr, 0, nullptr);
    }
    if (literal("true")) {
      *kind = Kind::boolean_true;
      return Status::success();
    }
    if (literal("false")) {
      *kind = Kind::boolean_false;
      return Status::success();
    }
    if (literal("null")) {
      *kind = Kind::null;
      return Status::success();
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      *kind = Kind::number;
      return number();
    }
    return fail_at("unexpected character");
  }

  Status array(int depth) {
    if (depth > kMaxProbeDepth) return fail_at("JSON nested too deeply");
    eat('[');
    skip_ws();
    if (eat(']')) return Status::success();
    for (;;) {
      Kind k;
      TG_TRY(value(depth, &k));
      skip_ws();
      if (eat(']')) return Status::success();
      if (!eat(',')) return fail_at("expected ',' or ']'");
    }
  }

  Status object(int depth, bool top) {
    if (depth > kMaxProbeDepth) return fail_at("JSON nested too deeply");
    eat('{');
    skip_ws();
    if (eat('}')) return Status::success();
    for (;;) {
      skip_ws();
      std::string key;
      bool key_over = false;
      TG_TRY(string(top ? &key : nullptr, 16, &key_over));
      skip_ws();
      if (!eat(':')) return fail_at("expected ':'");
      skip_ws();
      const bool is_model = top && !key_over && key == "model";
      const bool is_stream = top && !key_over && key == "stream";
      if (is_model) {
        if (pos_ >= in_.size() || in_[pos_] != '"') {
          Kind k;
          TG_TRY(value(depth, &k));
          return error(Errc::invalid_argument, "'model' must be a string");
        }
        std::string model;
        bool over = false;
        TG_TRY(string(&model, kMaxProbeModel, &over));
        if (over) {
          return error(Errc::invalid_argument,
                       "'model' is longer than " + std::to_string(kMaxProbeModel) + " bytes");
        }
        out_.model = std::move(model);
        out_.has_model = true;
      } else {
        Kind k;
        TG_TRY(value(depth, &k));
        if (is_stream) {
          if (k == Kind::boolean_true) {
            out_.stream = true;
          } else if (k == Kind::boolean_false || k == Kind::null) {
            out_.stream = false;
          } else {
            return error(Errc::invalid_argument, "'stream' must be true or false");
          }
        }
      }
      skip_ws();
      if (eat('}')) return Status::success();
      if (!eat(',')) return fail_at("expected ',' or '}'");
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  RequestProbe out_;
};

}  // namespace

Result<RequestProbe> probe_request(std::string_view body) { return Scanner(body).run(); }

}  // namespace tg::hub
