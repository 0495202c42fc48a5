// A throwaway PostgreSQL 15 cluster for tests: initdb in a temp dir, started on a free 127.0.0.1 port,
// with stop / kill -9 / restart for failure tests, and guaranteed cleanup even if the test process dies.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "tests/harness/temp_dir.h"

namespace pooler::test {

// How pg_hba.conf authenticates TCP clients; password_encryption is set to match so stored secrets fit.
enum class HostAuth { trust, md5, scram_sha_256 };

struct PgRole {
  std::string name;
  std::string password;
  bool superuser = false;
};

struct PgDatabase {
  std::string name;
  std::string owner;
};

struct PgClusterOptions {
  HostAuth host_auth = HostAuth::scram_sha_256;
  // Appended to postgresql.conf after our defaults, so they win.
  std::vector<std::string> extra_conf;
  std::vector<PgRole> roles;
  std::vector<PgDatabase> databases;
  // Directory holding initdb, pg_ctl, postgres; $PG_BIN overrides.
  std::filesystem::path bin_dir = "/usr/lib/postgresql/15/bin";
};

// The superuser every cluster has; it logs in without a password over the unix socket only.
inline constexpr const char* kPgSuperuser = "postgres";

class PgCluster {
 public:
  // initdb + start + create roles and databases. Throws std::runtime_error (with the server log tail) on failure.
  explicit PgCluster(PgClusterOptions options = {});
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& socket_dir() const { return socket_dir_; }
  const std::filesystem::path& base_dir() const { return temp_.path(); }
  bool running() const { return running_; }

  // Clean shutdown (pg_ctl stop -m fast).
  void stop();
  // SIGKILLs the postmaster and then its children, like a crash, and waits until they are gone so that
  // start() can run on the same data directory (which then goes through crash recovery).
  void kill9();
  // Starts on the same port with the same data; returns once TCP connections are accepted.
  void start();
  void restart();

  // Runs SQL with psql as the superuser over the unix socket; returns stdout (unaligned, tuples only, the
  // final newline removed). Throws with psql's stderr when psql fails.
  std::string psql(const std::string& sql, const std::string& db = "postgres") const;

  // libpq connection strings: over TCP for a role, and over the unix socket for the superuser.
  std::string conninfo(const std::string& user, const std::string& password, const std::string& db) const;
  std::string superuser_conninfo(const std::string& db = "postgres") const;

  // The server log, for assertion messages.
  std::string log() const;
  std::string log_tail(std::size_t lines = 40) const;

 private:
  void init_db();
  void run_initdb(const std::filesystem::path& target) const;
  // A directory caching one initdb result: $POOLER_TEST_PG_TEMPLATE, else the build tree's (CMake).
  std::optional<std::filesystem::path> template_dir() const;
  std::filesystem::path ensure_template(const std::filesystem::path& cache) const;
  void start_on_current_port();
  void wait_until_accepting();
  void create_roles_and_databases();
  void remove_stale_lock_files();
  std::optional<pid_t> postmaster_pid() const;
  // Prefixes argv with `runuser -u postgres --` when we are root, because PostgreSQL refuses to run as root.
  std::vector<std::string> as_owner(std::vector<std::string> argv) const;
  std::string bin(const char* program) const;
  void start_watchdog();
  void stop_watchdog();
  void shutdown_for_good() noexcept;

  PgClusterOptions options_;
  TempDir temp_;
  std::filesystem::path data_dir_;
  std::filesystem::path socket_dir_;
  std::filesystem::path log_file_;
  std::filesystem::path bin_dir_;
  int port_ = 0;
  bool running_ = false;
  bool as_root_ = false;
  // Write end of the pipe the watchdog process blocks on; see start_watchdog().
  int watchdog_fd_ = -1;
  pid_t watchdog_pid_ = -1;
};

// Quoting for SQL text built by tests: 'literal' and "identifier".
std::string quote_literal(const std::string& value);
std::string quote_identifier(const std::string& name);
// Quoting for a libpq conninfo value.
std::string quote_conninfo_value(const std::string& value);

}  // namespace pooler::test
