// The startup phase: the first bytes a client sends, decoded packet after packet as ClientConn does (an
// SSLRequest or GSSENCRequest is followed by the real StartupMessage). A decoded packet must encode back to
// exactly the bytes it took, must not depend on the bytes after it, and must come out the same when the
// input stops right after it; "need more" must mean that the packet really is incomplete.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "protocol/startup.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace pooler;

void put32(std::string& out, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((u >> shift) & 0xff));
}

std::int32_t be32(std::string_view s) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
  return static_cast<std::int32_t>(v);
}

// The packet's wire form, written here from the protocol documentation.
std::string encode(const protocol::StartupPacket& packet) {
  std::string body;
  std::visit(
      [&body](const auto& p) {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, protocol::SslRequest>) {
          put32(body, protocol::kSslRequestCode);
        } else if constexpr (std::is_same_v<P, protocol::GssEncRequest>) {
          put32(body, protocol::kGssEncRequestCode);
        } else if constexpr (std::is_same_v<P, protocol::CancelRequest>) {
          put32(body, protocol::kCancelRequestCode);
          put32(body, p.process_id);
          put32(body, p.secret_key);
        } else {
          put32(body, static_cast<std::int32_t>((static_cast<std::uint32_t>(p.major) << 16) |
                                                static_cast<std::uint32_t>(p.minor)));
          for (const auto& [name, value] : p.params) {
            body.append(name).push_back('\0');
            body.append(value).push_back('\0');
          }
          body.push_back('\0');
        }
      },
      packet);
  std::string out;
  put32(out, static_cast<std::int32_t>(body.size() + 4));
  return out + body;
}

void check_startup_message(const protocol::StartupMessage& m) {
  FUZZ_CHECK(m.major == 3);
  FUZZ_CHECK(m.minor >= 0 && m.minor <= 0xffff);
  const std::string* user = m.find("user");
  FUZZ_CHECK(user != nullptr && !user->empty());
  for (const auto& [name, value] : m.params) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
    // The last of duplicates wins.
    const std::string* found = m.find(name);
    FUZZ_CHECK(found != nullptr);
    const std::string* last = nullptr;
    for (const auto& [n, v] : m.params) {
      if (n == name) last = &v;
    }
    FUZZ_CHECK(found == last);
  }
}

// Checks one decode of the front of `in`; returns the bytes consumed, 0 when decoding stops here.
std::size_t check_one(std::string_view in) {
  auto decoded = protocol::decode_startup(in);

  if (in.size() < 4) {
    FUZZ_CHECK(decoded && !decoded->has_value());
    return 0;
  }
  const std::int32_t length = be32(in);
  const bool length_ok = length >= 8 && static_cast<std::size_t>(length) <= protocol::kMaxStartupPacket;
  if (!length_ok) {
    // Refused from the length word alone, before waiting for a body that may never come.
    FUZZ_CHECK(!decoded && decoded.error().sqlstate == "08P01");
    auto early = protocol::decode_startup(in.substr(0, 4));
    FUZZ_CHECK(!early && early.error().sqlstate == "08P01" && early.error().message == decoded.error().message);
    return 0;
  }
  const auto size = static_cast<std::size_t>(length);
  if (in.size() < size) {
    FUZZ_CHECK(decoded && !decoded->has_value());
    return 0;
  }
  // From here on only the packet's own bytes may matter.
  auto exact = protocol::decode_startup(in.substr(0, size));
  FUZZ_CHECK(exact.has_value() == decoded.has_value());
  auto shorter = protocol::decode_startup(in.substr(0, size - 1));
  FUZZ_CHECK(shorter && !shorter->has_value());

  if (!decoded) {
    const std::string& state = decoded.error().sqlstate;
    FUZZ_CHECK(state == "08P01" || state == "0A000");
    FUZZ_CHECK(!decoded.error().message.empty());
    FUZZ_CHECK(exact.error().sqlstate == state && exact.error().message == decoded.error().message);
    return 0;
  }
  FUZZ_CHECK(decoded->has_value() && exact->has_value());
  const protocol::DecodedStartup& d = **decoded;
  FUZZ_CHECK(d.consumed == size);
  const std::string wire = encode(d.packet);
  FUZZ_CHECK(wire == in.substr(0, size));
  FUZZ_CHECK(encode((*exact)->packet) == wire);

  const std::int32_t code = be32(in.substr(4));
  if (const auto* m = std::get_if<protocol::StartupMessage>(&d.packet)) {
    check_startup_message(*m);
  } else {
    FUZZ_CHECK(code == protocol::kSslRequestCode || code == protocol::kGssEncRequestCode ||
               code == protocol::kCancelRequestCode);
  }
  return size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libFuzzer's buffer is exactly `size` bytes, so ASan catches any read past the input.
  std::string_view rest = fuzz::as_view(data, size);
  // A client may send SSLRequest, then GSSENCRequest, then its StartupMessage; a few packets are plenty.
  for (int packet = 0; packet < 4; ++packet) {
    const std::size_t used = check_one(rest);
    if (used == 0) break;
    FUZZ_CHECK(used <= rest.size());
    rest.remove_prefix(used);
  }
  return 0;
}
