// Observability end to end: a libpq workload through the real daemon, then /metrics scraped over HTTP and the
// admin console (virtual database `pooler`) asked, and both checked against what the workload did and what
// pg_stat_activity shows; PAUSE/RESUME and KILL from the console; promtool on a real scrape.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
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

constexpr const char* kAdminUser = "admin";
constexpr const char* kAdminPassword = "adminpw";
constexpr const char* kPromtool = "/usr/bin/promtool";

// The body of a 200 answer to one GET; throws on anything else (see http_get).
std::string http_get_body(int port, const std::string& path, std::chrono::milliseconds timeout = 5s) {
  std::optional<HttpResponse> r = http_get(port, path, timeout);
  if (!r) throw std::runtime_error(fmt::format("nothing accepts on metrics port {}", port));
  if (r->status != 200) throw std::runtime_error(fmt::format("GET {} answered {}", path, r->status));
  return r->body;
}

// One parsed scrape: each sample line as (name, labels, value).
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> parse_exposition(const std::string& text) {
  std::vector<Sample> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    std::size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) continue;
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t eq = line.find('=', i);
        std::string key = line.substr(i, eq - i);
        std::size_t j = eq + 2;  // past ="
        std::string value;
        while (j < line.size() && line[j] != '"') {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value += line[j++];
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // past }
    }
    while (i < line.size() && line[i] == ' ') ++i;
    std::size_t end = line.find(' ', i);  // an optional timestamp follows
    s.value = std::stod(line.substr(i, end == std::string::npos ? std::string::npos : end - i));
    out.push_back(std::move(s));
  }
  return out;
}

// The sum of the samples named `name` whose labels include all of `want` (0 when there are none).
double metric(const std::vector<Sample>& samples, const std::string& name,
              const std::map<std::string, std::string>& want) {
  double sum = 0;
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) match = false;
    }
    if (match) sum += s.value;
  }
  return sum;
}

// A result's rows as maps from column name to text value.
std::vector<std::map<std::string, std::string>> rows(const PGresult* r) {
  std::vector<std::map<std::string, std::string>> out;
  for (int i = 0; i < PQntuples(r); ++i) {
    std::map<std::string, std::string> row;
    for (int c = 0; c < PQnfields(r); ++c) row[PQfname(r, c)] = PQgetvalue(r, i, c);
    out.push_back(std::move(row));
  }
  return out;
}

const std::map<std::string, std::string> kAppPool = {{"database", "app"}, {"user", "app"}};

class IntegrationOps : public ::testing::Test {
 protected:
  void TearDown() override {
    dump_logs_on_failure(stack_);
    console_.reset();
    observer_.reset();
    stack_.reset();
  }

  // A cluster with roles app and admin (the daemon's start-up probe logs in as the first [users] entry,
  // admin), then a daemon with metrics on a free port and admin in admin_users.
  void start(const std::string& pool_mode, int pool_size, int max_overflow, double pool_timeout = 30.0) {
    stack_.cluster = std::make_unique<PgCluster>(app_cluster_options());
    stack_.cluster->psql(fmt::format("CREATE ROLE {} LOGIN PASSWORD '{}'", kAdminUser, kAdminPassword));
    PoolerConfig config = app_pooler_config(*stack_.cluster);
    config.databases[0].pool_mode = pool_mode;
    config.databases[0].pool_size = pool_size;
    config.databases[0].max_overflow = max_overflow;
    config.databases[0].pool_timeout = pool_timeout;
    config.log_level = "info";
    config.users.push_back(PoolerUser{kAdminUser, kAdminPassword});
    metrics_port_ = free_port();
    config.extra_pooler_lines.push_back(fmt::format("metrics_listen = \"127.0.0.1:{}\"", metrics_port_));
    config.extra_pooler_lines.push_back(fmt::format("admin_users = [\"{}\"]", kAdminUser));
    stack_.daemon = std::make_unique<DaemonProcess>(config);
    observer_ = connect(stack_.cluster->superuser_conninfo("app"));
    // The metrics listener may come up a moment after the client port.
    ASSERT_TRUE(eventually([&] {
      try {
        http_get_body(metrics_port_, "/metrics");
        return true;
      } catch (const std::exception&) {
        return false;
      }
    })) << "no /metrics on port " << metrics_port_;
  }

