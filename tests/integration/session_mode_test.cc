// Session pool mode end to end: libpq clients through the real pooler to a real PostgreSQL 15 — queries,
// parameters, errors, cancel, authentication, concurrency, server-side resets, backend loss and COPY.
#include <algorithm>
#include <barrier>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The main session-mode stack: SCRAM for clients, pool_size 5 + max_overflow 15 so 20 sessions fit at once.
class IntegrationSessionMode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_.start([](PoolerConfig& config) {
      config.databases[0].pool_size = 5;
      config.databases[0].max_overflow = 15;
    });
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  static PgConnPtr client(const std::string& extra = "") { return connect(stack_.conninfo(extra)); }

  inline static Stack stack_;
};

// Waits until the server shows `sql` running (state active); returns whether it did within 20 s.
bool wait_until_running(const PgCluster& cluster, const std::string& sql) {
  PgConnPtr admin = connect(cluster.superuser_conninfo());
  const std::string probe =
      fmt::format("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = {}", quote_literal(sql));
  const auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline) {
    if (query_value(admin.get(), probe) != "0") return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// psql-style simple queries, multi-statement strings and explicit transactions work.
TEST_F(IntegrationSessionMode, SimpleQueries) {
  PgConnPtr conn = client();
  EXPECT_EQ(query_value(conn.get(), "SELECT 1"), "1");
  EXPECT_EQ(query_value(conn.get(), "SELECT current_user"), "app");
  EXPECT_EQ(query_value(conn.get(), "SELECT current_database()"), "app");
  exec_ok(conn.get(), "CREATE TEMP TABLE t(v int); INSERT INTO t SELECT generate_series(1, 1000)");
  EXPECT_EQ(query_value(conn.get(), "SELECT sum(v) FROM t"), "500500");
  exec_ok(conn.get(), "BEGIN");
  EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_INTRANS);
  exec_ok(conn.get(), "INSERT INTO t VALUES (-500500)");
  exec_ok(conn.get(), "COMMIT");
  EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_IDLE);
  EXPECT_EQ(query_value(conn.get(), "SELECT sum(v) FROM t"), "0");
  // A result bigger than any single read buffer.
  EXPECT_EQ(query_value(conn.get(), "SELECT length(string_agg(md5(i::text), '')) FROM generate_series(1, 20000) i"),
            "640000");
  PgResultPtr rows = exec_ok(conn.get(), "SELECT repeat('x', 1000) FROM generate_series(1, 2000)");
  EXPECT_EQ(PQntuples(rows.get()), 2000);
}

