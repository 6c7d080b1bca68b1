#include "shared/billing/sse.h"

namespace tg::billing {
namespace {

constexpr size_t kKeepCapacity = 16 * 1024;  // data buffer kept between events

}  // namespace

void SseParser::drop_event() {
  skip_ = true;
  std::string().swap(data_);
}

void SseParser::start_data() {
  if (skip_) return;
  if (data_line_) append("\n");
  data_line_ = true;
}

void SseParser::append(std::string_view bytes) {
  if (skip_) return;
  if (data_.size() + bytes.size() > kMaxSseLine) {
    drop_event();
    return;
  }
  data_.append(bytes);
}

void SseParser::end_line() {
  // A line that is just "data" is a data line with an empty value.
  if (line_ == Line::name && name_pos_ == 4) start_data();
  line_ = Line::name;
  name_pos_ = 0;
  drop_space_ = false;
  line_len_ = 0;
}

SseParser::Step SseParser::feed(std::string_view piece) {
  if (ready_) {
    ready_ = false;
    data_line_ = false;
    skip_ = false;
    if (data_.capacity() > kKeepCapacity) {
      std::string().swap(data_);
    } else {
      data_.clear();
    }
  }
  Step st;
  const size_t n = piece.size();
  size_t i = 0;
  while (i < n) {
    const char c = piece[i];
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') {
        ++i;
        continue;
      }
    }
    if (c == '\n' || c == '\r') {
      ++i;
      after_cr_ = c == '\r';
      if (line_len_ == 0 && line_ == Line::name) {
        ++events_;
        if (skip_) ++skipped_;
        ready_ = true;
        st.ended = true;
        break;
      }
      end_line();
      continue;
    }
    // A run of line bytes, up to the next line end.
    size_t j = i;
    while (j < n && piece[j] != '\n' && piece[j] != '\r') ++j;
    std::string_view run = piece.substr(i, j - i);
    i = j;
    line_len_ += run.size();
    if (line_len_ > kMaxSseLine) {
      if (!skip_) drop_event();
      line_ = Line::ignore;
      continue;
    }
    while (!run.empty() && line_ == Line::name) {
      const char b = run.front();
      run.remove_prefix(1);
      if (name_pos_ == 4) {
        if (b == ':') {
          start_data();
          line_ = Line::data;
          drop_space_ = true;
        } else {
          line_ = Line::ignore;
        }
      } else if (b == "data"[name_pos_]) {
        ++name_pos_;
      } else {
        line_ = Line::ignore;  // a comment (':' first) or another field
      }
    }
    if (line_ == Line::data && !run.empty()) {
      if (drop_space_) {
        drop_space_ = false;
        if (run.front() == ' ') run.remove_prefix(1);
      }
      append(run);
    }
  }
  st.consumed = i;
  return st;
}

}  // namespace tg::billing
