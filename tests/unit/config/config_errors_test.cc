// Tests of validation: each kind of problem is reported with its exact file:line:column and dotted key,
// and all problems come back together.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace pooler::config {

// Lets gtest print a mismatching error readably.
void PrintTo(const ConfigError& e, std::ostream* os) { *os << e.to_string(); }

namespace {

std::vector<ConfigError> errors_of(std::string_view text) {
  auto config = load_string(text, "pooler.toml");
  if (config) {
    ADD_FAILURE() << "expected errors, got a valid config";
    return {};
  }
  return config.error();
}

// The single error of a config that should have exactly one.
ConfigError only_error(std::string_view text) {
  auto errors = errors_of(text);
  if (errors.size() != 1) {
    std::string all;
    for (const auto& e : errors) all += "\n  " + e.to_string();
    ADD_FAILURE() << "expected one error, got " << errors.size() << ":" << all;
    return {};
  }
  return errors[0];
}

ConfigError at(int line, int column, std::string key, std::string message) {
  return ConfigError{
      .file = "pooler.toml", .line = line, .column = column, .key = std::move(key), .message = std::move(message)};
}

// to_string gives the compiler-style form, with and without a position.
TEST(ConfigErrors, ToStringFormat) {
  EXPECT_EQ(at(12, 5, "databases.app.pool_size", "must be >= 0, got -3").to_string(),
            "pooler.toml:12:5: databases.app.pool_size: must be >= 0, got -3");
  EXPECT_EQ((ConfigError{.file = "x.toml", .key = {}, .message = "boom"}).to_string(), "x.toml: boom");
}

// A TOML syntax error is reported at the position toml++ found it, with no key.
TEST(ConfigErrors, SyntaxError) {
  const ConfigError e = only_error("[pooler]\nlisten_port = = 1\n");
  EXPECT_EQ(e.file, "pooler.toml");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 15);
  EXPECT_EQ(e.key, "");
  EXPECT_NE(e.message.find("could not determine value type"), std::string::npos) << e.message;
}

// A duplicated key is a syntax error at the second definition.
TEST(ConfigErrors, DuplicateKey) {
  const ConfigError e = only_error("[databases.app]\npool_size = 1\npool_size = 2\n");
  EXPECT_EQ(e.line, 3);
  EXPECT_NE(e.message.find("pool_size"), std::string::npos) << e.message;
}

// A misspelt key is reported at the key, with the key it was surely meant to be.
TEST(ConfigErrors, UnknownKeyWithTypoSuggestion) {
  EXPECT_EQ(only_error("[databases.app]\npool_sise = 3\n"),
            at(2, 1, "databases.app.pool_sise", R"(unknown key; did you mean "pool_size"?)"));
}

// A misspelt table name is caught at the top level too.
TEST(ConfigErrors, UnknownTableWithTypoSuggestion) {
  EXPECT_EQ(only_error("[database.app]\nhost = \"x\"\n"),
            at(1, 2, "database", R"(unknown key; did you mean "databases"?)"));
}

// A key that resembles nothing known gets no suggestion.
TEST(ConfigErrors, UnknownKeyWithoutSuggestion) {
  EXPECT_EQ(only_error("[pooler]\ncompression = true\n"), at(2, 1, "pooler.compression", "unknown key"));
}

// A bare word that is part of one key suggests it ("port" in [pooler] means listen_port).
TEST(ConfigErrors, UnknownKeySuggestsByPart) {
  EXPECT_EQ(only_error("[pooler]\nport = 6432\n"), at(2, 1, "pooler.port", R"(unknown key; did you mean "listen_port"?)"));
}

// A string where an integer belongs names both types, at the value.
TEST(ConfigErrors, WrongTypeInteger) {
  EXPECT_EQ(only_error("[databases.app]\npool_size = \"five\"\n"),
            at(2, 13, "databases.app.pool_size", "expected an integer, got a string"));
}

// A float where an integer belongs is a type error, not silently truncated.
TEST(ConfigErrors, WrongTypeFloatForInteger) {
  EXPECT_EQ(only_error("[pooler]\nmax_client_conn = 10.5\n"),
            at(2, 19, "pooler.max_client_conn", "expected an integer, got a float"));
}

