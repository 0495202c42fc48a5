// StreamScanner: message boundaries, stops and captured bodies in a v3 stream fed in arbitrary chunks,
// checked against hand-built bytes and a small reference decoder.
#include "protocol/stream_scanner.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using testing::MessageBuilder;

// One handler call as the test saw it.
struct Event {
  char kind;  // 's' = on_start that let the message through, 'e' = on_end
  char type;
  std::string body;        // on_end only
  bool truncated = false;  // body_truncated() during on_end
  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << (e.kind == 's' ? "start '" : "end '") << e.type << "'";
  if (e.kind == 'e') os << " body=" << ::testing::PrintToString(e.body) << (e.truncated ? " truncated" : "");
  return os;
}

Event started(char type) { return {'s', type, {}, false}; }
Event ended(char type, std::string body = {}, bool truncated = false) { return {'e', type, std::move(body), truncated}; }

// A handler that records every call; which types it captures or stops at is set per test.
struct Recorder {
  explicit Recorder(const StreamScanner& s, std::string w = "", std::string before = "", std::string after = "")
      : scanner(&s), want(std::move(w)), stop_before(std::move(before)), stop_after(std::move(after)) {}

  const StreamScanner* scanner;
  std::string want;         // types whose body is wanted
  std::string stop_before;  // types to stop before, once per message
  std::string stop_after;   // types to stop after
  std::vector<Event> events;
  int stops_before = 0;
  int want_calls = 0;
  bool resuming_ = false;  // the last on_start stopped, so the next one is the same message again

  ScanStep on_start(char type) {
    if (!resuming_ && stop_before.find(type) != std::string::npos) {
      resuming_ = true;
      ++stops_before;
      return ScanStep::kStopBefore;
    }
    resuming_ = false;
    events.push_back(started(type));
    return ScanStep::kContinue;
  }
  bool want_body(char type) {
    ++want_calls;
    return want.find(type) != std::string::npos;
  }
  ScanStep on_end(char type, std::string_view body) {
    events.push_back(ended(type, std::string(body), scanner != nullptr && scanner->body_truncated()));
    return stop_after.find(type) != std::string::npos ? ScanStep::kStopAfter : ScanStep::kContinue;
  }
};

// A message as the reference decoder sees it, with its place in the stream.
struct Msg {
  char type;
  std::string body;
  std::size_t offset;  // of the type byte
  std::size_t end;     // one past the last body byte
};

// Deliberately naive: the whole stream at once, lengths trusted.
std::vector<Msg> reference_decode(std::string_view s) {
  std::vector<Msg> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::uint32_t len = 0;
    for (std::size_t i = 1; i <= 4; ++i) len = (len << 8) | static_cast<unsigned char>(s[pos + i]);
    std::size_t end = pos + 1 + len;
    out.push_back({s[pos], std::string(s.substr(pos + 5, len - 4)), pos, end});
    pos = end;
  }
  return out;
}

// The events a Recorder with this `want` should see for these messages.
std::vector<Event> expected_events(const std::vector<Msg>& msgs, std::string_view want) {
  std::vector<Event> out;
  for (const auto& m : msgs) {
    out.push_back(started(m.type));
    bool wanted = want.find(m.type) != std::string_view::npos;
    bool truncated = wanted && m.body.size() > StreamScanner::kMaxCapture;
    out.push_back(ended(m.type, wanted && !truncated ? m.body : std::string{}, truncated));
  }
  return out;
}

// Where the stream lies after each scan() call, and where the scanner stopped.
struct FeedLog {
  std::vector<std::size_t> stops;        // stream offsets at which a scan stopped
  std::vector<std::size_t> return_at;    // stream offset after every scan() call
  std::vector<bool> boundary_at_return;  // at_boundary() after every scan() call
};

