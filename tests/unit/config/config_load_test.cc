// Tests of loading valid configs: defaults, host lists, enums, durations, and the file entry point.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "config/config.h"
#include "config/enum_names.h"

namespace pooler::config {
namespace {

Config load_ok(std::string_view text) {
  auto config = load_string(text, "pooler.toml");
  if (!config) {
    std::string all;
    for (const auto& e : config.error()) all += e.to_string() + "\n";
    ADD_FAILURE() << all;
    return {};
  }
  return *config;
}

constexpr std::string_view kMinimalUsers = "[users.app]\npassword = \"secret\"\n";

// An empty file is a valid config with every default from the structs.
TEST(ConfigLoad, EmptyFileGivesDefaults) {
  const Config config = load_ok("");
  EXPECT_EQ(config.pooler, Pooler{});
  EXPECT_TRUE(config.databases.empty());
  EXPECT_TRUE(config.users.empty());
  EXPECT_EQ(config.path, "pooler.toml");
}

// A database table with no keys gets the default host, port, dbname and pool settings.
TEST(ConfigLoad, DatabaseDefaults) {
  const Config config = load_ok("[databases.app]\n");
  const Database* db = config.find_database("app");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->name, "app");
  EXPECT_EQ(db->dbname, "app");
  EXPECT_EQ(db->hosts, (std::vector<HostPort>{{"127.0.0.1", 5432}}));
  EXPECT_EQ(db->pool_mode, PoolMode::kSession);
  EXPECT_EQ(db->pool_size, 5);
  EXPECT_EQ(db->max_overflow, 10);
  EXPECT_EQ(db->pool_timeout, Seconds{30.0});
  EXPECT_EQ(db->pool_recycle, std::nullopt);
  EXPECT_EQ(db->idle_timeout, Seconds{600.0});
  EXPECT_EQ(db->query_timeout, std::nullopt);
  EXPECT_EQ(db->reset_on_return, std::nullopt);
  EXPECT_EQ(db->sslmode, "prefer");
  EXPECT_EQ(config.find_database("other"), nullptr);
}

// host and port make a one-entry host list, and dbname overrides the server-side name.
TEST(ConfigLoad, HostAndPort) {
  const Config config = load_ok(R"([databases.app]
host = "db.internal"
port = 5433
dbname = "app_prod"
)");
  const Database& db = *config.find_database("app");
  EXPECT_EQ(db.hosts, (std::vector<HostPort>{{"db.internal", 5433}}));
  EXPECT_EQ(db.dbname, "app_prod");
}

// port alone changes the port of the default host.
TEST(ConfigLoad, PortAloneUsesDefaultHost) {
  const Config config = load_ok("[databases.app]\nport = 6543\n");
  EXPECT_EQ(config.find_database("app")->hosts, (std::vector<HostPort>{{"127.0.0.1", 6543}}));
}

// hosts entries with a port keep it; entries without take `port`.
TEST(ConfigLoad, HostsWithAndWithoutPorts) {
  const Config config = load_ok(R"([databases.app]
hosts = ["db1:5433", "db2", "[::1]:5440"]
port = 6000
target_session_attrs = "read-write"
)");
  const Database& db = *config.find_database("app");
  EXPECT_EQ(db.hosts, (std::vector<HostPort>{{"db1", 5433}, {"db2", 6000}, {"::1", 5440}}));
  EXPECT_EQ(db.target_session_attrs, TargetSessionAttrs::kReadWrite);
}

// Every spelling of every enum parses to its value.
TEST(ConfigLoad, EveryEnumSpelling) {
  for (const auto& [name, value] : enum_names<AuthType>()) {
    const Config config = load_ok(fmt::format("[pooler]\nauth_type = \"{}\"\n", name));
    EXPECT_EQ(config.pooler.auth_type, value) << name;
  }
  for (const auto& [name, value] : enum_names<LogFormat>()) {
    EXPECT_EQ(load_ok(fmt::format("[pooler]\nlog_format = \"{}\"\n", name)).pooler.log_format, value) << name;
  }
  for (const auto& [name, value] : enum_names<PoolMode>()) {
    EXPECT_EQ(load_ok(fmt::format("[databases.a]\npool_mode = \"{}\"\n", name)).databases.at("a").pool_mode, value);
  }
  for (const auto& [name, value] : enum_names<ResetOnReturn>()) {
    EXPECT_EQ(load_ok(fmt::format("[databases.a]\nreset_on_return = \"{}\"\n", name)).databases.at("a").reset_on_return,
              value);
  }
  for (const auto& [name, value] : enum_names<TargetSessionAttrs>()) {
    EXPECT_EQ(load_ok(fmt::format("[databases.a]\ntarget_session_attrs = \"{}\"\n", name))
                  .databases.at("a")
                  .target_session_attrs,
              value);
  }
  EXPECT_EQ(enum_names<TargetSessionAttrs>().size(), 6u);
  EXPECT_EQ(to_string(TargetSessionAttrs::kPreferStandby), "prefer-standby");
  EXPECT_EQ(to_string(AuthType::kScramSha256), "scram-sha-256");
}

// -1 means never for pool_recycle and idle_timeout, and none for the query timeouts.
TEST(ConfigLoad, MinusOneMeansNever) {
  const Config config = load_ok(R"([databases.app]
pool_recycle = -1
idle_timeout = -1
query_timeout = -1.0
idle_transaction_timeout = -1
)");
  const Database& db = *config.find_database("app");
  EXPECT_EQ(db.pool_recycle, std::nullopt);
  EXPECT_EQ(db.idle_timeout, std::nullopt);
  EXPECT_EQ(db.query_timeout, std::nullopt);
  EXPECT_EQ(db.idle_transaction_timeout, std::nullopt);
}

// Durations accept integers and fractions of a second.
TEST(ConfigLoad, FractionalSeconds) {
  const Config config = load_ok(R"([pooler]
shutdown_timeout = 0
client_login_timeout = 2.5
[databases.app]
pool_timeout = 0.25
pool_recycle = 3600
pre_ping_after = 0
query_timeout = 1.5
)");
  EXPECT_EQ(config.pooler.shutdown_timeout, Seconds{0.0});
  EXPECT_EQ(config.pooler.client_login_timeout, Seconds{2.5});
  const Database& db = *config.find_database("app");
  EXPECT_EQ(db.pool_timeout, Seconds{0.25});
  EXPECT_EQ(db.pool_recycle, Seconds{3600.0});
  EXPECT_EQ(db.pre_ping_after, Seconds{0.0});
  EXPECT_EQ(db.query_timeout, Seconds{1.5});
}

// Without reset_on_return, session mode discards and transaction mode rolls back; an explicit value wins.
TEST(ConfigLoad, EffectiveReset) {
  Database db;
  db.pool_mode = PoolMode::kSession;
  EXPECT_EQ(db.effective_reset(), ResetOnReturn::kDiscard);
  db.pool_mode = PoolMode::kTransaction;
  EXPECT_EQ(db.effective_reset(), ResetOnReturn::kRollback);
  db.reset_on_return = ResetOnReturn::kNone;
  EXPECT_EQ(db.effective_reset(), ResetOnReturn::kNone);
  db.pool_mode = PoolMode::kSession;
  EXPECT_EQ(db.effective_reset(), ResetOnReturn::kNone);
}

// Every [pooler] key is read into its field.
TEST(ConfigLoad, AllPoolerKeys) {
  const Config config = load_ok(std::string(R"([pooler]
listen_addr = "0.0.0.0"
listen_port = 0
unix_socket_dir = "/run/pooler"
auth_type = "md5"
admin_users = ["app"]
max_client_conn = 50
log_level = "debug"
log_format = "json"
metrics_listen = "[::]:9127"
max_message_size = 1024
client_login_timeout = 5
shutdown_timeout = 1
health_check_period = 0.5
)") + std::string(kMinimalUsers));
  const Pooler& p = config.pooler;
  EXPECT_EQ(p.listen_addr, "0.0.0.0");
  EXPECT_EQ(p.listen_port, 0);
  EXPECT_EQ(p.unix_socket_dir, "/run/pooler");
  EXPECT_EQ(p.auth_type, AuthType::kMd5);
  EXPECT_EQ(p.admin_users, std::vector<std::string>{"app"});
  EXPECT_EQ(p.max_client_conn, 50);
  EXPECT_EQ(p.log_level, "debug");
  EXPECT_EQ(p.log_format, LogFormat::kJson);
  EXPECT_EQ(p.metrics_listen, "[::]:9127");
  EXPECT_EQ(p.max_message_size, 1024u);
  EXPECT_EQ(p.health_check_period, Seconds{0.5});
}

// Every other [databases.NAME] key is read into its field.
TEST(ConfigLoad, AllDatabaseKeys) {
  const Config config = load_ok(R"([databases.app]
user = "owner"
password = "pw"
pool_size = 0
max_overflow = -1
pool_pre_ping = false
pre_ping_timeout = 2
min_pool_size = 0
connect_timeout = 1
use_lifo = true
max_prepared_statements = 100
sslmode = "verify-full"
application_name = "pooler"
)");
  const Database& db = *config.find_database("app");
  EXPECT_EQ(db.user, "owner");
  EXPECT_EQ(db.password, "pw");
  EXPECT_EQ(db.pool_size, 0);
  EXPECT_EQ(db.max_overflow, -1);
  EXPECT_FALSE(db.pool_pre_ping);
  EXPECT_EQ(db.pre_ping_timeout, Seconds{2.0});
  EXPECT_EQ(db.connect_timeout, Seconds{1.0});
  EXPECT_TRUE(db.use_lifo);
  EXPECT_EQ(db.max_prepared_statements, 100);
  EXPECT_EQ(db.sslmode, "verify-full");
  EXPECT_EQ(db.application_name, "pooler");
}

// Users keep plain passwords and SCRAM secrets as written; names needing quotes work.
TEST(ConfigLoad, UsersAndQuotedNames) {
  const Config config = load_ok(R"([users.app]
password = "secret"
[users."web.reader"]
password = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$UdmKRUjfgm0U6mfMFFn/tGaEoriNY2YlrUES5w+4kaA=:ZH6upP+u0RFc4kNZYflxg+txwr3oIlzDM/JXePM5XCY="
)");
  ASSERT_NE(config.find_user("app"), nullptr);
  EXPECT_EQ(config.find_user("app")->password, "secret");
  ASSERT_NE(config.find_user("web.reader"), nullptr);
  EXPECT_TRUE(config.find_user("web.reader")->password.starts_with("SCRAM-SHA-256$4096:"));
  EXPECT_EQ(config.find_user("nobody"), nullptr);
}

// load_file reads from disk and records the path.
TEST(ConfigLoad, LoadFileRecordsPath) {
  const std::string path = ::testing::TempDir() + "config_load_test.toml";
  std::ofstream(path) << "[databases.app]\npool_size = 3\n";
  auto config = load_file(path);
  std::remove(path.c_str());
  ASSERT_TRUE(config);
  EXPECT_EQ(config->path, path);
  EXPECT_EQ(config->find_database("app")->pool_size, 3);
}

// A missing file is one error without a position, saying why it could not be opened.
TEST(ConfigLoad, MissingFile) {
  auto config = load_file("/nonexistent/pooler.toml");
  ASSERT_FALSE(config);
  ASSERT_EQ(config.error().size(), 1u);
  const ConfigError& e = config.error()[0];
  EXPECT_EQ(e.file, "/nonexistent/pooler.toml");
  EXPECT_EQ(e.line, 0);
  EXPECT_EQ(e.message, "cannot open file: No such file or directory");
  EXPECT_EQ(e.to_string(), "/nonexistent/pooler.toml: cannot open file: No such file or directory");
}

// A directory opens but cannot be read; that is reported, not parsed as empty.
TEST(ConfigLoad, DirectoryIsNotAFile) {
  auto config = load_file("/");
  ASSERT_FALSE(config);
  ASSERT_EQ(config.error().size(), 1u);
  EXPECT_EQ(config.error()[0].message, "cannot read file: Is a directory");
}

}  // namespace
}  // namespace pooler::config
