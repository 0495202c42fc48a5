// ErrorResponse/NoticeResponse fields, both ways. Mode 0 parses an arbitrary body with parse_error_response
// and compares it with an independent reading of the field list; mode 1 builds fields from the input, writes
// them with write_error_response/write_notice_response and checks that framing and parsing give them back.
//
// Input: one mode byte; mode 0: the body; mode 1: severity byte, then NUL-separated SQLSTATE, message,
// detail, hint.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/error_response.h"
#include "protocol/frame.h"
#include "protocol/writer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace pooler;

// Field code, String, ..., then a zero byte that ends the body. nullopt when malformed.
std::optional<std::map<char, std::string>> reference_fields(std::string_view body) {
  std::map<char, std::string> fields;
  std::size_t pos = 0;
  for (;;) {
    if (pos >= body.size()) return std::nullopt;
    const char code = body[pos++];
    if (code == '\0') return pos == body.size() ? std::optional(fields) : std::nullopt;
    const std::size_t nul = body.find('\0', pos);
    if (nul == std::string_view::npos) return std::nullopt;
    fields[code] = std::string(body.substr(pos, nul - pos));  // a later duplicate wins
    pos = nul + 1;
  }
}

void check_parse(std::string_view body) {
  auto parsed = protocol::parse_error_response(body);
  auto reference = reference_fields(body);
  FUZZ_CHECK(parsed.has_value() == reference.has_value());
  if (!parsed) {
    FUZZ_CHECK(parsed.error().sqlstate == "08P01" && !parsed.error().message.empty());
    return;
  }
  auto field = [&reference](char code) {
    auto it = reference->find(code);
    return it == reference->end() ? std::string() : it->second;
  };
  // V is the non-localized severity; servers before 9.6 only send S.
  const std::string severity = field('V').empty() ? field('S') : field('V');
  FUZZ_CHECK(parsed->severity == severity);
  FUZZ_CHECK(parsed->sqlstate == field('C'));
  FUZZ_CHECK(parsed->message == field('M'));
  FUZZ_CHECK(parsed->detail == field('D'));
  FUZZ_CHECK(parsed->hint == field('H'));
}

// A String field as the writer sends it: cut at the first NUL.
std::string cut(std::string_view s) { return std::string(s.substr(0, s.find('\0'))); }

void check_round_trip(fuzz::Input& in) {
  static constexpr protocol::Severity kSeverities[] = {
      protocol::Severity::kError,   protocol::Severity::kFatal, protocol::Severity::kPanic,
      protocol::Severity::kWarning, protocol::Severity::kNotice, protocol::Severity::kInfo,
      protocol::Severity::kLog,     protocol::Severity::kDebug};
  const std::uint8_t knobs = in.byte();
  protocol::ErrorFields e;
  e.severity = kSeverities[knobs & 7];
  e.sqlstate = std::string(in.until_nul());
  e.message = std::string(in.until_nul());
  e.detail = std::string(in.until_nul());
  e.hint = std::string(in.rest());  // may hold NULs: the writer must cut there, not desynchronise the body
  const bool notice = (knobs & 8) != 0;

  std::string out = "prefix";  // builders append; what was there stays
  if (notice) {
    protocol::write_notice_response(out, e);
  } else {
    protocol::write_error_response(out, e);
  }
  FUZZ_CHECK(out.starts_with("prefix"));
  const std::string_view wire = std::string_view(out).substr(6);
  auto frame = protocol::decode_frame(wire, SIZE_MAX);
  FUZZ_CHECK(frame && frame->has_value());
  const protocol::Frame& f = **frame;
  FUZZ_CHECK(f.size == wire.size());
  FUZZ_CHECK(f.type == (notice ? 'N' : 'E'));
  check_parse(f.body);
  auto parsed = protocol::parse_error_response(f.body);
  FUZZ_CHECK(parsed.has_value());
  FUZZ_CHECK(parsed->severity == protocol::severity_name(e.severity));
  FUZZ_CHECK(parsed->sqlstate == cut(e.sqlstate));
  FUZZ_CHECK(parsed->message == cut(e.message));
  FUZZ_CHECK(parsed->detail == cut(e.detail));
  FUZZ_CHECK(parsed->hint == cut(e.hint));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(fuzz::as_view(data, size));
  if ((in.byte() & 1) == 0) {
    check_parse(in.rest());
  } else {
    check_round_trip(in);
  }
  return 0;
}
