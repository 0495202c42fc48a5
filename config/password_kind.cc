// Recognising PostgreSQL password secrets by their shape.
#include "config/password_kind.h"

#include <algorithm>
#include <charconv>

namespace pooler::config {

namespace {

constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";

bool is_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return false;
  const auto body_end = text.find_last_not_of('=');
  if (body_end == std::string_view::npos || text.size() - body_end - 1 > 2) return false;
  return std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(body_end + 1), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  });
}

// SHA-256 output, 32 bytes, is 44 base64 characters with one '=' of padding.
bool is_sha256_base64(std::string_view text) { return text.size() == 44 && is_base64(text); }

bool is_well_formed_scram(std::string_view password) {
  if (!password.starts_with(kScramPrefix)) return false;
  std::string_view rest = password.substr(kScramPrefix.size());
  const auto dollar = rest.find('$');
  if (dollar == std::string_view::npos) return false;
  const std::string_view iterations_salt = rest.substr(0, dollar);
  const std::string_view keys = rest.substr(dollar + 1);

  const auto colon = iterations_salt.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view iterations = iterations_salt.substr(0, colon);
  unsigned long count = 0;
  auto [ptr, ec] = std::from_chars(iterations.data(), iterations.data() + iterations.size(), count);
  if (iterations.empty() || ec != std::errc{} || ptr != iterations.data() + iterations.size() || count == 0) {
    return false;
  }
  if (!is_base64(iterations_salt.substr(colon + 1))) return false;

  const auto key_colon = keys.find(':');
  if (key_colon == std::string_view::npos) return false;
  return is_sha256_base64(keys.substr(0, key_colon)) && is_sha256_base64(keys.substr(key_colon + 1));
}

}  // namespace

PasswordKind classify_password(std::string_view password) {
  if (password.size() == 35 && password.starts_with("md5") &&
      std::all_of(password.begin() + 3, password.end(),
                  [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return PasswordKind::kMd5;
  }
  if (is_well_formed_scram(password)) return PasswordKind::kScramSha256;
  return PasswordKind::kPlain;
}

bool is_malformed_scram_secret(std::string_view password) {
  return password.starts_with(kScramPrefix) && !is_well_formed_scram(password);
}

}  // namespace pooler::config
