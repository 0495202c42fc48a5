// md5 authentication: secrets as PostgreSQL stores them and responses as libpq computes them.
#include "protocol/md5_auth.h"

#include <gtest/gtest.h>

#include "protocol/scram.h"

namespace pooler::protocol {
namespace {

// What libpq sends for an md5 challenge: "md5" + md5(md5hex(password + user) + salt).
std::string libpq_response(std::string_view password, std::string_view user, std::array<std::uint8_t, 4> salt) {
  std::string inner = md5_hex(std::string(password) + std::string(user));
  for (auto b : salt) inner.push_back(static_cast<char>(b));
  return "md5" + md5_hex(inner);
}

// RFC 1321 vectors pin md5_hex itself.
TEST(ProtocolMd5AuthTest, Md5HexVectors) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
}

// user "postgres", password "password": the secret PostgreSQL stores (checked against libpq's
// PQencryptPasswordConn, which printed md532e12f215ba27cb750c9e093ce4b5127).
TEST(ProtocolMd5AuthTest, KnownSecret) {
  EXPECT_EQ(md5_secret("password", "postgres"), "md5" + md5_hex("passwordpostgres"));
  EXPECT_EQ(md5_secret("password", "postgres"), "md532e12f215ba27cb750c9e093ce4b5127");
  EXPECT_TRUE(is_md5_secret("md532e12f215ba27cb750c9e093ce4b5127"));
  EXPECT_FALSE(is_md5_secret("md532E12f215ba27cb750c9e093ce4b5127"));
  EXPECT_FALSE(is_md5_secret("password"));
}

// A libpq-style response verifies against a plain stored password and against the stored md5 secret.
TEST(ProtocolMd5AuthTest, VerifiesLibpqResponse) {
  std::array<std::uint8_t, 4> salt{0x01, 0x80, 0xff, 0x00};
  auto response = libpq_response("password", "postgres", salt);
  EXPECT_TRUE(md5_verify("password", "postgres", salt, response));
  EXPECT_TRUE(md5_verify(md5_secret("password", "postgres"), "postgres", salt, response));
}

// Wrong password, other user, other salt, truncated or empty responses fail.
TEST(ProtocolMd5AuthTest, RejectsWrongResponses) {
  std::array<std::uint8_t, 4> salt{1, 2, 3, 4};
  auto response = libpq_response("password", "postgres", salt);
  EXPECT_FALSE(md5_verify("Password", "postgres", salt, response));
  EXPECT_FALSE(md5_verify("password", "postgre", salt, response));
  EXPECT_FALSE(md5_verify("password", "postgres", {1, 2, 3, 5}, response));
  EXPECT_FALSE(md5_verify("password", "postgres", salt, response.substr(0, 34)));
  EXPECT_FALSE(md5_verify("password", "postgres", salt, ""));
  // The client must not get in by sending the stored secret itself.
  EXPECT_FALSE(md5_verify("password", "postgres", salt, md5_secret("password", "postgres")));
}

// A SCRAM secret never passes as a plain password.
TEST(ProtocolMd5AuthTest, ScramSecretNeverVerifies) {
  auto scram = format_scram_secret(make_scram_secret("pencil", "0123456789abcdef"));
  std::array<std::uint8_t, 4> salt{9, 9, 9, 9};
  EXPECT_FALSE(md5_verify(scram, "user", salt, libpq_response(scram, "user", salt)));
}

// Salts come from the CSPRNG: many draws are not all equal.
TEST(ProtocolMd5AuthTest, RandomSaltVaries) {
  auto first = random_salt4();
  bool differs = false;
  for (int i = 0; i < 16 && !differs; ++i) differs = random_salt4() != first;
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace pooler::protocol
