// The framing invariants both stream targets check: protocol::StreamScanner must report the same messages,
// captured bodies, stops and error however a byte stream is cut into chunks, and what it reports must agree
// with protocol::decode_frame walking the same bytes one whole message at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.h"
#include "protocol/stream_scanner.h"
#include "tests/fuzz/fuzz_support.h"

namespace pooler::fuzz {

// How the handler answers, as the daemon's relay handlers do: capture a few types, stop before or after some.
struct ScanPolicy {
  std::string_view capture;  // types whose bodies want_body asks for
  char stop_before = 0;      // on_start stops before each message of this type once, then lets it through
  char stop_after = 0;       // on_end stops after every message of this type
  std::size_t max_message_size = SIZE_MAX;
};

// What one scan of a whole stream reported, comparable across chunkings.
struct ScanLog {
  struct Message {
    char type;
    bool captured;   // want_body said yes
    bool truncated;  // body_truncated() at on_end
    std::string body;
    friend bool operator==(const Message&, const Message&) = default;
  };
  std::vector<char> starts;          // on_start calls that let the message through
  std::vector<Message> ends;         // on_end calls
  std::vector<std::size_t> stops;    // stream offsets at which scan() returned stopped
  std::optional<std::string> error;  // the SQLSTATE scan() failed with
  bool at_boundary = true;           // at_boundary() after the last byte (meaningless after an error)

  friend bool operator==(const ScanLog&, const ScanLog&) = default;
};

namespace detail {

struct RecordingHandler {
  const ScanPolicy& policy;
  const protocol::StreamScanner& scanner;
  ScanLog& log;
  bool held = false;     // stopped before the current message once already
  bool wanted = false;   // want_body's answer for the current message

  protocol::ScanStep on_start(char type) {
    if (type == policy.stop_before && policy.stop_before != 0 && !held) {
      held = true;
      return protocol::ScanStep::kStopBefore;
    }
    held = false;
    log.starts.push_back(type);
    return protocol::ScanStep::kContinue;
  }
  bool want_body(char type) {
    wanted = policy.capture.find(type) != std::string_view::npos;
    return wanted;
  }
  protocol::ScanStep on_end(char type, std::string_view body) {
    FUZZ_CHECK(wanted || body.empty());
    FUZZ_CHECK(!scanner.body_truncated() || body.empty());
    log.ends.push_back({type, wanted, scanner.body_truncated(), std::string(body)});
    return type == policy.stop_after && policy.stop_after != 0 ? protocol::ScanStep::kStopAfter
                                                               : protocol::ScanStep::kContinue;
  }
};

}  // namespace detail

// Scans `stream` with `scanner` in chunks whose sizes next_chunk() picks (each >= 1), resuming after every stop
// exactly where the scanner says, as the relay does.
template <class NextChunk>
ScanLog scan_in_chunks(protocol::StreamScanner& scanner, std::string_view stream, const ScanPolicy& policy,
                       NextChunk next_chunk) {
  ScanLog log;
  detail::RecordingHandler handler{policy, scanner, log};
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::size_t len = next_chunk();
    FUZZ_CHECK(len >= 1);
    if (len > stream.size() - pos) len = stream.size() - pos;
    const std::string_view chunk = stream.substr(pos, len);
    std::size_t off = 0;
    while (off < chunk.size()) {
      auto result = scanner.scan(chunk.substr(off), handler);
      if (!result) {
        FUZZ_CHECK(result.error().sqlstate == "08P01" || result.error().sqlstate == "54000");
        FUZZ_CHECK(!result.error().message.empty());
        log.error = result.error().sqlstate;
        return log;
      }
      FUZZ_CHECK(result->consumed <= chunk.size() - off);
      // Only a stop leaves bytes unscanned.
      FUZZ_CHECK(result->stopped || result->consumed == chunk.size() - off);
      off += result->consumed;
      if (result->stopped) {
        FUZZ_CHECK(scanner.at_boundary());
        log.stops.push_back(pos + off);
      }
    }
    pos += len;
  }
  log.at_boundary = scanner.at_boundary();
  return log;
}

// What the scanner should report, worked out from decode_frame.
inline ScanLog expected_scan(std::string_view stream, const ScanPolicy& policy) {
  ScanLog log;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const char type = stream[pos];
    if (type == policy.stop_before && policy.stop_before != 0) log.stops.push_back(pos);
    log.starts.push_back(type);
    auto frame = protocol::decode_frame(stream.substr(pos), policy.max_message_size);
    if (!frame) {
      log.error = frame.error().sqlstate;
      return log;
    }
    if (!frame->has_value()) {
      log.at_boundary = false;
      return log;
    }
    const protocol::Frame& f = **frame;
    const bool wanted = policy.capture.find(type) != std::string_view::npos;
    const bool truncated = wanted && f.body.size() > protocol::StreamScanner::kMaxCapture;
    log.ends.push_back({type, wanted, truncated, wanted && !truncated ? std::string(f.body) : std::string()});
    pos += f.size;
    if (type == policy.stop_after && policy.stop_after != 0) log.stops.push_back(pos);
  }
  return log;
}

// The whole check: unsplit, split at chunk boundaries drawn from `seed`, and (for streams short enough) one
// byte at a time, all through one scanner that reset() returns to the start; each must equal expected_scan.
inline void check_scanner(std::string_view stream, const ScanPolicy& policy, std::uint64_t seed) {
  const ScanLog expected = expected_scan(stream, policy);
  protocol::StreamScanner scanner(policy.max_message_size);

  const ScanLog whole = scan_in_chunks(scanner, stream, policy, [] { return SIZE_MAX; });
  FUZZ_CHECK(whole == expected);

  scanner.reset();
  Rng rng(seed);
  const ScanLog split = scan_in_chunks(scanner, stream, policy, [&rng, &stream] {
    // Mostly small pieces, so headers split at every offset; now and then a big one.
    return rng.below(4) == 0 ? rng.below(stream.size() + 1) + 1 : rng.below(9) + 1;
  });
  FUZZ_CHECK(split == whole);

  if (stream.size() <= 16 * 1024) {
    scanner.reset();
    const ScanLog bytewise = scan_in_chunks(scanner, stream, policy, [] { return std::size_t{1}; });
    FUZZ_CHECK(bytewise == whole);
  }
}

}  // namespace pooler::fuzz
