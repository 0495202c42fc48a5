// What a configured password is: plain text, or a secret copied from pg_authid. Decides which client
// auth methods it can verify.
#pragma once

#include <string_view>

namespace pooler::config {

enum class PasswordKind {
  kPlain,        // anything that is not exactly one of the secrets below, as PostgreSQL decides it
  kMd5,          // "md5" + 32 lowercase hex digits: md5(password || username)
  kScramSha256,  // "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
};

// Classifies as PostgreSQL's get_password_type() does.
[[nodiscard]] PasswordKind classify_password(std::string_view password);

// True when the text starts like a SCRAM secret but is not a well-formed one: almost surely a
// copy-and-paste accident that would otherwise be taken as a plain password.
[[nodiscard]] bool is_malformed_scram_secret(std::string_view password);

}  // namespace pooler::config
