// Running as a service: SIGHUP reload under load and with a broken file, SIGTERM drain that lets open
// transactions commit, a second SIGTERM that stops at once, and the sd_notify datagrams systemd would see.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/harness/net_util.h"
#include "tests/harness/run_command.h"
#include "tests/harness/temp_dir.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kPgbench = "/usr/lib/postgresql/15/bin/pgbench";

// Server connections held for role app (the test's own probes log in as the superuser).
int app_backends(PGconn* admin) {
  return std::stoi(query_value(admin, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"));
}

// 1-based number of the line of `text` that contains `needle`.
int line_of(const std::string& text, const std::string& needle) {
  auto pos = text.find(needle);
  if (pos == std::string::npos) throw std::runtime_error("line_of: " + needle + " not in text");
  return 1 + static_cast<int>(count_of(text.substr(0, pos), "\n"));
}

// A bound AF_UNIX datagram socket in a temp dir, playing systemd's notify socket.
class NotifySocket {
 public:
  NotifySocket() : dir_("pooler-notify-") {
    path_ = (dir_.path() / "notify.sock").string();
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path) throw std::runtime_error("notify socket path too long: " + path_);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error(fmt::format("bind {}: {}", path_, std::strerror(errno)));
    }
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }

  // Receives datagrams until one contains `needle` (returned) or `limit` passes (empty). Every datagram
  // read, matching or not, is kept in received() for failure messages.
  std::string next_with(const std::string& needle, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return "";
      pollfd p{fd_, POLLIN, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) return "";
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) continue;
      std::string message(buf, static_cast<std::size_t>(n));
      received_.push_back(message);
      if (message.find(needle) != std::string::npos) return message;
    }
  }

  std::string received() const {
    std::string out;
    for (const auto& m : received_) out += "[" + m + "] ";
    return out;
  }

 private:
  TempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> received_;
};

class IntegrationService : public ::testing::Test {
 protected:
  void TearDown() override { dump_logs_on_failure(stack_); }

  // Transaction mode, pool_size `pool_size`, no overflow; `env` goes to the daemon's environment.
  void start(int pool_size, DaemonEnv env = {}) {
    stack_.cluster = std::make_unique<PgCluster>(app_cluster_options());
    config_ = app_pooler_config(*stack_.cluster);
    config_.databases[0].pool_mode = "transaction";
    config_.databases[0].pool_size = pool_size;
    config_.databases[0].max_overflow = 0;
    config_.log_level = "info";
    config_.extra_pooler_lines.push_back("shutdown_timeout = 20.0");
    stack_.daemon = std::make_unique<DaemonProcess>(config_, std::move(env));
    config_.listen_port = stack_.daemon->port();  // a rewritten file must keep the port it listens on
    admin_ = connect(stack_.cluster->superuser_conninfo("app"));
  }

  void write_config(const std::string& text) {
    std::ofstream out(stack_.daemon->config_path(), std::ios::trunc);
    out << text;
  }

