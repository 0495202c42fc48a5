// parse_error_response: field-code/String pairs up to a zero byte.
#include "protocol/error_response.h"

#include "protocol/reader.h"

namespace pooler::protocol {

std::expected<ServerError, Error> parse_error_response(std::string_view body) {
  Reader r(body);
  ServerError out;
  std::string localized_severity;
  for (;;) {
    auto code = r.byte();
    if (!code) return std::unexpected(Error{"08P01", "ErrorResponse without terminator"});
    if (*code == 0) break;
    auto value = r.cstring();
    if (!value) return std::unexpected(Error{"08P01", "ErrorResponse field is not NUL-terminated"});
    switch (*code) {
      case 'S': localized_severity = *value; break;
      case 'V': out.severity = *value; break;
      case 'C': out.sqlstate = *value; break;
      case 'M': out.message = *value; break;
      case 'D': out.detail = *value; break;
      case 'H': out.hint = *value; break;
      default: break;
    }
  }
  if (!r.at_end()) return std::unexpected(Error{"08P01", "ErrorResponse has bytes after its terminator"});
  // Servers before 9.6 send no V field.
  if (out.severity.empty()) out.severity = std::move(localized_severity);
  return out;
}

}  // namespace pooler::protocol