// Feeds `stream` cut at `cuts` (ascending offsets) the way the relay does: after a stop it scans the rest of
// the same chunk again. Fails the test on any error or on a chunk not fully consumed without a stop.
FeedLog feed(StreamScanner& scanner, Recorder& rec, std::string_view stream, const std::vector<std::size_t>& cuts) {
  FeedLog log;
  std::size_t from = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    std::size_t to = i < cuts.size() ? cuts[i] : stream.size();
    std::string_view chunk = stream.substr(from, to - from);
    std::size_t base = from;
    for (int guard = 0;; ++guard) {
      if (guard > 1000) {
        ADD_FAILURE() << "scanner keeps stopping at offset " << base;
        return log;
      }
      auto r = scanner.scan(chunk, rec);
      if (!r) {
        ADD_FAILURE() << "unexpected error " << r.error().sqlstate << ": " << r.error().message;
        return log;
      }
      log.return_at.push_back(base + r->consumed);
      log.boundary_at_return.push_back(scanner.at_boundary());
      if (!r->stopped) {
        EXPECT_EQ(r->consumed, chunk.size()) << "chunk at " << base << " not consumed without a stop";
        break;
      }
      log.stops.push_back(base + r->consumed);
      chunk.remove_prefix(r->consumed);
      base += r->consumed;
      if (chunk.empty()) break;
    }
    from = to;
  }
  return log;
}

std::string query(std::string_view sql) { return MessageBuilder().cstring(sql).message('Q'); }
std::string ready(char status) { return MessageBuilder().byte(static_cast<std::uint8_t>(status)).message('Z'); }
std::string command_complete(std::string_view tag) { return MessageBuilder().cstring(tag).message('C'); }
std::string terminate() { return MessageBuilder().message('X'); }
std::string error_response() {
  return MessageBuilder()
      .byte('S').cstring("ERROR")
      .byte('C').cstring("42P01")
      .byte('M').cstring("relation \"nope\" does not exist")
      .byte(0)
      .message('E');
}
std::string header(char type, std::int32_t length) {
  return MessageBuilder().byte(static_cast<std::uint8_t>(type)).int32(length).body();
}

// A server reply to a simple query: CommandComplete, ErrorResponse, ReadyForQuery.
std::string three_message_stream() { return command_complete("SELECT 1") + error_response() + ready('E'); }

// Several messages in one chunk: every start and end in order, wanted bodies captured, all bytes consumed.
TEST(ProtocolStreamScannerTest, WholeStreamInOneChunk) {
  std::string stream = query("SELECT 1") + command_complete("SELECT 1") + error_response() + ready('I');
  StreamScanner scanner;
  Recorder rec(scanner, "EZ");
  auto r = scanner.scan(stream, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->consumed, stream.size());
  EXPECT_FALSE(r->stopped);
  EXPECT_TRUE(scanner.at_boundary());
  EXPECT_EQ(rec.events, expected_events(reference_decode(stream), "EZ"));
  EXPECT_EQ(rec.events.back(), ended('Z', "I"));
  EXPECT_EQ(rec.want_calls, 4);
}

// The same stream one byte per scan() yields the same events as one chunk.
TEST(ProtocolStreamScannerTest, OneByteAtATime) {
  std::string stream = query("SELECT 1") + command_complete("SELECT 1") + error_response() + ready('I');
  StreamScanner scanner;
  Recorder rec(scanner, "EZ");
  for (char c : stream) {
    auto r = scanner.scan(std::string_view(&c, 1), rec);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->consumed, 1u);
    EXPECT_FALSE(r->stopped);
  }
  EXPECT_EQ(rec.events, expected_events(reference_decode(stream), "EZ"));
}

// Every way of cutting a 3-message stream into three chunks (empty ones included) gives identical events.
TEST(ProtocolStreamScannerTest, EverySplitOfThreeMessages) {
  std::string stream = three_message_stream();
  auto expected = expected_events(reference_decode(stream), "EZ");
  ASSERT_EQ(expected.size(), 6u);
  for (std::size_t i = 0; i <= stream.size(); ++i) {
    for (std::size_t j = i; j <= stream.size(); ++j) {
      StreamScanner scanner;
      Recorder rec(scanner, "EZ");
      auto log = feed(scanner, rec, stream, {i, j});
      ASSERT_EQ(rec.events, expected) << "cut at " << i << " and " << j;
      ASSERT_TRUE(log.stops.empty());
      ASSERT_TRUE(scanner.at_boundary());
    }
  }
}

