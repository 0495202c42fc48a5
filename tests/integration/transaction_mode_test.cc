// Transaction pool mode end to end: many clients on few server connections, pool limits seen from the
// server side, pool_timeout errors that leave the session usable, no leaking of transaction state, locks or
// open transactions, per-client startup parameters, and pipelined extended protocol.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/harness/run_command.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kPgbench = "/usr/lib/postgresql/15/bin/pgbench";

// Server connections the pooler holds for role app (the test's own probes log in as the superuser).
int app_backends(PGconn* admin) {
  return std::stoi(query_value(admin, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"));
}

class IntegrationTransactionMode : public ::testing::Test {
 protected:
  void TearDown() override { dump_logs_on_failure(stack_); }

  void start(int pool_size, int max_overflow, double pool_timeout = 30.0, int max_client_conn = 1000) {
    stack_.start([&](PoolerConfig& config) {
      config.databases[0].pool_mode = "transaction";
      config.databases[0].pool_size = pool_size;
      config.databases[0].max_overflow = max_overflow;
      config.databases[0].pool_timeout = pool_timeout;
      config.max_client_conn = max_client_conn;
      config.log_level = "info";
    });
    admin_ = connect(stack_.cluster->superuser_conninfo("app"));
  }

  PgConnPtr client(const std::string& extra = "") { return connect(stack_.conninfo(extra)); }

  Stack stack_;
  PgConnPtr admin_;
};

// pgbench -c 100 over pool_size 5 + max_overflow 5: no failed transactions, never more than 10 server
// connections, and only pool_size of them left once the load is gone.
TEST_F(IntegrationTransactionMode, HundredClientsShareTenConnections) {
  start(5, 5);
  const std::vector<std::pair<std::string, std::string>> env = {{"PGPASSWORD", "secret"}};
  const std::string port = std::to_string(stack_.daemon->port());
  // Initialise directly against the server; the load goes through the pooler.
  auto init = run_command({kPgbench, "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p",
                           std::to_string(stack_.cluster->port()), "-U", "app", "app"},
                          CommandOptions{120s, env, ""});
  ASSERT_EQ(init.exit_code, 0) << init.err;

  std::atomic<bool> done{false};
  std::atomic<int> peak{0};
  std::thread sampler([&] {
    PgConnPtr probe = connect(stack_.cluster->superuser_conninfo("app"));
    while (!done.load()) {
      int n = app_backends(probe.get());
      int prev = peak.load();
      while (n > prev && !peak.compare_exchange_weak(prev, n)) {
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  auto run = run_command({kPgbench, "-c", "100", "-j", "2", "-t", "20", "-n", "-h", "127.0.0.1", "-p", port, "-U",
                          "app", "app"},
                         CommandOptions{240s, env, ""});
  done = true;
  sampler.join();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("number of transactions actually processed: 2000/2000"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("number of failed transactions: 0 "), std::string::npos) << run.out;
  EXPECT_GT(peak.load(), 0);
  EXPECT_LE(peak.load(), 10) << "more server connections than pool_size + max_overflow";
  // Overflow connections close when returned while pool_size are idle: 5 remain.
  EXPECT_TRUE(eventually([&] { return app_backends(admin_.get()) == 5; }))
      << "server connections after the load: " << app_backends(admin_.get());
}

// A client that cannot get a connection within pool_timeout gets 53300 naming the pool and its limits, and
// the same session works once a connection is free.
TEST_F(IntegrationTransactionMode, PoolTimeoutLeavesSessionUsable) {
  start(1, 0, 1.0);
  PgConnPtr holder = client();
  exec_ok(holder.get(), "BEGIN");
  EXPECT_EQ(query_value(holder.get(), "SELECT 1"), "1");  // holds the only server connection

  PgConnPtr waiter = client();
  auto started = Clock::now();
  PgResultPtr r(PQexec(waiter.get(), "SELECT 2"));
  auto waited = Clock::now() - started;
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(sqlstate(r.get()), "53300");
  std::string msg = PQresultErrorMessage(r.get());
  EXPECT_NE(msg.find("pool \"app/app\" limit of size 1 overflow 0 reached"), std::string::npos) << msg;
  EXPECT_GE(waited, 900ms);
  EXPECT_EQ(PQstatus(waiter.get()), CONNECTION_OK);

  exec_ok(holder.get(), "COMMIT");
  EXPECT_EQ(query_value(waiter.get(), "SELECT 3"), "3");  // same session, retried
}

// SET inside a transaction that is rolled back, and SET LOCAL in one that commits, do not reach the next
// client of the same server connection.
TEST_F(IntegrationTransactionMode, SetInsideTransactionDoesNotLeak) {
  start(1, 0);
  PgConnPtr a = client();
  PgConnPtr b = client();
  std::string before = query_value(b.get(), "SHOW statement_timeout");
  exec_ok(a.get(), "BEGIN; SET statement_timeout = '4321ms'");
  EXPECT_EQ(query_value(a.get(), "SHOW statement_timeout"), "4321ms");
  exec_ok(a.get(), "ROLLBACK");
  EXPECT_EQ(query_value(b.get(), "SHOW statement_timeout"), before);
  exec_ok(a.get(), "BEGIN; SET LOCAL statement_timeout = '5432ms'; COMMIT");
  EXPECT_EQ(query_value(b.get(), "SHOW statement_timeout"), before);
  // A client that disconnects inside a transaction: its SET goes with the rollback.
  exec_ok(a.get(), "BEGIN; SET work_mem = '7777kB'");
  a.reset();
  EXPECT_NE(query_value(b.get(), "SHOW work_mem"), "7777kB");
}

// An aborted transaction ('E') stays with its client until it ends; nobody else sees it.
TEST_F(IntegrationTransactionMode, AbortedTransactionStaysWithItsClient) {
  start(1, 1);
  PgConnPtr a = client();
  PgConnPtr b = client();
  exec_ok(a.get(), "BEGIN");
  PgResultPtr bad(PQexec(a.get(), "SELECT 1/0"));
  EXPECT_EQ(sqlstate(bad.get()), "22012");
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_INERROR);
  // b gets the other (overflow) connection and a clean transaction state.
  EXPECT_EQ(query_value(b.get(), "SELECT 1"), "1");
  EXPECT_EQ(PQtransactionStatus(b.get()), PQTRANS_IDLE);
  PgResultPtr still(PQexec(a.get(), "SELECT 1"));
  EXPECT_EQ(sqlstate(still.get()), "25P02");
  exec_ok(a.get(), "ROLLBACK");
  EXPECT_EQ(query_value(a.get(), "SELECT 4"), "4");
}

// Forks a client process that takes a lock inside a transaction (and optionally starts a long query), then
// SIGKILLs it; returns once the child reported the lock taken.
pid_t spawn_lock_holder(const std::string& conninfo, bool then_sleep) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    PGconn* c = PQconnectdb(conninfo.c_str());
    if (PQstatus(c) != CONNECTION_OK) _exit(2);
    PQclear(PQexec(c, "BEGIN"));
    PGresult* r = PQexec(c, "LOCK TABLE locked IN ACCESS EXCLUSIVE MODE");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) _exit(3);
    if (write(fds[1], "x", 1) != 1) _exit(4);
    if (then_sleep) PQclear(PQexec(c, "SELECT pg_sleep(120)"));
    pause();
    _exit(0);
  }
  close(fds[1]);
  char ch = 0;
  ssize_t n = read(fds[0], &ch, 1);
  close(fds[0]);
  if (n != 1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw std::runtime_error("lock holder failed to start");
  }
  return pid;
}

// A client killed inside a transaction (idle, or with a query running) leaves no open transaction or lock.
TEST_F(IntegrationTransactionMode, KilledClientLeavesNoTransactionOrLock) {
  start(2, 0);
  exec_ok(admin_.get(), "CREATE TABLE locked(v int); GRANT ALL ON locked TO app");
  for (bool running : {false, true}) {
    SCOPED_TRACE(running ? "query running when killed" : "idle in transaction when killed");
    pid_t pid = spawn_lock_holder(stack_.conninfo(), running);
    if (running) {
      ASSERT_TRUE(eventually([&] {
        return query_value(admin_.get(),
                           "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(120)' AND "
                           "state = 'active'") == "1";
      }));
    } else {
      // Killed only once it holds the lock: earlier, the lock could be taken after the checks below.
      ASSERT_TRUE(eventually([&] {
        return query_value(admin_.get(),
                           "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                           "WHERE c.relname = 'locked'") != "0";
      }));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    EXPECT_TRUE(eventually([&] {
      return query_value(admin_.get(),
                         "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                         "WHERE c.relname = 'locked'") == "0";
    })) << "the killed client's lock is still held";
    // Eventually too: the server releases locks while ending the transaction, and reports its state as idle
    // a moment later.
    EXPECT_TRUE(eventually([&] {
      return query_value(admin_.get(),
                         "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state LIKE 'idle in "
                         "transaction%'") == "0";
    })) << "the killed client's transaction is still open";
    PgConnPtr next = client();
    exec_ok(next.get(), "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE NOWAIT; COMMIT");
  }
}

// Each client's startup parameters follow it onto whichever server connection it gets.
TEST_F(IntegrationTransactionMode, StartupParametersFollowTheClient) {
  start(1, 0);
  PgConnPtr alpha = client("application_name=alpha options='-c search_path=alpha_schema'");
  PgConnPtr beta = client("application_name=beta");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(query_value(alpha.get(), "SHOW application_name"), "alpha");
    EXPECT_EQ(query_value(beta.get(), "SHOW application_name"), "beta");
    EXPECT_EQ(query_value(alpha.get(), "SHOW search_path"), "alpha_schema");
  }
  // A SET outside a transaction is reported by the server and becomes the client's own value.
  exec_ok(beta.get(), "SET application_name = 'beta2'");
  EXPECT_EQ(query_value(alpha.get(), "SHOW application_name"), "alpha");
  EXPECT_EQ(query_value(beta.get(), "SHOW application_name"), "beta2");
  EXPECT_STREQ(PQparameterStatus(beta.get(), "application_name"), "beta2");
}

// search_path is not reported by the server: a SET search_path outside a transaction is read back when the
// transaction ends and follows its client to every server connection, and never reaches another client; a
// list given at startup stays a list (two schemas, not one schema named "a, b").
TEST_F(IntegrationTransactionMode, SearchPathFollowsTheClientAndDoesNotLeak) {
  start(1, 0);
  exec_ok(admin_.get(),
          "CREATE SCHEMA IF NOT EXISTS sp_one; CREATE SCHEMA IF NOT EXISTS sp_two; "
          "CREATE TABLE IF NOT EXISTS sp_one.t(v text); CREATE TABLE IF NOT EXISTS sp_two.u(v text); "
          "GRANT USAGE ON SCHEMA sp_one, sp_two TO app; GRANT SELECT ON sp_one.t, sp_two.u TO app");
  PgConnPtr listy = client("options='-c search_path=sp_one,sp_two'");
  PgConnPtr setter = client();
  PgConnPtr bystander = client();
  const std::string default_path = query_value(bystander.get(), "SHOW search_path");
  EXPECT_EQ(query_value(listy.get(), "SHOW search_path"), "sp_one,sp_two");
  EXPECT_EQ(query_value(listy.get(), "SELECT count(*) FROM t, u"), "0");  // both schemas searched

  exec_ok(setter.get(), "SET search_path TO sp_two, public");
  for (int i = 0; i < 3; ++i) {
    // One server connection for all three: each query of each client runs on it in turn.
    EXPECT_EQ(query_value(setter.get(), "SHOW search_path"), "sp_two, public");
    EXPECT_EQ(query_value(setter.get(), "SELECT count(*) FROM u"), "0");
    EXPECT_EQ(query_value(bystander.get(), "SHOW search_path"), default_path);
    EXPECT_EQ(query_value(listy.get(), "SHOW search_path"), "sp_one,sp_two");
  }
  // Inside a transaction that rolls back, the change does not stick; RESET goes back to the default.
  exec_ok(setter.get(), "BEGIN; SET search_path TO sp_one; ROLLBACK");
  EXPECT_EQ(query_value(setter.get(), "SHOW search_path"), "sp_two, public");
  exec_ok(setter.get(), "RESET search_path");
  EXPECT_EQ(query_value(bystander.get(), "SHOW search_path"), default_path);
  EXPECT_EQ(query_value(setter.get(), "SHOW search_path"), default_path);
}

// libpq pipeline mode: several extended-protocol queries and Syncs in flight at once, answered in order.
TEST_F(IntegrationTransactionMode, PipelinedExtendedProtocol) {
  start(2, 0);
  PgConnPtr conn = client();
  ASSERT_EQ(PQenterPipelineMode(conn.get()), 1);
  constexpr int kQueries = 20;
  for (int i = 0; i < kQueries; ++i) {
    std::string v = std::to_string(i);
    const char* params[] = {v.c_str()};
    ASSERT_EQ(PQsendQueryParams(conn.get(), "SELECT $1::int * 2", 1, nullptr, params, nullptr, nullptr, 0), 1);
    if (i % 5 == 4) {
      ASSERT_EQ(PQpipelineSync(conn.get()), 1);
    }
  }
  ASSERT_EQ(PQflush(conn.get()), 0);
  int got = 0;
  int syncs = 0;
  while (syncs < kQueries / 5) {
    PGresult* r = PQgetResult(conn.get());
    if (r == nullptr) continue;  // end of one query's results
    if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
      ++syncs;
    } else {
      ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
      EXPECT_EQ(std::stoi(PQgetvalue(r, 0, 0)), got * 2);
      ++got;
    }
    PQclear(r);
  }
  EXPECT_EQ(got, kQueries);
  ASSERT_EQ(PQexitPipelineMode(conn.get()), 1);
  EXPECT_EQ(query_value(conn.get(), "SELECT 'after'"), "after");
}

// Over max_client_conn, a login is refused with FATAL 53300; the clients already in keep working.
TEST_F(IntegrationTransactionMode, MaxClientConnRefusesAtLogin) {
  start(2, 0, 30.0, 2);
  PgConnPtr a = client();
  PgConnPtr b = client();
  PgConnPtr c = try_connect(stack_.conninfo());
  EXPECT_NE(PQstatus(c.get()), CONNECTION_OK);
  std::string msg = PQerrorMessage(c.get());
  EXPECT_NE(msg.find("too many clients"), std::string::npos) << msg;
  EXPECT_EQ(query_value(a.get(), "SELECT 1"), "1");
  EXPECT_EQ(query_value(b.get(), "SELECT 2"), "2");
}

}  // namespace
}  // namespace pooler::test
