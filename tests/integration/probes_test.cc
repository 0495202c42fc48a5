// Probes for orchestrators on the metrics address: /healthz (the process is alive) and /readyz (accepting
// clients and at least one backend up per configured database), against real PostgreSQL 15 clusters that
// are stopped and started under the daemon. Checked with a raw HTTP/1.1 GET and, where installed, curl.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/harness/net_util.h"
#include "tests/harness/run_command.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// health_check_period is 1 s here, so "a few seconds" to notice a backend going away.
constexpr auto kNoticeDown = 5s;
// Coming back may also wait out the host's backoff (1 s, 2 s, 4 s … after repeated failures).
constexpr auto kNoticeUp = 10s;

// The status code as an orchestrator's curl check sees it, or nullopt when curl is not installed.
std::optional<std::string> curl_status(int port, const std::string& path) {
  if (!std::filesystem::exists("/usr/bin/curl")) return std::nullopt;
  CommandResult result = run_command({"/usr/bin/curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}",
                                      fmt::format("http://127.0.0.1:{}{}", port, path)},
                                     10s);
  return result.out;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

class IntegrationProbes : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!HasFailure()) return;
    if (daemon_) std::cerr << "--- pooler log tail ---\n" << daemon_->log_tail(120) << "\n";
    for (const auto& cluster : clusters_) {
      std::cerr << "--- PostgreSQL (port " << cluster->port() << ") log tail ---\n" << cluster->log_tail(20) << "\n";
    }
  }

  PgCluster& add_cluster() {
    clusters_.push_back(std::make_unique<PgCluster>(app_cluster_options()));
    return *clusters_.back();
  }

  // A daemon with [databases.app] on `cluster` plus one database per entry of `more` (named by the pair's
  // first element, served by database app of that cluster), metrics on a free port, health checks every 1 s.
  void start_daemon(const PgCluster& cluster, const std::vector<std::pair<std::string, const PgCluster*>>& more = {}) {
    PoolerConfig config = app_pooler_config(cluster);
    config.databases[0].pool_mode = "transaction";
    for (const auto& [name, other] : more) {
      PoolerDatabase db = config.databases[0];
      db.name = name;
      db.host = other->host();
      db.port = other->port();
      db.dbname = kAppDatabase;
      config.databases.push_back(db);
    }
    for (auto& db : config.databases) db.extra_lines.push_back("connect_timeout = 2.0");
    metrics_port_ = free_port();
    config.extra_pooler_lines.push_back(fmt::format("metrics_listen = \"127.0.0.1:{}\"", metrics_port_));
    config.extra_pooler_lines.push_back("health_check_period = 1.0");
    daemon_ = std::make_unique<DaemonProcess>(config);
    // The metrics listener may come up a moment after the client port.
    ASSERT_TRUE(wait_status("/healthz", 200, 10s)) << "no 200 from /healthz on port " << metrics_port_ << " within 10 s; last status " << last_
                                                  << " (0: nothing listening)";
  }

  // Polls `path` until it answers `status`; true as soon as it does.
  bool wait_status(const std::string& path, int status, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      std::optional<HttpResponse> r = http_get(metrics_port_, path);
      last_ = r ? r->status : 0;
      if (r && r->status == status) return true;
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(50ms);
    }
  }

  // curl agrees with what the raw GET saw (nothing to check when curl is not installed).
  void expect_curl(const std::string& path, int status) {
    if (auto code = curl_status(metrics_port_, path)) {
      EXPECT_EQ(*code, std::to_string(status)) << "curl " << path;
    }
  }

  void serve_one_query(const std::string& db = kAppDatabase) {
    PgConnPtr conn = connect(pooler_conninfo(*daemon_, kAppUser, kAppPassword, db));
    EXPECT_EQ(query_value(conn.get(), "SELECT 1"), "1");
  }

  std::vector<std::unique_ptr<PgCluster>> clusters_;  // declared before daemon_ so the daemon stops first
  std::unique_ptr<DaemonProcess> daemon_;
  int metrics_port_ = 0;
  int last_ = 0;  // the status the last poll saw (0: nothing listening)
};

