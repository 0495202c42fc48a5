// Parsers for PasswordMessage, SASLInitialResponse and SASLResponse bodies.
#include "protocol/auth_messages.h"

#include "protocol/reader.h"

namespace pooler::protocol {

std::expected<std::string_view, Error> parse_password_message(std::string_view body) {
  Reader r(body);
  auto password = r.cstring();
  if (!password || !r.at_end()) return std::unexpected(Error{"08P01", "invalid password packet size"});
  return *password;
}

std::expected<SaslInitialResponse, Error> parse_sasl_initial_response(std::string_view body) {
  Reader r(body);
  auto mechanism = r.cstring();
  auto length = mechanism ? r.int32() : std::nullopt;
  if (!length || *length < -1) return std::unexpected(Error{"08P01", "malformed SASLInitialResponse message"});
  std::string_view data;
  if (*length >= 0) {
    auto bytes = r.bytes(static_cast<std::size_t>(*length));
    if (!bytes) return std::unexpected(Error{"08P01", "malformed SASLInitialResponse message"});
    data = *bytes;
  }
  if (!r.at_end()) return std::unexpected(Error{"08P01", "malformed SASLInitialResponse message"});
  return SaslInitialResponse{*mechanism, data};
}

std::expected<std::string_view, Error> parse_sasl_response(std::string_view body) { return body; }

std::string printable_excerpt(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace pooler::protocol
