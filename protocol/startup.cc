// decode_startup: validates the first packet of a connection as strictly as PostgreSQL does.
#include "protocol/startup.h"

#include <fmt/format.h>

#include "protocol/reader.h"

namespace pooler::protocol {
namespace {

constexpr std::size_t kMinStartupPacket = 8;  // length word + code

Error violation(std::string message) { return Error{"08P01", std::move(message)}; }

// Pairs of Strings, then one zero byte that must be the packet's last byte.
std::expected<StartupMessage, Error> parse_startup_message(int major, int minor, Reader& r) {
  StartupMessage msg;
  msg.major = major;
  msg.minor = minor;
  for (;;) {
    auto name = r.cstring();
    if (!name) return std::unexpected(violation("invalid startup packet layout: expected terminator as last byte"));
    if (name->empty()) break;
    auto value = r.cstring();
    if (!value) {
      return std::unexpected(violation(fmt::format(
          "invalid startup packet layout: parameter \"{}\" has no value", *name)));
    }
    msg.params.emplace_back(std::string(*name), std::string(*value));
  }
  if (!r.at_end()) return std::unexpected(violation("invalid startup packet layout: expected terminator as last byte"));
  auto user = msg.find("user");
  if (user == nullptr || user->empty()) {
    return std::unexpected(violation("no PostgreSQL user name specified in startup packet"));
  }
  return msg;
}

}  // namespace

const std::string* StartupMessage::find(std::string_view key) const {
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->first == key) return &it->second;
  }
  return nullptr;
}

std::expected<std::optional<DecodedStartup>, Error> decode_startup(std::string_view in) {
  if (in.size() < 4) return std::nullopt;
  std::int32_t length = *Reader(in).int32();
  if (length < static_cast<std::int32_t>(kMinStartupPacket) ||
      static_cast<std::size_t>(length) > kMaxStartupPacket) {
    return std::unexpected(violation(fmt::format("invalid startup packet length {}", length)));
  }
  auto size = static_cast<std::size_t>(length);
  if (in.size() < size) return std::nullopt;

  Reader r(in.substr(4, size - 4));
  std::int32_t code = *r.int32();
  int major = static_cast<int>(static_cast<std::uint32_t>(code) >> 16);
  int minor = static_cast<int>(static_cast<std::uint32_t>(code) & 0xffff);

  auto fixed_size = [&](std::size_t expected, std::string_view what) -> std::optional<Error> {
    if (size == expected) return std::nullopt;
    return violation(fmt::format("invalid length {} of {}", size, what));
  };

  switch (code) {
    case kSslRequestCode:
      if (auto e = fixed_size(8, "SSLRequest")) return std::unexpected(*e);
      return DecodedStartup{SslRequest{}, size};
    case kGssEncRequestCode:
      if (auto e = fixed_size(8, "GSSENCRequest")) return std::unexpected(*e);
      return DecodedStartup{GssEncRequest{}, size};
    case kCancelRequestCode: {
      if (auto e = fixed_size(16, "CancelRequest")) return std::unexpected(*e);
      // The size check above guarantees both fields are there; value_or keeps GCC 12's
      // -Wmaybe-uninitialized (a false positive on optional under -O2 + sanitizers) quiet.
      const std::int32_t pid = r.int32().value_or(0);
      const std::int32_t key = r.int32().value_or(0);
      return DecodedStartup{CancelRequest{pid, key}, size};
    }
    default:
      break;
  }
  if (major == 1234) {
    return std::unexpected(violation(fmt::format("unsupported startup request code {}.{}", major, minor)));
  }
  if (major != 3) {
    return std::unexpected(Error{
        "0A000", fmt::format("unsupported frontend protocol {}.{}: server supports 3.0 to 3.0", major, minor)});
  }
  auto msg = parse_startup_message(major, minor, r);
  if (!msg) return std::unexpected(std::move(msg.error()));
  return DecodedStartup{std::move(*msg), size};
}

}  // namespace pooler::protocol