// A duration written as a string asks for a number of seconds.
TEST(ConfigErrors, WrongTypeDuration) {
  EXPECT_EQ(only_error("[databases.app]\npool_timeout = \"30s\"\n"),
            at(2, 16, "databases.app.pool_timeout", "expected a number of seconds, got a string"));
}

// A boolean key given a string says booleans are true or false.
TEST(ConfigErrors, WrongTypeBoolean) {
  EXPECT_EQ(only_error("[databases.app]\npool_pre_ping = \"yes\"\n"),
            at(2, 17, "databases.app.pool_pre_ping", "expected a boolean (true or false), got a string"));
}

// [pooler] given as a plain value instead of a table.
TEST(ConfigErrors, WrongTypeTable) {
  EXPECT_EQ(only_error("pooler = 1\n"), at(1, 10, "pooler", "expected a table, got an integer"));
}

// A database entry that is not a table.
TEST(ConfigErrors, DatabaseNotATable) {
  EXPECT_EQ(only_error("[databases]\napp = 5\n"),
            at(2, 7, "databases.app", "expected a table [databases.app], got an integer"));
}

// A negative pool_size is out of range.
TEST(ConfigErrors, NegativePoolSize) {
  EXPECT_EQ(only_error("[databases.app]\npool_size = -3\n"), at(2, 13, "databases.app.pool_size", "must be >= 0, got -3"));
}

// max_overflow below -1 is out of range; -1 itself means unlimited.
TEST(ConfigErrors, MaxOverflowBelowMinusOne) {
  EXPECT_EQ(only_error("[databases.app]\nmax_overflow = -2\n"),
            at(2, 16, "databases.app.max_overflow", "must be >= -1, got -2"));
}

// Ports outside their range: the listen port allows 0, a server port does not.
TEST(ConfigErrors, PortsOutOfRange) {
  EXPECT_EQ(only_error("[pooler]\nlisten_port = 70000\n"),
            at(2, 15, "pooler.listen_port", "must be from 0 to 65535, got 70000"));
  EXPECT_EQ(only_error("[databases.app]\nport = 0\n"), at(2, 8, "databases.app.port", "must be from 1 to 65535, got 0"));
}

// min_pool_size larger than pool_size, in PgCat's wording, at min_pool_size.
TEST(ConfigErrors, MinPoolSizeAbovePoolSize) {
  EXPECT_EQ(only_error("[databases.app]\nmin_pool_size = 5\npool_size = 3\n"),
            at(2, 17, "databases.app.min_pool_size", "min_pool_size of 5 cannot be larger than pool_size of 3"));
}

// Zero or negative timeouts where > 0 (or >= 0) is required.
TEST(ConfigErrors, TimeoutsOutOfRange) {
  EXPECT_EQ(only_error("[databases.app]\npool_timeout = 0\n"), at(2, 16, "databases.app.pool_timeout", "must be > 0, got 0"));
  EXPECT_EQ(only_error("[pooler]\nshutdown_timeout = -0.5\n"),
            at(2, 20, "pooler.shutdown_timeout", "must be >= 0, got -0.5"));
  EXPECT_EQ(only_error("[databases.app]\npool_recycle = 0\n"),
            at(2, 16, "databases.app.pool_recycle", "must be > 0, or -1 for never, got 0"));
  EXPECT_EQ(only_error("[databases.app]\nquery_timeout = -2\n"),
            at(2, 17, "databases.app.query_timeout", "must be > 0, or -1 for none, got -2"));
}

// An infinite duration is refused.
TEST(ConfigErrors, InfiniteDuration) {
  EXPECT_EQ(only_error("[databases.app]\nconnect_timeout = inf\n"),
            at(2, 19, "databases.app.connect_timeout", "must be a finite number of seconds, got inf"));
}

