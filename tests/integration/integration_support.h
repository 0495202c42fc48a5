// Shared pieces of the integration suites: a per-suite cluster + daemon holder, the "still serving" check
// every bad-input test ends with, and log dumps when a test fails.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/harness/app_fixture.h"
#include "tests/harness/daemon_process.h"
#include "tests/harness/libpq_util.h"
#include "tests/harness/pg_cluster.h"
#include "tests/harness/raw_client.h"

namespace pooler::test {

// One PostgreSQL cluster and one daemon in front of it, made in SetUpTestSuite and dropped in
// TearDownTestSuite (ctest runs each test in its own process, so this is one stack per test there, and one
// per suite when the binary runs whole).
struct Stack {
  std::unique_ptr<PgCluster> cluster;
  std::unique_ptr<DaemonProcess> daemon;

  // Starts a cluster with role app/secret and database app, then a daemon with app_pooler_config(cluster)
  // changed by `adjust`.
  template <typename Adjust>
  void start(Adjust adjust, HostAuth server_auth = HostAuth::scram_sha_256) {
    cluster = std::make_unique<PgCluster>(app_cluster_options(server_auth));
    PoolerConfig config = app_pooler_config(*cluster);
    adjust(config);
    daemon = std::make_unique<DaemonProcess>(config);
  }
  void start() {
    start([](PoolerConfig&) {});
  }
  // Stops the daemon with SIGTERM and records a test failure unless it exits 0: under the sanitizers that
  // is where leaks and late memory errors in the daemon show up. Then drops the cluster.
  void reset();
  std::string conninfo(const std::string& extra = "") const {
    return pooler_conninfo(*daemon, kAppUser, kAppPassword, kAppDatabase, extra);
  }
};

// Polls `pred` every `every` until it holds or `limit` passes; returns its last value.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(30),
                std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(every);
  }
  return pred();
}

// How often `needle` occurs in `haystack` (log lines of an event, say).
std::size_t count_of(const std::string& haystack, const std::string& needle);

// Sends SIGHUP and waits until the daemon's log has one more line containing `event` ("event=reloaded",
// "event=reload_failed") than before.
::testing::AssertionResult sighup_until(DaemonProcess& daemon, const std::string& event);

// Prints the daemon's and the server's log tails when the current test has failed.
void dump_logs_on_failure(const Stack& stack);

// The daemon process is alive and a fresh libpq client runs SELECT 1 through it.
::testing::AssertionResult daemon_serves(const Stack& stack);

// Reads until the server closes the connection. Every message before the close must be an ErrorResponse;
// when `sqlstate` is given there must be one and the first must carry it.
::testing::AssertionResult rejected_and_closed(RawClient& client, const std::string& sqlstate = "",
                                               bool error_required = false);

}  // namespace pooler::test
