// Admin console: each command's columns, types and values, errors with their SQLSTATEs, multi-statement
// queries and keyword case, checked by decoding the produced protocol bytes.
#include "daemon/admin_console.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/error_response.h"
#include "protocol/frame.h"
#include "protocol/reader.h"

namespace pooler::daemon {
namespace {

// Records what the console asked for and answers with canned rows.
class FakeBackend final : public AdminBackend {
 public:
  std::vector<AdminPool> pools_rows;
  std::vector<AdminClient> client_rows;
  std::vector<AdminServer> server_rows;
  std::vector<AdminStats> stats_rows;
  std::vector<AdminDatabase> database_rows;
  std::vector<std::pair<std::string, std::string>> config_rows;
  std::vector<std::string> calls;
  std::optional<std::string> fail;  // the next action fails with this message

  std::vector<AdminPool> pools() override { return pools_rows; }
  std::vector<AdminClient> clients() override { return client_rows; }
  std::vector<AdminServer> servers() override { return server_rows; }
  std::vector<AdminStats> stats() override { return stats_rows; }
  std::vector<AdminDatabase> databases() override { return database_rows; }
  std::vector<std::pair<std::string, std::string>> config_values() override { return config_rows; }
  std::expected<void, std::string> pause(std::optional<std::string> db) override {
    return act("pause " + db.value_or("*"));
  }
  std::expected<void, std::string> resume(std::optional<std::string> db) override {
    return act("resume " + db.value_or("*"));
  }
  std::expected<void, std::string> reload() override { return act("reload"); }
  std::expected<void, std::string> kill(const std::string& db) override { return act("kill " + db); }
  std::expected<void, std::string> reconnect(std::optional<std::string> db) override {
    return act("reconnect " + db.value_or("*"));
  }
  std::expected<void, std::string> disable(const std::string& db) override { return act("disable " + db); }
  std::expected<void, std::string> enable(const std::string& db) override { return act("enable " + db); }
  std::expected<void, std::string> shutdown() override { return act("shutdown"); }

