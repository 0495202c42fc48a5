// Resource limits and secrecy: client_login_timeout drops silent and stalled logins; backpressure bounds the
// daemon's memory in both relay directions (a 500 MB COPY into a blocked server, a 400 MB result to a client
// that does not read); passwords never appear in the log, SHOW output or /metrics.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include <fmt/format.h>

#include "tests/harness/net_util.h"
#include "tests/harness/run_command.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Distinctive so a hit can only be a leak.
constexpr const char* kLeakyUser = "leaky";
constexpr const char* kLeakyPassword = "Pw-9f3c1e-never-in-logs";
constexpr const char* kAdminPassword = "Admin-5e1a77-never-in-logs";
constexpr const char* kForcedPassword = "Forced-7d2b90-never-in-logs";
constexpr double kLoginTimeout = 1.5;
// What backpressure allows the daemon to hold for one client (its 256 KiB high-water marks, socket
// buffers it does not own, allocator slack), with room to spare; without backpressure either test below
// would buffer hundreds of MB.
constexpr long kMemoryBoundKiB = 64 * 1024;

long rss_kib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

class LimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgClusterOptions options = app_cluster_options();
    options.roles.push_back({kLeakyUser, kLeakyPassword, false});
    options.roles.push_back({"admin", kAdminPassword, false});
    options.roles.push_back({"owner", kForcedPassword, false});
    stack_.cluster = std::make_unique<PgCluster>(options);
    stack_.cluster->psql("CREATE TABLE sink (t text); ALTER TABLE sink OWNER TO app; "
                         "GRANT ALL ON DATABASE app TO leaky, owner",
                         "app");
    metrics_port_ = free_port();
    PoolerConfig config = app_pooler_config(*stack_.cluster);
    config.max_message_size = 4 * 1024 * 1024;
    config.extra_pooler_lines = {fmt::format("client_login_timeout = {}", kLoginTimeout),
                                 "admin_users = [\"admin\"]",
                                 fmt::format("metrics_listen = \"127.0.0.1:{}\"", metrics_port_)};
    PoolerDatabase forced = config.databases[0];
    forced.name = "forced";
    forced.extra_lines = {"user = \"owner\"", fmt::format("password = \"{}\"", kForcedPassword)};
    config.databases.push_back(forced);
    config.users.push_back({kLeakyUser, kLeakyPassword});
    config.users.push_back({"admin", kAdminPassword});
    // ASan keeps freed memory in a quarantine (256 MB by default) that would count as RSS here; keep it
    // small so the memory bounds measure what the daemon holds, not what the sanitizer delays reusing.
    std::string asan = std::getenv("ASAN_OPTIONS") != nullptr ? std::getenv("ASAN_OPTIONS") : "";
    asan += std::string(asan.empty() ? "" : ":") + "quarantine_size_mb=4";
    stack_.daemon = std::make_unique<DaemonProcess>(config, DaemonEnv{{"ASAN_OPTIONS", asan}});
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  static inline Stack stack_;
  static inline int metrics_port_ = 0;
};

// A client that connects and says nothing gets FATAL 08P01 client_login_timeout and is closed, no sooner
// than the timeout; a logged-in client idle for as long is untouched.
TEST_F(LimitsTest, SilentClientDroppedAfterLoginTimeout) {
  PgConnPtr idle = connect(stack_.conninfo());
  const auto start = Clock::now();
  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  std::optional<ErrorFields> error = raw.read_until_error(20s);
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_TRUE(error.has_value()) << "closed without an ErrorResponse";
  EXPECT_EQ(error->sqlstate(), "08P01");
  EXPECT_NE(error->message().find("client_login_timeout"), std::string::npos) << error->describe();
  EXPECT_TRUE(raw.wait_closed());
  EXPECT_GE(waited, kLoginTimeout);
  EXPECT_EQ(query_value(idle.get(), "SELECT 'idle client kept'"), "idle client kept");
}

// A client that stops in the middle of SCRAM (after the server's challenge) is dropped the same way; so is
// one that sent only an SSLRequest.
TEST_F(LimitsTest, StalledLoginDropped) {
  RawClient mid_auth(stack_.daemon->listen_addr(), stack_.daemon->port());
  ASSERT_TRUE(mid_auth.send(wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}})));
  std::optional<BackendMessage> challenge = mid_auth.read_message();
  ASSERT_TRUE(challenge.has_value());
  ASSERT_EQ(challenge->type, 'R');
  RawClient ssl_only(stack_.daemon->listen_addr(), stack_.daemon->port());
  ASSERT_TRUE(ssl_only.send(wire::ssl_request()));
  EXPECT_EQ(ssl_only.read_byte(), std::optional<char>('N'));
  for (RawClient* c : {&mid_auth, &ssl_only}) {
    std::optional<ErrorFields> error = c->read_until_error(20s);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->sqlstate(), "08P01");
    EXPECT_TRUE(c->wait_closed());
  }
  EXPECT_TRUE(daemon_serves(stack_));
}

