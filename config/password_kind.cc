// Recognising PostgreSQL password secrets by their shape.
#include "config/password_kind.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <optional>

namespace pooler::config {

namespace {

constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// The number of bytes `text` decodes to, or nullopt unless it is base64 exactly as protocol/base64.h (and so
// the daemon) reads it: padded, and with the bits padding leaves unused zero, so every byte string has one
// encoding. Anything looser would let a secret through that the daemon then takes for a plain password.
std::optional<std::size_t> base64_size(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  const std::string_view symbols = text.substr(0, text.size() - padding);
  if (!std::all_of(symbols.begin(), symbols.end(), [](char c) { return base64_value(c) >= 0; })) return std::nullopt;
  const int last = base64_value(symbols.back());
  if ((padding == 2 && (last & 0x0f) != 0) || (padding == 1 && (last & 0x03) != 0)) return std::nullopt;
  return text.size() / 4 * 3 - padding;
}

bool is_base64(std::string_view text) { return base64_size(text).has_value(); }

// StoredKey and ServerKey are SHA-256 outputs: 32 bytes.
bool is_sha256_base64(std::string_view text) { return base64_size(text) == std::size_t{32}; }

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
  // An int, as the daemon stores it (protocol::ScramSecret::iterations).
  int count = 0;
  auto [ptr, ec] = std::from_chars(iterations.data(), iterations.data() + iterations.size(), count);
  if (iterations.empty() || ec != std::errc{} || ptr != iterations.data() + iterations.size() || count < 1) {
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
