// Health checks end to end against real PostgreSQL 15 clusters: restarts and crashes under load, pre-ping
// after a restart with idle clients, fast failure when the only host is down or silent, failover to a
// second host, and routing by target_session_attrs across a primary and its streaming standby.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "tests/harness/net_util.h"
#include "tests/harness/standby.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The daemon's connect_timeout in every test here, and the bound for a client whose backend cannot
// be reached: connect_timeout + 1 s (not pool_timeout, which stays at 30 s).
constexpr double kConnectTimeoutSeconds = 2.0;
constexpr auto kFastFailure = 3s;
// "After the server is back, new transactions succeed within a few seconds."
constexpr auto kRecovery = 5s;
// Longer than anything the daemon should ever make a client wait here: reaching it means a hang.
constexpr auto kStatementDeadline = 15s;

bool icontains(std::string_view haystack, std::string_view needle) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  return lower(haystack).find(lower(needle)) != std::string::npos;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "host:port" as the daemon labels a backend host in its messages.
std::string host_label(const std::string& host, int port) { return fmt::format("{}:{}", host, port); }
std::string host_label(const PgCluster& cluster) { return host_label(cluster.host(), cluster.port()); }

// [databases.app] on `host:port` in transaction mode, with a short connect_timeout and a 1 s health check
// period, so the timing bounds below are about the daemon's behaviour and not its defaults.
PoolerConfig health_config(const std::string& host, int port) {
  PoolerConfig config;
  PoolerDatabase db;
  db.name = kAppDatabase;
  db.host = host;
  db.port = port;
  db.dbname = kAppDatabase;
  db.pool_mode = "transaction";
  db.pool_timeout = 30.0;
  db.extra_lines.push_back(fmt::format("connect_timeout = {:.1f}", kConnectTimeoutSeconds));
  config.databases.push_back(db);
  config.users.push_back({kAppUser, kAppPassword});
  config.extra_pooler_lines.push_back("health_check_period = 1.0");
  return config;
}

PoolerConfig health_config(const PgCluster& cluster) { return health_config(cluster.host(), cluster.port()); }

// pooler.toml for `config` with its one database served by `hosts` ("host:port", in order) instead of the
// single host/port PoolerConfig renders: the daemon rejects a database that has both.
std::string config_with_hosts(PoolerConfig config, const std::vector<std::string>& hosts) {
  std::string list;
  for (const auto& h : hosts) list += (list.empty() ? "" : ", ") + toml_string(h);
  config.databases.at(0).extra_lines.push_back(fmt::format("hosts = [{}]", list));
  std::istringstream in(config.to_toml());
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("host = ") || line.starts_with("port = ")) continue;
    out += line + "\n";
  }
  return out;
}

// A TCP port that completes handshakes and then never says a word: a backend that hangs at login, so only
// connect_timeout can end the attempt.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd_);
      throw std::runtime_error("could not set up the silent listener");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// ---------------------------------------------------------------------------------------------------------
// Load through a restart: N libpq clients each looping BEGIN; INSERT; COMMIT.

enum class Outage { kFastRestart, kCrash };

// Where the test is in the restart when something happens.
enum class Phase : int {
  kSteady = 0,  // before the server is stopped
  kOutage = 1,  // from just before the stop until start() returned
  kBack = 2,    // the server accepts connections again
};

struct LoadError {
  Phase started = Phase::kSteady;   // phase when the transaction began
  Phase observed = Phase::kSteady;  // phase when its error came back
  std::string sqlstate;
  std::string message;
  bool hung = false;  // no answer within kStatementDeadline
  Clock::time_point at{};
  std::string describe() const {
    return fmt::format("[started {} observed {}] {}{}{}", static_cast<int>(started), static_cast<int>(observed),
                       hung ? "HANG " : "", sqlstate.empty() ? "" : sqlstate + " ", message);
  }
};

// One client's record. The atomics are read by the main thread while the load runs; `errors` and
// `first_ok_after_back` only after the thread has been joined.
struct Worker {
  std::atomic<int> successes{0};
  std::atomic<int> successes_after_back{0};
  Clock::time_point first_ok_after_back{};
  std::vector<LoadError> errors;
};