// A client streams a 500 MB COPY while the server cannot read it (the table is locked, so the backend
// waits before reading any input): the daemon stops reading the client instead of buffering, so its memory
// stays within kMemoryBoundKiB and the client's sends block well before 500 MB.
TEST_F(LimitsTest, CopyIntoBlockedServerIsPausedNotBuffered) {
  PgConnPtr locker = connect(stack_.cluster->superuser_conninfo("app"));
  exec_ok(locker.get(), "BEGIN");
  exec_ok(locker.get(), "LOCK TABLE sink IN ACCESS EXCLUSIVE MODE");
  const long before = rss_kib(stack_.daemon->pid());

  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  ASSERT_TRUE(raw.login(kAppUser, kAppDatabase, kAppPassword).ready);
  ASSERT_TRUE(raw.send(wire::query("COPY sink FROM STDIN")));
  ::fcntl(raw.fd(), F_SETFL, ::fcntl(raw.fd(), F_GETFL) | O_NONBLOCK);
  const std::string row = std::string(1024 * 1024 - 1, 'x') + "\n";
  const std::string chunk = wire::message('d', row);
  constexpr std::size_t kTotal = 500u * 1024 * 1024;
  std::size_t sent = 0;
  std::size_t offset = 0;  // into `chunk`
  bool stalled = false;
  while (sent < kTotal) {
    ssize_t n = ::send(raw.fd(), chunk.data() + offset, chunk.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      offset = (offset + static_cast<std::size_t>(n)) % chunk.size();
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << std::strerror(errno);
    // Blocked: if the daemon still reads, the socket becomes writable again soon.
    pollfd p{raw.fd(), POLLOUT, 0};
    if (::poll(&p, 1, 3000) == 0) {
      stalled = true;
      break;
    }
  }
  const long after = rss_kib(stack_.daemon->pid());
  EXPECT_TRUE(stalled) << "sent all " << sent << " bytes without the daemon pausing";
  EXPECT_LT(sent, kTotal);
  EXPECT_LT(after - before, kMemoryBoundKiB) << "daemon RSS grew from " << before << " to " << after << " KiB";
  exec_ok(locker.get(), "ROLLBACK");
  raw.close();
  EXPECT_TRUE(daemon_serves(stack_));
}

// A client asks for a 400 MB result and reads nothing: the server ends up blocked writing to the daemon
// (pg_stat_activity wait_event ClientWrite) while the daemon's memory stays within kMemoryBoundKiB.
TEST_F(LimitsTest, LargeResultToNonReadingClientIsPausedNotBuffered) {
  const long before = rss_kib(stack_.daemon->pid());
  RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
  ASSERT_TRUE(raw.login(kAppUser, kAppDatabase, kAppPassword).ready);
  ASSERT_TRUE(raw.send(wire::query("SELECT repeat('y', 1048576) FROM generate_series(1, 400) /* bigresult */")));
  PgConnPtr observer = connect(stack_.cluster->superuser_conninfo("app"));
  EXPECT_TRUE(eventually([&] {
    return query_value(observer.get(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'ClientWrite' "
                                       "AND query LIKE '%bigresult%' AND pid <> pg_backend_pid()") == "1";
  })) << "the server never blocked on writing to the daemon";
  const long after = rss_kib(stack_.daemon->pid());
  EXPECT_LT(after - before, kMemoryBoundKiB) << "daemon RSS grew from " << before << " to " << after << " KiB";
  raw.close();
  EXPECT_TRUE(daemon_serves(stack_));
}

// Logins that succeed and fail, with every kind of configured secret in play, then SHOW CONFIG / USERS /
// DATABASES and /metrics: no password appears in the log or in any of those outputs.
TEST_F(LimitsTest, SecretsNeverShown) {
  PgConnPtr ok = connect(pooler_conninfo(*stack_.daemon, kLeakyUser, kLeakyPassword));
  EXPECT_EQ(query_value(ok.get(), "SELECT current_user"), kLeakyUser);
  PgConnPtr forced = connect(pooler_conninfo(*stack_.daemon, kAppUser, kAppPassword, "forced"));
  EXPECT_EQ(query_value(forced.get(), "SELECT current_user"), "owner");
  PgConnPtr wrong = try_connect(pooler_conninfo(*stack_.daemon, kLeakyUser, std::string(kLeakyPassword) + "-typo"));
  EXPECT_EQ(PQstatus(wrong.get()), CONNECTION_BAD);

  std::vector<std::string> argv = {"psql", "-X", "-A", "-t", "-d",
                                   pooler_conninfo(*stack_.daemon, "admin", kAdminPassword, "pooler"), "-c",
                                   "SHOW CONFIG", "-c", "SHOW DATABASES", "-c", "SHOW USERS", "-c", "SHOW POOLS",
                                   "-c", "SHOW CLIENTS", "-c", "SHOW SERVERS"};
  CommandResult show = run_command(argv, 60s);
  EXPECT_NE(show.out.find("auth_type"), std::string::npos) << describe(argv, show);  // SHOW CONFIG did run
  CommandResult metrics = run_command(
      {"curl", "-sS", "--max-time", "20", fmt::format("http://127.0.0.1:{}/metrics", metrics_port_)}, 60s);
  EXPECT_NE(metrics.out.find("pooler_"), std::string::npos) << metrics.err;

  const std::string log = stack_.daemon->log();
  for (const char* secret : {kLeakyPassword, kAdminPassword, kForcedPassword, kAppPassword}) {
    SCOPED_TRACE(secret);
    EXPECT_EQ(log.find(secret), std::string::npos) << "password in the daemon log";
    EXPECT_EQ(show.out.find(secret), std::string::npos) << "password in SHOW output";
    EXPECT_EQ(show.err.find(secret), std::string::npos) << "password in SHOW errors";
    EXPECT_EQ(metrics.out.find(secret), std::string::npos) << "password in /metrics";
  }
}

}  // namespace
}  // namespace pooler::test

