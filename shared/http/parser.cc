#include "shared/http/parser.h"

#include <llhttp.h>

#include <algorithm>

#include "shared/crypto/wipe.h"

namespace tg::http {
namespace {

void trim_trailing_ows(std::string* s) {
  while (!s->empty() && (s->back() == ' ' || s->back() == '\t')) s->pop_back();
}

}  // namespace

struct Parser::Impl {
  llhttp_t llhttp;
  llhttp_settings_t settings;
  bool keep_alive = false;
  bool chunked = false;
  bool has_length = false;

  static Parser& self(llhttp_t* p) { return *static_cast<Parser*>(p->data); }

  static int on_message_begin(llhttp_t* p) noexcept {
    Parser& s = self(p);
    s.phase_ = Phase::head;
    s.request_ = RequestHead();
    s.request_.method.clear();
    s.response_ = ResponseHead();
    s.field_.clear();
    crypto::wipe(&s.value_);
    s.declared_length_ = 0;
    s.body_received_ = 0;
    s.trailer_bytes_ = 0;
    s.trailer_count_ = 0;
    s.impl_->keep_alive = false;
    s.impl_->chunked = false;
    s.impl_->has_length = false;
    return 0;
  }

  static int on_method(llhttp_t* p, const char* at, size_t len) noexcept {
    self(p).request_.method.append(at, len);
    return 0;
  }

  static int on_url(llhttp_t* p, const char* at, size_t len) noexcept {
    Parser& s = self(p);
    if (s.request_.target.size() + len > s.limits_.url_bytes) {
      (void)s.fail(Errc::limit, 414,
                   "request target longer than " + std::to_string(s.limits_.url_bytes) + " bytes");
      return HPE_USER;
    }
    s.request_.target.append(at, len);
    return 0;
  }

  static int on_status(llhttp_t* p, const char* at, size_t len) noexcept {
    self(p).response_.reason.append(at, len);
    return 0;
  }

  // Trailer fields (after a chunked body) are counted and dropped.
  static int count_trailer(Parser& s, size_t len) noexcept {
    s.trailer_bytes_ += len;
    if (s.trailer_bytes_ > s.limits_.head_bytes) {
      (void)s.fail(Errc::limit, 431,
                   "trailer section exceeds " + std::to_string(s.limits_.head_bytes) + " bytes");
      return HPE_USER;
    }
    return 0;
  }

  static int on_header_field(llhttp_t* p, const char* at, size_t len) noexcept {
    Parser& s = self(p);
    if (s.phase_ != Phase::head) return count_trailer(s, len);
    s.field_.append(at, len);
    return 0;
  }

  static int on_header_value(llhttp_t* p, const char* at, size_t len) noexcept {
    Parser& s = self(p);
    if (s.phase_ != Phase::head) return count_trailer(s, len);
    // A value may be a credential: growing, it leaves no copy behind.
    crypto::append_wiped(&s.value_, std::string_view(at, len));
    return 0;
  }

