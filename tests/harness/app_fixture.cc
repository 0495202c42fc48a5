// Defaults shared by integration tests, so each one states only what differs.
#include "tests/harness/app_fixture.h"

#include <fmt/format.h>

namespace pooler::test {

PgClusterOptions app_cluster_options(HostAuth host_auth) {
  PgClusterOptions options;
  options.host_auth = host_auth;
  options.roles.push_back({kAppUser, kAppPassword, false});
  options.databases.push_back({kAppDatabase, kAppUser});
  return options;
}

PoolerConfig app_pooler_config(const PgCluster& cluster) {
  PoolerConfig config;
  PoolerDatabase db;
  db.name = kAppDatabase;
  db.host = cluster.host();
  db.port = cluster.port();
  db.dbname = kAppDatabase;
  config.databases.push_back(db);
  config.users.push_back({kAppUser, kAppPassword});
  return config;
}

std::string pooler_conninfo(const DaemonProcess& daemon, const std::string& user, const std::string& password,
                            const std::string& db, const std::string& extra) {
  // sslmode=disable: the pooler answers SSLRequest with 'N' anyway; skipping it keeps logs focused.
  std::string conninfo = fmt::format("host={} port={} user={} password={} dbname={} sslmode=disable "
                                     "gssencmode=disable connect_timeout=20",
                                     daemon.listen_addr(), daemon.port(), quote_conninfo_value(user),
                                     quote_conninfo_value(password), quote_conninfo_value(db));
  if (!extra.empty()) conninfo += " " + extra;
  return conninfo;
}

}  // namespace pooler::test