 private:
  std::expected<void, std::string> act(std::string what) {
    calls.push_back(std::move(what));
    if (fail) return std::unexpected(*std::exchange(fail, std::nullopt));
    return {};
  }
};

// One statement's answer, decoded.
struct Answer {
  std::vector<std::string> columns;
  std::vector<std::int32_t> type_oids;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::string tag;                              // CommandComplete
  std::optional<protocol::ServerError> error;   // ErrorResponse
  std::optional<protocol::ServerError> notice;  // NoticeResponse
  bool empty_query = false;
};

// Decodes everything execute_admin wrote; fails the test on any malformed byte.
std::vector<Answer> decode(const std::string& bytes) {
  std::vector<Answer> out;
  Answer cur;
  std::string_view in = bytes;
  while (!in.empty()) {
    auto f = protocol::decode_frame(in, 1 << 20);
    EXPECT_TRUE(f.has_value());
    EXPECT_TRUE(f.has_value() && f->has_value()) << "truncated message";
    if (!f || !*f) return out;
    const protocol::Frame fr = **f;
    in.remove_prefix(fr.size);
    protocol::Reader r(fr.body);
    switch (fr.type) {
      case 'T': {
        const int n = r.int16().value();
        for (int i = 0; i < n; ++i) {
          cur.columns.emplace_back(r.cstring().value());
          EXPECT_EQ(r.int32(), 0);
          EXPECT_EQ(r.int16(), 0);
          const std::int32_t oid = r.int32().value();
          cur.type_oids.push_back(oid);
          EXPECT_EQ(r.int16(), oid == 20 ? 8 : -1);
          EXPECT_EQ(r.int32(), -1);
          EXPECT_EQ(r.int16(), 0);
        }
        break;
      }
      case 'D': {
        const int n = r.int16().value();
        EXPECT_EQ(static_cast<std::size_t>(n), cur.columns.size());
        std::vector<std::optional<std::string>> row;
        for (int i = 0; i < n; ++i) {
          const std::int32_t len = r.int32().value();
          if (len < 0) {
            row.emplace_back();
          } else {
            row.emplace_back(std::string(r.bytes(static_cast<std::size_t>(len)).value()));
          }
        }
        cur.rows.push_back(std::move(row));
        break;
      }
      case 'C':
        cur.tag = std::string(r.cstring().value());
        out.push_back(std::exchange(cur, {}));
        break;
      case 'E':
        cur.error = protocol::parse_error_response(fr.body).value();
        out.push_back(std::exchange(cur, {}));
        break;
      case 'N':
        cur.notice = protocol::parse_error_response(fr.body).value();
        break;
      case 'I':
        cur.empty_query = true;
        out.push_back(std::exchange(cur, {}));
        break;
      default:
        ADD_FAILURE() << "unexpected message type " << fr.type;
        return out;
    }
    if (fr.type != 'E' && fr.type != 'N') {
      EXPECT_TRUE(r.at_end()) << "trailing bytes in " << fr.type;
    }
  }
  EXPECT_TRUE(cur.columns.empty() && cur.rows.empty()) << "result set without CommandComplete";
  return out;
}

class DaemonAdminConsole : public ::testing::Test {
 protected:
  DaemonAdminConsole() {
    backend.database_rows = {
        {.name = "app", .host = "db1", .port = 5432, .database = "appdb", .force_user = "", .pool_mode = "transaction",
         .pool_size = 10, .min_pool_size = 2, .max_overflow = 5, .current_connections = 7, .paused = false},
        {.name = "Mixed Case", .host = "", .port = 6000, .database = "mc", .force_user = "svc", .pool_mode = "session",
         .pool_size = 1, .min_pool_size = 0, .max_overflow = -1, .current_connections = 0, .paused = true,
         .disabled = true},
    };
  }
  std::vector<Answer> run(std::string_view sql) {
    std::string out;
    execute_admin(sql, backend, out);
    return decode(out);
  }
  // A one-statement query that must fail: returns its SQLSTATE.
  std::string error_of(std::string_view sql) {
    auto a = run(sql);
    if (a.size() != 1 || !a[0].error) {
      ADD_FAILURE() << "no single error for " << sql;
      return "";
    }
    return a[0].error->sqlstate;
  }
  FakeBackend backend;
};

using Row = std::vector<std::optional<std::string>>;
using Names = std::vector<std::string>;
constexpr std::int32_t kInt8 = 20;
constexpr std::int32_t kText = 25;

// SHOW POOLS: PgBouncer's columns then ours; maxwait split into seconds and microseconds.
TEST_F(DaemonAdminConsole, ShowPools) {
  backend.pools_rows = {{.database = "app", .user = "alice", .pool_mode = "transaction", .cl_active = 1,
                         .cl_waiting = 2, .cl_idle = 3, .sv_active = 4, .sv_idle = 5, .sv_tested = 6, .sv_login = 7,
                         .maxwait_seconds = 2.5000019, .pool_size = 10, .max_overflow = -1, .overflow_in_use = 0,
                         .paused = true}};
  auto a = run("SHOW POOLS");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns, (Names{"database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used",
                                 "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode", "cl_idle",
                                 "pool_size", "max_overflow", "overflow_in_use", "paused"}));
  EXPECT_EQ(a[0].type_oids, (std::vector<std::int32_t>{kText, kText, kInt8, kInt8, kInt8, kInt8, kInt8, kInt8, kInt8,
                                                       kInt8, kInt8, kText, kInt8, kInt8, kInt8, kInt8, kInt8}));
  ASSERT_EQ(a[0].rows.size(), 1u);
  EXPECT_EQ(a[0].rows[0], (Row{"app", "alice", "1", "2", "4", "5", "0", "6", "7", "2", "500001", "transaction", "3",
                               "10", "-1", "0", "1"}));
  EXPECT_EQ(a[0].tag, "SHOW");
}

// SHOW POOLS with no pools: the header and no rows.
TEST_F(DaemonAdminConsole, ShowPoolsEmpty) {
  auto a = run("show pools");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns.size(), 17u);
  EXPECT_TRUE(a[0].rows.empty());
  EXPECT_EQ(a[0].tag, "SHOW");
}