// Terminate (length 4) ends on its header alone, with an empty body even when wanted and no truncation.
TEST(ProtocolStreamScannerTest, ZeroLengthBodyEndsOnHeader) {
  std::string x = terminate();
  ASSERT_EQ(x, std::string("X\0\0\0\4", 5));
  StreamScanner scanner;
  Recorder rec(scanner, "X");
  auto r = scanner.scan(x, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->consumed, 5u);
  EXPECT_EQ(rec.events, (std::vector<Event>{started('X'), ended('X')}));
  EXPECT_TRUE(scanner.at_boundary());
}

// Empty and one-byte bodies back to back (Sync, ReadyForQuery, Terminate) keep the stream in step.
TEST(ProtocolStreamScannerTest, EmptyAndOneByteBodiesBackToBack) {
  std::string stream = MessageBuilder().message('S') + ready('T') + terminate() + ready('I');
  StreamScanner scanner;
  Recorder rec(scanner, "SZX");
  auto r = scanner.scan(stream, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->consumed, stream.size());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('S'), ended('S'), started('Z'), ended('Z', "T"), started('X'), ended('X'),
                                            started('Z'), ended('Z', "I")}));
}

// An empty chunk consumes nothing and calls nothing.
TEST(ProtocolStreamScannerTest, EmptyChunk) {
  StreamScanner scanner;
  Recorder rec(scanner);
  auto r = scanner.scan({}, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->consumed, 0u);
  EXPECT_FALSE(r->stopped);
  EXPECT_TRUE(rec.events.empty());
  EXPECT_TRUE(scanner.at_boundary());
}

// Unwanted bodies reach on_end empty and are not reported as truncated.
TEST(ProtocolStreamScannerTest, UnwantedBodyIsEmpty) {
  std::string stream = query("SELECT 1") + ready('I');
  StreamScanner scanner;
  Recorder rec(scanner, "Z");
  ASSERT_TRUE(scanner.scan(stream, rec).has_value());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('Q'), ended('Q'), started('Z'), ended('Z', "I")}));
}

// kStopBefore on Terminate leaves consumed at Terminate's offset; rescanning from there delivers it.
TEST(ProtocolStreamScannerTest, StopBeforeLeavesTypeByteUnconsumed) {
  std::string q = query("SELECT 1");
  std::string stream = q + terminate() + query("SELECT 2");
  StreamScanner scanner;
  Recorder rec(scanner, "Q", "X");
  auto r = scanner.scan(stream, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->consumed, q.size());
  EXPECT_TRUE(scanner.at_boundary());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('Q'), ended('Q', std::string("SELECT 1\0", 9))}));

  auto rest = std::string_view(stream).substr(r->consumed);
  auto r2 = scanner.scan(rest, rec);
  ASSERT_TRUE(r2.has_value());
  EXPECT_FALSE(r2->stopped);
  EXPECT_EQ(r2->consumed, rest.size());
  EXPECT_EQ(rec.stops_before, 1);
  EXPECT_EQ(rec.events, (std::vector<Event>{started('Q'), ended('Q', std::string("SELECT 1\0", 9)), started('X'), ended('X'),
                                            started('Q'), ended('Q', std::string("SELECT 2\0", 9))}));
}

// kStopBefore on the first byte of a chunk consumes nothing.
TEST(ProtocolStreamScannerTest, StopBeforeAtChunkStart) {
  std::string stream = terminate();
  StreamScanner scanner;
  Recorder rec(scanner, "", "X");
  auto r = scanner.scan(stream, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->consumed, 0u);
  EXPECT_TRUE(rec.events.empty());
  auto r2 = scanner.scan(stream, rec);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->consumed, stream.size());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('X'), ended('X')}));
}

