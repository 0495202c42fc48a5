// URL parsing: SQLAlchemy-style postgresql:// URLs into libpq keywords, and the errors for malformed ones.
#include <gtest/gtest.h>

#include "pooler/client.hpp"

namespace pooler {
namespace {

using KV = std::vector<std::pair<std::string, std::string>>;

// Every part of a full URL lands in its field.
TEST(ClientUrl, ParsesAllParts) {
  Url u = make_url("postgresql://app:secret@db.example.com:6432/appdb?sslmode=require&application_name=web");
  EXPECT_EQ(u.drivername, "postgresql");
  EXPECT_EQ(u.username, "app");
  EXPECT_EQ(u.password, "secret");
  ASSERT_EQ(u.hosts.size(), 1u);
  EXPECT_EQ(u.hosts[0].host, "db.example.com");
  EXPECT_EQ(u.hosts[0].port, 6432);
  EXPECT_EQ(u.database, "appdb");
  EXPECT_EQ(u.query, (KV{{"sslmode", "require"}, {"application_name", "web"}}));
  EXPECT_EQ(u.to_conninfo(), (KV{{"user", "app"},
                                 {"password", "secret"},
                                 {"host", "db.example.com"},
                                 {"port", "6432"},
                                 {"dbname", "appdb"},
                                 {"sslmode", "require"},
                                 {"application_name", "web"}}));
}

// Percent-escapes decode in user, password and database; an unescaped '@' in the password still works.
TEST(ClientUrl, PercentDecoding) {
  Url u = make_url("postgres://us%40er:p%3Aw%2Fd@host/my%20db");
  EXPECT_EQ(u.username, "us@er");
  EXPECT_EQ(u.password, "p:w/d");
  EXPECT_EQ(u.database, "my db");
  Url v = make_url("postgresql://u:p@ss@host/db");
  EXPECT_EQ(v.password, "p@ss");
  EXPECT_EQ(v.hosts[0].host, "host");
}

// Multi-host lists become libpq's comma lists; a missing port stays empty (libpq's default).
TEST(ClientUrl, MultiHostAndIpv6) {
  Url u = make_url("postgresql://app@db1:5432,db2,[::1]:5433/app?target_session_attrs=read-write");
  ASSERT_EQ(u.hosts.size(), 3u);
  EXPECT_EQ(u.hosts[1], (UrlHost{"db2", std::nullopt}));
  EXPECT_EQ(u.hosts[2], (UrlHost{"::1", 5433}));
  KV kv = u.to_conninfo();
  EXPECT_EQ(kv[1], (std::pair<std::string, std::string>{"host", "db1,db2,::1"}));
  EXPECT_EQ(kv[2], (std::pair<std::string, std::string>{"port", "5432,,5433"}));
}

// A unix socket directory comes in the query string; no host, user or database is also fine.
TEST(ClientUrl, SocketAndMinimal) {
  Url u = make_url("postgresql://app@/app?host=/var/run/postgresql");
  ASSERT_EQ(u.hosts.size(), 1u);
  EXPECT_EQ(u.hosts[0].host, "/var/run/postgresql");
  EXPECT_EQ(u.render(), "postgresql://app@/app?host=/var/run/postgresql");
  Url m = make_url("postgresql://");
  EXPECT_TRUE(m.hosts.empty());
  EXPECT_FALSE(m.username);
  EXPECT_FALSE(m.database);
}

// render() round-trips and hides the password unless asked.
TEST(ClientUrl, RenderRoundTrip) {
  std::string text = "postgresql://app:s%40cret@h1:1,h2:2/db?sslmode=disable";
  Url u = make_url(text);
  EXPECT_EQ(u.render(false), text);
  EXPECT_EQ(u.render(), "postgresql://app:***@h1:1,h2:2/db?sslmode=disable");
  EXPECT_EQ(make_url(u.render(false)), u);
}

// Malformed URLs say what is wrong and never show the password.
TEST(ClientUrl, MalformedUrlsAreArgumentErrors) {
  auto message = [](const char* url) {
    try {
      (void)make_url(url);
    } catch (const ArgumentError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("app:secret@host/db"), "Could not parse URL from string 'app:secret@host/db': expected <scheme>://…");
  EXPECT_EQ(message("mysql://u@h/db"), "Could not parse URL from string 'mysql://u@h/db': unsupported scheme 'mysql' (use postgresql://)");
  EXPECT_EQ(message("postgresql://u:topsecret@h:99999/db"),
            "Could not parse URL from string 'postgresql://u:***@h:99999/db': invalid port '99999' (expected 1-65535)");
  EXPECT_NE(message("postgresql://u@h:abc/db").find("invalid port 'abc'"), std::string::npos);
  EXPECT_NE(message("postgresql://u@h:/db").find("empty port"), std::string::npos);
  EXPECT_NE(message("postgresql://u@[::1/db").find("unterminated '['"), std::string::npos);
  EXPECT_NE(message("postgresql://u%zz@h/db").find("bad %-escape"), std::string::npos);
  EXPECT_NE(message("postgresql://u@h/db?sslmode").find("not key=value"), std::string::npos);
  EXPECT_NE(message("postgresql://u@h1,,h2/db").find("empty host"), std::string::npos);
}

// create_engine checks options and libpq keywords up front, without connecting.
TEST(ClientUrl, CreateEngineValidatesWithoutConnecting) {
  EXPECT_NO_THROW((void)create_engine("postgresql://u:p@127.0.0.1:1/db"));
  EXPECT_THROW((void)create_engine("postgresql://u@h/db?no_such_option=1"), ArgumentError);
  EXPECT_THROW((void)create_engine("postgresql://u@h/db", {.pool_size = -1}), ArgumentError);
  EXPECT_THROW((void)create_engine("postgresql://u@h/db", {.isolation_level = "sometimes"}), ArgumentError);
  auto e = create_engine("postgresql://u@h/db", {.pool_size = 3});
  EXPECT_EQ(e.pool().status(), "Pool size: 3  Connections in pool: 0 Current Overflow: -3 Current Checked out connections: 0");
}

}  // namespace
}  // namespace pooler