// Invalid enum strings list the valid choices.
TEST(ConfigErrors, InvalidEnumListsChoices) {
  EXPECT_EQ(only_error("[databases.app]\npool_mode = \"statement\"\n"),
            at(2, 13, "databases.app.pool_mode", R"(invalid value "statement", expected one of "session", "transaction")"));
  EXPECT_EQ(only_error("[pooler]\nauth_type = \"scram\"\n"),
            at(2, 13, "pooler.auth_type", R"(invalid value "scram", expected one of "trust", "md5", "scram-sha-256")"));
  EXPECT_EQ(only_error("[pooler]\nlog_level = \"verbose\"\n"),
            at(2, 13, "pooler.log_level",
               R"(invalid value "verbose", expected one of "trace", "debug", "info", "warn", "error", "critical", "off")"));
  EXPECT_EQ(only_error("[databases.app]\nsslmode = \"on\"\n").message,
            R"(invalid value "on", expected one of "disable", "allow", "prefer", "require", "verify-ca", "verify-full")");
  EXPECT_EQ(only_error("[databases.app]\ntarget_session_attrs = \"master\"\n").key, "databases.app.target_session_attrs");
  EXPECT_EQ(only_error("[databases.app]\nreset_on_return = \"reset\"\n").key, "databases.app.reset_on_return");
  EXPECT_EQ(only_error("[pooler]\nlog_format = \"xml\"\n").key, "pooler.log_format");
}

// Both host and hosts is ambiguous, reported at hosts.
TEST(ConfigErrors, HostAndHosts) {
  EXPECT_EQ(only_error("[databases.app]\nhost = \"a\"\nhosts = [\"b\"]\n"),
            at(3, 9, "databases.app.hosts", "give either host or hosts, not both"));
}

// An empty hosts list leaves nowhere to connect.
TEST(ConfigErrors, EmptyHosts) {
  EXPECT_EQ(only_error("[databases.app]\nhosts = []\n"),
            at(2, 9, "databases.app.hosts", R"(must list at least one host, e.g. ["db1:5432", "db2"])"));
}

// A bad entry in hosts is reported at that entry, with its index in the key.
TEST(ConfigErrors, BadHostsEntry) {
  EXPECT_EQ(only_error("[databases.app]\nhosts = [\"db1:5432\", \"db2:abc\"]\n"),
            at(2, 22, "databases.app.hosts[1]", R"(invalid port "abc" in "db2:abc", expected a number from 1 to 65535)"));
  EXPECT_EQ(only_error("[databases.app]\nhosts = [5432]\n"),
            at(2, 10, "databases.app.hosts[0]", R"(expected a string "host[:port]", got an integer)"));
}

// A comma-separated host string is pointed at hosts = [...].
TEST(ConfigErrors, CommaInHost) {
  EXPECT_EQ(only_error("[databases.app]\nhost = \"a,b\"\n").key, "databases.app.host");
}

// A user without a password is reported at the user's table.
TEST(ConfigErrors, UserWithoutPassword) {
  EXPECT_EQ(only_error("[users.bob]\n"),
            at(1, 1, "users.bob.password", "missing; every user needs a password (plain, or a SCRAM-SHA-256 secret)"));
}

// An inline user table without a password is reported at its opening brace.
TEST(ConfigErrors, InlineUserWithoutPassword) {
  EXPECT_EQ(only_error("[users]\nbob = {}\n").line, 2);
  EXPECT_EQ(only_error("[users]\nbob = {}\n").column, 7);
}

// An empty password is refused.
TEST(ConfigErrors, EmptyPassword) {
  EXPECT_EQ(only_error("[users.bob]\npassword = \"\"\n"), at(2, 12, "users.bob.password", "must not be empty"));
}

// admin_users must name [users] entries; the bad one is pointed at inside the array.
TEST(ConfigErrors, AdminUserNotInUsers) {
  EXPECT_EQ(only_error("[pooler]\nadmin_users = [\"admin\", \"root\"]\n[users.admin]\npassword = \"a\"\n"),
            at(2, 25, "pooler.admin_users[1]", R"(admin user "root" has no [users.root] table)"));
}

// metrics_listen must be host:port.
TEST(ConfigErrors, MetricsListenForm) {
  EXPECT_EQ(only_error("[pooler]\nmetrics_listen = \"9127\"\n"),
            at(2, 18, "pooler.metrics_listen", R"(missing port in "9127", expected "host:port" (or "" to disable metrics))"));
}