  std::string scrape_text() { return http_get_body(metrics_port_, "/metrics"); }
  std::vector<Sample> scrape() { return parse_exposition(scrape_text()); }

  PgConnPtr client() { return connect(stack_.conninfo()); }
  PGconn* console() {
    if (!console_) console_ = connect(pooler_conninfo(*stack_.daemon, kAdminUser, kAdminPassword, "pooler"));
    return console_.get();
  }
  PgResultPtr admin(const std::string& command) { return exec_ok(console(), command); }

  // The SHOW POOLS row of app/app.
  std::map<std::string, std::string> app_pool_row() {
    for (auto& row : rows(admin("SHOW POOLS").get())) {
      if (row["database"] == "app" && row["user"] == "app") return row;
    }
    ADD_FAILURE() << "SHOW POOLS has no app/app row";
    return {};
  }

  // Server connections the pooler holds for role app.
  int app_backends() {
    return std::stoi(query_value(observer_.get(), "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"));
  }

  Stack stack_;
  int metrics_port_ = 0;
  PgConnPtr observer_;  // superuser, straight to the server
  PgConnPtr console_;   // admin console through the pooler
};

// 4 clients × 50 transactions in transaction mode (half single statements, half BEGIN/SELECT/COMMIT as three
// Query messages): transactions_total grows by exactly 200, queries_total by the 400 Query messages, bytes
// grow, the server connection gauges equal pg_stat_activity, and promtool accepts the scrape.
TEST_F(IntegrationOps, WorkloadMatchesMetrics) {
  ASSERT_NO_FATAL_FAILURE(start("transaction", 3, 0));
  constexpr int kClients = 4, kPerClient = 50;
  std::vector<PgConnPtr> conns;
  for (int i = 0; i < kClients; ++i) conns.push_back(client());

  auto before = scrape();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      try {
        for (int t = 0; t < kPerClient; ++t) {
          if (t % 2 == 0) {
            if (query_value(conns[i].get(), "SELECT 1") != "1") throw std::runtime_error("bad SELECT 1");
          } else {
            exec_ok(conns[i].get(), "BEGIN");
            exec_ok(conns[i].get(), "SELECT 1");
            exec_ok(conns[i].get(), "COMMIT");
          }
        }
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ASSERT_EQ(e, "");
  const int transactions = kClients * kPerClient;
  const int queries = kClients * (kPerClient / 2 + 3 * (kPerClient / 2));

  // Counters are bumped on the loop thread as ReadyForQuery is relayed, so they are complete by now.
  auto after = scrape();
  EXPECT_EQ(metric(after, "pooler_pool_transactions_total", kAppPool) -
                metric(before, "pooler_pool_transactions_total", kAppPool),
            transactions);
  EXPECT_EQ(metric(after, "pooler_pool_queries_total", kAppPool) - metric(before, "pooler_pool_queries_total", kAppPool),
            queries);
  EXPECT_GT(metric(after, "pooler_pool_client_to_server_bytes_total", kAppPool),
            metric(before, "pooler_pool_client_to_server_bytes_total", kAppPool));
  EXPECT_GT(metric(after, "pooler_pool_server_to_client_bytes_total", kAppPool),
            metric(before, "pooler_pool_server_to_client_bytes_total", kAppPool));
  EXPECT_EQ(metric(after, "pooler_pool_size", kAppPool), 3);

  // Once idle: every server connection of app/app is idle or active, and pg_stat_activity sees exactly those.
  int gauges = -1, backends = -1;
  EXPECT_TRUE(eventually([&] {
    auto s = scrape();
    auto with_state = [&](const char* state) {
      auto labels = kAppPool;
      labels["state"] = state;
      return metric(s, "pooler_pool_server_connections", labels);
    };
    if (with_state("opening") != 0 || with_state("testing") != 0) return false;
    gauges = static_cast<int>(with_state("idle") + with_state("active"));
    backends = app_backends();
    return gauges == backends && gauges > 0;
  })) << "idle+active gauges " << gauges << ", pg_stat_activity " << backends;
  EXPECT_LE(backends, 3);

  // promtool on the real scrape: exit 0, nothing printed.
  std::string text = scrape_text();
  CommandResult check = run_command({kPromtool, "check", "metrics"}, CommandOptions{30s, {}, text});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(check.out + check.err, "");
}

// pool_size 1, max_overflow 0, pool_timeout 1 s: with one client holding a transaction open, two others time
// out (53300) and pooler_pool_timeouts_total grows by exactly 2.
TEST_F(IntegrationOps, ForcedTimeoutsCounted) {
  ASSERT_NO_FATAL_FAILURE(start("transaction", 1, 0, 1.0));
  PgConnPtr holder = client();
  PgConnPtr w1 = client();
  PgConnPtr w2 = client();
  auto before = scrape();
  exec_ok(holder.get(), "BEGIN");
  for (PGconn* w : {w1.get(), w2.get()}) {
    PgResultPtr r = exec_with_deadline(w, "SELECT 2", 10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(sqlstate(r.get()), "53300");
  }
  auto after = scrape();
  EXPECT_EQ(metric(after, "pooler_pool_timeouts_total", kAppPool) - metric(before, "pooler_pool_timeouts_total", kAppPool),
            2);
  exec_ok(holder.get(), "COMMIT");
  EXPECT_EQ(query_value(w1.get(), "SELECT 3"), "3");
}

// In session mode with two linked clients, SHOW POOLS for app/app agrees with the metrics gauges, and
// SHOW STATS total_xact_count with transactions_total.
TEST_F(IntegrationOps, ShowPoolsAndStatsAgreeWithMetrics) {
  ASSERT_NO_FATAL_FAILURE(start("session", 3, 0));
  PgConnPtr a = client();
  PgConnPtr b = client();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(query_value(a.get(), "SELECT 1"), "1");
    EXPECT_EQ(query_value(b.get(), "SELECT 1"), "1");
  }
  auto row = app_pool_row();
  auto s = scrape();
  auto gauge = [&](const char* name, const char* state) {
    auto labels = kAppPool;
    labels["state"] = state;
    return static_cast<int>(metric(s, name, labels));
  };
  EXPECT_EQ(row["cl_active"], "2");
  EXPECT_EQ(row["cl_waiting"], "0");
  EXPECT_EQ(row["sv_active"], "2");
  EXPECT_EQ(row["pool_mode"], "session");
  EXPECT_EQ(row["pool_size"], "3");
  EXPECT_EQ(row["paused"], "0");
  EXPECT_EQ(std::stoi(row["cl_active"]), gauge("pooler_pool_clients", "active"));
  EXPECT_EQ(std::stoi(row["cl_waiting"]), gauge("pooler_pool_clients", "waiting"));
  EXPECT_EQ(std::stoi(row["cl_idle"]), gauge("pooler_pool_clients", "idle"));
  EXPECT_EQ(std::stoi(row["sv_active"]), gauge("pooler_pool_server_connections", "active"));
  EXPECT_EQ(std::stoi(row["sv_idle"]), gauge("pooler_pool_server_connections", "idle"));
  EXPECT_EQ(std::stoi(row["sv_login"]), gauge("pooler_pool_server_connections", "opening"));
  EXPECT_EQ(std::stoi(row["sv_tested"]), gauge("pooler_pool_server_connections", "testing"));
  EXPECT_EQ(std::stoi(row["sv_active"]) + std::stoi(row["sv_idle"]), app_backends());

  std::optional<std::string> xacts;
  for (auto& r : rows(admin("SHOW STATS").get())) {
    if (r["database"] == "app") xacts = r["total_xact_count"];
  }
  ASSERT_TRUE(xacts) << "SHOW STATS has no app row";
  s = scrape();
  EXPECT_EQ(std::stoll(*xacts), static_cast<long long>(metric(s, "pooler_pool_transactions_total", {{"database", "app"}})));
  EXPECT_GE(std::stoll(*xacts), 10);
}

// SHOW VERSION and SHOW CONFIG answer with the expected content; unknown commands get 42601/42704 and the
// console session carries on.
TEST_F(IntegrationOps, ConsoleCommandsAndErrors) {
  ASSERT_NO_FATAL_FAILURE(start("transaction", 3, 0));
  auto version = rows(admin("SHOW VERSION").get());
  ASSERT_EQ(version.size(), 1u);
  EXPECT_TRUE(version[0]["version"].starts_with("pooler ")) << version[0]["version"];

  std::map<std::string, std::string> config;
  for (auto& r : rows(admin("SHOW CONFIG").get())) config[r["key"]] = r["value"];
  EXPECT_EQ(config["admin_users"], "admin");
  EXPECT_EQ(config["metrics_listen"], fmt::format("127.0.0.1:{}", metrics_port_));
  EXPECT_EQ(config["listen_port"], std::to_string(stack_.daemon->port()));
  EXPECT_TRUE(config.contains("max_client_conn"));
  EXPECT_TRUE(config.contains("log_level"));

  for (const char* bad : {"FROBNICATE", "SHOW NONSENSE", "PAUSE nosuchdb"}) {
    SCOPED_TRACE(bad);
    PgResultPtr r(PQexec(console(), bad));
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
    std::string code = sqlstate(r.get());
    EXPECT_TRUE(code == "42601" || code == "42704") << code << " " << PQresultErrorMessage(r.get());
    EXPECT_EQ(PQstatus(console()), CONNECTION_OK);
    EXPECT_EQ(rows(admin("SHOW VERSION").get()).size(), 1u);
  }
}

// A user not in admin_users is refused the console with FATAL 42501.
TEST_F(IntegrationOps, NonAdminRefused) {
  ASSERT_NO_FATAL_FAILURE(start("transaction", 3, 0));
  PgConnPtr c = try_connect(pooler_conninfo(*stack_.daemon, kAppUser, kAppPassword, "pooler"));
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  std::string msg = PQerrorMessage(c.get());
  EXPECT_NE(msg.find("FATAL"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not in admin_users"), std::string::npos) << msg;
  // The daemon still serves app.
  EXPECT_TRUE(daemon_serves(stack_));
}

// PAUSE app makes a client's next query wait (no result within 1.5 s); RESUME app releases it promptly.
TEST_F(IntegrationOps, PauseHoldsQueriesUntilResume) {
  ASSERT_NO_FATAL_FAILURE(start("transaction", 3, 0));
  PgConnPtr c = client();
  EXPECT_EQ(query_value(c.get(), "SELECT 1"), "1");
  admin("PAUSE app");
  EXPECT_EQ(app_pool_row()["paused"], "1");

  ASSERT_EQ(PQsendQuery(c.get(), "SELECT 42"), 1) << PQerrorMessage(c.get());
  const auto held_until = Clock::now() + 1500ms;
  while (Clock::now() < held_until) {
    ASSERT_EQ(PQconsumeInput(c.get()), 1) << PQerrorMessage(c.get());
    ASSERT_EQ(PQisBusy(c.get()), 1) << "the query was answered while the database was paused";
    std::this_thread::sleep_for(20ms);
  }

  admin("RESUME app");
  const auto resumed = Clock::now();
  EXPECT_TRUE(eventually(
      [&] {
        PQconsumeInput(c.get());
        return PQisBusy(c.get()) == 0;
      },
      5s))
      << "no result after RESUME";
  EXPECT_LT(Clock::now() - resumed, 2s);
  PgResultPtr r(PQgetResult(c.get()));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), "42");
  while (PGresult* rest = PQgetResult(c.get())) PQclear(rest);
  EXPECT_EQ(query_value(c.get(), "SELECT 2"), "2");
}

// KILL app with a linked session-mode client: that client's next query fails on a closed connection, the
// pooler's backends for app leave pg_stat_activity, and a new client is served afterwards.
TEST_F(IntegrationOps, KillDropsServerConnections) {
  ASSERT_NO_FATAL_FAILURE(start("session", 3, 0));
  PgConnPtr c = client();
  EXPECT_EQ(query_value(c.get(), "SELECT 1"), "1");
  EXPECT_EQ(app_backends(), 1);

  admin("KILL app");
  PgResultPtr r = exec_with_deadline(c.get(), "SELECT 2", 10s);
  EXPECT_TRUE(!r || PQresultStatus(r.get()) == PGRES_FATAL_ERROR)
      << "query after KILL: " << (r ? PQresStatus(PQresultStatus(r.get())) : "");
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  int n = -1;
  EXPECT_TRUE(eventually([&] { return (n = app_backends()) == 0; })) << "app backends after KILL: " << n;

  PgConnPtr fresh = client();
  EXPECT_EQ(query_value(fresh.get(), "SELECT 5"), "5");
}

// RECONNECT app in session mode: the idle server connection is replaced at once, the one a client holds
// only when the client leaves; that client is not disturbed (same backend until it goes).
TEST_F(IntegrationOps, ReconnectReplacesServerConnectionsWithoutDisturbingClients) {
  ASSERT_NO_FATAL_FAILURE(start("session", 3, 0));
  PgConnPtr holder = client();
  const std::string held_pid = query_value(holder.get(), "SELECT pg_backend_pid()");
  std::string idle_pid;
  {
    PgConnPtr other = client();
    idle_pid = query_value(other.get(), "SELECT pg_backend_pid()");
  }
  auto backend_alive = [&](const std::string& pid) {
    return query_value(observer_.get(), "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) == "1";
  };
  ASSERT_TRUE(eventually([&] { return app_pool_row()["sv_idle"] == "1"; })) << "the second connection is idle";

  admin("RECONNECT app");
  EXPECT_TRUE(eventually([&] { return !backend_alive(idle_pid); })) << "idle backend " << idle_pid << " kept";
  EXPECT_EQ(query_value(holder.get(), "SELECT pg_backend_pid()"), held_pid) << "the holder was disturbed";
  EXPECT_TRUE(backend_alive(held_pid));
  holder.reset();
  EXPECT_TRUE(eventually([&] { return !backend_alive(held_pid); })) << "held backend " << held_pid << " kept";

  PgConnPtr fresh = client();
  const std::string fresh_pid = query_value(fresh.get(), "SELECT pg_backend_pid()");
  EXPECT_NE(fresh_pid, held_pid);
  EXPECT_NE(fresh_pid, idle_pid);
}

// DISABLE app refuses new logins with PostgreSQL's 55000 while a connected client goes on; SHOW DATABASES
// says disabled; ENABLE app lets logins in again.
TEST_F(IntegrationOps, DisableRefusesNewLoginsEnableAllowsThem) {
  ASSERT_NO_FATAL_FAILURE(start("transaction", 3, 0));
  PgConnPtr connected = client();
  EXPECT_EQ(query_value(connected.get(), "SELECT 1"), "1");
  auto app_disabled = [&] {
    for (auto& row : rows(admin("SHOW DATABASES").get())) {
      if (row["name"] == "app") return row["disabled"];
    }
    return std::string("no app row");
  };
  EXPECT_EQ(app_disabled(), "0");

  admin("DISABLE app");
  EXPECT_EQ(app_disabled(), "1");
  PgConnPtr refused = try_connect(stack_.conninfo());
  EXPECT_EQ(PQstatus(refused.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(refused.get())).find("database \"app\" is not currently accepting "
                                                             "connections"),
            std::string::npos)
      << PQerrorMessage(refused.get());
  EXPECT_EQ(query_value(connected.get(), "SELECT 2"), "2") << "a connected client goes on";

  admin("ENABLE app");
  EXPECT_EQ(app_disabled(), "0");
  PgConnPtr again = client();
  EXPECT_EQ(query_value(again.get(), "SELECT 3"), "3");
}

}  // namespace
}  // namespace pooler::test
