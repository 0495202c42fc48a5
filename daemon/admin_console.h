// The admin console of the virtual database `pooler`: PgBouncer-compatible SHOW/PAUSE/RESUME/RECONNECT/
// DISABLE/ENABLE/RELOAD/KILL/SHUTDOWN commands, answered as protocol bytes from the daemon's state. Pure: no sockets, no libuv.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pooler::daemon {

// Every member has a default, so designated initializers may name only some (no -Wmissing-field-initializers).

// One row of SHOW POOLS: a pool (database, user).
struct AdminPool {
  std::string database{}, user{}, pool_mode{};
  int cl_active = 0, cl_waiting = 0, cl_idle = 0, sv_active = 0, sv_idle = 0, sv_tested = 0, sv_login = 0;
  double maxwait_seconds = 0;  // how long the oldest waiting client has waited
  int pool_size = 0, max_overflow = 0, overflow_in_use = 0;
  bool paused = false;
};

// One row of SHOW CLIENTS.
struct AdminClient {
  std::uint64_t id = 0;
  std::string user{}, database{}, state{} /*active|waiting|idle|login*/, addr{};
  int port = 0;
  std::string connect_time{}, application_name{};
  std::optional<std::uint64_t> server_id{};  // the server connection it is linked to
};

// One row of SHOW SERVERS.
struct AdminServer {
  std::uint64_t id = 0;
  std::string user{}, database{}, state{} /*active|idle|tested|login*/, addr{};
  int port = 0;
  std::string connect_time{};
  int backend_pid = 0;
  std::optional<std::uint64_t> client_id{};  // the client it is linked to
};

// One row of SHOW STATS: totals since start, per database.
struct AdminStats {
  std::string database{};
  std::uint64_t total_xact_count = 0, total_query_count = 0, total_received = 0, total_sent = 0,
                total_xact_time_us = 0, total_wait_time_us = 0;
};

// One row of SHOW DATABASES: a configured database.
struct AdminDatabase {
  std::string name{}, host{};
  int port = 0;
  std::string database{}, force_user{}, pool_mode{};
  int pool_size = 0, min_pool_size = 0, max_overflow = 0, current_connections = 0;
  bool paused = false;
  bool disabled = false;  // DISABLE: new client logins refused
};

// What the console reads and does; implemented by the daemon. Calls happen on the loop thread, inside
// execute_admin. An error string becomes the ErrorResponse's message.
class AdminBackend {
 public:
  virtual std::vector<AdminPool> pools() = 0;
  virtual std::vector<AdminClient> clients() = 0;
  virtual std::vector<AdminServer> servers() = 0;
  virtual std::vector<AdminStats> stats() = 0;
  virtual std::vector<AdminDatabase> databases() = 0;
  virtual std::vector<std::pair<std::string, std::string>> config_values() = 0;  // key, value
  // nullopt = every database. PAUSE/RESUME/KILL of a database that databases() does not list never reach
  // the backend: the console answers 42704 itself.
  virtual std::expected<void, std::string> pause(std::optional<std::string> db) = 0;
  virtual std::expected<void, std::string> resume(std::optional<std::string> db) = 0;
  virtual std::expected<void, std::string> reload() = 0;
  virtual std::expected<void, std::string> kill(const std::string& db) = 0;
  // RECONNECT: every server connection of the database(s) is replaced, the idle ones now, the others when
  // their client gives them back; clients are not disturbed.
  virtual std::expected<void, std::string> reconnect(std::optional<std::string> db) = 0;
  // DISABLE / ENABLE: refuse or allow new client logins to a database; connected clients go on.
  virtual std::expected<void, std::string> disable(const std::string& db) = 0;
  virtual std::expected<void, std::string> enable(const std::string& db) = 0;
  virtual std::expected<void, std::string> shutdown() = 0;

 protected:
  ~AdminBackend() = default;
};

// Executes the text of one simple Query on the console; appends the complete response (RowDescription/
// DataRow/CommandComplete, or an ErrorResponse with a fitting SQLSTATE: 42601 syntax, 42704 unknown object,
// 0A000 unsupported, 55000 when the backend refuses) to `out` WITHOUT the final ReadyForQuery (the caller
// adds it). Case-insensitive keywords, trailing ';' and whitespace ok, several ';'-separated commands
// answered in order (an error ends the batch, as in PostgreSQL), empty query → EmptyQueryResponse.
// Database names are case-sensitive; "double quotes" allow any name.
void execute_admin(std::string_view sql, AdminBackend& backend, std::string& out);

}  // namespace pooler::daemon
