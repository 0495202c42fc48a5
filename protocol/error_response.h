// Parsing of the ErrorResponse and NoticeResponse bodies a server sends, for logging and for deciding
// what a failed server connection means (e.g. 57P01 admin shutdown vs. a query error).
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

struct ServerError {
  std::string severity;  // the V field (never localized), else S
  std::string sqlstate;  // C
  std::string message;   // M
  std::string detail;    // D
  std::string hint;      // H
};

// Unknown field types are skipped, as the protocol asks. 08P01 when a field is not NUL-terminated, the
// terminating zero byte is missing, or bytes follow it.
[[nodiscard]] std::expected<ServerError, Error> parse_error_response(std::string_view body);

}  // namespace pooler::protocol
