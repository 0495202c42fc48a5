// auth_user / auth_query / auth_dbname: defaults, per-database overrides, and the checks that name the key.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace pooler::config {
namespace {

constexpr std::string_view kBase = R"toml(
[pooler]
auth_user = "lookup"

[databases.app]
[databases.other]
auth_user = ""
[databases.reports]
auth_query = "SELECT u, p FROM my_users($1)"
auth_dbname = "app"

[users.lookup]
password = "lookup-pw"
)toml";

TEST(AuthQueryConfig, DefaultsAndOverrides) {
  auto config = load_string(kBase, "pooler.toml");
  ASSERT_TRUE(config) << config.error().front().to_string();
  EXPECT_EQ(config->pooler.auth_query, "SELECT usename, passwd FROM pg_shadow WHERE usename = $1");
  const AuthQuery app = config->auth_query_for(*config->find_database("app"));
  EXPECT_EQ(app.user, "lookup");
  EXPECT_EQ(app.query, kDefaultAuthQuery);
  EXPECT_EQ(app.dbname, "");
  EXPECT_EQ(config->auth_query_for(*config->find_database("other")).user, "");
  const AuthQuery reports = config->auth_query_for(*config->find_database("reports"));
  EXPECT_EQ(reports.user, "lookup");
  EXPECT_EQ(reports.query, "SELECT u, p FROM my_users($1)");
  EXPECT_EQ(reports.dbname, "app");
}

TEST(AuthQueryConfig, OffByDefault) {
  auto config = load_string("[databases.app]\n", "pooler.toml");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->auth_query_for(*config->find_database("app")).user, "");
}

std::string only_error(std::string_view text) {
  auto config = load_string(text, "pooler.toml");
  if (config) return "no error";
  if (config.error().size() != 1) return "errors: " + std::to_string(config.error().size());
  return config.error().front().to_string();
}

TEST(AuthQueryConfig, AuthUserMustBeAUserWithAPlainPassword) {
  EXPECT_EQ(only_error("[pooler]\nauth_user = \"ghost\"\n"),
            "pooler.toml:2:13: pooler.auth_user: auth user \"ghost\" has no [users.ghost] table");
  // (auth_type md5, or the md5 secret would be refused for another reason.)
  EXPECT_EQ(only_error("[pooler]\nauth_type = \"md5\"\n[databases.app]\nauth_user = \"s\"\n[users.s]\n"
                       "password = \"md5" + std::string(32, 'a') + "\"\n"),
            "pooler.toml:4:13: databases.app.auth_user: auth user \"s\" needs a plain password in [users.s]: the "
            "pooler logs in as it to run auth_query");
}

TEST(AuthQueryConfig, QueryMustUseTheParameter) {
  const std::string e = only_error("[pooler]\nauth_query = \"SELECT usename, passwd FROM pg_shadow\"\n");
  EXPECT_NE(e.find("pooler.toml:2:14: pooler.auth_query: must use $1 for the user name"), std::string::npos) << e;
}

TEST(AuthQueryConfig, AuthDbnameMustBeADatabase) {
  EXPECT_EQ(only_error("[pooler]\nauth_dbname = \"nope\"\n"),
            "pooler.toml:2:15: pooler.auth_dbname: auth_dbname \"nope\" is not a [databases] entry");
  EXPECT_EQ(only_error("[databases.app]\nauth_dbname = \"pooler\"\n"),
            "pooler.toml:2:15: databases.app.auth_dbname: auth_dbname \"pooler\" is not a [databases] entry");
}

}  // namespace
}  // namespace pooler::config