// Runs one short transaction, (re)connecting first when needed. Returns the error when any step failed, and
// leaves the connection either reset (broken) or idle (a failed transaction is rolled back).
std::optional<LoadError> one_transaction(PgConnPtr& conn, const std::string& conninfo, int worker, int n) {
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    conn = try_connect(conninfo);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      LoadError error;
      error.message = fmt::format("login: {}", PQerrorMessage(conn.get()));
      conn.reset();
      return error;
    }
  }
  const std::string statements[] = {"BEGIN", fmt::format("INSERT INTO ticks VALUES ({}, {})", worker, n),
                                    "COMMIT"};
  for (const auto& sql : statements) {
    PgResultPtr result;
    try {
      result = exec_with_deadline(conn.get(), sql, kStatementDeadline);
    } catch (const std::runtime_error& e) {
      LoadError error;
      error.hung = true;
      error.message = e.what();
      conn.reset();
      return error;
    }
    if (result && PQresultStatus(result.get()) == PGRES_COMMAND_OK) continue;
    LoadError error;
    error.sqlstate = sqlstate(result.get());
    error.message = result ? PQresultErrorMessage(result.get()) : "";
    if (error.message.empty()) error.message = PQerrorMessage(conn.get());
    while (!error.message.empty() && error.message.back() == '\n') error.message.pop_back();
    error.message = sql.substr(0, 6) + ": " + error.message;
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      conn.reset();
    } else if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE) {
      try {
        exec_with_deadline(conn.get(), "ROLLBACK", kStatementDeadline);
      } catch (const std::runtime_error&) {
        conn.reset();
      }
      if (conn && PQtransactionStatus(conn.get()) != PQTRANS_IDLE) conn.reset();
    }
    return error;
  }
  return std::nullopt;
}

// The client loop. After an error during the outage a client waits until the server is back — like pgbench,
// which stops a client at its first error — so each client contributes at most one outage error and the
// count measures transactions that were in flight, not how long the server was away.
void run_worker(Worker& w, int index, const std::string& conninfo, std::atomic<int>& phase,
                const std::atomic<bool>& stop) {
  PgConnPtr conn;
  for (int n = 0; !stop.load(); ++n) {
    const auto started = static_cast<Phase>(phase.load());
    std::optional<LoadError> error = one_transaction(conn, conninfo, index, n);
    if (!error) {
      ++w.successes;
      if (started == Phase::kBack && w.successes_after_back++ == 0) w.first_ok_after_back = Clock::now();
      continue;
    }
    error->started = started;
    error->observed = static_cast<Phase>(phase.load());
    error->at = Clock::now();
    w.errors.push_back(*error);
    if (error->observed == Phase::kOutage) {
      phase.wait(static_cast<int>(Phase::kOutage));
    } else if (error->observed == Phase::kBack) {
      std::this_thread::sleep_for(50ms);  // the pool is catching up with the host; retry soon
    }
  }
}

class IntegrationHealth : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!HasFailure()) return;
    if (daemon_) std::cerr << "--- pooler log tail ---\n" << daemon_->log_tail(150) << "\n";
    for (const auto& cluster : clusters_) {
      std::cerr << "--- PostgreSQL (port " << cluster->port() << ") log tail ---\n" << cluster->log_tail(25) << "\n";
    }
  }

  PgCluster& add_cluster() {
    clusters_.push_back(std::make_unique<PgCluster>(app_cluster_options()));
    return *clusters_.back();
  }

  void start_daemon(const PoolerConfig& config) { daemon_ = std::make_unique<DaemonProcess>(config); }

  // A daemon whose [databases.app] lists `hosts` in that order.
  void start_daemon(PoolerConfig config, const std::vector<std::string>& hosts) {
    daemon_.reset();
    for (int attempt = 1;; ++attempt) {
      config.listen_port = free_port();
      try {
        daemon_ = std::make_unique<DaemonProcess>(config_with_hosts(config, hosts), config.listen_addr,
                                                  config.listen_port);
        return;
      } catch (const std::runtime_error& e) {
        // Only a port someone else took between free_port() and the daemon's bind() is worth a retry.
        if (attempt == 3 || std::string_view(e.what()).find("in use") == std::string_view::npos) throw;
      }
    }
  }

  std::string conninfo() const { return pooler_conninfo(*daemon_); }
  PgConnPtr client() { return connect(conninfo()); }

  // Restart (or crash and start) the server while 8 clients run transactions through a pool of 4 + 2.
  void restart_under_load(Outage outage);
  // Five idle clients with five pooled server connections, a restart, then each client's next query.
  void idle_clients_after(Outage outage);
  // `attrs` with `hosts` → every one of three sessions lands on the cluster listening on `port`, whose
  // pg_is_in_recovery() is `in_recovery`.
  void expect_routed(const std::string& attrs, const std::vector<std::string>& hosts, int port,
                     const std::string& in_recovery);

  // Declared before daemon_ so the daemon stops first.
  std::vector<std::unique_ptr<PgCluster>> clusters_;
  std::unique_ptr<DaemonProcess> daemon_;
};