  // Sends SIGHUP and waits until the log has one more `event` line than before.
  ::testing::AssertionResult sighup_until(const std::string& event) {
    std::size_t before = count_of(stack_.daemon->log(), event);
    stack_.daemon->signal(SIGHUP);
    if (eventually([&] { return count_of(stack_.daemon->log(), event) > before; }, 10s)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no new " << event << " in the log after SIGHUP";
  }

  bool log_has(const std::string& needle) { return stack_.daemon->log().find(needle) != std::string::npos; }

  PgConnPtr client() { return connect(stack_.conninfo()); }

  Stack stack_;
  PoolerConfig config_;
  PgConnPtr admin_;
};

// pgbench over pool_size 2; a SIGHUP mid-run raises it to 6: no failed transaction, more than 2 server
// connections afterwards, and the reload is logged.
TEST_F(IntegrationService, SighupRaisesPoolSizeDuringPgbench) {
  start(2);
  const std::vector<std::pair<std::string, std::string>> env = {{"PGPASSWORD", "secret"}};
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
  CommandResult run;
  std::thread bench([&] {
    run = run_command({kPgbench, "-c", "8", "-j", "2", "-T", "6", "-n", "-h", "127.0.0.1", "-p",
                       std::to_string(stack_.daemon->port()), "-U", "app", "app"},
                      CommandOptions{60s, env, ""});
  });
  // Mid-run: both pool connections are busy before the pool grows.
  bool loaded = eventually([&] { return peak.load() >= 2; }, 10s);
  int peak_before = peak.load();
  config_.databases[0].pool_size = 6;
  write_config(config_.to_toml());
  bool reloaded = sighup_until("event=reloaded");
  bool grew = eventually([&] { return peak.load() > 2; }, 10s);
  bench.join();
  done = true;
  sampler.join();

  EXPECT_TRUE(loaded) << "pgbench never used both pool connections";
  EXPECT_LE(peak_before, 2) << "more than pool_size server connections before the reload";
  EXPECT_TRUE(reloaded);
  EXPECT_TRUE(grew) << "peak server connections after raising pool_size: " << peak.load();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("number of failed transactions: 0 "), std::string::npos) << run.out;
  EXPECT_LE(peak.load(), 6);
  EXPECT_TRUE(daemon_serves(stack_));
}

// A SIGHUP with a broken file (a wrong type, then TOML that does not parse) keeps the old config serving
// clients old and new and logs file:line:column; after the fix the next SIGHUP reloads.
TEST_F(IntegrationService, SighupWithBrokenFileKeepsOldConfig) {
  start(2);
  PgConnPtr before = client();
  EXPECT_EQ(query_value(before.get(), "SELECT 1"), "1");
  const std::string good = config_.to_toml();
  const std::string path = stack_.daemon->config_path().string();

  struct Broken {
    std::string label;
    std::string text;
    int line;
  };
  std::string wrong_type = good;
  wrong_type.replace(wrong_type.find("pool_size = 2"), 13, "pool_size = \"x\"");
  std::string unparsable = good + "[databases.app\n";
  const std::vector<Broken> cases = {
      {"pool_size = \"x\"", wrong_type, line_of(wrong_type, "pool_size = \"x\"")},
      {"unterminated table header", unparsable, line_of(unparsable, "[databases.app\n")},
  };
  for (const auto& broken : cases) {
    SCOPED_TRACE(broken.label);
    write_config(broken.text);
    ASSERT_TRUE(sighup_until("event=reload_failed"));
    std::string log = stack_.daemon->log();
    std::regex located(fmt::format("event=reload_failed[^\n]*{}:{}:[0-9]+", path, broken.line));
    EXPECT_TRUE(std::regex_search(log, located)) << "no " << path << ":" << broken.line << ":<column> in\n"
                                                 << stack_.daemon->log_tail(10);
    EXPECT_TRUE(stack_.daemon->alive());
    EXPECT_EQ(query_value(before.get(), "SELECT 2"), "2");  // connected before the reload
    EXPECT_TRUE(daemon_serves(stack_));                     // connects after it
  }
  // The old pool_size 2 is still in force.
  EXPECT_LE(app_backends(admin_.get()), 2);

  config_.databases[0].pool_size = 3;
  write_config(config_.to_toml());
  EXPECT_TRUE(sighup_until("event=reloaded"));
  EXPECT_EQ(query_value(before.get(), "SELECT 3"), "3");
  EXPECT_TRUE(daemon_serves(stack_));
}

