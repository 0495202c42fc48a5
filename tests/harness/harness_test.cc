// Tests of the test harness itself, against PostgreSQL directly: the cluster fixture's lifecycle, the
// command runner, the raw wire client's logins, and the daemon runner's start/stop mechanics.
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/harness/app_fixture.h"
#include "tests/harness/daemon_process.h"
#include "tests/harness/libpq_util.h"
#include "tests/harness/net_util.h"
#include "tests/harness/pg_cluster.h"
#include "tests/harness/raw_client.h"
#include "tests/harness/run_command.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

template <typename Predicate>
bool eventually(Predicate done, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A cluster starts, serves libpq and psql, survives kill -9 + start and stop + start, and its directory
// is gone after destruction.
TEST(HarnessTest, ClusterLifecycle) {
  std::filesystem::path base;
  {
    PgCluster cluster(app_cluster_options());
    base = cluster.base_dir();
    ASSERT_TRUE(std::filesystem::exists(cluster.data_dir() / "PG_VERSION"));
    EXPECT_EQ(read_file(cluster.data_dir() / "PG_VERSION"), "15\n");

    PgConnPtr conn = connect(cluster.conninfo(kAppUser, kAppPassword, kAppDatabase));
    EXPECT_EQ(query_value(conn.get(), "SELECT current_user"), "app");
    EXPECT_EQ(cluster.psql("SELECT 40 + 2"), "42");
    // A crash: the open connection breaks instead of hanging, and the server comes back on the same port.
    const int port = cluster.port();
    cluster.kill9();
    EXPECT_FALSE(cluster.running());
    PgResultPtr broken = exec_with_deadline(conn.get(), "SELECT 1", 10s);
    EXPECT_TRUE(broken == nullptr || PQresultStatus(broken.get()) != PGRES_TUPLES_OK);
    EXPECT_FALSE(port_accepts("127.0.0.1", port));
    cluster.start();
    EXPECT_EQ(cluster.port(), port);
    PgConnPtr again = connect(cluster.conninfo(kAppUser, kAppPassword, kAppDatabase));
    EXPECT_EQ(query_value(again.get(), "SELECT 1"), "1");
    again.reset();

    // A clean restart keeps committed data (a kill -9 may not: synchronous_commit is off).
    cluster.psql("CREATE TABLE kept(v int); INSERT INTO kept VALUES (7)", kAppDatabase);
    cluster.restart();
    EXPECT_EQ(cluster.psql("SELECT v FROM kept", kAppDatabase), "7");

    cluster.stop();
    EXPECT_FALSE(port_accepts("127.0.0.1", port));
    EXPECT_EQ(PQping(cluster.conninfo(kAppUser, kAppPassword, kAppDatabase).c_str()), PQPING_NO_RESPONSE);
  }
  EXPECT_FALSE(std::filesystem::exists(base));
}

// A destructor that runs right after kill9 still leaves nothing behind.
TEST(HarnessTest, CleanupAfterKill9) {
  std::filesystem::path base;
  int port = 0;
  {
    PgCluster cluster;
    base = cluster.base_dir();
    port = cluster.port();
    cluster.kill9();
  }
  EXPECT_FALSE(std::filesystem::exists(base));
  EXPECT_FALSE(port_accepts("127.0.0.1", port));
}

// If the test process dies without destructors, the watchdog stops the server and removes the directory.
TEST(HarnessTest, WatchdogCleansUpAfterAbruptExit) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    try {
      auto* cluster = new PgCluster();  // leaked on purpose: no destructor runs
      std::string info = cluster->base_dir().string() + "\n" + std::to_string(cluster->port()) + "\n";
      [[maybe_unused]] auto n = ::write(fds[1], info.data(), info.size());
    } catch (...) {
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string info;
  char chunk[512];
  for (ssize_t n; (n = ::read(fds[0], chunk, sizeof chunk)) > 0;) info.append(chunk, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  auto newline = info.find('\n');
  ASSERT_NE(newline, std::string::npos) << "child could not start a cluster";
  std::filesystem::path base = info.substr(0, newline);
  int port = std::stoi(info.substr(newline + 1));
  EXPECT_TRUE(eventually([&] { return !std::filesystem::exists(base); }, 30s)) << base;
  EXPECT_TRUE(eventually([&] { return !port_accepts("127.0.0.1", port); }, 30s));
}

// An md5 cluster stores md5 secrets and accepts the right password only.
TEST(HarnessTest, Md5ClusterAuthenticates) {
  PgCluster cluster(app_cluster_options(HostAuth::md5));
  EXPECT_EQ(cluster.psql("SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'app'"), "md5");
  PgConnPtr good = try_connect(cluster.conninfo(kAppUser, kAppPassword, kAppDatabase));
  EXPECT_EQ(PQstatus(good.get()), CONNECTION_OK) << PQerrorMessage(good.get());
  PgConnPtr bad = try_connect(cluster.conninfo(kAppUser, "wrong", kAppDatabase));
  EXPECT_NE(PQstatus(bad.get()), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(bad.get())).find("password authentication failed"), std::string::npos);
}

// run_command passes env and stdin, captures both streams and the exit code, and kills on timeout.
TEST(HarnessTest, RunCommand) {
  CommandOptions options;
  options.env = {{"HARNESS_VALUE", "forty two"}};
  options.input = "from stdin";
  CommandResult result =
      run_command({"sh", "-c", "echo \"$HARNESS_VALUE\"; cat; echo oops >&2; exit 3"}, options);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "forty two\nfrom stdin");
  EXPECT_EQ(result.err, "oops\n");
  EXPECT_FALSE(result.timed_out);

  const auto start = std::chrono::steady_clock::now();
  CommandResult slow = run_command({"sleep", "30"}, 1s);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_EQ(slow.exit_code, 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);

  EXPECT_THROW(run_command({"no-such-program-pooler-test"}, 1s), std::runtime_error);
}