// /healthz answers 200 "ok", to a raw GET and to curl.
TEST_F(IntegrationProbes, HealthzAnswersOk) {
  PgCluster& cluster = add_cluster();
  ASSERT_NO_FATAL_FAILURE(start_daemon(cluster));
  std::optional<HttpResponse> r = http_get(metrics_port_, "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(trimmed(r->body), "ok");
  expect_curl("/healthz", 200);
}

// /healthz is about the process only: it stays 200 while the backend is down.
TEST_F(IntegrationProbes, HealthzIgnoresBackends) {
  PgCluster& cluster = add_cluster();
  ASSERT_NO_FATAL_FAILURE(start_daemon(cluster));
  serve_one_query();
  cluster.stop();
  // Give the health checks time to notice the backend is gone (and /readyz to say so), then ask /healthz.
  wait_status("/readyz", 503, kNoticeDown);
  std::optional<HttpResponse> r = http_get(metrics_port_, "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  expect_curl("/healthz", 200);
}

// /readyz: 200 while the backend is up, 503 within a few seconds of it stopping (health_check_period 1 s,
// no client traffic), and 200 again after it is back, without a daemon restart.
TEST_F(IntegrationProbes, ReadyzFollowsBackend) {
  PgCluster& cluster = add_cluster();
  ASSERT_NO_FATAL_FAILURE(start_daemon(cluster));
  serve_one_query();
  ASSERT_TRUE(wait_status("/readyz", 200, kNoticeDown)) << "backend up, /readyz said " << last_;
  expect_curl("/readyz", 200);

  cluster.stop();
  ASSERT_TRUE(wait_status("/readyz", 503, kNoticeDown))
      << "backend stopped, /readyz still said " << last_ << " after " << kNoticeDown.count() << " s";
  expect_curl("/readyz", 503);

  cluster.start();
  ASSERT_TRUE(wait_status("/readyz", 200, kNoticeUp))
      << "backend back, /readyz still said " << last_ << " after " << kNoticeUp.count() << " s";
  expect_curl("/readyz", 200);
  serve_one_query();
}

// A backend the daemon has never reached is not "up": started with its only backend stopped, the daemon is
// not ready; once the server starts it becomes ready.
TEST_F(IntegrationProbes, ReadyzNotReadyWhenBackendNeverReached) {
  PgCluster& cluster = add_cluster();
  cluster.stop();
  ASSERT_NO_FATAL_FAILURE(start_daemon(cluster));
  EXPECT_TRUE(wait_status("/readyz", 503, kNoticeDown)) << "never reached a backend, /readyz said " << last_;
  expect_curl("/readyz", 503);
  cluster.start();
  EXPECT_TRUE(wait_status("/readyz", 200, kNoticeUp)) << "backend started, /readyz still said " << last_;
}

// Two databases on two clusters: /readyz needs a backend up for each, so stopping only the second makes it
// 503 (while the first is still served), and starting it again makes it 200.
TEST_F(IntegrationProbes, ReadyzNeedsEveryDatabase) {
  PgCluster& first = add_cluster();
  PgCluster& second = add_cluster();
  ASSERT_NO_FATAL_FAILURE(start_daemon(first, {{"other", &second}}));
  serve_one_query(kAppDatabase);
  serve_one_query("other");
  ASSERT_TRUE(wait_status("/readyz", 200, kNoticeDown)) << "both up, /readyz said " << last_;

  second.stop();
  EXPECT_TRUE(wait_status("/readyz", 503, kNoticeDown)) << "database other down, /readyz said " << last_;
  expect_curl("/readyz", 503);
  serve_one_query(kAppDatabase);  // the other database is unaffected

  second.start();
  EXPECT_TRUE(wait_status("/readyz", 200, kNoticeUp)) << "both up again, /readyz said " << last_;
}

}  // namespace
}  // namespace pooler::test
