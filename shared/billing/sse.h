// Server-sent events (text/event-stream) reader: splits a byte stream, in any
// split, into events and joins each event's "data:" lines. Bounded: a line or
// an event's data over kMaxSseLine is dropped (the event is skipped), never
// buffered past the limit. No I/O; one buffer, the current event's data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tg::billing {

constexpr size_t kMaxSseLine = 256 * 1024;  // bytes of a line (without its end) and of an event's data

// The event-stream format of the HTML standard, the parts an answer needs:
// lines end in \n, \r\n or \r; a blank line ends the event; "data:" lines
// (one space after the colon dropped) are joined with \n; lines starting with
// ':' are comments; "event:", "id:", "retry:" and unknown fields are ignored.
// An event without a data line carries nothing; bytes after the last blank
// line form no event. A leading byte-order mark is not skipped.
class SseParser {
 public:
  struct Step {
    size_t consumed = 0;  // bytes of the piece read
    bool ended = false;   // the last byte read ended an event (its blank line)
  };

  // Reads `piece` up to and including the byte that ends the next event, or
  // all of it; call again with the rest. O(bytes read).
  Step feed(std::string_view piece);

  // For the event the last feed() ended: true if it had a data line and
  // stayed within the limits; then data() is its data. Valid until the next
  // feed().
  bool has_data() const noexcept { return ready_ && data_line_ && !skip_; }
  std::string_view data() const noexcept { return has_data() ? std::string_view(data_) : std::string_view(); }

  uint64_t events() const noexcept { return events_; }    // ended events, with or without data
  uint64_t skipped() const noexcept { return skipped_; }  // of which dropped for a limit

 private:
  enum class Line : uint8_t {
    name,    // reading the field name, matched against "data"
    data,    // the value of a data line, appended to data_
    ignore,  // comment, other field, or over the limit
  };

  void start_data();
  void append(std::string_view bytes);
  void end_line();
  void drop_event();

  std::string data_;
  bool ready_ = false;      // the last feed() ended an event
  bool data_line_ = false;  // the current event has a data line
  bool skip_ = false;       // the current event went over a limit
  bool after_cr_ = false;   // a \n right now is the end of a \r\n
  Line line_ = Line::name;
  size_t name_pos_ = 0;     // bytes of "data" matched
  bool drop_space_ = false; // the next value byte is dropped if it is a space
  uint64_t line_len_ = 0;
  uint64_t events_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace tg::billing