// max_message_size below 1 KiB would refuse ordinary queries.
TEST(ConfigErrors, MaxMessageSizeTooSmall) {
  EXPECT_EQ(only_error("[pooler]\nmax_message_size = 100\n"),
            at(2, 20, "pooler.max_message_size", "must be >= 1024, got 100"));
}

// max_client_conn must allow at least one client.
TEST(ConfigErrors, MaxClientConnZero) {
  EXPECT_EQ(only_error("[pooler]\nmax_client_conn = 0\n").message, "must be >= 1, got 0");
}

// A unix socket directory too long for sun_path is caught before bind() would fail.
TEST(ConfigErrors, UnixSocketDirTooLong) {
  const ConfigError e = only_error("[pooler]\nunix_socket_dir = \"/" + std::string(100, 'd') + "\"\n");
  EXPECT_EQ(e.key, "pooler.unix_socket_dir");
  EXPECT_EQ(e.line, 2);
  EXPECT_NE(e.message.find("more than the 107"), std::string::npos) << e.message;
}

// The admin console's name cannot be used for a database.
TEST(ConfigErrors, ReservedDatabaseName) {
  EXPECT_EQ(only_error("[databases.pooler]\n"),
            at(1, 1, "databases.pooler", R"(the name "pooler" is reserved for the admin console)"));
}

// A database password only makes sense with the forced user it belongs to.
TEST(ConfigErrors, DatabasePasswordWithoutUser) {
  EXPECT_EQ(only_error("[databases.app]\npassword = \"x\"\n").key, "databases.app.password");
}

// An md5 secret cannot verify scram-sha-256 clients.
TEST(ConfigErrors, Md5SecretWithScramAuth) {
  const std::string md5 = "md5" + std::string(32, '0');
  EXPECT_EQ(only_error("[users.bob]\npassword = \"" + md5 + "\"\n").key, "users.bob.password");
  EXPECT_TRUE(load_string("[pooler]\nauth_type = \"md5\"\n[users.bob]\npassword = \"" + md5 + "\"\n", "pooler.toml"));
}

// A truncated SCRAM secret is refused instead of being taken as a plain password.
TEST(ConfigErrors, MalformedScramSecret) {
  const ConfigError e = only_error("[users.bob]\npassword = \"SCRAM-SHA-256$4096:abc\"\n");
  EXPECT_EQ(e.key, "users.bob.password");
  EXPECT_NE(e.message.find("starts like a SCRAM-SHA-256 secret"), std::string::npos);
}

// Names that need quoting in TOML are quoted in the key path.
TEST(ConfigErrors, QuotedNameInKey) {
  EXPECT_EQ(only_error("[databases.\"my.db\"]\npool_size = -1\n").key, R"(databases."my.db".pool_size)");
}

// Every problem in the file comes back at once, sorted into file order.
TEST(ConfigErrors, MultipleErrorsTogether) {
  const auto errors = errors_of(R"([pooler]
listen_port = -1
admin_users = ["ghost"]

[databases.app]
pool_sise = 3
pool_mode = "statement"
min_pool_size = 20

[users.app]
)");
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_EQ(errors[0], at(2, 15, "pooler.listen_port", "must be from 0 to 65535, got -1"));
  EXPECT_EQ(errors[1], at(3, 16, "pooler.admin_users[0]", R"(admin user "ghost" has no [users.ghost] table)"));
  EXPECT_EQ(errors[2], at(6, 1, "databases.app.pool_sise", R"(unknown key; did you mean "pool_size"?)"));
  EXPECT_EQ(errors[3], at(7, 13, "databases.app.pool_mode",
                          R"(invalid value "statement", expected one of "session", "transaction")"));
  EXPECT_EQ(errors[4], at(8, 17, "databases.app.min_pool_size", "min_pool_size of 20 cannot be larger than pool_size of 5"));
  EXPECT_EQ(errors[5], at(10, 1, "users.app.password",
                          "missing; every user needs a password (plain, or a SCRAM-SHA-256 secret)"));
}

}  // namespace
}  // namespace pooler::config