// SHOW CLIENTS: ptr/link in hex, NULL link when not linked.
TEST_F(DaemonAdminConsole, ShowClients) {
  backend.client_rows = {
      {.id = 42, .user = "alice", .database = "app", .state = "active", .addr = "10.0.0.1", .port = 5555,
       .connect_time = "2026-11-25 06:44:58 UTC", .application_name = "psql", .server_id = 255},
      {.id = 43, .user = "bob", .database = "app", .state = "waiting", .addr = "::1", .port = 1,
       .connect_time = "t", .application_name = "", .server_id = std::nullopt},
  };
  auto a = run("SHOW CLIENTS;");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns, (Names{"type", "user", "database", "state", "addr", "port", "connect_time", "ptr", "link",
                                 "application_name", "id"}));
  EXPECT_EQ(a[0].type_oids[5], kInt8);
  EXPECT_EQ(a[0].type_oids[10], kInt8);
  ASSERT_EQ(a[0].rows.size(), 2u);
  EXPECT_EQ(a[0].rows[0], (Row{"C", "alice", "app", "active", "10.0.0.1", "5555", "2026-11-25 06:44:58 UTC", "2a",
                               "ff", "psql", "42"}));
  EXPECT_EQ(a[0].rows[1], (Row{"C", "bob", "app", "waiting", "::1", "1", "t", "2b", std::nullopt, "", "43"}));
}

// SHOW SERVERS: remote_pid is the backend pid; link names the client.
TEST_F(DaemonAdminConsole, ShowServers) {
  backend.server_rows = {{.id = 16, .user = "alice", .database = "app", .state = "idle", .addr = "db1", .port = 5432,
                          .connect_time = "t0", .backend_pid = 4711, .client_id = std::nullopt},
                         {.id = 17, .user = "alice", .database = "app", .state = "active", .addr = "db1",
                          .port = 5432, .connect_time = "t1", .backend_pid = 4712, .client_id = 42}};
  auto a = run("SHOW SERVERS");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns, (Names{"type", "user", "database", "state", "addr", "port", "connect_time", "ptr", "link",
                                 "remote_pid", "id"}));
  EXPECT_EQ(a[0].type_oids[9], kInt8);
  ASSERT_EQ(a[0].rows.size(), 2u);
  EXPECT_EQ(a[0].rows[0], (Row{"S", "alice", "app", "idle", "db1", "5432", "t0", "10", std::nullopt, "4711", "16"}));
  EXPECT_EQ(a[0].rows[1], (Row{"S", "alice", "app", "active", "db1", "5432", "t1", "11", "2a", "4712", "17"}));
}

// SHOW STATS: totals, times in microseconds as PgBouncer's, 64-bit values intact.
TEST_F(DaemonAdminConsole, ShowStats) {
  backend.stats_rows = {{.database = "app", .total_xact_count = 1, .total_query_count = 2, .total_received = 3,
                         .total_sent = 18446744073709551615ull, .total_xact_time_us = 5, .total_wait_time_us = 6}};
  auto a = run("SHOW STATS");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns, (Names{"database", "total_xact_count", "total_query_count", "total_received", "total_sent",
                                 "total_xact_time", "total_wait_time"}));
  EXPECT_EQ(a[0].type_oids, (std::vector<std::int32_t>{kText, kInt8, kInt8, kInt8, kInt8, kInt8, kInt8}));
  EXPECT_EQ(a[0].rows, (std::vector<Row>{{"app", "1", "2", "3", "18446744073709551615", "5", "6"}}));
}

// SHOW DATABASES: NULL host for a socket and NULL force_user when none; paused as 0/1.
TEST_F(DaemonAdminConsole, ShowDatabases) {
  auto a = run("SHOW DATABASES");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns, (Names{"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
                                 "pool_mode", "current_connections", "paused", "max_overflow", "disabled"}));
  EXPECT_EQ(a[0].type_oids, (std::vector<std::int32_t>{kText, kText, kInt8, kText, kText, kInt8, kInt8, kText, kInt8,
                                                       kInt8, kInt8, kInt8}));
  EXPECT_EQ(a[0].rows, (std::vector<Row>{
                           {"app", "db1", "5432", "appdb", std::nullopt, "10", "2", "transaction", "7", "0", "5", "0"},
                           {"Mixed Case", std::nullopt, "6000", "mc", "svc", "1", "0", "session", "0", "1", "-1", "1"},
                       }));
}

// SHOW CONFIG: key/value rows in the backend's order.
TEST_F(DaemonAdminConsole, ShowConfig) {
  backend.config_rows = {{"listen_port", "6432"}, {"log_format", "json"}};
  auto a = run("SHOW CONFIG");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns, (Names{"key", "value"}));
  EXPECT_EQ(a[0].type_oids, (std::vector<std::int32_t>{kText, kText}));
  EXPECT_EQ(a[0].rows, (std::vector<Row>{{"listen_port", "6432"}, {"log_format", "json"}}));
}