// SIGTERM while a client is inside a transaction: new connections are refused, the open transaction still
// commits (and its row is on the server), and the daemon exits 0 soon after, long before shutdown_timeout.
TEST_F(IntegrationService, SigtermDrainsOpenTransactionThenExits) {
  start(2);
  exec_ok(admin_.get(), "CREATE TABLE drained(v int); GRANT ALL ON drained TO app");
  PgConnPtr inflight = client();
  exec_ok(inflight.get(), "BEGIN; INSERT INTO drained VALUES (42)");

  stack_.daemon->signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return log_has("event=shutdown mode=drain"); }, 10s));
  EXPECT_TRUE(stack_.daemon->alive()) << "exited with a transaction still open";

  PgConnPtr late = try_connect(stack_.conninfo("connect_timeout=5"));
  EXPECT_NE(PQstatus(late.get()), CONNECTION_OK) << "a new client was accepted while draining";

  PgResultPtr commit = exec_with_deadline(inflight.get(), "COMMIT", 10s);
  ASSERT_TRUE(commit) << PQerrorMessage(inflight.get());
  EXPECT_EQ(PQresultStatus(commit.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(commit.get());
  auto committed_at = Clock::now();

  EXPECT_TRUE(stack_.daemon->wait_exit(10s)) << "still running 10 s after the last transaction ended";
  EXPECT_LT(Clock::now() - committed_at, 10s);
  EXPECT_EQ(stack_.daemon->stop(), 0);
  EXPECT_EQ(query_value(admin_.get(), "SELECT count(*) FROM drained WHERE v = 42"), "1");
}

// With NOTIFY_SOCKET set the daemon reports READY=1 once listening, RELOADING=1 + READY=1 around a SIGHUP,
// and STOPPING=1 on SIGTERM.
TEST_F(IntegrationService, SdNotifyDatagrams) {
  NotifySocket notify;
  start(2, {{"NOTIFY_SOCKET", notify.path()}});

  std::string ready = notify.next_with("READY=1");
  ASSERT_FALSE(ready.empty()) << "no READY=1; received: " << notify.received();
  EXPECT_NE(ready.find("STATUS="), std::string::npos) << ready;
  EXPECT_TRUE(daemon_serves(stack_));

  stack_.daemon->signal(SIGHUP);
  std::string reloading = notify.next_with("RELOADING=1");
  ASSERT_FALSE(reloading.empty()) << "no RELOADING=1; received: " << notify.received();
  EXPECT_TRUE(std::regex_search(reloading, std::regex("(^|\n)MONOTONIC_USEC=[0-9]+(\n|$)"))) << reloading;
  std::string ready_again = notify.next_with("READY=1");
  EXPECT_FALSE(ready_again.empty()) << "no READY=1 after the reload; received: " << notify.received();

  stack_.daemon->signal(SIGTERM);
  std::string stopping = notify.next_with("STOPPING=1");
  EXPECT_FALSE(stopping.empty()) << "no STOPPING=1; received: " << notify.received();
  EXPECT_TRUE(stack_.daemon->wait_exit(10s));
  EXPECT_EQ(stack_.daemon->stop(), 0);
}

// A second SIGTERM while a client holds a transaction open stops at once: exit 0, the client cut off.
TEST_F(IntegrationService, SecondSigtermStopsImmediately) {
  start(2);
  PgConnPtr holder = client();
  exec_ok(holder.get(), "BEGIN");
  EXPECT_EQ(query_value(holder.get(), "SELECT 1"), "1");

  stack_.daemon->signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return log_has("event=shutdown mode=drain"); }, 10s));
  EXPECT_TRUE(stack_.daemon->alive()) << "exited with a transaction still open";

  stack_.daemon->signal(SIGTERM);
  EXPECT_TRUE(stack_.daemon->wait_exit(5s)) << "a second SIGTERM did not stop the drain";
  EXPECT_EQ(stack_.daemon->stop(), 0);

  PgResultPtr after = exec_with_deadline(holder.get(), "SELECT 2", 10s);
  EXPECT_TRUE(!after || PQresultStatus(after.get()) == PGRES_FATAL_ERROR) << "the held connection still answers";
  EXPECT_EQ(PQstatus(holder.get()), CONNECTION_BAD);
}