void IntegrationHealth::restart_under_load(Outage outage) {
  constexpr int kClients = 8;
  PgCluster& cluster = add_cluster();
  cluster.psql("CREATE TABLE ticks(worker int, n int); ALTER TABLE ticks OWNER TO app", kAppDatabase);
  PoolerConfig config = health_config(cluster);
  config.databases[0].pool_size = 4;
  config.databases[0].max_overflow = 2;
  config.log_level = "info";
  start_daemon(config);

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < kClients; ++i) workers.push_back(std::make_unique<Worker>());
  std::atomic<int> phase{static_cast<int>(Phase::kSteady)};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const std::string info = conninfo();
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] { run_worker(*workers[i], i, info, phase, stop); });
  }
  // However the test leaves this function, release waiting clients and join them.
  struct Joiner {
    std::atomic<int>& phase;
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Joiner() {
      stop = true;
      phase = static_cast<int>(Phase::kBack);
      phase.notify_all();
      for (auto& t : threads) t.join();
    }
  } joiner{phase, stop, threads};

  auto every_worker = [&](int min_successes, bool after_back) {
    for (const auto& w : workers) {
      if ((after_back ? w->successes_after_back : w->successes).load() < min_successes) return false;
    }
    return true;
  };
  ASSERT_TRUE(eventually([&] { return every_worker(20, false); }, 30s)) << "the load never got going";

  phase = static_cast<int>(Phase::kOutage);
  if (outage == Outage::kFastRestart) {
    cluster.restart();
  } else {
    cluster.kill9();
    cluster.start();
  }
  const auto back = Clock::now();
  phase = static_cast<int>(Phase::kBack);
  phase.notify_all();

  // Every client is served again within kRecovery; then keep the load on a little to see it stay healthy.
  const bool recovered = eventually([&] { return every_worker(1, true); }, kRecovery + 1s);
  if (recovered) {
    EXPECT_TRUE(eventually([&] { return every_worker(10, true); }, 20s)) << "the load did not resume";
  }
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();

  int outage_errors = 0;
  int with_sqlstate = 0;
  int catching_up = 0;
  double worst_recovery = 0;
  std::string report;
  for (int i = 0; i < kClients; ++i) {
    const Worker& w = *workers[i];
    SCOPED_TRACE(fmt::format("client {}", i));
    int client_catching_up = 0;
    for (const LoadError& e : w.errors) {
      EXPECT_FALSE(e.hung) << "a client waited " << kStatementDeadline.count() << " s: " << e.describe();
      if (e.observed == Phase::kSteady) {
        ADD_FAILURE() << "error before the restart: " << e.describe();
      } else if (e.started != Phase::kBack) {
        ++outage_errors;
        if (!e.sqlstate.empty()) ++with_sqlstate;
        report += fmt::format("  client {} in flight: {}\n", i, e.describe());
      } else {
        // A transaction begun after the server was back may only fail because the pool has not yet seen
        // the host return (a connect failure) — never because it was handed a connection from before —
        // and only until the client's first success.
        ++client_catching_up;
        EXPECT_NE(e.message.find("could not open a server connection"), std::string::npos)
            << "a transaction begun after the server was back failed other than by a connect failure "
               "(a dead connection handed out?): "
            << e.describe();
        EXPECT_TRUE(w.successes_after_back.load() == 0 || e.at < w.first_ok_after_back)
            << "error after the client had recovered: " << e.describe();
      }
    }
    catching_up += client_catching_up;
    if (w.successes_after_back.load() == 0) {
      ADD_FAILURE() << "never served again within " << (kRecovery + 1s).count() << " s of the server's return";
      const std::string last = w.errors.empty() ? "none" : w.errors.back().describe();
      report += fmt::format("  client {}: NOT served again, {} connect failures, last error {}\n", i,
                            client_catching_up, last);
      continue;
    }
    const double took = std::chrono::duration<double>(w.first_ok_after_back - back).count();
    worst_recovery = std::max(worst_recovery, took);
    EXPECT_LE(took, std::chrono::duration<double>(kRecovery).count()) << "first success after the server was back";
    report += fmt::format("  client {}: served again after {:.2f} s, {} connect failures before that\n", i, took,
                          client_catching_up);
  }
  // One error per client at most: only transactions in flight around the restart may fail.
  EXPECT_LE(outage_errors, kClients);
  std::cout << fmt::format("restart under load: {} in-flight errors ({} with a SQLSTATE), {} connect failures "
                           "after the server was back, worst recovery {:.2f} s\n{}",
                           outage_errors, with_sqlstate, catching_up, worst_recovery, report);
  EXPECT_TRUE(daemon_->alive());
}

