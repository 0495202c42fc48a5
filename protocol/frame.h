// Framing of regular messages (everything after the startup phase): Byte1 type, Int32 length that counts
// itself but not the type byte, then the body.
#pragma once

#include <cstddef>
#include <expected>
#include <optional>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

inline constexpr std::size_t kFrameHeaderSize = 5;

struct Frame {
  char type;
  std::string_view body;  // points into the buffer given to decode_frame
  std::size_t size;       // whole message on the wire: 1 + 4 + body.size()
};

// Decodes one message from the front of `in`; nullopt means `in` does not hold a whole message yet.
// Errors come from the 5-byte header alone, before the body arrives, so a peer cannot make us buffer a
// huge body: 08P01 for a length below 4; 54000 when the body (length - 4) exceeds max_message_size, with
// the message "message of type 'Q' with length <body bytes> exceeds max_message_size <max>".
[[nodiscard]] std::expected<std::optional<Frame>, Error> decode_frame(std::string_view in,
                                                                      std::size_t max_message_size);

}  // namespace pooler::protocol
