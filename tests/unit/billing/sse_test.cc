// The SSE reader: line ends, data joining, comments and other fields, events
// without data, the line and data limits at their edges, and that any split
// gives the same events.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shared/billing/sse.h"

namespace tg::billing {
namespace {

// Every event's data ("<none>" for an event without data or skipped), reading
// `text` in pieces of `step` bytes (0: whole).
std::vector<std::string> events(const std::string& text, size_t step = 0, SseParser* out = nullptr) {
  SseParser local;
  SseParser& p = out ? *out : local;
  std::vector<std::string> got;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t n = step ? std::min(step, text.size() - pos) : text.size() - pos;
    std::string_view piece(text.data() + pos, n);
    pos += n;
    while (!piece.empty()) {
      const SseParser::Step st = p.feed(piece);
      EXPECT_GT(st.consumed, 0u);
      piece.remove_prefix(st.consumed);
      if (st.ended) got.push_back(p.has_data() ? std::string(p.data()) : "<none>");
    }
  }
  return got;
}

std::vector<std::string> all_splits(const std::string& text) {
  const std::vector<std::string> whole = events(text);
  for (size_t step : {size_t{1}, size_t{2}, size_t{3}, size_t{7}}) EXPECT_EQ(events(text, step), whole) << "step " << step;
  return whole;
}

using V = std::vector<std::string>;

TEST(BillingSse, OneEventPerBlankLine) {
  EXPECT_EQ(all_splits("data: {\"a\":1}\n\ndata: [DONE]\n\n"), (V{"{\"a\":1}", "[DONE]"}));
}

TEST(BillingSse, DataLinesAreJoinedWithNewline) {
  EXPECT_EQ(all_splits("data: a\ndata: b\ndata:\ndata: c\n\n"), (V{"a\nb\n\nc"}));
}

TEST(BillingSse, OnlyOneSpaceAfterTheColonIsDropped) {
  EXPECT_EQ(all_splits("data:x\n\ndata: x\n\ndata:  x\n\ndata:\tx\n\n"), (V{"x", "x", " x", "\tx"}));
}

TEST(BillingSse, DataWithoutColonIsAnEmptyValue) {
  EXPECT_EQ(all_splits("data\n\ndata\ndata\n\n"), (V{"", "\n"}));
}

TEST(BillingSse, CommentsAndOtherFieldsAreIgnored) {
  EXPECT_EQ(all_splits(": keep-alive\n\nevent: message_start\nid: 7\nretry: 10\ndata: x\n: mid\n\n"),
            (V{"<none>", "x"}));
  // Names that only start like "data" are other fields.
  EXPECT_EQ(all_splits("dat: a\ndatax: b\ndata : c\nDATA: d\n\n"), (V{"<none>"}));
}

TEST(BillingSse, EveryLineEndWorksAndMixes) {
  const V want{"a", "b\nc"};
  EXPECT_EQ(all_splits("data: a\r\n\r\ndata: b\r\ndata: c\r\n\r\n"), want);
  EXPECT_EQ(all_splits("data: a\r\rdata: b\rdata: c\r\r"), want);
  EXPECT_EQ(all_splits("data: a\r\n\ndata: b\rdata: c\n\r\n"), want);
}

TEST(BillingSse, CrLfSplitAcrossPiecesIsOneLineEnd) {
  SseParser p;
  SseParser::Step st = p.feed("data: a\r");
  EXPECT_FALSE(st.ended);
  st = p.feed("\n");  // the \n of \r\n, not a blank line
  EXPECT_FALSE(st.ended);
  EXPECT_EQ(st.consumed, 1u);
  st = p.feed("\r");
  EXPECT_TRUE(st.ended);
  EXPECT_EQ(p.data(), "a");
  st = p.feed("\n");  // ends the \r\n of the blank line: no second event
  EXPECT_FALSE(st.ended);
  EXPECT_EQ(p.events(), 1u);
}

TEST(BillingSse, FeedStopsAtTheEndOfEachEvent) {
  SseParser p;
  const std::string text = "data: a\n\ndata: b\n\ntail";
  SseParser::Step st = p.feed(text);
  EXPECT_TRUE(st.ended);
  EXPECT_EQ(st.consumed, 9u);
  EXPECT_EQ(p.data(), "a");
  st = p.feed(std::string_view(text).substr(9));
  EXPECT_TRUE(st.ended);
  EXPECT_EQ(st.consumed, 9u);
  EXPECT_EQ(p.data(), "b");
  st = p.feed("tail");
  EXPECT_FALSE(st.ended);
  EXPECT_FALSE(p.has_data());
}

TEST(BillingSse, UnfinishedEventIsNotAnEvent) {
  EXPECT_EQ(all_splits("data: a\n\ndata: b\n"), (V{"a"}));
  EXPECT_EQ(all_splits("data: a"), (V{}));
}

TEST(BillingSse, BlankLinesAloneAreEmptyEvents) {
  SseParser p;
  EXPECT_EQ(events("\n\r\n\r", 0, &p), (V{"<none>", "<none>", "<none>"}));
  EXPECT_EQ(p.events(), 3u);
  EXPECT_EQ(p.skipped(), 0u);
}

TEST(BillingSse, LineAtTheLimitIsKept) {
  const std::string value(kMaxSseLine - 6, 'x');  // "data: " + value is exactly the limit
  SseParser p;
  EXPECT_EQ(events("data: " + value + "\n\n", 4096, &p), (V{value}));
  EXPECT_EQ(p.skipped(), 0u);
}

TEST(BillingSse, LineOverTheLimitSkipsItsEventOnly) {
  const std::string value(kMaxSseLine - 5, 'x');  // one byte over
  SseParser p;
  EXPECT_EQ(events("data: a\n\ndata: " + value + "\ndata: b\n\ndata: c\n\n", 4096, &p),
            (V{"a", "<none>", "c"}));
  EXPECT_EQ(p.skipped(), 1u);
  // A long comment line counts too.
  SseParser q;
  EXPECT_EQ(events(": " + std::string(kMaxSseLine, 'c') + "\ndata: b\n\ndata: c\n\n", 0, &q), (V{"<none>", "c"}));
  EXPECT_EQ(q.skipped(), 1u);
}

TEST(BillingSse, DataOverTheLimitSkipsTheEvent) {
  const std::string half(kMaxSseLine / 2, 'y');
  // Two lines joined: half + "\n" + half is one byte over.
  SseParser p;
  EXPECT_EQ(events("data: " + half + "\ndata: " + half + "\n\ndata: ok\n\n", 1000, &p), (V{"<none>", "ok"}));
  EXPECT_EQ(p.skipped(), 1u);
  // One byte less fits exactly.
  const std::string shorter(kMaxSseLine / 2 - 1, 'y');
  EXPECT_EQ(events("data: " + half + "\ndata: " + shorter + "\n\n", 1000), (V{half + "\n" + shorter}));
}

}  // namespace
}  // namespace tg::billing