// A fast restart (pg_ctl stop -m fast, then start) while 8 clients run transactions: only in-flight
// transactions fail, every client is served again within 5 s, and none gets a connection from before.
TEST_F(IntegrationHealth, RestartUnderLoad) { restart_under_load(Outage::kFastRestart); }

// The same with kill -9 of every server process (crash recovery on start) instead of a clean stop.
TEST_F(IntegrationHealth, CrashUnderLoad) { restart_under_load(Outage::kCrash); }

void IntegrationHealth::idle_clients_after(Outage outage) {
  constexpr int kClients = 5;
  PgCluster& cluster = add_cluster();
  PoolerConfig config = health_config(cluster);
  config.databases[0].pool_size = kClients;
  config.databases[0].max_overflow = 0;
  config.databases[0].extra_lines.push_back("pool_pre_ping = true");
  config.databases[0].extra_lines.push_back("pre_ping_after = 0.0");
  start_daemon(config);

  std::vector<PgConnPtr> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(client());
  // All five inside a transaction at once, so the pool opens five server connections; then all go idle.
  std::set<std::string> before;
  for (auto& c : clients) {
    exec_ok(c.get(), "BEGIN");
    before.insert(query_value(c.get(), "SELECT pg_backend_pid()"));
  }
  for (auto& c : clients) exec_ok(c.get(), "COMMIT");
  ASSERT_EQ(before.size(), static_cast<std::size_t>(kClients));

  if (outage == Outage::kFastRestart) {
    cluster.restart();
  } else {
    cluster.kill9();
    cluster.start();
  }

  for (int i = 0; i < kClients; ++i) {
    const auto started = Clock::now();
    PgResultPtr r = exec_with_deadline(clients[i].get(), "SELECT pg_backend_pid()", kStatementDeadline);
    ASSERT_TRUE(r && PQresultStatus(r.get()) == PGRES_TUPLES_OK)
        << "client " << i << "'s first query after the restart failed after " << seconds_since(started)
        << " s: " << (r ? PQresultErrorMessage(r.get()) : PQerrorMessage(clients[i].get()));
    EXPECT_EQ(before.count(PQgetvalue(r.get(), 0, 0)), 0u) << "served by a backend from before the restart";
  }
}

// pool_pre_ping with pre_ping_after = 0: five idle clients, a fast restart, and each client's first query
// succeeds with no error at all.
TEST_F(IntegrationHealth, PrePingAfterRestartWithIdleClients) { idle_clients_after(Outage::kFastRestart); }

// The same after kill -9 of every server process and a start with crash recovery.
TEST_F(IntegrationHealth, PrePingAfterCrashWithIdleClients) { idle_clients_after(Outage::kCrash); }

// A daemon that never reached its only host (stopped): a new client's login fails within connect_timeout +
// 1 s naming the pool and the connect error; once the server starts, logins work without a daemon restart.
TEST_F(IntegrationHealth, OnlyHostDownFreshDaemonLoginFailsFast) {
  PgCluster& cluster = add_cluster();
  cluster.stop();
  start_daemon(health_config(cluster));

  for (int attempt = 1; attempt <= 2; ++attempt) {  // the second finds the host already marked down
    SCOPED_TRACE(fmt::format("login attempt {}", attempt));
    const auto started = Clock::now();
    PgConnPtr conn = try_connect(conninfo());
    const double took = seconds_since(started);
    ASSERT_NE(PQstatus(conn.get()), CONNECTION_OK) << "logged in with the only host down";
    const std::string message = PQerrorMessage(conn.get());
    EXPECT_LE(took, std::chrono::duration<double>(kFastFailure).count()) << message;
    EXPECT_NE(message.find("pool \"app/app\""), std::string::npos) << message;
    EXPECT_NE(message.find(host_label(cluster)), std::string::npos) << message;
    EXPECT_TRUE(icontains(message, "refused")) << message;
  }

  cluster.start();
  EXPECT_TRUE(eventually([&] {
    PgConnPtr conn = try_connect(conninfo());
    if (PQstatus(conn.get()) != CONNECTION_OK) return false;
    PgResultPtr r = exec_with_deadline(conn.get(), "SELECT 1", kStatementDeadline);
    return r && PQresultStatus(r.get()) == PGRES_TUPLES_OK;
  }, kRecovery, 100ms)) << "no successful login within " << kRecovery.count() << " s of the server's return";
}