// so_reuseport: a second pooler starts on the port the first listens on and both take connections; the
// first drains away on SIGTERM without removing the second's unix socket, and every connection made during
// and after the handover is served. Without so_reuseport the second one cannot listen and says why.
TEST_F(IntegrationService, SoReuseportHandsOverWithoutRefusedConnections) {
  stack_.cluster = std::make_unique<PgCluster>(app_cluster_options());
  TempDir sockets("pooler-reuseport-");
  PoolerConfig config = app_pooler_config(*stack_.cluster);
  config.listen_port = free_port();
  config.unix_socket_dir = sockets.path().string();
  config.log_level = "info";
  config.extra_pooler_lines = {"so_reuseport = true"};
  DaemonProcess first(config);
  DaemonProcess second(config);
  ASSERT_TRUE(eventually([&] { return second.log().find("event=listening") != std::string::npos; }, 10s))
      << second.log_tail();
  ASSERT_TRUE(first.alive() && second.alive());

  const std::string tcp = pooler_conninfo(first, kAppUser, kAppPassword, kAppDatabase);
  auto logins = [](DaemonProcess& d) { return count_of(d.log(), "event=login "); };
  // The kernel spreads connections over both listeners by their source port: 64 logins reach both unless
  // something is wrong (the chance that all land on one is 2^-63).
  for (int i = 0; i < 64; ++i) {
    PgConnPtr c = connect(tcp);
    ASSERT_EQ(query_value(c.get(), "SELECT 1"), "1");
  }
  EXPECT_GT(logins(first), 0u) << first.log_tail();
  EXPECT_GT(logins(second), 0u) << second.log_tail();

  // Handover: the first one drains while clients keep connecting; none is refused.
  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  std::vector<std::string> failures;
  std::thread load([&] {
    while (!stop.load()) {
      PgConnPtr c = try_connect(tcp);
      if (PQstatus(c.get()) != CONNECTION_OK) {
        failures.emplace_back(PQerrorMessage(c.get()));
        continue;
      }
      PgResultPtr r = exec_with_deadline(c.get(), "SELECT 1", 10s);
      if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
        failures.emplace_back("SELECT 1 failed");
      } else {
        served.fetch_add(1);
      }
    }
  });
  const int before = served.load();
  EXPECT_TRUE(eventually([&] { return served.load() >= before + 20; }, 20s));
  EXPECT_EQ(first.stop(), 0) << first.log_tail();
  const int at_exit = served.load();
  EXPECT_TRUE(eventually([&] { return served.load() >= at_exit + 20; }, 20s));
  stop = true;
  load.join();
  // A connection the kernel queued for the first one while it closed its listener is told to go (57P01)
  // rather than reset; anything else is a refusal.
  for (const std::string& f : failures) {
    EXPECT_NE(f.find("terminating connection due to administrator command"), std::string::npos) << f;
  }

  // The unix socket at the path is the second one's, still there and serving.
  EXPECT_TRUE(std::filesystem::exists(sockets.path() / fmt::format(".s.PGSQL.{}", config.listen_port)));
  PgConnPtr via_unix = connect(fmt::format("host={} port={} user={} password={} dbname={}", sockets.path().string(),
                                           config.listen_port, kAppUser, kAppPassword, kAppDatabase));
  EXPECT_EQ(query_value(via_unix.get(), "SELECT 2"), "2");
  via_unix.reset();

  // Without so_reuseport a third one cannot share the port, and says so.
  PoolerConfig plain = config;
  plain.extra_pooler_lines.clear();
  plain.unix_socket_dir.clear();
  const std::string text = plain.to_toml();
  std::optional<std::string> refused;
  try {
    DaemonProcess third(text, plain.listen_addr, plain.listen_port);
    EXPECT_TRUE(third.wait_exit(10s)) << "a second listener without so_reuseport kept running";
    refused = third.log();
  } catch (const std::exception& e) {
    refused = e.what();
  }
  EXPECT_NE(refused->find("Address already in use"), std::string::npos) << *refused;
  EXPECT_EQ(second.stop(), 0) << second.log_tail();
}

}  // namespace
}  // namespace pooler::test
