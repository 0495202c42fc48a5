// auth_query against a real server: users that exist only on PostgreSQL log in through the pooler, checked
// against the secret the server stores (SCRAM or md5), and the pooler's own server login then uses the SCRAM
// keys the client just proved (or the md5 secret), with no plain password anywhere. Unknown users and wrong
// passwords get the same 28P01; a broken auth_query is a clear error; a password changed on the server
// applies at the next login; cancel works on connections the pooler logged in itself. A [users] entry that
// holds only a SCRAM secret takes the same own-login path.
#include <gtest/gtest.h>

#include <poll.h>

#include <set>
#include <thread>

#include <fmt/format.h>

#include "tests/harness/net_util.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAuthUser = "pooler_auth";
constexpr const char* kAuthPassword = "auth-pw";

class AuthQueryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // pg_hba "md5" lets each role use what its stored secret allows: SCRAM for SCRAM secrets, md5 for md5.
    PgClusterOptions options = app_cluster_options(HostAuth::md5);
    options.roles.push_back({kAuthUser, kAuthPassword, false});
    stack_.cluster = std::make_unique<PgCluster>(options);
    PgCluster& pg = *stack_.cluster;
    pg.psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE carol LOGIN PASSWORD 'carol-pw'");
    pg.psql("SET password_encryption = 'md5'; CREATE ROLE dora LOGIN PASSWORD 'dora-pw'");
    pg.psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE frank LOGIN PASSWORD 'frank-pw'");
    pg.psql("GRANT ALL ON DATABASE app TO carol, dora, frank");
    // The usual way to let an unprivileged role read secrets: a SECURITY DEFINER function owned by a
    // superuser, callable only by the auth user.
    pg.psql("CREATE FUNCTION public.user_lookup(name text, OUT usename name, OUT passwd text) "
            "RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS "
            "$$ SELECT usename, passwd FROM pg_shadow WHERE usename = name $$; "
            "REVOKE ALL ON FUNCTION public.user_lookup(text) FROM public; "
            "GRANT EXECUTE ON FUNCTION public.user_lookup(text) TO pooler_auth",
            kAppDatabase);

    PoolerConfig config = app_pooler_config(pg);
    config.auth_type = "md5";  // SCRAM secrets are still asked for SCRAM, as PostgreSQL does
    config.users.push_back({kAuthUser, kAuthPassword});
    // frank is in [users], but only with the SCRAM secret the server stores: no plain password anywhere.
    config.users.push_back({"frank", pg.psql("SELECT passwd FROM pg_shadow WHERE usename = 'frank'")});
    metrics_port_ = free_port();
    config.extra_pooler_lines = {
        fmt::format("auth_user = \"{}\"", kAuthUser),
        "auth_query = \"SELECT usename, passwd FROM public.user_lookup($1)\"",
        fmt::format("metrics_listen = \"127.0.0.1:{}\"", metrics_port_),
    };
    // A database whose auth_query is wrong: its clients get a clear error, others are not disturbed.
    PoolerDatabase broken = config.databases[0];
    broken.name = "broken";
    broken.extra_lines = {"auth_query = \"SELECT no_such_column FROM pg_shadow WHERE usename = $1\""};
    config.databases.push_back(broken);
    // One where auth_query is off: users not in [users] do not exist there.
    PoolerDatabase closed = config.databases[0];
    closed.name = "closed";
    closed.extra_lines = {"auth_user = \"\""};
    config.databases.push_back(closed);
    stack_.daemon = std::make_unique<DaemonProcess>(config);
    // DaemonProcess returns once the client port accepts; the metrics listener opens a moment later.
    ASSERT_TRUE(eventually([] { return http_get(metrics_port_, "/metrics").has_value(); }));
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  static std::string conninfo(const std::string& user, const std::string& password,
                              const std::string& db = kAppDatabase, const std::string& extra = "") {
    return pooler_conninfo(*stack_.daemon, user, password, db, extra);
  }
  // libpq's error text for a login that must fail.
  static std::string login_error(const std::string& info) {
    PgConnPtr c = try_connect(info);
    EXPECT_NE(PQstatus(c.get()), CONNECTION_OK) << "login unexpectedly succeeded: " << info;
    return PQerrorMessage(c.get());
  }

  // pooler_auth_query_lookups_total{result="..."} as scraped now (-1 when the scrape failed).
  static double lookups(const std::string& result) {
    auto r = http_get(metrics_port_, "/metrics");
    if (!r) return -1;
    const std::string series = fmt::format("pooler_auth_query_lookups_total{{result=\"{}\"}} ", result);
    const auto at = r->body.find(series);
    if (at == std::string::npos) return -1;
    return std::stod(r->body.substr(at + series.size()));
  }

  static Stack stack_;
  static inline int metrics_port_ = 0;
};

