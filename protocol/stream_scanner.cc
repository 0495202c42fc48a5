// Length validation for StreamScanner; the scanning loop itself is a template in the header.
#include "protocol/stream_scanner.h"

#include <fmt/format.h>

namespace pooler::protocol {

std::expected<void, Error> StreamScanner::finish_length() {
  std::uint32_t len = (std::uint32_t{header_[0]} << 24) | (std::uint32_t{header_[1]} << 16) |
                      (std::uint32_t{header_[2]} << 8) | std::uint32_t{header_[3]};
  // The wire length is a signed Int32: a "negative" one is a protocol violation whatever the size limit.
  if (len < 4 || len > 0x7fffffffU) {
    return std::unexpected(Error{"08P01", fmt::format("invalid message length {} for message type '{}'",
                                                      static_cast<std::int32_t>(len), type_)});
  }
  std::size_t body = len - 4;
  if (body > max_message_size_) {
    return std::unexpected(Error{"54000", fmt::format("message of type '{}' with length {} exceeds max_message_size {}",
                                                      type_, body, max_message_size_)});
  }
  remaining_ = body;
  return {};
}

}  // namespace pooler::protocol
