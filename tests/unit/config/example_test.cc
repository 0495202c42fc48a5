// The shipped pooler.toml.example must load cleanly and say what the README quick start promises.
#include <gtest/gtest.h>

#include "config/config.h"

namespace pooler::config {
namespace {

// The example parses with no errors and has the documented quick-start values.
TEST(ConfigExample, ShippedExampleLoads) {
  auto config = load_file(POOLER_EXAMPLE_CONFIG);
  ASSERT_TRUE(config) << config.error().front().to_string();
  EXPECT_EQ(config->pooler.listen_addr, "127.0.0.1");
  EXPECT_EQ(config->pooler.listen_port, 6432);
  EXPECT_EQ(config->pooler.auth_type, AuthType::kScramSha256);
  EXPECT_EQ(config->pooler.admin_users, std::vector<std::string>{"admin"});
  EXPECT_EQ(config->pooler.metrics_listen, "");

  const Database* app = config->find_database("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->hosts, (std::vector<HostPort>{{"127.0.0.1", 5432}}));
  EXPECT_EQ(app->dbname, "app");
  EXPECT_EQ(app->pool_mode, PoolMode::kTransaction);
  EXPECT_EQ(app->pool_size, 10);
  EXPECT_EQ(app->max_overflow, 5);
  EXPECT_EQ(app->pool_recycle, Seconds{3600.0});
  EXPECT_EQ(app->effective_reset(), ResetOnReturn::kRollback);

  ASSERT_NE(config->find_user("app"), nullptr);
  EXPECT_EQ(config->find_user("app")->password, "secret");
  ASSERT_NE(config->find_user("admin"), nullptr);
  EXPECT_EQ(config->find_user("admin")->password, "admin");
}

// The example's values for every key it sets equal the struct defaults except where the quick start
// deliberately differs, so the comments' "Default:" claims stay true.
TEST(ConfigExample, ExampleMatchesDefaultsElsewhere) {
  auto config = load_file(POOLER_EXAMPLE_CONFIG);
  ASSERT_TRUE(config);
  Pooler expected_pooler;
  expected_pooler.admin_users = {"admin"};
  EXPECT_EQ(config->pooler, expected_pooler);

  Database expected = *config->find_database("app");
  const Database defaults;
  expected.pool_mode = defaults.pool_mode;
  expected.pool_size = defaults.pool_size;
  expected.max_overflow = defaults.max_overflow;
  expected.pool_recycle = defaults.pool_recycle;
  expected.hosts = {HostPort{"127.0.0.1", 5432}};
  Database want = defaults;
  want.name = "app";
  want.dbname = "app";
  want.hosts = {HostPort{"127.0.0.1", 5432}};
  EXPECT_EQ(expected, want);
}

}  // namespace
}  // namespace pooler::config
