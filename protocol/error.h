// The error every fallible protocol function returns: a SQLSTATE and a message, ready to be turned into an
// ErrorResponse for the peer that sent the bad bytes.
#pragma once

#include <string>

namespace pooler::protocol {

struct Error {
  std::string sqlstate;  // five characters, e.g. "08P01" (protocol_violation)
  std::string message;
};

}  // namespace pooler::protocol