// A logged-in client (transaction mode) whose only host stops: its next query fails within connect_timeout
// + 1 s with an ErrorResponse naming the pool and the connect error, the session stays usable, and once the
// server is back the same session and new ones are served again.
TEST_F(IntegrationHealth, OnlyHostDownLoggedInClientFailsFast) {
  PgCluster& cluster = add_cluster();
  start_daemon(health_config(cluster));
  PgConnPtr conn = client();
  ASSERT_EQ(query_value(conn.get(), "SELECT 1"), "1");

  cluster.stop();
  for (int attempt = 1; attempt <= 2; ++attempt) {
    SCOPED_TRACE(fmt::format("query attempt {}", attempt));
    const auto started = Clock::now();
    PgResultPtr r = exec_with_deadline(conn.get(), "SELECT 1", kStatementDeadline);
    const double took = seconds_since(started);
    ASSERT_TRUE(r != nullptr) << "no result at all: " << PQerrorMessage(conn.get());
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR) << "served with the only host down";
    const std::string message = PQresultErrorMessage(r.get());
    EXPECT_LE(took, std::chrono::duration<double>(kFastFailure).count()) << message;
    EXPECT_TRUE(sqlstate(r.get()).starts_with("08")) << "SQLSTATE " << sqlstate(r.get()) << ": " << message;
    EXPECT_NE(message.find("pool \"app/app\""), std::string::npos) << message;
    EXPECT_NE(message.find(host_label(cluster)), std::string::npos) << message;
    EXPECT_TRUE(icontains(message, "refused")) << message;
    ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << "the session was closed: " << PQerrorMessage(conn.get());
  }

  cluster.start();
  EXPECT_TRUE(eventually([&] {
    PgResultPtr r = exec_with_deadline(conn.get(), "SELECT 1", kStatementDeadline);
    return r && PQresultStatus(r.get()) == PGRES_TUPLES_OK;
  }, kRecovery, 100ms)) << "the session was not served within " << kRecovery.count() << " s of the server's return";
  PgConnPtr fresh = client();
  EXPECT_EQ(query_value(fresh.get(), "SELECT 1"), "1");
}

// The only host accepts TCP but never answers (a hung server): a login fails within connect_timeout + 1 s,
// not after pool_timeout (30 s), and names the pool, the host and the timeout; so does the next one.
TEST_F(IntegrationHealth, SilentHostFailsWithinConnectTimeout) {
  SilentListener silent;
  start_daemon(health_config("127.0.0.1", silent.port()));
  for (int attempt = 1; attempt <= 2; ++attempt) {
    SCOPED_TRACE(fmt::format("login attempt {}", attempt));
    const auto started = Clock::now();
    PgConnPtr conn = try_connect(conninfo());
    const double took = seconds_since(started);
    ASSERT_NE(PQstatus(conn.get()), CONNECTION_OK) << "logged in through a silent host";
    const std::string message = PQerrorMessage(conn.get());
    EXPECT_LE(took, std::chrono::duration<double>(kFastFailure).count()) << message;
    EXPECT_NE(message.find("pool \"app/app\""), std::string::npos) << message;
    EXPECT_NE(message.find(host_label("127.0.0.1", silent.port())), std::string::npos) << message;
    EXPECT_TRUE(icontains(message, "timeout")) << message;
  }
}

