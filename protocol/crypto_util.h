// Internal to protocol/: the SCRAM-SHA-256 primitives (OpenSSL's HMAC, SHA-256, PBKDF2) and the message
// grammar pieces that both halves of the exchange, ScramServer and ScramClient, need. Not a public API.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/base64.h"
#include "protocol/random.h"

namespace pooler::protocol::scram_detail {

using Key = std::array<std::uint8_t, 32>;

// PostgreSQL's nonce length (SCRAM_RAW_NONCE_LEN), before base64; both sides draw the same.
inline constexpr std::size_t kRawNonceLength = 18;

inline Key hmac_sha256(const Key& key, std::string_view data) {
  Key out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out.data(), &len);
  assert(len == out.size());
  return out;
}

inline Key sha256(const Key& data) {
  Key out{};
  SHA256(data.data(), data.size(), out.data());
  return out;
}

// SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations). The caller cleanses it after use.
inline Key salted_password(std::string_view password, std::string_view raw_salt, int iterations) {
  assert(iterations >= 1);
  Key salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(raw_salt.data()), static_cast<int>(raw_salt.size()),
                        iterations, EVP_sha256(), static_cast<int>(salted.size()), salted.data()) != 1) {
    // Only fails on allocation failure or a missing SHA-256 provider.
    std::abort();
  }
  return salted;
}

inline std::string_view as_view(const Key& k) { return {reinterpret_cast<const char*>(k.data()), k.size()}; }

inline std::optional<Key> to_key(std::string_view raw) {
  if (raw.size() != 32) return std::nullopt;
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(raw[i]);
  return k;
}

// One "a=value" attribute of a SCRAM message, read from the front of `in`, which then points past the
// attribute and its trailing comma (if any).
struct Attribute {
  char name;
  std::string_view value;
};

inline std::optional<Attribute> next_attribute(std::string_view& in) {
  auto end = in.find(',');
  auto attr = in.substr(0, end);
  // A comma promises another attribute; a trailing one is malformed.
  if (end != std::string_view::npos && end + 1 == in.size()) return std::nullopt;
  in = end == std::string_view::npos ? std::string_view{} : in.substr(end + 1);
  if (attr.size() < 2 || attr[1] != '=') return std::nullopt;
  char name = attr[0];
  if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z'))) return std::nullopt;
  return Attribute{name, attr.substr(2)};
}

// RFC 5802: printable = %x21-2B / %x2D-7E, i.e. visible ASCII except ','.
inline bool is_valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

inline std::string random_nonce() {
  std::array<std::uint8_t, kRawNonceLength> raw{};
  // A predictable nonce would allow replaying an eavesdropped exchange.
  secure_random(raw);
  return base64_encode({reinterpret_cast<const char*>(raw.data()), raw.size()});
}

}  // namespace pooler::protocol::scram_detail
