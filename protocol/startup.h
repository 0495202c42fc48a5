// The startup phase: the first packet a client sends, which has no type byte (Int32 length, Int32 code).
// It is an SSLRequest, a GSSENCRequest, a CancelRequest or a StartupMessage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/error.h"

namespace pooler::protocol {

// Whole packet, length word included. PostgreSQL allows 10000; a little more costs nothing.
inline constexpr std::size_t kMaxStartupPacket = 10 * 1024;

// The request codes live in major version 1234, which no real protocol will ever use.
inline constexpr std::int32_t kCancelRequestCode = (1234 << 16) | 5678;
inline constexpr std::int32_t kSslRequestCode = (1234 << 16) | 5679;
inline constexpr std::int32_t kGssEncRequestCode = (1234 << 16) | 5680;

struct SslRequest {};
struct GssEncRequest {};
struct CancelRequest {
  std::int32_t process_id;
  std::int32_t secret_key;
};

struct StartupMessage {
  int major = 3;
  int minor = 0;  // > 0 is accepted; the daemon answers NegotiateProtocolVersion
  // In wire order, duplicates kept; includes "user", "database", "options", "_pq_.*" protocol options, ...
  std::vector<std::pair<std::string, std::string>> params;

  // The value of `key`, nullptr if absent. With duplicates, the last one wins, as in PostgreSQL.
  [[nodiscard]] const std::string* find(std::string_view key) const;
};

using StartupPacket = std::variant<SslRequest, GssEncRequest, CancelRequest, StartupMessage>;

struct DecodedStartup {
  StartupPacket packet;
  std::size_t consumed;  // bytes of `in` the packet took; the next packet starts there
};

// Decodes one packet from the front of `in`, which may hold part of a packet or more than one.
// nullopt = need more bytes. The length is checked as soon as its 4 bytes are there.
// Errors: 08P01 for a length < 8 or > kMaxStartupPacket, a wrong length for a fixed-size request, an unknown
// 1234.xxxx request code, a malformed parameter list, or no (or an empty) "user"; 0A000 for a major
// version other than 3.
[[nodiscard]] std::expected<std::optional<DecodedStartup>, Error> decode_startup(std::string_view in);

}  // namespace pooler::protocol
