// Test helper: builds wire bytes by hand, independently of protocol/writer, so tests can check the writer
// against it and feed decoders packets of any shape, including wrong ones.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pooler::protocol::testing {

class MessageBuilder {
 public:
  MessageBuilder& byte(std::uint8_t v) {
    body_.push_back(static_cast<char>(v));
    return *this;
  }
  MessageBuilder& int16(std::int16_t v) {
    auto u = static_cast<std::uint16_t>(v);
    return byte(static_cast<std::uint8_t>(u >> 8)).byte(static_cast<std::uint8_t>(u));
  }
  MessageBuilder& int32(std::int32_t v) {
    auto u = static_cast<std::uint32_t>(v);
    return byte(static_cast<std::uint8_t>(u >> 24))
        .byte(static_cast<std::uint8_t>(u >> 16))
        .byte(static_cast<std::uint8_t>(u >> 8))
        .byte(static_cast<std::uint8_t>(u));
  }
  MessageBuilder& cstring(std::string_view s) {
    body_.append(s);
    body_.push_back('\0');
    return *this;
  }
  MessageBuilder& raw(std::string_view s) {
    body_.append(s);
    return *this;
  }

  const std::string& body() const { return body_; }

  // Type byte + Int32 length (body + 4) + body; `length_adjust` skews the length to build lying headers.
  std::string message(char type, std::int32_t length_adjust = 0) const {
    MessageBuilder out;
    out.byte(static_cast<std::uint8_t>(type)).int32(static_cast<std::int32_t>(body_.size() + 4) + length_adjust);
    return out.body_ + body_;
  }

  // Startup-phase packet: Int32 length (body + 4) + body, no type byte.
  std::string startup(std::int32_t length_adjust = 0) const {
    MessageBuilder out;
    out.int32(static_cast<std::int32_t>(body_.size() + 4) + length_adjust);
    return out.body_ + body_;
  }

 private:
  std::string body_;
};

// A StartupMessage for protocol 3.0 (or `major`.`minor`) with the given parameters.
inline std::string startup_message(std::initializer_list<std::pair<std::string_view, std::string_view>> params,
                                   int major = 3, int minor = 0) {
  MessageBuilder b;
  b.int32((major << 16) | minor);
  for (auto [k, v] : params) b.cstring(k).cstring(v);
  b.byte(0);
  return b.startup();
}

}  // namespace pooler::protocol::testing