// hosts = [stopped, running]: every session (session mode, one server connection each) is served by the
// second host, and promptly.
TEST_F(IntegrationHealth, FirstOfTwoHostsDownServedBySecond) {
  PgCluster& first = add_cluster();
  PgCluster& second = add_cluster();
  first.stop();
  PoolerConfig config = health_config(first);
  config.databases[0].pool_mode = "session";
  start_daemon(config, {host_label(first), host_label(second)});

  std::vector<PgConnPtr> sessions;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(fmt::format("session {}", i));
    const auto started = Clock::now();
    PgConnPtr conn = try_connect(conninfo());
    const double took = seconds_since(started);
    ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    EXPECT_LE(took, std::chrono::duration<double>(kFastFailure).count());
    EXPECT_EQ(query_value(conn.get(), "SELECT current_setting('port')"), std::to_string(second.port()));
    sessions.push_back(std::move(conn));  // held, so the next session needs a server connection of its own
  }
}

// hosts = [first, second], both up, pre-ping on: a client served by the first is served by the second after
// the first stops, without seeing an error; a new client too.
TEST_F(IntegrationHealth, FailoverWhenFirstHostStops) {
  PgCluster& first = add_cluster();
  PgCluster& second = add_cluster();
  PoolerConfig config = health_config(first);
  config.databases[0].extra_lines.push_back("pool_pre_ping = true");
  config.databases[0].extra_lines.push_back("pre_ping_after = 0.0");
  start_daemon(config, {host_label(first), host_label(second)});

  PgConnPtr conn = client();
  ASSERT_EQ(query_value(conn.get(), "SELECT current_setting('port')"), std::to_string(first.port()));
  first.stop();

  const auto started = Clock::now();
  PgResultPtr r = exec_with_deadline(conn.get(), "SELECT current_setting('port')", kStatementDeadline);
  const double took = seconds_since(started);
  ASSERT_TRUE(r && PQresultStatus(r.get()) == PGRES_TUPLES_OK)
      << "the first query after the first host stopped failed: "
      << (r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn.get()));
  EXPECT_EQ(PQgetvalue(r.get(), 0, 0), std::to_string(second.port()));
  EXPECT_LE(took, std::chrono::duration<double>(kFastFailure).count());
  PgConnPtr fresh = client();
  EXPECT_EQ(query_value(fresh.get(), "SELECT current_setting('port')"), std::to_string(second.port()));
}

void IntegrationHealth::expect_routed(const std::string& attrs, const std::vector<std::string>& hosts, int port,
                                      const std::string& in_recovery) {
  SCOPED_TRACE(fmt::format("target_session_attrs = {}, hosts = [{}]", attrs, fmt::join(hosts, ", ")));
  PoolerConfig config = health_config("127.0.0.1", 5432);  // host/port are replaced by `hosts`
  config.databases[0].pool_mode = "session";
  config.databases[0].extra_lines.push_back(fmt::format("target_session_attrs = {}", toml_string(attrs)));
  start_daemon(config, hosts);
  std::vector<PgConnPtr> sessions;
  for (int i = 0; i < 3; ++i) {
    PgConnPtr conn = try_connect(conninfo());
    ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << "session " << i << ": " << PQerrorMessage(conn.get());
    EXPECT_EQ(query_value(conn.get(), "SELECT pg_is_in_recovery()"), in_recovery) << "session " << i;
    EXPECT_EQ(query_value(conn.get(), "SELECT current_setting('port')"), std::to_string(port)) << "session " << i;
    sessions.push_back(std::move(conn));  // held, so each session has a server connection of its own
  }
}

// A primary and its streaming standby, the standby listed first: read-write and primary route to the primary.
TEST_F(IntegrationHealth, ReadWriteRoutesToPrimary) {
  PgCluster& primary = add_cluster();
  PgCluster& standby = add_cluster();
  make_streaming_standby(standby, primary);
  const std::vector<std::string> hosts = {host_label(standby), host_label(primary)};
  expect_routed("read-write", hosts, primary.port(), "f");
  if (HasFatalFailure()) return;
  expect_routed("primary", hosts, primary.port(), "f");
}

// The same pair, the primary listed first: standby, read-only and prefer-standby route to the standby.
TEST_F(IntegrationHealth, StandbyAttrsRouteToStandby) {
  PgCluster& primary = add_cluster();
  PgCluster& standby = add_cluster();
  make_streaming_standby(standby, primary);
  const std::vector<std::string> hosts = {host_label(primary), host_label(standby)};
  expect_routed("standby", hosts, standby.port(), "t");
  if (HasFatalFailure()) return;
  expect_routed("read-only", hosts, standby.port(), "t");
  if (HasFatalFailure()) return;
  expect_routed("prefer-standby", hosts, standby.port(), "t");
}

}  // namespace
}  // namespace pooler::test