// SHOW VERSION: one row naming pooler and its version.
TEST_F(DaemonAdminConsole, ShowVersion) {
  auto a = run("SHOW VERSION");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].columns, (Names{"version"}));
  EXPECT_EQ(a[0].rows, (std::vector<Row>{{"pooler " POOLER_VERSION}}));
}

// SHOW HELP: a NOTICE listing the commands, then SHOW.
TEST_F(DaemonAdminConsole, ShowHelp) {
  auto a = run("SHOW HELP");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(a[0].notice.has_value());
  EXPECT_EQ(a[0].notice->severity, "NOTICE");
  EXPECT_EQ(a[0].notice->message, "Console usage");
  EXPECT_NE(a[0].notice->detail.find("PAUSE [<db>]"), std::string::npos);
  EXPECT_EQ(a[0].tag, "SHOW");
  EXPECT_TRUE(a[0].columns.empty());
}

// PAUSE/RESUME with and without a database reach the backend and answer with their tags.
TEST_F(DaemonAdminConsole, PauseAndResume) {
  auto a = run("PAUSE; PAUSE app; RESUME app; RESUME");
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].tag, "PAUSE");
  EXPECT_EQ(a[1].tag, "PAUSE");
  EXPECT_EQ(a[2].tag, "RESUME");
  EXPECT_EQ(a[3].tag, "RESUME");
  EXPECT_EQ(backend.calls, (std::vector<std::string>{"pause *", "pause app", "resume app", "resume *"}));
}

// Database names are case-sensitive and may be double-quoted.
TEST_F(DaemonAdminConsole, QuotedDatabaseName) {
  auto a = run(R"(kill "Mixed Case")");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].tag, "KILL");
  EXPECT_EQ(backend.calls, (std::vector<std::string>{"kill Mixed Case"}));
  EXPECT_EQ(error_of("KILL APP"), "42704");
  EXPECT_EQ(error_of(R"(KILL "unterminated)"), "42601");
}

// KILL, RELOAD and SHUTDOWN answer with their tags.
TEST_F(DaemonAdminConsole, KillReloadShutdown) {
  auto a = run("KILL app;RELOAD;SHUTDOWN");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].tag, "KILL");
  EXPECT_EQ(a[1].tag, "RELOAD");
  EXPECT_EQ(a[2].tag, "SHUTDOWN");
  EXPECT_EQ(backend.calls, (std::vector<std::string>{"kill app", "reload", "shutdown"}));
}

// Unknown databases are 42704 and never reach the backend.
TEST_F(DaemonAdminConsole, UnknownDatabase) {
  EXPECT_EQ(error_of("PAUSE nope"), "42704");
  EXPECT_EQ(error_of("RESUME nope"), "42704");
  EXPECT_EQ(error_of("KILL nope"), "42704");
  EXPECT_TRUE(backend.calls.empty());
  auto a = run("KILL nope");
  EXPECT_EQ(a[0].error->message, "no such database: nope");
  EXPECT_EQ(a[0].error->severity, "ERROR");
}

// A backend refusal becomes a 55000 error carrying its message.
TEST_F(DaemonAdminConsole, BackendFailure) {
  backend.fail = "config has 2 errors";
  auto a = run("RELOAD");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(a[0].error.has_value());
  EXPECT_EQ(a[0].error->sqlstate, "55000");
  EXPECT_EQ(a[0].error->message, "config has 2 errors");
}

// Wrong argument counts are syntax errors with a usage hint.
TEST_F(DaemonAdminConsole, SyntaxErrors) {
  EXPECT_EQ(error_of("SHOW"), "42601");
  EXPECT_EQ(error_of("SHOW POOLS extra"), "42601");
  EXPECT_EQ(error_of("KILL"), "42601");
  EXPECT_EQ(error_of("PAUSE a b"), "42601");
  EXPECT_EQ(error_of("RELOAD now"), "42601");
  EXPECT_EQ(error_of("SHUTDOWN WAIT_FOR_CLIENTS"), "42601");
  EXPECT_EQ(error_of("SELECT 1"), "42601");
  EXPECT_EQ(error_of("SHOW 'pools'"), "42601");
  auto a = run("KILL");
  EXPECT_EQ(a[0].error->hint, "usage: KILL <db>");
  EXPECT_TRUE(backend.calls.empty());
}

