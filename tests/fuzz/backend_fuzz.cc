// Backend messages as the relay scans them: a server → client byte stream goes through StreamScanner whole,
// at random chunk boundaries and byte by byte, and every way must agree with the others and with decode_frame
// (scan_check.h). ErrorResponse/NoticeResponse bodies the scanner captures go to parse_error_response, as
// ServerConn does with them.
//
// Input: one knob byte, an 8-byte seed for the chunk boundaries, then the stream.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/error_response.h"
#include "protocol/frame.h"
#include "protocol/stream_scanner.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/scan_check.h"

namespace {

using namespace pooler;

// Completes a final message whose header promises more body than the input has, so bodies past
// StreamScanner::kMaxCapture (64 KiB) are reachable from small inputs.
void complete_last_message(std::string& stream, std::size_t max_message_size) {
  std::size_t pos = 0;
  for (;;) {
    auto frame = protocol::decode_frame(std::string_view(stream).substr(pos), max_message_size);
    if (!frame || !frame->has_value()) break;
    pos += (*frame)->size;
  }
  if (stream.size() - pos < protocol::kFrameHeaderSize) return;
  auto frame = protocol::decode_frame(std::string_view(stream).substr(pos), max_message_size);
  if (!frame) return;  // the header itself is bad; nothing to complete
  const auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(stream[pos + i])); };
  const std::size_t whole = 1 + ((b(1) << 24) | (b(2) << 16) | (b(3) << 8) | b(4));
  if (whole > stream.size() - pos && whole - (stream.size() - pos) <= 256 * 1024) {
    stream.append(whole - (stream.size() - pos), 'x');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(fuzz::as_view(data, size));
  const std::uint8_t knobs = in.byte();
  const std::uint64_t seed = in.u64();
  std::string_view stream = in.rest();

  static constexpr std::size_t kLimits[] = {SIZE_MAX, 0, 1, 5, 64, 1024, protocol::StreamScanner::kMaxCapture,
                                            protocol::StreamScanner::kMaxCapture + 1};
  fuzz::ScanPolicy policy;
  policy.max_message_size = kLimits[knobs & 7];
  // ServerConn captures ReadyForQuery, ParameterStatus and ErrorResponse; NoticeResponse too, for the parser.
  policy.capture = "ZSEN";
  // The relay stops after each ReadyForQuery; stopping before a type is the other half of the API.
  policy.stop_after = (knobs & 0x08) != 0 ? 'Z' : 0;
  policy.stop_before = (knobs & 0x10) != 0 ? 'E' : 0;
  std::string completed;  // only when asked: the input itself keeps ASan's bounds exact
  if ((knobs & 0x20) != 0) {
    completed = std::string(stream);
    complete_last_message(completed, policy.max_message_size);
    stream = completed;
  }

  fuzz::check_scanner(stream, policy, seed);

  // The bodies ServerConn would interpret.
  const fuzz::ScanLog log = fuzz::expected_scan(stream, policy);
  for (const auto& m : log.ends) {
    if ((m.type == 'E' || m.type == 'N') && m.captured && !m.truncated) {
      auto err = protocol::parse_error_response(m.body);
      FUZZ_CHECK(err || err.error().sqlstate == "08P01");
    }
  }
  return 0;
}
