// PostgreSQL's md5 password authentication, server side: the stored secret is "md5" + md5(password + user),
// and the client answers a 4-byte salt with "md5" + md5(hex(md5(password + user)) + salt).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pooler::protocol {

// 32 lowercase hex digits.
std::string md5_hex(std::string_view data);

// "md5" + md5_hex(password + user), the form PostgreSQL stores in pg_authid.
std::string md5_secret(std::string_view password, std::string_view user);

// True for "md5" followed by 32 lowercase hex digits.
bool is_md5_secret(std::string_view s);

// True when `response` (the client's PasswordMessage) answers the md5 challenge with `salt`. `stored` is a
// plain password or an md5 secret; anything that is an md5 secret is taken as one, as PostgreSQL does.
// Always false for a SCRAM secret: the caller should have sent AuthenticationSASL instead.
bool md5_verify(std::string_view stored, std::string_view user, std::array<std::uint8_t, 4> salt,
                std::string_view response);

// From OpenSSL's CSPRNG. Aborts if it cannot be seeded: a predictable salt would allow replaying responses.
std::array<std::uint8_t, 4> random_salt4();

}  // namespace pooler::protocol
