// The standard test setup in a few calls: a cluster with role app/secret owning database app, and a pooler
// config whose [databases.app] and [users.app] point at that cluster.
//
//   PgCluster cluster(app_cluster_options());           // initdb + start; role app/secret, database app
//   PoolerConfig config = app_pooler_config(cluster);   // tweak: config.databases[0].pool_size = 1; ...
//   DaemonProcess daemon(config);                       // free port, returns once it accepts TCP
//   PgConnPtr conn = connect(pooler_conninfo(daemon));  // libpq through the pooler as app/secret to app
#pragma once

#include <string>

#include "tests/harness/daemon_process.h"
#include "tests/harness/pg_cluster.h"
#include "tests/harness/pooler_config.h"

namespace pooler::test {

inline constexpr const char* kAppUser = "app";
inline constexpr const char* kAppPassword = "secret";
inline constexpr const char* kAppDatabase = "app";

PgClusterOptions app_cluster_options(HostAuth host_auth = HostAuth::scram_sha_256);

// Session mode, pool_size 5, max_overflow 5, auth scram-sha-256, listen port chosen when the daemon starts.
PoolerConfig app_pooler_config(const PgCluster& cluster);

// A libpq conninfo for the daemon's listen address; `extra` is appended verbatim ("application_name=x").
std::string pooler_conninfo(const DaemonProcess& daemon, const std::string& user = kAppUser,
                            const std::string& password = kAppPassword, const std::string& db = kAppDatabase,
                            const std::string& extra = "");

}  // namespace pooler::test
