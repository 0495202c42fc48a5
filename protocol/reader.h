// Bounds-checked, big-endian reads over one message body. Every read either succeeds and advances, or fails
// (nullopt) and leaves the position where it was, so a short or lying message can never read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pooler::protocol {

class Reader {
 public:
  explicit Reader(std::string_view body) : data_(body) {}

  std::optional<std::int16_t> int16();
  std::optional<std::int32_t> int32();
  std::optional<std::uint8_t> byte();
  // A NUL-terminated String; the view excludes the NUL, which is consumed.
  std::optional<std::string_view> cstring();
  std::optional<std::string_view> bytes(std::size_t n);

  std::size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }
  // What has not been read yet, without consuming it.
  std::string_view rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

}  // namespace pooler::protocol
