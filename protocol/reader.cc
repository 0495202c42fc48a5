// Reader: network-order integers and C strings out of a message body.
#include "protocol/reader.h"

namespace pooler::protocol {

std::optional<std::int16_t> Reader::int16() {
  if (remaining() < 2) return std::nullopt;
  auto b0 = static_cast<std::uint8_t>(data_[pos_]);
  auto b1 = static_cast<std::uint8_t>(data_[pos_ + 1]);
  pos_ += 2;
  return static_cast<std::int16_t>(static_cast<std::uint16_t>((b0 << 8) | b1));
}

std::optional<std::int32_t> Reader::int32() {
  if (remaining() < 4) return std::nullopt;
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(data_[pos_ + i]);
  pos_ += 4;
  return static_cast<std::int32_t>(v);
}

std::optional<std::uint8_t> Reader::byte() {
  if (remaining() < 1) return std::nullopt;
  return static_cast<std::uint8_t>(data_[pos_++]);
}

std::optional<std::string_view> Reader::cstring() {
  auto nul = data_.find('\0', pos_);
  if (nul == std::string_view::npos) return std::nullopt;
  auto s = data_.substr(pos_, nul - pos_);
  pos_ = nul + 1;
  return s;
}

std::optional<std::string_view> Reader::bytes(std::size_t n) {
  if (remaining() < n) return std::nullopt;
  auto s = data_.substr(pos_, n);
  pos_ += n;
  return s;
}

}  // namespace pooler::protocol