  static int on_header_value_complete(llhttp_t* p) noexcept {
    Parser& s = self(p);
    if (s.phase_ != Phase::head) {
      if (++s.trailer_count_ > s.limits_.header_count) {
        (void)s.fail(Errc::limit, 431,
                     "more than " + std::to_string(s.limits_.header_count) + " trailer fields");
        return HPE_USER;
      }
      return 0;
    }
    Headers& h = s.mode_ == Mode::request ? s.request_.headers : s.response_.headers;
    if (h.size() >= s.limits_.header_count) {
      (void)s.fail(Errc::limit, 431,
                   "more than " + std::to_string(s.limits_.header_count) + " header fields");
      return HPE_USER;
    }
    if (!is_token(s.field_)) {
      (void)s.fail(Errc::parse, 400, "header name is not a token: \"" + s.field_ + "\"");
      return HPE_USER;
    }
    trim_trailing_ows(&s.value_);
    h.add(std::move(s.field_), std::move(s.value_));
    s.field_.clear();
    s.value_.clear();
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) noexcept {
    Parser& s = self(p);
    if (p->http_major != 1) {
      (void)s.fail(Errc::parse, 505,
                   "HTTP version " + std::to_string(p->http_major) + "." +
                       std::to_string(p->http_minor) + " not supported");
      return -1;
    }
    s.impl_->chunked = (p->flags & F_CHUNKED) != 0;
    s.impl_->has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    s.declared_length_ = (s.impl_->has_length && !s.impl_->chunked) ? p->content_length : 0;
    if (s.mode_ == Mode::request) {
      s.request_.version_minor = p->http_minor;
    } else {
      s.response_.status = p->status_code;
      trim_trailing_ows(&s.response_.reason);
      const int st = p->status_code;
      if (st / 100 == 1 || st == 204 || st == 304) {
        p->flags = static_cast<uint16_t>(p->flags | F_SKIPBODY);
        s.declared_length_ = 0;
      }
      if (s.no_body_next_) {
        p->flags = static_cast<uint16_t>(p->flags | F_SKIPBODY);
        s.no_body_next_ = false;
        s.declared_length_ = 0;
      }
    }
    if (s.limits_.body_bytes != 0 && s.declared_length_ > s.limits_.body_bytes) {
      (void)s.fail(Errc::limit, 413,
                   "Content-Length " + std::to_string(s.declared_length_) + " exceeds " +
                       std::to_string(s.limits_.body_bytes) + " bytes");
      return -1;
    }
    s.impl_->keep_alive = llhttp_should_keep_alive(p) != 0;
    s.phase_ = Phase::body;
    s.event_ = ParseEvent::head;
    return HPE_PAUSED;
  }

  static int on_chunk_header(llhttp_t* p) noexcept {
    Parser& s = self(p);
    if (s.limits_.body_bytes != 0 &&
        (p->content_length > s.limits_.body_bytes ||
         s.body_received_ + p->content_length > s.limits_.body_bytes)) {
      (void)s.fail(Errc::limit, 413,
                   "chunked body exceeds " + std::to_string(s.limits_.body_bytes) + " bytes");
      return -1;
    }
    return 0;
  }

  static int on_chunk_extension(llhttp_t* p, const char*, size_t) noexcept {
    (void)self(p).fail(Errc::parse, 400, "chunk extensions are not accepted");
    return HPE_USER;
  }

  static int on_body(llhttp_t* p, const char* at, size_t len) noexcept {
    if (len == 0) return 0;  // an open span flushed by an empty step
    Parser& s = self(p);
    s.body_received_ += len;
    if (s.limits_.body_bytes != 0 && s.body_received_ > s.limits_.body_bytes) {
      (void)s.fail(Errc::limit, 413,
                   "body exceeds " + std::to_string(s.limits_.body_bytes) + " bytes");
      return HPE_USER;
    }
    s.piece_ = std::string_view(at, len);
    s.event_ = ParseEvent::body;
    return HPE_PAUSED;
  }