Stack AuthQueryTest::stack_;

TEST_F(AuthQueryTest, ServerOnlyScramUserLogsInEndToEnd) {
  PgConnPtr c = connect(conninfo("carol", "carol-pw"));
  EXPECT_EQ(query_value(c.get(), "SELECT current_user"), "carol");
  EXPECT_EQ(query_value(c.get(), "SELECT session_user"), "carol");
  // The server saw a SCRAM login from the pooler for carol: its backend is authenticated as carol.
  const std::string pid = query_value(c.get(), "SELECT pg_backend_pid()");
  EXPECT_EQ(stack_.cluster->psql(fmt::format("SELECT usename FROM pg_stat_activity WHERE pid = {}", pid)), "carol");
  EXPECT_NE(stack_.daemon->log().find("event=auth_query"), std::string::npos);
}

// Not auth_query, the same mechanism: a [users] entry holding only a SCRAM secret logs in end to end.
TEST_F(AuthQueryTest, UsersEntryWithOnlyAScramSecretLogsInEndToEnd) {
  const double found = lookups("found");
  PgConnPtr c = connect(conninfo("frank", "frank-pw"));
  EXPECT_EQ(query_value(c.get(), "SELECT current_user"), "frank");
  EXPECT_EQ(lookups("found"), found) << "a [users] entry needs no lookup";
  const std::string error = login_error(conninfo("frank", "not-franks"));
  EXPECT_NE(error.find("password authentication failed for user \"frank\""), std::string::npos) << error;
}

TEST_F(AuthQueryTest, MoreServerConnectionsLogInWithTheProvenKeys) {
  // Session mode: three clients at once need three server logins, all from the keys of earlier proofs.
  std::vector<PgConnPtr> conns;
  std::set<std::string> pids;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(connect(conninfo("carol", "carol-pw")));
    pids.insert(query_value(conns.back().get(), "SELECT pg_backend_pid()"));
  }
  EXPECT_EQ(pids.size(), 3U);
  for (auto& c : conns) EXPECT_EQ(query_value(c.get(), "SELECT current_user"), "carol");
}

