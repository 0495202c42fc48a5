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

}  // namespace
}  // namespace pooler::config