// kStopAfter at ReadyForQuery stops right after it; the remainder then scans from the next type byte.
TEST(ProtocolStreamScannerTest, StopAfterReadyForQueryThenContinue) {
  std::string first = command_complete("BEGIN") + ready('T');
  std::string stream = first + command_complete("COMMIT") + ready('I');
  StreamScanner scanner;
  Recorder rec(scanner, "Z", "", "Z");
  auto r = scanner.scan(stream, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->consumed, first.size());
  EXPECT_TRUE(scanner.at_boundary());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('C'), ended('C'), started('Z'), ended('Z', "T")}));

  auto rest = std::string_view(stream).substr(r->consumed);
  auto r2 = scanner.scan(rest, rec);
  ASSERT_TRUE(r2.has_value());
  EXPECT_TRUE(r2->stopped);
  EXPECT_EQ(r2->consumed, rest.size());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('C'), ended('C'), started('Z'), ended('Z', "T"), started('C'), ended('C'),
                                            started('Z'), ended('Z', "I")}));
}

// kStopAfter on an empty-body message stops right after its 5 header bytes.
TEST(ProtocolStreamScannerTest, StopAfterEmptyBody) {
  std::string stream = MessageBuilder().message('S') + query("SELECT 1");
  StreamScanner scanner;
  Recorder rec(scanner, "", "", "S");
  auto r = scanner.scan(stream, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->consumed, 5u);
  EXPECT_EQ(rec.events, (std::vector<Event>{started('S'), ended('S')}));
}

// Fed byte by byte, at_boundary() is true exactly at the offsets between messages.
TEST(ProtocolStreamScannerTest, AtBoundaryOnlyBetweenMessages) {
  std::string stream = three_message_stream() + terminate();
  std::set<std::size_t> boundaries;
  for (const auto& m : reference_decode(stream)) boundaries.insert(m.end);
  StreamScanner scanner;
  Recorder rec(scanner);
  EXPECT_TRUE(scanner.at_boundary());
  for (std::size_t i = 0; i < stream.size(); ++i) {
    ASSERT_TRUE(scanner.scan(std::string_view(stream).substr(i, 1), rec).has_value());
    EXPECT_EQ(scanner.at_boundary(), boundaries.contains(i + 1)) << "after byte " << i;
  }
}

// A wanted body split over three chunks, the cuts inside the header and the body, arrives whole.
TEST(ProtocolStreamScannerTest, CapturedBodyStraddlesChunks) {
  std::string e = error_response();
  std::string body = e.substr(5);
  StreamScanner scanner;
  Recorder rec(scanner, "E");
  feed(scanner, rec, e, {3, 20});
  EXPECT_EQ(rec.events, (std::vector<Event>{started('E'), ended('E', body)}));
}

// A wanted body one byte over kMaxCapture reaches on_end empty with body_truncated(); the next one is intact.
TEST(ProtocolStreamScannerTest, BodyOverMaxCaptureIsTruncated) {
  std::string big = MessageBuilder().raw(std::string(StreamScanner::kMaxCapture + 1, 'x')).message('E');
  std::string stream = big + ready('I');
  StreamScanner scanner;
  Recorder rec(scanner, "EZ");
  std::vector<std::size_t> cuts;
  for (std::size_t at = 4096; at < stream.size(); at += 4096) cuts.push_back(at);
  feed(scanner, rec, stream, cuts);
  EXPECT_EQ(rec.events, (std::vector<Event>{started('E'), ended('E', "", true), started('Z'), ended('Z', "I")}));
  EXPECT_FALSE(scanner.body_truncated());
  EXPECT_TRUE(scanner.at_boundary());
}

// A body of exactly kMaxCapture bytes is still captured.
TEST(ProtocolStreamScannerTest, BodyOfExactlyMaxCaptureIsCaptured) {
  std::string body(StreamScanner::kMaxCapture, 'y');
  std::string stream = MessageBuilder().raw(body).message('E');
  StreamScanner scanner;
  Recorder rec(scanner, "E");
  feed(scanner, rec, stream, {1000, 40000});
  EXPECT_EQ(rec.events, (std::vector<Event>{started('E'), ended('E', body)}));
}

