// md5 secrets and challenge verification over OpenSSL's EVP digest interface.
#include "protocol/md5_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "protocol/scram.h"
#include "protocol/random.h"

namespace pooler::protocol {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";

}  // namespace

std::string md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &digest_len, EVP_md5(), nullptr) != 1) {
    // Only fails when MD5 is unavailable (a FIPS-only provider); nothing md5-based can work then.
    std::abort();
  }
  std::string hex;
  hex.reserve(digest_len * 2);
  for (unsigned int i = 0; i < digest_len; ++i) {
    hex.push_back(kHexDigits[digest[i] >> 4]);
    hex.push_back(kHexDigits[digest[i] & 0xf]);
  }
  return hex;
}

std::string md5_secret(std::string_view password, std::string_view user) {
  std::string input;
  input.reserve(password.size() + user.size());
  input.append(password).append(user);
  return "md5" + md5_hex(input);
}

bool is_md5_secret(std::string_view s) {
  if (s.size() != 35 || !s.starts_with("md5")) return false;
  return s.substr(3).find_first_not_of(kHexDigits) == std::string_view::npos;
}

bool md5_verify(std::string_view stored, std::string_view user, std::array<std::uint8_t, 4> salt,
                std::string_view response) {
  // A SCRAM secret cannot answer an md5 challenge, and must never be mistaken for a plain password.
  if (is_scram_secret(stored)) return false;
  std::string secret = is_md5_secret(stored) ? std::string(stored) : md5_secret(stored, user);
  std::string salted = secret.substr(3);
  for (auto b : salt) salted.push_back(static_cast<char>(b));
  std::string expected = "md5" + md5_hex(salted);
  // Constant time, so response timing reveals nothing about how many leading characters were right.
  return response.size() == expected.size() &&
         CRYPTO_memcmp(response.data(), expected.data(), expected.size()) == 0;
}

std::array<std::uint8_t, 4> random_salt4() {
  std::array<std::uint8_t, 4> salt{};
  secure_random(salt);
  return salt;
}

}  // namespace pooler::protocol
