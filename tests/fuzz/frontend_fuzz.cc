// Frontend messages as a client sends them after the startup packet. The bytes are framed the way ClientConn
// frames them during authentication and on the admin console (decode_frame, one message at a time, with a
// max_message_size), and the way the relay scans them once linked (StreamScanner, checked against decode_frame
// in scan_check.h). Every PasswordMessage-typed ('p') body goes through the parsers ClientConn picks from (
// PasswordMessage, SASLInitialResponse, SASLResponse) and md5 verification, each against an independent
// reading of the same bytes.
//
// Input: one knob byte, an 8-byte seed for the scanner's chunk boundaries, then the stream.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/auth_messages.h"
#include "protocol/frame.h"
#include "protocol/md5_auth.h"
#include "protocol/scram.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/scan_check.h"

namespace {

using namespace pooler;

std::int32_t be32(std::string_view s) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
  return static_cast<std::int32_t>(v);
}

bool within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

constexpr std::string_view kUser = "app";
constexpr std::array<std::uint8_t, 4> kSalt{0x01, 0x02, 0xfe, 0xff};

// The md5 response for a stored plain password or md5 secret, worked out here rather than by md5_verify.
std::string md5_response(std::string_view stored) {
  const std::string inner = protocol::is_md5_secret(stored) ? std::string(stored.substr(3))
                                                            : protocol::md5_hex(std::string(stored) + std::string(kUser));
  std::string salted = inner;
  for (auto b : kSalt) salted.push_back(static_cast<char>(b));
  return "md5" + protocol::md5_hex(salted);
}

bool reference_is_md5_secret(std::string_view s) {
  if (s.size() != 35 || s.substr(0, 3) != "md5") return false;
  for (char c : s.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void check_password_message(std::string_view body) {
  auto pw = protocol::parse_password_message(body);
  // One String filling the body: exactly one NUL, at the end.
  const bool well_formed = !body.empty() && body.find('\0') == body.size() - 1;
  FUZZ_CHECK(pw.has_value() == well_formed);
  if (!pw) {
    FUZZ_CHECK(pw.error().sqlstate == "08P01");
    return;
  }
  FUZZ_CHECK(pw->data() == body.data() && pw->size() + 1 == body.size());

  FUZZ_CHECK(protocol::is_md5_secret(*pw) == reference_is_md5_secret(*pw));
  // As a response to our challenge: right only when it is the right answer.
  static const std::string plain = "secret";
  static const std::string secret = protocol::md5_secret(plain, kUser);
  static const std::string right = md5_response(plain);
  FUZZ_CHECK(md5_response(secret) == right);
  FUZZ_CHECK(protocol::md5_verify(plain, kUser, kSalt, *pw) == (*pw == right));
  FUZZ_CHECK(protocol::md5_verify(secret, kUser, kSalt, *pw) == (*pw == right));
  // As a stored password: its right answer passes unless it is a SCRAM secret, which never answers md5.
  FUZZ_CHECK(protocol::md5_verify(*pw, kUser, kSalt, md5_response(*pw)) == !protocol::is_scram_secret(*pw));
}

void check_sasl_initial_response(std::string_view body) {
  auto init = protocol::parse_sasl_initial_response(body);
  // String mechanism, Int32 length (-1 or the exact number of bytes that follow), Byte_n.
  std::optional<std::pair<std::string_view, std::string_view>> reference;
  if (auto nul = body.find('\0'); nul != std::string_view::npos && body.size() - nul - 1 >= 4) {
    const std::int32_t len = be32(body.substr(nul + 1, 4));
    const std::string_view after = body.substr(nul + 5);
    if (len == -1 && after.empty()) reference.emplace(body.substr(0, nul), std::string_view{});
    if (len >= 0 && static_cast<std::size_t>(len) == after.size()) reference.emplace(body.substr(0, nul), after);
  }
  FUZZ_CHECK(init.has_value() == reference.has_value());
  if (!init) {
    FUZZ_CHECK(init.error().sqlstate == "08P01");
    return;
  }
  FUZZ_CHECK(init->mechanism == reference->first && init->data == reference->second);
  FUZZ_CHECK(within(init->mechanism, body) && (init->data.empty() || within(init->data, body)));

  // ClientConn hands the data to a ScramServer when the mechanism is SCRAM-SHA-256.
  if (init->mechanism == protocol::kScramSha256) {
    static const protocol::ScramSecret kSecret = protocol::make_scram_secret("secret", "0123456789abcdef", 16);
    protocol::ScramServer server(kSecret);
    auto first = server.handle_client_first(init->data);
    FUZZ_CHECK(first || !first.error().sqlstate.empty());
    FUZZ_CHECK(!server.authenticated());
  }
}

void check_auth_bodies(std::string_view body) {
  check_password_message(body);
  check_sasl_initial_response(body);
  auto resp = protocol::parse_sasl_response(body);
  FUZZ_CHECK(resp && resp->data() == body.data() && resp->size() == body.size());
}

// ClientConn's loop: whole messages off the front of the buffer until one is incomplete or bad.
void check_decode_frame(std::string_view stream, std::size_t max) {
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::string_view in = stream.substr(pos);
    auto frame = protocol::decode_frame(in, max);
    if (in.size() < protocol::kFrameHeaderSize) {
      FUZZ_CHECK(frame && !frame->has_value());
      return;
    }
    const std::int32_t length = be32(in.substr(1, 4));
    if (length < 4) {
      FUZZ_CHECK(!frame && frame.error().sqlstate == "08P01");
      return;
    }
    const std::size_t body = static_cast<std::size_t>(length) - 4;
    if (body > max) {
      FUZZ_CHECK(!frame && frame.error().sqlstate == "54000");
      FUZZ_CHECK(frame.error().message.find("exceeds max_message_size") != std::string::npos);
      return;
    }
    FUZZ_CHECK(frame.has_value());
    if (in.size() - protocol::kFrameHeaderSize < body) {
      FUZZ_CHECK(!frame->has_value());
      return;
    }
    FUZZ_CHECK(frame->has_value());
    const protocol::Frame& f = **frame;
    FUZZ_CHECK(f.type == in[0]);
    FUZZ_CHECK(f.size == protocol::kFrameHeaderSize + body && f.body.size() == body && f.size <= in.size());
    FUZZ_CHECK(f.body.data() == in.data() + protocol::kFrameHeaderSize);
    // One byte short is "need more", never an error or a shorter frame.
    auto shorter = protocol::decode_frame(in.substr(0, f.size - 1), max);
    FUZZ_CHECK(shorter && !shorter->has_value());
    if (f.type == 'p') check_auth_bodies(f.body);
    pos += f.size;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(fuzz::as_view(data, size));
  const std::uint8_t knobs = in.byte();
  const std::uint64_t seed = in.u64();
  const std::string_view stream = in.rest();

  // ClientConn's kMaxAuthMessage, the config's smallest and default max_message_size, and the extremes.
  static constexpr std::size_t kLimits[] = {16 * 1024, 1024, 1024 * 1024 * 1024, 0, 4, 100, SIZE_MAX, 2147483643};
  const std::size_t max = kLimits[knobs & 7];

  check_decode_frame(stream, max);

  // The relay holds back Terminate (stops before 'X') and the tests stop after Sync as a request boundary.
  fuzz::ScanPolicy policy;
  policy.max_message_size = max;
  policy.capture = (knobs & 0x08) != 0 ? "QPBp" : "";
  policy.stop_before = 'X';
  policy.stop_after = (knobs & 0x10) != 0 ? 'S' : 0;
  fuzz::check_scanner(stream, policy, seed);
  return 0;
}