namespace pooler::test {
namespace {

// max_db_connections and max_user_connections with their own daemon (the caps are daemon-wide): pool_size 0
// so every returned server connection closes, freeing its slot.
//  1. app and admin hold the 2 connections max_db_connections allows for database app; leaky's login waits
//     (its open is deferred) until app disconnects, then gets the freed slot.
//  2. leaky now holds the 1 connection max_user_connections allows; its login to database app2 (same
//     server database, other pool) waits until that one closes.
TEST_F(LimitsTest, ServerConnectionCapsAcrossPools) {
  PoolerConfig config = app_pooler_config(*stack_.cluster);
  config.databases[0].pool_size = 0;
  config.databases[0].pool_timeout = 60.0;
  // Tells this daemon's server connections apart from the suite daemon's.
  config.databases[0].extra_lines = {"application_name = \"capped\""};
  PoolerDatabase app2 = config.databases[0];
  app2.name = "app2";
  config.databases.push_back(app2);
  config.users.push_back({kLeakyUser, kLeakyPassword});
  config.users.push_back({"admin", kAdminPassword});
  config.extra_pooler_lines = {"max_db_connections = 2", "max_user_connections = 1"};
  DaemonProcess daemon(config);
  PgConnPtr observer = connect(stack_.cluster->superuser_conninfo("app"));
  auto server_conns = [&] {
    return std::stoi(query_value(observer.get(), "SELECT count(*) FROM pg_stat_activity WHERE "
                                                 "application_name = 'capped' AND datname = 'app'"));
  };
  auto deferred = [&](const std::string& pool) {
    return daemon.log().find("event=server_open_deferred pool=" + pool) != std::string::npos;
  };
  auto login_async = [&](const char* user, const char* password, const char* db) {
    return std::async(std::launch::async,
                      [conninfo = pooler_conninfo(daemon, user, password, db)] { return try_connect(conninfo); });
  };

  PgConnPtr app = connect(pooler_conninfo(daemon));
  PgConnPtr admin = connect(pooler_conninfo(daemon, "admin", kAdminPassword));
  auto leaky = login_async(kLeakyUser, kLeakyPassword, kAppDatabase);
  ASSERT_TRUE(eventually([&] { return deferred("app/leaky"); })) << daemon.log_tail();
  EXPECT_EQ(server_conns(), 2);
  EXPECT_EQ(leaky.wait_for(0s), std::future_status::timeout) << "leaky logged in past max_db_connections";
  app.reset();
  PgConnPtr leaky_conn = leaky.get();
  ASSERT_EQ(PQstatus(leaky_conn.get()), CONNECTION_OK) << PQerrorMessage(leaky_conn.get());
  EXPECT_EQ(query_value(leaky_conn.get(), "SELECT current_user"), kLeakyUser);
  EXPECT_LE(server_conns(), 2);

  auto leaky2 = login_async(kLeakyUser, kLeakyPassword, "app2");
  ASSERT_TRUE(eventually([&] { return deferred("app2/leaky"); })) << daemon.log_tail();
  EXPECT_EQ(leaky2.wait_for(0s), std::future_status::timeout) << "leaky logged in past max_user_connections";
  leaky_conn.reset();
  PgConnPtr leaky2_conn = leaky2.get();
  ASSERT_EQ(PQstatus(leaky2_conn.get()), CONNECTION_OK) << PQerrorMessage(leaky2_conn.get());
  EXPECT_EQ(query_value(leaky2_conn.get(), "SELECT 'second pool'"), "second pool");
  leaky2_conn.reset();
  admin.reset();
  EXPECT_EQ(daemon.stop(), 0) << daemon.log_tail();
}

// Under max_db_connections, idle connections kept by one pool do not starve another: the pool whose clients
// wait closes the connection idle longest elsewhere (reason "evicted") and opens its own.
//  1. app's two connections are idle in its pool (pool_size 2 keeps them); leaky's login evicts one at once.
//  2. app and leaky hold both connections; leaky's second login waits, and gets app's connection the moment
//     app's client leaves it idle.
TEST_F(LimitsTest, IdleConnectionOfAnotherPoolIsEvictedForWaitingClients) {
  PoolerConfig config = app_pooler_config(*stack_.cluster);
  config.databases[0].pool_size = 2;
  config.databases[0].pool_timeout = 60.0;
  config.databases[0].extra_lines = {"application_name = \"evicting\""};
  config.users.push_back({kLeakyUser, kLeakyPassword});
  config.extra_pooler_lines = {"max_db_connections = 2"};
  DaemonProcess daemon(config);
  PgConnPtr observer = connect(stack_.cluster->superuser_conninfo("app"));
  auto server_conns = [&] {
    return std::stoi(query_value(observer.get(), "SELECT count(*) FROM pg_stat_activity WHERE "
                                                 "application_name = 'evicting' AND datname = 'app'"));
  };
  auto evictions = [&] { return count_of(daemon.log(), "event=server_evicted pool=app/app for_pool=app/leaky"); };

  {
    PgConnPtr a = connect(pooler_conninfo(daemon));
    PgConnPtr b = connect(pooler_conninfo(daemon));
    ASSERT_EQ(server_conns(), 2);
  }
  ASSERT_TRUE(eventually([&] { return server_conns() == 2 && evictions() == 0; }));
  PgConnPtr leaky = connect(pooler_conninfo(daemon, kLeakyUser, kLeakyPassword));
  EXPECT_EQ(query_value(leaky.get(), "SELECT current_user"), kLeakyUser);
  EXPECT_EQ(evictions(), 1u) << daemon.log_tail();
  EXPECT_LE(server_conns(), 2);

  PgConnPtr app = connect(pooler_conninfo(daemon));  // takes app's remaining idle connection
  auto leaky2 = std::async(std::launch::async, [conninfo = pooler_conninfo(daemon, kLeakyUser, kLeakyPassword)] {
    return try_connect(conninfo);
  });
  ASSERT_TRUE(eventually([&] { return daemon.log().find("event=server_open_deferred pool=app/leaky") !=
                                      std::string::npos; }))
      << daemon.log_tail();
  EXPECT_EQ(leaky2.wait_for(0s), std::future_status::timeout) << "logged in past max_db_connections";
  app.reset();  // its connection goes back to app's pool, idle: leaky's waiting login takes its place
  ASSERT_EQ(leaky2.wait_for(30s), std::future_status::ready) << daemon.log_tail();
  PgConnPtr leaky2_conn = leaky2.get();
  ASSERT_EQ(PQstatus(leaky2_conn.get()), CONNECTION_OK) << PQerrorMessage(leaky2_conn.get());
  EXPECT_EQ(evictions(), 2u) << daemon.log_tail();
  EXPECT_LE(server_conns(), 2);
  leaky.reset();
  leaky2_conn.reset();
  EXPECT_EQ(daemon.stop(), 0) << daemon.log_tail();
}

}  // namespace
}  // namespace pooler::test
