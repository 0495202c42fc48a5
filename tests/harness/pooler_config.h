// Builds the pooler.toml text a test's daemon runs with, from plain structs, so tests state only what
// they care about (auth type, pool sizes, limits) and the rest stays at values that suit tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pooler::test {

struct PoolerDatabase {
  std::string name = "app";  // what clients put in their dbname
  std::string host = "127.0.0.1";
  int port = 5432;
  std::string dbname;  // server-side name; empty = same as name
  std::string pool_mode = "session";
  int pool_size = 5;
  int max_overflow = 5;
  double pool_timeout = 30.0;
  // Verbatim `key = value` lines for keys later issues add.
  std::vector<std::string> extra_lines;
};

struct PoolerUser {
  std::string name = "app";
  std::string password = "secret";
};

struct PoolerConfig {
  std::string listen_addr = "127.0.0.1";
  int listen_port = 0;  // 0: DaemonProcess picks a free port
  std::string unix_socket_dir;
  std::string auth_type = "scram-sha-256";
  int max_client_conn = 1000;
  std::string log_level = "debug";
  std::int64_t max_message_size = 1048576;
  std::vector<std::string> extra_pooler_lines;
  std::vector<PoolerDatabase> databases;
  std::vector<PoolerUser> users;

  std::string to_toml() const;
};

// A TOML basic string: "..." with escapes.
std::string toml_string(const std::string& value);

}  // namespace pooler::test
