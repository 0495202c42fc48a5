// Views of the client's authentication messages. All are sent with type 'p'; which one a body is
// follows from the challenge we sent, so the caller picks the parser.
#pragma once

#include <expected>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

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
