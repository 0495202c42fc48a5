// decode_frame: the header check that guards every buffer the relay fills.
#include "protocol/frame.h"

#include <fmt/format.h>

#include "protocol/reader.h"

namespace pooler::protocol {
namespace {

// Control bytes in an error message would garble logs and the client's terminal.
std::string printable_type(char type) {
  auto u = static_cast<unsigned char>(type);
  if (u >= 0x20 && u < 0x7f) return fmt::format("'{}'", type);
  return fmt::format("0x{:02x}", u);
}

}  // namespace

std::expected<std::optional<Frame>, Error> decode_frame(std::string_view in, std::size_t max_message_size) {
  if (in.size() < kFrameHeaderSize) return std::nullopt;
  Reader header(in.substr(0, kFrameHeaderSize));
  char type = static_cast<char>(*header.byte());
  std::int32_t length = *header.int32();
  if (length < 4) {
    return std::unexpected(Error{"08P01", fmt::format("invalid message length {} for message of type {}",
                                                      length, printable_type(type))});
  }
  auto body_size = static_cast<std::size_t>(length) - 4;
  if (body_size > max_message_size) {
    return std::unexpected(Error{"54000", fmt::format("message of type {} with length {} exceeds max_message_size {}",
                                                      printable_type(type), body_size, max_message_size)});
  }
  auto size = kFrameHeaderSize + body_size;
  if (in.size() < size) return std::nullopt;
  return Frame{type, in.substr(kFrameHeaderSize, body_size), size};
}

}  // namespace pooler::protocol
