// Tests of diff(), which reload uses to decide which pools to create, drop or resize.
#include "config/diff.h"

#include <gtest/gtest.h>

namespace pooler::config {
namespace {

Config make(std::string_view text) {
  auto config = load_string(text, "pooler.toml");
  if (!config) {
    ADD_FAILURE() << config.error().front().to_string();
    return {};
  }
  return *config;
}

constexpr std::string_view kBase = R"([pooler]
listen_port = 6432
[databases.app]
pool_size = 5
[databases.reports]
[users.app]
password = "a"
[users.bob]
password = "b"
)";

// The same config twice has no differences.
TEST(ConfigDiff, IdenticalConfigsAreEmpty) {
  const ConfigDiff d = diff(make(kBase), make(kBase));
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(d, ConfigDiff{});
}

// Databases added, removed and changed are each listed by name.
TEST(ConfigDiff, DatabasesAddedRemovedChanged) {
  const ConfigDiff d = diff(make(kBase), make(R"([pooler]
listen_port = 6432
[databases.app]
pool_size = 8
[databases.analytics]
[users.app]
password = "a"
[users.bob]
password = "b"
)"));
  EXPECT_EQ(d.added_databases, std::vector<std::string>{"analytics"});
  EXPECT_EQ(d.removed_databases, std::vector<std::string>{"reports"});
  EXPECT_EQ(d.changed_databases, std::vector<std::string>{"app"});
  EXPECT_TRUE(d.added_users.empty());
  EXPECT_TRUE(d.removed_users.empty());
  EXPECT_TRUE(d.changed_users.empty());
  EXPECT_FALSE(d.pooler_changed);
}

// A change in any one database field, here the host list, marks it changed.
TEST(ConfigDiff, HostChangeIsAChange) {
  Config before = make(kBase);
  Config after = before;
  after.databases.at("reports").hosts.push_back({"standby", 5432});
  EXPECT_EQ(diff(before, after).changed_databases, std::vector<std::string>{"reports"});
}

// Users added, removed and with a new password are each listed.
TEST(ConfigDiff, UsersAddedRemovedChanged) {
  Config before = make(kBase);
  Config after = before;
  after.users.erase("bob");
  after.users["carol"] = User{.name = "carol", .password = "c"};
  after.users.at("app").password = "new";
  const ConfigDiff d = diff(before, after);
  EXPECT_EQ(d.added_users, std::vector<std::string>{"carol"});
  EXPECT_EQ(d.removed_users, std::vector<std::string>{"bob"});
  EXPECT_EQ(d.changed_users, std::vector<std::string>{"app"});
  EXPECT_TRUE(d.added_databases.empty() && d.removed_databases.empty() && d.changed_databases.empty());
}

// A change in [pooler] sets pooler_changed only.
TEST(ConfigDiff, PoolerChanged) {
  Config before = make(kBase);
  Config after = before;
  after.pooler.max_client_conn = 10;
  const ConfigDiff d = diff(before, after);
  EXPECT_TRUE(d.pooler_changed);
  EXPECT_FALSE(d.empty());
  EXPECT_TRUE(d.changed_databases.empty());
}

// Going from nothing to a config adds everything in name order.
TEST(ConfigDiff, FromEmptyAddsAllSorted) {
  const ConfigDiff d = diff(Config{}, make(kBase));
  EXPECT_EQ(d.added_databases, (std::vector<std::string>{"app", "reports"}));
  EXPECT_EQ(d.added_users, (std::vector<std::string>{"app", "bob"}));
  EXPECT_FALSE(d.pooler_changed);
}

}  // namespace
}  // namespace pooler::config
