// Standard base64 (RFC 4648 alphabet, '=' padding), as SCRAM messages and PostgreSQL's SCRAM secrets use it.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

std::string base64_encode(std::string_view raw);

// Strict: length a multiple of 4, padding only at the end, no whitespace, no other characters, and unused
// bits of the last symbol zero, so each byte string has exactly one accepted encoding. 08P01 otherwise.
[[nodiscard]] std::expected<std::string, Error> base64_decode(std::string_view text);

}  // namespace pooler::protocol