// The raw client logs in to PostgreSQL itself with SCRAM and md5, and reads its errors' SQLSTATEs; this
// validates the client the daemon's bad-input tests rely on.
TEST(HarnessTest, RawClientAgainstPostgres) {
  PgCluster scram_cluster(app_cluster_options());
  {
    RawClient client(scram_cluster.host(), scram_cluster.port());
    LoginResult login = client.login(kAppUser, kAppDatabase, kAppPassword, {{"application_name", "raw"}});
    ASSERT_TRUE(login.ready) << (login.error ? login.error->describe() : "eof");
    EXPECT_EQ(login.parameters["application_name"], "raw");
    EXPECT_TRUE(login.parameters["server_version"].starts_with("15"));
    EXPECT_NE(login.backend_pid, 0u);
    auto reply = client.simple_query("SELECT 1/0");
    ASSERT_TRUE(reply);
    bool saw_error = false;
    for (const auto& message : *reply) {
      if (message.type == 'E') {
        EXPECT_EQ(parse_error_fields(message.body).sqlstate(), "22012");
        saw_error = true;
      }
    }
    EXPECT_TRUE(saw_error);
    EXPECT_TRUE(client.send(wire::terminate()));
    EXPECT_TRUE(client.wait_closed());
  }
  {
    RawClient client(scram_cluster.host(), scram_cluster.port());
    LoginResult login = client.login(kAppUser, kAppDatabase, "wrong");
    ASSERT_TRUE(login.error);
    EXPECT_EQ(login.error->sqlstate(), "28P01");
  }
  {
    RawClient client(scram_cluster.host(), scram_cluster.port());
    LoginResult login = client.login(kAppUser, "nope", kAppPassword);
    ASSERT_TRUE(login.error);
    EXPECT_EQ(login.error->sqlstate(), "3D000");
  }
  {
    RawClient client(scram_cluster.host(), scram_cluster.port());
    ASSERT_TRUE(client.send(wire::ssl_request()));
    EXPECT_EQ(client.read_byte(), 'N');
    LoginResult login = client.login(kAppUser, kAppDatabase, kAppPassword);
    EXPECT_TRUE(login.ready);
  }
  {
    // PostgreSQL answers a 2.0 client in the 2.0 format ('E' + text); the pooler is expected to use v3.
    RawClient client(scram_cluster.host(), scram_cluster.port());
    ASSERT_TRUE(client.send(wire::startup_message({{"user", kAppUser}}, 0x00020000)));
    EXPECT_EQ(client.read_byte(), 'E');
    EXPECT_TRUE(client.wait_closed());
  }

  PgCluster md5_cluster(app_cluster_options(HostAuth::md5));
  RawClient client(md5_cluster.host(), md5_cluster.port());
  LoginResult login = client.login(kAppUser, kAppDatabase, kAppPassword);
  EXPECT_TRUE(login.ready) << (login.error ? login.error->describe() : "eof");
}