// The extended protocol (PQexecParams, PQprepare / PQexecPrepared) works through the pooler.
TEST_F(IntegrationSessionMode, ExtendedProtocol) {
  PgConnPtr conn = client();
  const char* values[] = {"20", "22"};
  PgResultPtr sum(PQexecParams(conn.get(), "SELECT $1::int + $2::int", 2, nullptr, values, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(sum.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQgetvalue(sum.get(), 0, 0), "42");
  PgResultPtr prepared(PQprepare(conn.get(), "double_it", "SELECT $1::int * 2", 1, nullptr));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  for (int i = 0; i < 50; ++i) {
    std::string arg = std::to_string(i);
    const char* params[] = {arg.c_str()};
    PgResultPtr doubled(PQexecPrepared(conn.get(), "double_it", 1, params, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(doubled.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    EXPECT_EQ(std::string(PQgetvalue(doubled.get(), 0, 0)), std::to_string(2 * i));
  }
}

// ParameterStatus values reach the client: server_version, client_encoding and the client's application_name.
TEST_F(IntegrationSessionMode, ParameterStatusVisible) {
  PgConnPtr conn = client("application_name=itest_app client_encoding=UTF8");
  ASSERT_NE(PQparameterStatus(conn.get(), "server_version"), nullptr);
  EXPECT_TRUE(std::string(PQparameterStatus(conn.get(), "server_version")).starts_with("15"));
  EXPECT_GE(PQserverVersion(conn.get()), 150000);
  ASSERT_NE(PQparameterStatus(conn.get(), "client_encoding"), nullptr);
  EXPECT_STREQ(PQparameterStatus(conn.get(), "client_encoding"), "UTF8");
  ASSERT_NE(PQparameterStatus(conn.get(), "application_name"), nullptr);
  EXPECT_STREQ(PQparameterStatus(conn.get(), "application_name"), "itest_app");
  ASSERT_NE(PQparameterStatus(conn.get(), "integer_datetimes"), nullptr);
  EXPECT_STREQ(PQparameterStatus(conn.get(), "integer_datetimes"), "on");
}

// The application_name a client gives at startup is in effect on its server session too.
TEST_F(IntegrationSessionMode, StartupApplicationNameReachesServer) {
  PgConnPtr conn = client("application_name=itest_app");
  EXPECT_EQ(query_value(conn.get(), "SHOW application_name"), "itest_app");
  // A SET changes it and the client hears about it through ParameterStatus.
  exec_ok(conn.get(), "SET application_name = 'renamed'");
  EXPECT_STREQ(PQparameterStatus(conn.get(), "application_name"), "renamed");
}

// The client gets a BackendKeyData with a non-zero process id.
TEST_F(IntegrationSessionMode, BackendPidNonZero) {
  PgConnPtr conn = client();
  EXPECT_NE(PQbackendPID(conn.get()), 0);
}

// A server-side error arrives with its SQLSTATE and the session stays usable, in and out of a transaction.
TEST_F(IntegrationSessionMode, ServerErrorKeepsSessionUsable) {
  PgConnPtr conn = client();
  PgResultPtr division(PQexec(conn.get(), "SELECT 1/0"));
  EXPECT_EQ(PQresultStatus(division.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(sqlstate(division.get()), "22012");
  EXPECT_EQ(query_value(conn.get(), "SELECT 2"), "2");

  exec_ok(conn.get(), "BEGIN");
  PgResultPtr missing(PQexec(conn.get(), "SELECT * FROM no_such_table"));
  EXPECT_EQ(sqlstate(missing.get()), "42P01");
  EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_INERROR);
  PgResultPtr aborted(PQexec(conn.get(), "SELECT 1"));
  EXPECT_EQ(sqlstate(aborted.get()), "25P02");
  exec_ok(conn.get(), "ROLLBACK");
  EXPECT_EQ(query_value(conn.get(), "SELECT 3"), "3");
}

// PQcancel on a running pg_sleep(30) reaches the server: 57014 within seconds, and the session goes on.
TEST_F(IntegrationSessionMode, CancelRunningQuery) {
  PgConnPtr conn = client();
  const std::string sleep_sql = "SELECT pg_sleep(30)";
  ASSERT_EQ(PQsendQuery(conn.get(), sleep_sql.c_str()), 1) << PQerrorMessage(conn.get());
  ASSERT_TRUE(wait_until_running(*stack_.cluster, sleep_sql)) << "the query never started on the server";

  const auto sent = Clock::now();
  PGcancel* cancel = PQgetCancel(conn.get());
  ASSERT_NE(cancel, nullptr);
  char error[256] = {};
  EXPECT_EQ(PQcancel(cancel, error, sizeof error), 1) << error;
  PQfreeCancel(cancel);

  PgResultPtr result(PQgetResult(conn.get()));
  const auto waited = Clock::now() - sent;
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(sqlstate(result.get()), "57014") << PQresultErrorMessage(result.get());
  EXPECT_LT(waited, 10s) << "the cancel did not reach the server; the query ran to its end";
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
  EXPECT_EQ(query_value(conn.get(), "SELECT 'after cancel'"), "after cancel");
}

// SCRAM-SHA-256 login succeeds with the right password (the server signature verifies) and fails with
// 28P01 with a wrong one.
TEST_F(IntegrationSessionMode, ScramLogin) {
  PgConnPtr good = try_connect(stack_.conninfo());
  EXPECT_EQ(PQstatus(good.get()), CONNECTION_OK) << PQerrorMessage(good.get());

  PgConnPtr bad = try_connect(pooler_conninfo(*stack_.daemon, kAppUser, "wrong"));
  EXPECT_NE(PQstatus(bad.get()), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(bad.get())).find("password authentication failed"), std::string::npos)
      << PQerrorMessage(bad.get());

  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  LoginResult login = raw.login(kAppUser, kAppDatabase, "wrong");
  ASSERT_TRUE(login.error) << "wrong password was not rejected";
  EXPECT_EQ(login.error->sqlstate(), "28P01") << login.error->describe();
  EXPECT_EQ(login.error->severity(), "FATAL");

  RawClient raw_ok(stack_.daemon->listen_addr(), stack_.daemon->port());
  LoginResult ok = raw_ok.login(kAppUser, kAppDatabase, kAppPassword);
  EXPECT_TRUE(ok.ready) << (ok.error ? ok.error->describe() : "closed");
}

// A database the pooler does not know is refused with 3D000.
TEST_F(IntegrationSessionMode, UnknownDatabase) {
  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  LoginResult login = raw.login(kAppUser, "nope", kAppPassword);
  ASSERT_TRUE(login.error) << "expected an ErrorResponse";
  EXPECT_EQ(login.error->sqlstate(), "3D000") << login.error->describe();
  EXPECT_TRUE(raw.wait_closed());

  PgConnPtr conn = try_connect(pooler_conninfo(*stack_.daemon, kAppUser, kAppPassword, "nope"));
  EXPECT_NE(PQstatus(conn.get()), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(conn.get())).find("nope"), std::string::npos) << PQerrorMessage(conn.get());
  EXPECT_TRUE(daemon_serves(stack_));
}

// A user the pooler does not know is refused with 28000.
TEST_F(IntegrationSessionMode, UnknownUser) {
  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  LoginResult login = raw.login("nobody", kAppDatabase, "whatever");
  ASSERT_TRUE(login.error) << "expected an ErrorResponse";
  EXPECT_EQ(login.error->sqlstate(), "28000") << login.error->describe();
  EXPECT_TRUE(raw.wait_closed());
  EXPECT_TRUE(daemon_serves(stack_));
}

// 20 clients hold sessions at the same time (pool_size 5 + max_overflow 15), each on its own server
// connection, and all their queries succeed.
TEST_F(IntegrationSessionMode, ManyConcurrentClients) {
  constexpr int kClients = 20;
  std::barrier all_connected(kClients);
  std::mutex mutex;
  std::vector<std::string> failures;
  std::set<std::string> server_pids;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      PgConnPtr conn;
      std::string pid;
      try {
        conn = connect(stack_.conninfo(fmt::format("application_name=worker{}", i)));
        pid = query_value(conn.get(), "SELECT pg_backend_pid()");
      } catch (const std::exception& error) {
        std::lock_guard lock(mutex);
        failures.push_back(error.what());
      }
      // Everyone holds a session here at once, so the pool must have 20 connections open.
      all_connected.arrive_and_wait();
      try {
        if (conn) {
          for (int q = 0; q < 20; ++q) {
            std::string expected = std::to_string(i * 1000 + q);
            if (query_value(conn.get(), "SELECT " + expected) != expected) throw std::runtime_error("wrong answer");
          }
          if (query_value(conn.get(), "SELECT pg_backend_pid()") != pid) {
            throw std::runtime_error("session moved to another server connection");
          }
        }
      } catch (const std::exception& error) {
        std::lock_guard lock(mutex);
        failures.push_back(error.what());
      }
      std::lock_guard lock(mutex);
      if (!pid.empty()) server_pids.insert(pid);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures, first: " << (failures.empty() ? "" : failures[0]);
  EXPECT_EQ(server_pids.size(), static_cast<std::size_t>(kClients)) << "sessions shared a server connection";
}

// Clients that come and go return their server connections: 60 sequential sessions fit in 20 connections.
TEST_F(IntegrationSessionMode, DisconnectReturnsConnection) {
  for (int i = 0; i < 60; ++i) {
    PgConnPtr conn = client();
    ASSERT_EQ(query_value(conn.get(), "SELECT " + std::to_string(i)), std::to_string(i)) << "session " << i;
  }
  // A client that says Terminate is let go cleanly as well.
  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  ASSERT_TRUE(raw.login(kAppUser, kAppDatabase, kAppPassword).ready);
  ASSERT_TRUE(raw.send(wire::terminate()));
  EXPECT_TRUE(raw.wait_closed());
  EXPECT_TRUE(daemon_serves(stack_));
}

// The server connection killed under an idle client: its next query fails promptly instead of hanging,
// and new clients are served.
TEST_F(IntegrationSessionMode, BackendTerminatedUnderClient) {
  PgConnPtr victim = client();
  std::string server_pid = query_value(victim.get(), "SELECT pg_backend_pid()");
  EXPECT_EQ(stack_.cluster->psql(fmt::format("SELECT pg_terminate_backend({}, 10000)", server_pid)), "t");

  PgResultPtr result = exec_with_deadline(victim.get(), "SELECT 1", 20s);
  EXPECT_TRUE(result == nullptr || PQresultStatus(result.get()) != PGRES_TUPLES_OK)
      << "a query on a terminated server connection succeeded";
  EXPECT_TRUE(daemon_serves(stack_));
}

// The server connection killed in the middle of a running query: the client gets an error, not a hang.
TEST_F(IntegrationSessionMode, BackendTerminatedDuringQuery) {
  PgConnPtr victim = client();
  std::string server_pid = query_value(victim.get(), "SELECT pg_backend_pid()");
  const std::string sleep_sql = "SELECT pg_sleep(60)";
  ASSERT_EQ(PQsendQuery(victim.get(), sleep_sql.c_str()), 1);
  ASSERT_TRUE(wait_until_running(*stack_.cluster, sleep_sql));
  EXPECT_EQ(stack_.cluster->psql(fmt::format("SELECT pg_terminate_backend({}, 10000)", server_pid)), "t");

  const auto deadline = Clock::now() + 20s;
  bool failed = false;
  while (!failed && Clock::now() < deadline) {
    if (PQconsumeInput(victim.get()) == 0) failed = true;
    while (!failed && PQisBusy(victim.get()) == 0) {
      PgResultPtr result(PQgetResult(victim.get()));
      if (!result) break;
      if (PQresultStatus(result.get()) == PGRES_FATAL_ERROR) failed = true;
    }
    if (!failed) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(failed) << "the client never learned its server connection died";
  EXPECT_TRUE(daemon_serves(stack_));
}

// COPY FROM STDIN and COPY TO STDOUT pass through, including a failing COPY after which the session works.
TEST_F(IntegrationSessionMode, CopyInAndOut) {
  PgConnPtr conn = client();
  exec_ok(conn.get(), "CREATE TEMP TABLE copy_t(a int, b text)");
  PgResultPtr in(PQexec(conn.get(), "COPY copy_t FROM STDIN"));
  ASSERT_EQ(PQresultStatus(in.get()), PGRES_COPY_IN) << PQerrorMessage(conn.get());
  std::string expected;
  for (int i = 0; i < 5000; ++i) {
    std::string row = fmt::format("{}\trow {} {}\n", i, i, std::string(static_cast<std::size_t>(i % 50), 'y'));
    expected += row;
    ASSERT_EQ(PQputCopyData(conn.get(), row.data(), static_cast<int>(row.size())), 1);
  }
  ASSERT_EQ(PQputCopyEnd(conn.get(), nullptr), 1);
  PgResultPtr done(PQgetResult(conn.get()));
  ASSERT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQcmdTuples(done.get()), "5000");
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);

  PgResultPtr out(PQexec(conn.get(), "COPY (SELECT a, b FROM copy_t ORDER BY a) TO STDOUT"));
  ASSERT_EQ(PQresultStatus(out.get()), PGRES_COPY_OUT) << PQerrorMessage(conn.get());
  std::string received;
  for (;;) {
    char* buffer = nullptr;
    int n = PQgetCopyData(conn.get(), &buffer, 0);
    if (n < 0) break;
    received.append(buffer, static_cast<std::size_t>(n));
    PQfreemem(buffer);
  }
  PgResultPtr out_done(PQgetResult(conn.get()));
  EXPECT_EQ(PQresultStatus(out_done.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
  EXPECT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected) << "COPY OUT data differs from what was copied in";

  PgResultPtr bad_in(PQexec(conn.get(), "COPY copy_t FROM STDIN"));
  ASSERT_EQ(PQresultStatus(bad_in.get()), PGRES_COPY_IN);
  std::string bad_row = "not-a-number\tx\n";
  PQputCopyData(conn.get(), bad_row.data(), static_cast<int>(bad_row.size()));
  PQputCopyEnd(conn.get(), nullptr);
  PgResultPtr bad_done(PQgetResult(conn.get()));
  EXPECT_EQ(sqlstate(bad_done.get()), "22P02");
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
  EXPECT_EQ(query_value(conn.get(), "SELECT count(*) FROM copy_t"), "5000");
}

// pool_size 1, no overflow: consecutive clients get the same server connection, so what one leaves behind
// would be visible to the next unless the pooler resets it (DISCARD ALL) on return.
class IntegrationSessionReset : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_.start([](PoolerConfig& config) {
      config.databases[0].pool_size = 1;
      config.databases[0].max_overflow = 0;
    });
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  // Runs `first` in one session and returns the next session, asserting both used one server connection.
  static PgConnPtr next_session_after(const std::string& first) {
    std::string pid;
    {
      PgConnPtr conn = connect(stack_.conninfo());
      pid = query_value(conn.get(), "SELECT pg_backend_pid()");
      exec_ok(conn.get(), first);
    }
    PgConnPtr next = connect(stack_.conninfo());
    EXPECT_EQ(query_value(next.get(), "SELECT pg_backend_pid()"), pid) << "pool_size 1 yet a new server connection";
    return next;
  }

  inline static Stack stack_;
};

// A temp table created in one session is not visible in the next session on the same server connection.
TEST_F(IntegrationSessionReset, TempTableDoesNotLeak) {
  PgConnPtr next = next_session_after("CREATE TEMP TABLE leftover(v int); INSERT INTO leftover VALUES (1)");
  EXPECT_EQ(query_value(next.get(), "SELECT to_regclass('pg_temp.leftover') IS NULL"), "t");
  PgResultPtr result(PQexec(next.get(), "SELECT * FROM leftover"));
  EXPECT_EQ(sqlstate(result.get()), "42P01");
}

// SET in one session does not carry over to the next session on the same server connection.
TEST_F(IntegrationSessionReset, SessionSettingsDoNotLeak) {
  PgConnPtr next = next_session_after("SET work_mem = '1234kB'; SET search_path = pg_catalog");
  EXPECT_NE(query_value(next.get(), "SHOW work_mem"), "1234kB");
  EXPECT_NE(query_value(next.get(), "SHOW search_path"), "pg_catalog");
}

// Prepared statements and advisory locks of one session are gone in the next.
TEST_F(IntegrationSessionReset, PreparedStatementsAndLocksDoNotLeak) {
  PgConnPtr next = next_session_after("PREPARE leftover_stmt AS SELECT 1; SELECT pg_advisory_lock(4242)");
  PgResultPtr result(PQexec(next.get(), "EXECUTE leftover_stmt"));
  EXPECT_EQ(sqlstate(result.get()), "26000");
  EXPECT_EQ(query_value(next.get(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

// A client that disconnects inside an open transaction does not leave it open for the next one.
TEST_F(IntegrationSessionReset, OpenTransactionDoesNotLeak) {
  stack_.cluster->psql("CREATE TABLE IF NOT EXISTS reset_probe(v int)", kAppDatabase);
  stack_.cluster->psql("GRANT ALL ON reset_probe TO app", kAppDatabase);
  PgConnPtr next = next_session_after("BEGIN; INSERT INTO reset_probe VALUES (1)");
  EXPECT_EQ(PQtransactionStatus(next.get()), PQTRANS_IDLE);
  EXPECT_EQ(query_value(next.get(), "SELECT count(*) FROM reset_probe"), "0");
  EXPECT_EQ(stack_.cluster->psql("SELECT count(*) FROM reset_probe", kAppDatabase), "0");
}

// md5 client authentication: the right password logs in, a wrong one gets 28P01.
class IntegrationSessionMd5 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_.start([](PoolerConfig& config) { config.auth_type = "md5"; });
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  inline static Stack stack_;
};

// md5 login with the right password works and runs queries.
TEST_F(IntegrationSessionMd5, LoginSucceeds) {
  PgConnPtr conn = try_connect(stack_.conninfo());
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(query_value(conn.get(), "SELECT current_user"), "app");

  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  ASSERT_TRUE(raw.send(wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}})));
  auto request = raw.read_message();
  ASSERT_TRUE(request);
  ASSERT_EQ(request->type, 'R');
  EXPECT_EQ(request->body.substr(0, 4), wire::int32(5)) << "expected AuthenticationMD5Password";
}

// md5 login with a wrong password fails with 28P01.
TEST_F(IntegrationSessionMd5, WrongPasswordFails) {
  PgConnPtr conn = try_connect(pooler_conninfo(*stack_.daemon, kAppUser, "wrong"));
  EXPECT_NE(PQstatus(conn.get()), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(conn.get())).find("password authentication failed"), std::string::npos)
      << PQerrorMessage(conn.get());

  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  LoginResult login = raw.login(kAppUser, kAppDatabase, "wrong");
  ASSERT_TRUE(login.error);
  EXPECT_EQ(login.error->sqlstate(), "28P01") << login.error->describe();
  EXPECT_TRUE(daemon_serves(stack_));
}

}  // namespace
}  // namespace pooler::test
