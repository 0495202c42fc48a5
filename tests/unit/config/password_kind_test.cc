// Tests of recognising stored password secrets.
#include "config/password_kind.h"

#include <gtest/gtest.h>

namespace pooler::config {
namespace {

constexpr const char* kScram =
    "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$"
    "UdmKRUjfgm0U6mfMFFn/tGaEoriNY2YlrUES5w+4kaA=:ZH6upP+u0RFc4kNZYflxg+txwr3oIlzDM/JXePM5XCY=";

// Plain text, an md5 secret and a SCRAM secret are told apart as PostgreSQL does.
TEST(ConfigPasswordKind, Classifies) {
  EXPECT_EQ(classify_password("secret"), PasswordKind::kPlain);
  EXPECT_EQ(classify_password("md5" + std::string(32, 'a')), PasswordKind::kMd5);
  EXPECT_EQ(classify_password("md5" + std::string(31, 'a')), PasswordKind::kPlain);
  EXPECT_EQ(classify_password(kScram), PasswordKind::kScramSha256);
}

// A truncated SCRAM secret is flagged as malformed instead of silently being a plain password.
TEST(ConfigPasswordKind, TruncatedScramIsMalformed) {
  const std::string truncated = std::string(kScram).substr(0, 60);
  EXPECT_EQ(classify_password(truncated), PasswordKind::kPlain);
  EXPECT_TRUE(is_malformed_scram_secret(truncated));
  EXPECT_FALSE(is_malformed_scram_secret(kScram));
  EXPECT_FALSE(is_malformed_scram_secret("secret"));
}

// Found by tests/fuzz/scram_fuzz: each of these passed as a SCRAM secret here, while protocol::parse_scram_secret
// (what the daemon uses) refuses it, so the daemon would have taken the secret text for a plain password.
TEST(ConfigPasswordKind, SecretsTheDaemonCannotUseAreMalformed) {
  const std::string salt = "c2FsdHNhbHRzYWx0";
  const std::string stored = "UdmKRUjfgm0U6mfMFFn/tGaEoriNY2YlrUES5w+4kaA=";
  const std::string server = "ZH6upP+u0RFc4kNZYflxg+txwr3oIlzDM/JXePM5XCY=";
  const auto secret = [](const std::string& iterations, const std::string& s, const std::string& k1,
                         const std::string& k2) { return "SCRAM-SHA-256$" + iterations + ":" + s + "$" + k1 + ":" + k2; };
  ASSERT_EQ(classify_password(secret("4096", salt, stored, server)), PasswordKind::kScramSha256);
  // 44 characters without padding decode to 33 bytes, not a SHA-256 key.
  EXPECT_TRUE(is_malformed_scram_secret(secret("4096", salt, stored, "z6uqyt0BlYqYf8ac1A0yOzM9vqrp9IAH1W+q6lQ6OGVl")));
  // 44 characters with two '=' decode to 31 bytes.
  EXPECT_TRUE(is_malformed_scram_secret(secret("4096", salt, stored.substr(0, 42) + "==", server)));
  // Bits left over by the padding must be zero ('B' is 1), or one key would have several spellings.
  EXPECT_TRUE(is_malformed_scram_secret(secret("4096", "c2FsdB==", stored, server)));
  EXPECT_TRUE(is_malformed_scram_secret(secret("4096", salt, stored.substr(0, 42) + "B=", server)));
  // The iteration count must fit the int the daemon keeps it in.
  EXPECT_TRUE(is_malformed_scram_secret(secret("4294967296", salt, stored, server)));
  EXPECT_TRUE(is_malformed_scram_secret(secret("0", salt, stored, server)));
  EXPECT_TRUE(is_malformed_scram_secret(secret("", salt, stored, server)));
  EXPECT_TRUE(is_malformed_scram_secret(secret("4096", "", stored, server)));
  EXPECT_EQ(classify_password(secret("2147483647", "c2FsdA==", stored, server)), PasswordKind::kScramSha256);
}

}  // namespace
}  // namespace pooler::config
