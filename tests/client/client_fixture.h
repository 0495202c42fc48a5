// Shared setup for the client library's integration tests: one PostgreSQL cluster per test suite (role
// app/secret, database app) and URLs for the library, directly or through a pooler daemon.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <fmt/format.h>

#include "pooler/client.hpp"
#include "tests/harness/app_fixture.h"

namespace pooler::test {

class ClientClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = std::make_unique<PgCluster>(app_cluster_options()); }
  static void TearDownTestSuite() { cluster_.reset(); }

  static PgCluster& cluster() { return *cluster_; }
  // postgresql://app:secret@127.0.0.1:<port>/app?<query>
  static std::string url(const std::string& query = "") {
    return fmt::format("postgresql://app:secret@127.0.0.1:{}/app{}{}", cluster_->port(), query.empty() ? "" : "?",
                       query);
  }
  static std::string daemon_url(const DaemonProcess& daemon, const std::string& query = "") {
    return fmt::format("postgresql://app:secret@{}:{}/app?sslmode=disable{}{}", daemon.listen_addr(), daemon.port(),
                       query.empty() ? "" : "&", query);
  }

  // The app pool in transaction mode (the mode that matters for a client library), with a small pool.
  static PoolerConfig transaction_mode_config(int pool_size = 2) {
    PoolerConfig config = app_pooler_config(*cluster_);
    config.databases[0].pool_mode = "transaction";
    config.databases[0].pool_size = pool_size;
    return config;
  }

  static inline std::unique_ptr<PgCluster> cluster_;
};

}  // namespace pooler::test