// Length 3 and length 0 are protocol violations (08P01), even with the header split; nothing is delivered.
TEST(ProtocolStreamScannerTest, LengthBelowFourIs08P01) {
  for (std::int32_t length : {3, 0}) {
    std::string h = header('Q', length);
    StreamScanner scanner;
    Recorder rec(scanner, "Q");
    auto r1 = scanner.scan(std::string_view(h).substr(0, 3), rec);
    ASSERT_TRUE(r1.has_value()) << length;
    auto r2 = scanner.scan(std::string_view(h).substr(3), rec);
    ASSERT_FALSE(r2.has_value()) << length;
    EXPECT_EQ(r2.error().sqlstate, "08P01");
    EXPECT_NE(r2.error().message.find("'Q'"), std::string::npos) << r2.error().message;
    EXPECT_EQ(rec.events, (std::vector<Event>{started('Q')}));
    EXPECT_EQ(rec.want_calls, 0);
  }
}

// A bad header after a good message in the same chunk: the good message is delivered, then the error.
TEST(ProtocolStreamScannerTest, ErrorAfterGoodMessageInSameChunk) {
  std::string stream = ready('I') + header('Z', 3);
  StreamScanner scanner;
  Recorder rec(scanner, "Z");
  auto r = scanner.scan(stream, rec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().sqlstate, "08P01");
  EXPECT_EQ(rec.events, (std::vector<Event>{started('Z'), ended('Z', "I"), started('Z')}));
}

// With a finite max_message_size, negative lengths read as huge unsigned ones and fail as 54000.
TEST(ProtocolStreamScannerTest, NegativeLengthWithLimitIsProtocolViolation) {
  for (std::int32_t length : {-1, std::numeric_limits<std::int32_t>::min()}) {
    StreamScanner scanner(1 << 20);
    Recorder rec(scanner);
    auto r = scanner.scan(header('Q', length), rec);
    ASSERT_FALSE(r.has_value()) << length;
    EXPECT_EQ(r.error().sqlstate, "08P01");
    EXPECT_EQ(rec.want_calls, 0);
  }
}

// With the default max_message_size (SIZE_MAX, what server connections use) a negative length such as
// 0xFFFFFFFF is still a protocol violation, not a 4 GiB body.
TEST(ProtocolStreamScannerTest, NegativeLengthWithDefaultLimitIsRejected) {
  for (std::int32_t length : {-1, std::numeric_limits<std::int32_t>::min()}) {
    StreamScanner scanner;
    Recorder rec(scanner);
    auto r = scanner.scan(header('Z', length) + ready('I'), rec);
    ASSERT_FALSE(r.has_value()) << length << ": accepted, at_boundary=" << scanner.at_boundary()
                                << ", events=" << rec.events.size();
    EXPECT_EQ(r.error().sqlstate, "08P01");
  }
}

// A body of exactly max_message_size passes; one byte more is refused from the 5 header bytes alone.
TEST(ProtocolStreamScannerTest, MaxMessageSizeBoundary) {
  constexpr std::size_t kMax = 100;
  std::string ok = MessageBuilder().raw(std::string(kMax, 'a')).message('D');
  StreamScanner scanner(kMax);
  Recorder rec(scanner, "D");
  auto r = scanner.scan(ok, rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->consumed, ok.size());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('D'), ended('D', std::string(kMax, 'a'))}));

  StreamScanner over(kMax);
  Recorder rec2(over, "D");
  auto bad = over.scan(header('D', static_cast<std::int32_t>(kMax + 1 + 4)), rec2);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().sqlstate, "54000");
  EXPECT_EQ(rec2.want_calls, 0);
}

// set_max_message_size applies to the next header, also for a header near INT32_MAX.
TEST(ProtocolStreamScannerTest, SetMaxMessageSizeRefusesHugeHeader) {
  StreamScanner scanner;
  scanner.set_max_message_size(1 << 20);
  Recorder rec(scanner);
  auto r = scanner.scan(header('Q', std::numeric_limits<std::int32_t>::max()), rec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().sqlstate, "54000");
}