// Unknown SHOW items are 42704; PgBouncer features we lack are 0A000.
TEST_F(DaemonAdminConsole, UnknownAndUnsupported) {
  EXPECT_EQ(error_of("SHOW nonsense"), "42704");
  EXPECT_EQ(error_of("SHOW FDS"), "0A000");
  EXPECT_EQ(error_of("show mem"), "0A000");
  EXPECT_EQ(error_of("SUSPEND"), "0A000");
  EXPECT_EQ(error_of("SET default_pool_size = 5"), "0A000");
  EXPECT_EQ(error_of("WAIT_CLOSE"), "0A000");
}

// RECONNECT with and without a database, DISABLE and ENABLE of one, each with its tag; wrong arities and
// unknown databases never reach the backend.
TEST_F(DaemonAdminConsole, ReconnectDisableEnable) {
  auto a = run("RECONNECT; reconnect app; DISABLE app; ENABLE \"Mixed Case\"");
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].tag, "RECONNECT");
  EXPECT_EQ(a[1].tag, "RECONNECT");
  EXPECT_EQ(a[2].tag, "DISABLE");
  EXPECT_EQ(a[3].tag, "ENABLE");
  EXPECT_EQ(backend.calls,
            (std::vector<std::string>{"reconnect *", "reconnect app", "disable app", "enable Mixed Case"}));
  backend.calls.clear();
  EXPECT_EQ(error_of("DISABLE"), "42601");
  EXPECT_EQ(run("ENABLE")[0].error->hint, "usage: ENABLE <db>");
  EXPECT_EQ(error_of("RECONNECT a b"), "42601");
  EXPECT_EQ(error_of("DISABLE nope"), "42704");
  EXPECT_EQ(error_of("RECONNECT nope"), "42704");
  EXPECT_TRUE(backend.calls.empty());
}

// Keywords in any case; whitespace, newlines, comments and trailing ';' are ignored.
TEST_F(DaemonAdminConsole, CaseAndWhitespace) {
  for (const char* sql : {"show version", "Show Version", "  SHOW\tVERSION ;  ", "SHOW\nversion;;",
                          "-- a comment\nshow version -- trailing\n"}) {
    auto a = run(sql);
    ASSERT_EQ(a.size(), 1u) << sql;
    EXPECT_EQ(a[0].columns, (Names{"version"})) << sql;
    EXPECT_FALSE(a[0].error.has_value()) << sql;
  }
}

// Several commands in one Query are answered in order.
TEST_F(DaemonAdminConsole, MultipleCommands) {
  backend.config_rows = {{"k", "v"}};
  auto a = run("SHOW VERSION; show config; PAUSE");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].columns, (Names{"version"}));
  EXPECT_EQ(a[1].columns, (Names{"key", "value"}));
  EXPECT_EQ(a[2].tag, "PAUSE");
}

// An error ends the batch: later commands are not run, earlier results stay.
TEST_F(DaemonAdminConsole, ErrorStopsBatch) {
  auto a = run("PAUSE; BOGUS; RESUME");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].tag, "PAUSE");
  ASSERT_TRUE(a[1].error.has_value());
  EXPECT_EQ(a[1].error->sqlstate, "42601");
  EXPECT_EQ(backend.calls, (std::vector<std::string>{"pause *"}));
}

// An empty query (or only ';' and spaces) gets EmptyQueryResponse.
TEST_F(DaemonAdminConsole, EmptyQuery) {
  for (const char* sql : {"", "   ", ";", " ; ;\n", "-- only a comment"}) {
    auto a = run(sql);
    ASSERT_EQ(a.size(), 1u) << sql;
    EXPECT_TRUE(a[0].empty_query) << sql;
  }
}

// A ';' inside a quoted name does not split the statement.
TEST_F(DaemonAdminConsole, SemicolonInQuotes) {
  backend.database_rows.push_back({.name = "a;b"});
  auto a = run(R"(PAUSE "a;b"; RESUME "a;b")");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(backend.calls, (std::vector<std::string>{"pause a;b", "resume a;b"}));
}

}  // namespace
}  // namespace pooler::daemon
