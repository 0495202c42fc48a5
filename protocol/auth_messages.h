// Views of the client's authentication messages. All are sent with type 'p'; which one a body is
// follows from the challenge we sent, so the caller picks the parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

// AuthenticationRequest codes ('R' messages), from the Message Formats chapter.
inline constexpr std::int32_t kAuthOk = 0;
inline constexpr std::int32_t kAuthKerberosV5 = 2;
inline constexpr std::int32_t kAuthCleartextPassword = 3;
inline constexpr std::int32_t kAuthMd5Password = 5;
inline constexpr std::int32_t kAuthScmCredential = 6;
inline constexpr std::int32_t kAuthGss = 7;
inline constexpr std::int32_t kAuthGssContinue = 8;
inline constexpr std::int32_t kAuthSspi = 9;
inline constexpr std::int32_t kAuthSasl = 10;
inline constexpr std::int32_t kAuthSaslContinue = 11;
inline constexpr std::int32_t kAuthSaslFinal = 12;

// At most `max` bytes of peer-chosen text for our own messages, non-printable bytes as '?', "..." when cut:
// such text goes into logs and onto a client's terminal.
std::string printable_excerpt(std::string_view s, std::size_t max);

// PasswordMessage: one String that must fill the body exactly. 08P01 otherwise.
[[nodiscard]] std::expected<std::string_view, Error> parse_password_message(std::string_view body);

struct SaslInitialResponse {
  std::string_view mechanism;
  std::string_view data;  // empty when the client sent length -1 (no initial response)
};
// String mechanism, Int32 length (-1 = none), Byte_n data, nothing after. 08P01 otherwise.
[[nodiscard]] std::expected<SaslInitialResponse, Error> parse_sasl_initial_response(std::string_view body);

// SASLResponse: the whole body is mechanism data.
[[nodiscard]] std::expected<std::string_view, Error> parse_sasl_response(std::string_view body);

}  // namespace pooler::protocol