// pgbench and psql run through run_command against the cluster, the way the pooler tests run them.
TEST(HarnessTest, PgbenchAndPsqlRun) {
  PgCluster cluster(app_cluster_options());
  const std::vector<std::pair<std::string, std::string>> env = {{"PGPASSWORD", kAppPassword}};
  const std::string port = std::to_string(cluster.port());
  CommandOptions options;
  options.env = env;
  options.timeout = 120s;
  std::vector<std::string> init = {"pgbench", "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", port, "-U", "app",
                                   "app"};
  CommandResult initialized = run_command(init, options);
  ASSERT_EQ(initialized.exit_code, 0) << describe(init, initialized);
  std::vector<std::string> bench = {"pgbench", "-M", "prepared", "-c", "2", "-j", "2", "-t", "20", "-h", "127.0.0.1",
                                    "-p", port, "-U", "app", "app"};
  CommandResult ran = run_command(bench, options);
  ASSERT_EQ(ran.exit_code, 0) << describe(bench, ran);
  EXPECT_NE(ran.out.find("number of transactions actually processed: 40/40"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("number of failed transactions: 0"), std::string::npos) << ran.out;
  std::vector<std::string> psql = {"psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", port, "-U", "app", "-d", "app",
                                   "-c", "select 1"};
  CommandResult selected = run_command(psql, options);
  EXPECT_EQ(selected.exit_code, 0) << describe(psql, selected);
  EXPECT_EQ(selected.out, "1\n");
}

// DaemonProcess reports a daemon that exits before listening, with what it printed.
TEST(HarnessTest, DaemonProcessReportsEarlyExit) {
  TempDir dir("pooler-fake-");
  auto script = dir.path() / "fake-pooler";
  std::ofstream(script) << "#!/bin/sh\necho \"fake pooler refuses $2\" >&2\nexit 3\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  ScopedEnv binary("POOLER_BINARY", script.string());
  try {
    DaemonProcess daemon("[pooler]\n", "127.0.0.1", free_port());
    FAIL() << "expected the start to fail";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("fake pooler refuses"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("status 3"), std::string::npos) << error.what();
  }
}

// DaemonProcess waits for the listen port, signals, and stops with SIGTERM (escalating is covered by stop()).
TEST(HarnessTest, DaemonProcessStartsAndStops) {
  if (run_command({"sh", "-c", "command -v python3"}, 5s).exit_code != 0) GTEST_SKIP() << "no python3";
  TempDir dir("pooler-fake-");
  auto script = dir.path() / "fake-pooler";
  // A stand-in daemon: reads listen_port from the config, listens, exits 0 on SIGTERM.
  std::ofstream(script) << "#!/usr/bin/env python3\n"
                           "import re, signal, socket, sys\n"
                           "port = int(re.search(r'listen_port = (\\d+)', open(sys.argv[2]).read()).group(1))\n"
                           "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                           "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                           "s.bind(('127.0.0.1', port)); s.listen(16)\n"
                           "print('listening', flush=True)\n"
                           "while True: s.accept()[0].close()\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  ScopedEnv binary("POOLER_BINARY", script.string());
  PoolerConfig config;
  DaemonProcess daemon(config);
  EXPECT_TRUE(daemon.alive());
  EXPECT_GT(daemon.pid(), 0);
  EXPECT_TRUE(port_accepts("127.0.0.1", daemon.port()));
  EXPECT_NE(daemon.log().find("listening"), std::string::npos);
  EXPECT_NE(read_file(daemon.config_path()).find("auth_type = \"scram-sha-256\""), std::string::npos);
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_FALSE(daemon.alive());
}

}  // namespace
}  // namespace pooler::test
