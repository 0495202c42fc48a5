// make_streaming_standby: pg_basebackup -R into a stopped cluster's data directory, then start it again.
#include "tests/harness/standby.h"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "tests/harness/libpq_util.h"
#include "tests/harness/run_command.h"

namespace pooler::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The same lookup PgCluster does: $PG_BIN, else the PostgreSQL 15 install.
std::string pg_program(const char* name) {
  const char* env = std::getenv("PG_BIN");
  std::filesystem::path dir = env != nullptr && *env != '\0' ? env : "/usr/lib/postgresql/15/bin";
  return (dir / name).string();
}

// PostgreSQL refuses to run as root, and the data directory must belong to the user the server runs as.
std::vector<std::string> as_postgres(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  return argv;
}

}  // namespace

void make_streaming_standby(PgCluster& standby, const PgCluster& primary) {
  standby.stop();
  std::filesystem::remove_all(standby.data_dir());
  // -X stream: the WAL needed for consistency comes along, so the standby starts without archive access.
  // -c fast: an immediate checkpoint on the primary instead of waiting for a spread one.
  std::vector<std::string> argv =
      as_postgres({pg_program("pg_basebackup"), "-D", standby.data_dir().string(), "-R", "-X", "stream", "-c",
                   "fast", "--no-sync", "-h", primary.socket_dir().string(), "-p", std::to_string(primary.port()),
                   "-U", kPgSuperuser});
  CommandResult result = run_command(argv, 120s);
  if (result.exit_code != 0) throw std::runtime_error("pg_basebackup failed: " + describe(argv, result));

  // The copy carries the primary's postgresql.conf; the standby keeps its own socket directory so that its
  // superuser_conninfo() and psql() keep working. Later lines win.
  std::ofstream conf(standby.data_dir() / "postgresql.conf", std::ios::app);
  conf << "\n# pooler test harness: streaming standby\n"
       << "unix_socket_directories = '" << standby.socket_dir().string() << "'\n"
       << "hot_standby = on\n";
  if (!conf) throw std::runtime_error("could not append to the standby's postgresql.conf");
  conf.close();

  standby.start();
  PgConnPtr conn = connect(standby.superuser_conninfo());
  if (query_value(conn.get(), "SELECT pg_is_in_recovery()") != "t") {
    throw std::runtime_error(fmt::format("the cluster on port {} started but is not in recovery\n"
                                         "--- server log tail ---\n{}",
                                         standby.port(), standby.log_tail()));
  }
}

void wait_for_replay(const PgCluster& primary, const PgCluster& standby, std::chrono::milliseconds timeout) {
  PgConnPtr on_primary = connect(primary.superuser_conninfo());
  const std::string lsn = query_value(on_primary.get(), "SELECT pg_current_wal_lsn()");
  PgConnPtr on_standby = connect(standby.superuser_conninfo());
  const std::string caught_up = fmt::format("SELECT coalesce(pg_last_wal_replay_lsn() >= '{}'::pg_lsn, false)", lsn);
  const auto deadline = Clock::now() + timeout;
  while (query_value(on_standby.get(), caught_up) != "t") {
    if (Clock::now() >= deadline) {
      throw std::runtime_error(fmt::format("the standby on port {} did not replay up to {} within {} ms\n"
                                           "--- standby log tail ---\n{}",
                                           standby.port(), lsn, timeout.count(), standby.log_tail()));
    }
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace pooler::test