// reset() after an error makes the scanner usable again from a fresh message.
TEST(ProtocolStreamScannerTest, ResetAfterError) {
  StreamScanner scanner;
  Recorder rec(scanner, "Z");
  ASSERT_FALSE(scanner.scan(header('Q', 0), rec).has_value());
  scanner.reset();
  EXPECT_TRUE(scanner.at_boundary());
  rec.events.clear();
  auto r = scanner.scan(ready('I'), rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(rec.events, (std::vector<Event>{started('Z'), ended('Z', "I")}));
}

// reset() mid-message (header half read, or body half captured) drops it; the next message stands alone.
TEST(ProtocolStreamScannerTest, ResetMidMessage) {
  std::string e = error_response();
  for (std::size_t cut : {std::size_t{3}, std::size_t{12}}) {
    StreamScanner scanner;
    Recorder rec(scanner, "EZ");
    ASSERT_TRUE(scanner.scan(std::string_view(e).substr(0, cut), rec).has_value());
    EXPECT_FALSE(scanner.at_boundary());
    scanner.reset();
    EXPECT_TRUE(scanner.at_boundary());
    EXPECT_FALSE(scanner.body_truncated());
    rec.events.clear();
    ASSERT_TRUE(scanner.scan(ready('I') + e, rec).has_value());
    EXPECT_EQ(rec.events, (std::vector<Event>{started('Z'), ended('Z', "I"), started('E'), ended('E', e.substr(5))}));
  }
}

// reset() clears body_truncated() left by an oversized capture.
TEST(ProtocolStreamScannerTest, ResetClearsTruncated) {
  std::string big = MessageBuilder().raw(std::string(StreamScanner::kMaxCapture + 1, 'x')).message('E');
  StreamScanner scanner;
  Recorder rec(scanner, "E");
  ASSERT_TRUE(scanner.scan(big, rec).has_value());
  EXPECT_TRUE(scanner.body_truncated());
  scanner.reset();
  EXPECT_FALSE(scanner.body_truncated());
}

// Random valid streams cut at random points, with random wanted and stop types, match the reference decoder:
// same events, a stop at each stop type's offset (before) or end (after), at_boundary() exactly between messages.
TEST(ProtocolStreamScannerTest, RandomStreamsMatchReference) {
  constexpr std::string_view kTypes = "QPBEDSZCTXKR123n";
  for (std::uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };

    std::string stream;
    std::size_t count = pick(1, 30);
    for (std::size_t i = 0; i < count; ++i) {
      std::size_t roll = pick(0, 99);
      std::size_t size = roll < 60 ? pick(0, 8) : roll < 95 ? pick(9, 200) : roll < 99 ? pick(201, 3000)
                                                                          : StreamScanner::kMaxCapture + pick(0, 2);
      std::string body(size, '\0');
      for (char& c : body) c = static_cast<char>(pick(0, 255));
      stream += MessageBuilder().raw(body).message(kTypes[pick(0, kTypes.size() - 1)]);
    }

    auto some_types = [&](std::size_t n) {
      std::string s;
      for (std::size_t i = 0; i < n; ++i) s += kTypes[pick(0, kTypes.size() - 1)];
      return s;
    };
    StreamScanner scanner;
    std::string want = some_types(6);
    std::string stop_before = some_types(2);
    std::string stop_after = some_types(2);
    Recorder rec(scanner, want, stop_before, stop_after);

    std::set<std::size_t> cut_set;
    std::size_t ncuts = pick(0, std::min<std::size_t>(stream.size(), 200));
    for (std::size_t i = 0; i < ncuts; ++i) cut_set.insert(pick(0, stream.size()));
    FeedLog log = feed(scanner, rec, stream, {cut_set.begin(), cut_set.end()});

    auto msgs = reference_decode(stream);
    std::vector<std::size_t> expected_stops;
    std::set<std::size_t> boundaries{0};
    for (const auto& m : msgs) {
      if (rec.stop_before.find(m.type) != std::string::npos) expected_stops.push_back(m.offset);
      if (rec.stop_after.find(m.type) != std::string::npos) expected_stops.push_back(m.end);
      boundaries.insert(m.end);
    }
    ASSERT_EQ(rec.events, expected_events(msgs, rec.want)) << "seed " << seed;
    ASSERT_EQ(log.stops, expected_stops) << "seed " << seed;
    for (std::size_t i = 0; i < log.return_at.size(); ++i) {
      ASSERT_EQ(log.boundary_at_return[i], boundaries.contains(log.return_at[i]))
          << "seed " << seed << " offset " << log.return_at[i];
    }
  }
}

}  // namespace
}  // namespace pooler::protocol