// More lookups at once than the lookup has connections (4): they queue, and each gets its own answer.
TEST_F(AuthQueryTest, ConcurrentLookupsQueueAndEachGetsItsAnswer) {
  constexpr int kClients = 16;
  std::vector<std::string> outcome(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([i, &outcome] {
      const bool known = i % 2 == 0;
      PgConnPtr c = try_connect(conninfo(known ? "carol" : "nobody", known ? "carol-pw" : "x"));
      if (PQstatus(c.get()) != CONNECTION_OK) {
        outcome[i] = PQerrorMessage(c.get());
        return;
      }
      PgResultPtr r(PQexec(c.get(), "SELECT current_user"));
      outcome[i] = PQresultStatus(r.get()) == PGRES_TUPLES_OK ? PQgetvalue(r.get(), 0, 0) : "query failed";
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(outcome[i], "carol") << "client " << i;
    } else {
      EXPECT_NE(outcome[i].find("password authentication failed for user \"nobody\""), std::string::npos)
          << "client " << i << ": " << outcome[i];
    }
  }
}

TEST_F(AuthQueryTest, Md5SecretUserLogsIn) {
  EXPECT_TRUE(stack_.cluster->psql("SELECT passwd FROM pg_shadow WHERE usename = 'dora'").starts_with("md5"));
  PgConnPtr c = connect(conninfo("dora", "dora-pw"));
  EXPECT_EQ(query_value(c.get(), "SELECT current_user"), "dora");
}

TEST_F(AuthQueryTest, WrongPasswordIsRefused) {
  const std::string error = login_error(conninfo("carol", "not-her-password"));
  EXPECT_NE(error.find("password authentication failed for user \"carol\""), std::string::npos) << error;
  const std::string md5_error = login_error(conninfo("dora", "wrong"));
  EXPECT_NE(md5_error.find("password authentication failed for user \"dora\""), std::string::npos) << md5_error;
}

TEST_F(AuthQueryTest, UnknownUserLooksLikeAWrongPassword) {
  // No "does not exist": from outside, an unknown user cannot be told from a known one.
  const double not_found = lookups("not_found");
  const std::string error = login_error(conninfo("nobody", "whatever"));
  EXPECT_EQ(lookups("not_found"), not_found + 1);
  EXPECT_NE(error.find("password authentication failed for user \"nobody\""), std::string::npos) << error;
  EXPECT_EQ(error.find("does not exist"), std::string::npos) << error;
}

TEST_F(AuthQueryTest, WithoutAuthQueryTheUserDoesNotExist) {
  const std::string error = login_error(conninfo("carol", "carol-pw", "closed"));
  EXPECT_NE(error.find("role \"carol\" does not exist"), std::string::npos) << error;
}

TEST_F(AuthQueryTest, BrokenAuthQueryIsAClearErrorAndDisturbsNoOne) {
  PgConnPtr bystander = connect(conninfo("carol", "carol-pw"));
  const double failed = lookups("failed");
  const std::string error = login_error(conninfo("carol", "carol-pw", "broken"));
  EXPECT_EQ(lookups("failed"), failed + 1);
  EXPECT_NE(error.find("auth_query"), std::string::npos) << error;
  EXPECT_NE(error.find("no_such_column"), std::string::npos) << error;
  EXPECT_EQ(query_value(bystander.get(), "SELECT 1"), "1");
  EXPECT_TRUE(daemon_serves(stack_));
}

TEST_F(AuthQueryTest, PasswordChangedOnTheServerAppliesAtTheNextLogin) {
  PgCluster& pg = *stack_.cluster;
  pg.psql("CREATE ROLE erin LOGIN PASSWORD 'first'; GRANT ALL ON DATABASE app TO erin");
  {
    PgConnPtr c = connect(conninfo("erin", "first"));
    EXPECT_EQ(query_value(c.get(), "SELECT current_user"), "erin");
  }
  pg.psql("ALTER ROLE erin PASSWORD 'second'");
  const std::string error = login_error(conninfo("erin", "first"));
  EXPECT_NE(error.find("password authentication failed"), std::string::npos) << error;
  // Two clients at once with the new password: the pool's new server login needs the new keys too.
  PgConnPtr a = connect(conninfo("erin", "second"));
  PgConnPtr b = connect(conninfo("erin", "second"));
  EXPECT_EQ(query_value(a.get(), "SELECT current_user"), "erin");
  EXPECT_EQ(query_value(b.get(), "SELECT current_user"), "erin");
}

TEST_F(AuthQueryTest, CancelReachesAConnectionThePoolerLoggedInItself) {
  PgConnPtr c = connect(conninfo("carol", "carol-pw"));
  ASSERT_EQ(PQsendQuery(c.get(), "SELECT pg_sleep(60)"), 1);
  // Wait until the server runs it, then cancel through the pooler as a client would.
  ASSERT_TRUE(eventually([&] {
    return stack_.cluster->psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'carol' AND "
                                "query = 'SELECT pg_sleep(60)' AND state = 'active'") == "1";
  }));
  PGcancel* cancel = PQgetCancel(c.get());
  char err[256];
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  // The sleep's own result, within a deadline (60 s would mean the cancel did nothing).
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (PQisBusy(c.get()) == 1 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{PQsocket(c.get()), POLLIN, 0};
    ::poll(&p, 1, 100);
    ASSERT_EQ(PQconsumeInput(c.get()), 1) << PQerrorMessage(c.get());
  }
  ASSERT_EQ(PQisBusy(c.get()), 0) << "the cancelled query did not end";
  PgResultPtr r(PQgetResult(c.get()));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(sqlstate(r.get()), "57014");
  while (PGresult* rest = PQgetResult(c.get())) PQclear(rest);
}

}  // namespace
}  // namespace pooler::test