  static int on_message_complete(llhttp_t* p) noexcept {
    Parser& s = self(p);
    s.phase_ = p->upgrade ? Phase::upgraded : Phase::idle;
    s.event_ = ParseEvent::message_end;
    return HPE_PAUSED;
  }
};

Parser::Parser(Mode mode, const ParserLimits& limits)
    : impl_(std::make_unique<Impl>()), mode_(mode), limits_(limits) {
  llhttp_settings_init(&impl_->settings);
  llhttp_settings_t& st = impl_->settings;
  st.on_message_begin = &Impl::on_message_begin;
  st.on_method = &Impl::on_method;
  st.on_url = &Impl::on_url;
  st.on_status = &Impl::on_status;
  st.on_header_field = &Impl::on_header_field;
  st.on_header_value = &Impl::on_header_value;
  st.on_header_value_complete = &Impl::on_header_value_complete;
  st.on_headers_complete = &Impl::on_headers_complete;
  st.on_chunk_header = &Impl::on_chunk_header;
  st.on_chunk_extension_name = &Impl::on_chunk_extension;
  st.on_chunk_extension_value = &Impl::on_chunk_extension;
  st.on_body = &Impl::on_body;
  st.on_message_complete = &Impl::on_message_complete;
  llhttp_init(&impl_->llhttp, mode == Mode::request ? HTTP_REQUEST : HTTP_RESPONSE, &st);
  impl_->llhttp.data = this;
}

Parser::~Parser() { crypto::wipe(&value_); }

bool Parser::keep_alive() const noexcept { return impl_->keep_alive; }
bool Parser::chunked() const noexcept { return impl_->chunked; }
bool Parser::has_content_length() const noexcept { return impl_->has_length; }
bool Parser::has_body() const noexcept { return impl_->chunked || declared_length_ > 0; }

Status Parser::fail(Errc code, int http_status, std::string message) {
  if (pending_error_.ok()) {
    pending_error_ = error(code, std::move(message));
    error_status_ = http_status;
  }
  phase_ = Phase::failed;
  return pending_error_;
}

Result<ParseStep> Parser::step(std::string_view data) {
  if (phase_ == Phase::failed) {
    return pending_error_.ok() ? error(Errc::protocol, "HTTP parser used after failure")
                               : pending_error_;
  }
  if (phase_ == Phase::upgraded) {
    return error(Errc::protocol, "HTTP parser used after a protocol upgrade");
  }
  ParseStep out;
  const bool in_head = phase_ == Phase::idle || phase_ == Phase::head;
  size_t feed = data.size();
  if (in_head) feed = std::min(feed, limits_.head_bytes - head_used_ + 1);

  event_ = ParseEvent::need_more;
  piece_ = {};
  llhttp_t* p = &impl_->llhttp;
  const llhttp_errno_t err = llhttp_execute(p, data.data(), feed);
  if (err == HPE_OK) {
    out.consumed = feed;
  } else if (err == HPE_PAUSED) {
    out.consumed = static_cast<size_t>(llhttp_get_error_pos(p) - data.data());
    llhttp_resume(p);
  } else {
    if (!pending_error_.ok()) return fail(pending_error_.code(), error_status_, "");
    const size_t at = llhttp_get_error_pos(p) ? static_cast<size_t>(llhttp_get_error_pos(p) - data.data()) : 0;
    return fail(Errc::parse, 400,
                std::string("malformed HTTP ") +
                    (mode_ == Mode::request ? "request" : "response") + " at input byte " +
                    std::to_string(at) + ": " + llhttp_errno_name(err) + " (" +
                    (p->reason ? p->reason : "") + ")");
  }

  if (in_head) {
    head_used_ += out.consumed;
    if (head_used_ > limits_.head_bytes) {
      return fail(Errc::limit, 431,
                  "HTTP head exceeds " + std::to_string(limits_.head_bytes) + " bytes");
    }
    if (event_ == ParseEvent::head) head_used_ = 0;
  }
  out.event = event_;
  if (event_ == ParseEvent::body) out.body = piece_;
  return out;
}

Result<ParseStep> Parser::finish() {
  ParseStep out;
  switch (phase_) {
    case Phase::idle:
      return out;
    case Phase::failed:
    case Phase::upgraded:
      return step(std::string_view());
    case Phase::head:
      phase_ = Phase::failed;
      return error(Errc::closed, "input ended inside an HTTP head");
    case Phase::body:
      break;
  }
  event_ = ParseEvent::need_more;
  const llhttp_errno_t err = llhttp_finish(&impl_->llhttp);
  if (event_ == ParseEvent::message_end) {
    out.event = ParseEvent::message_end;
    phase_ = Phase::idle;
    return out;
  }
  (void)err;
  phase_ = Phase::failed;
  return error(Errc::closed, "input ended inside an HTTP body after " +
                                 std::to_string(body_received_) + " bytes");
}

}  // namespace tg::http
