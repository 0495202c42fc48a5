// Metrics: series are created on first use, bumped through references, removed on demand, and serialised in
// the Prometheus text format that promtool accepts.
#include "daemon/metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace pooler::daemon {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

bool mentions(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Every family name the README table promises, with its type.
const std::map<std::string, std::string> kFamilies = {
    {"pooler_pool_size", "gauge"},
    {"pooler_pool_max_overflow", "gauge"},
    {"pooler_pool_server_connections", "gauge"},
    {"pooler_pool_overflow_in_use", "gauge"},
    {"pooler_pool_clients", "gauge"},
    {"pooler_pool_checkout_wait_seconds", "histogram"},
    {"pooler_pool_timeouts_total", "counter"},
    {"pooler_pool_transactions_total", "counter"},
    {"pooler_pool_queries_total", "counter"},
    {"pooler_pool_transaction_duration_seconds", "histogram"},
    {"pooler_pool_client_to_server_bytes_total", "counter"},
    {"pooler_pool_server_to_client_bytes_total", "counter"},
    {"pooler_pool_server_connections_opened_total", "counter"},
    {"pooler_pool_server_connections_closed_total", "counter"},
    {"pooler_pool_server_connections_failed_total", "counter"},
    {"pooler_pool_pre_ping_failures_total", "counter"},
    {"pooler_pool_invalidations_total", "counter"},
    {"pooler_pool_prepared_statements_prepared_total", "counter"},
    {"pooler_pool_prepared_statements_reused_total", "counter"},
    {"pooler_pool_prepared_statements_evicted_total", "counter"},
    {"pooler_backend_up", "gauge"},
    {"pooler_backend_connect_duration_seconds", "histogram"},
    {"pooler_backend_consecutive_failures", "gauge"},
    {"pooler_client_connections_accepted_total", "counter"},
    {"pooler_client_connections", "gauge"},
    {"pooler_client_connections_refused_total", "counter"},
    {"pooler_config_reloads_total", "counter"},
    {"pooler_auth_query_lookups_total", "counter"},
    {"pooler_config_last_reload_timestamp_seconds", "gauge"},
    {"pooler_build_info", "gauge"},
    {"pooler_process_start_time_seconds", "gauge"},
};

// A registry with one pool and one host in use, as after some traffic.
std::string busy_scrape(Metrics& m) {
  auto& p = m.pool("app", "alice");
  p.pool_size.Set(5);
  p.max_overflow.Set(-1);
  p.servers_idle.Set(2);
  p.servers_active.Set(3);
  p.clients_waiting.Set(4);
  p.transactions.Increment(3);
  p.queries.Increment(7);
  p.client_to_server_bytes.Increment(1234);
  p.server_connections_closed(CloseReason::kPingFailed).Increment();
  p.checkout_wait_seconds.Observe(0.0002);
  p.checkout_wait_seconds.Observe(40);
  auto& h = m.host("app", "db1:5432");
  h.up.Set(1);
  h.connect_duration_seconds.Observe(0.003);
  m.process().client_connections_accepted.Increment(9);
  m.process().client_connections.Set(2);
  m.process().config_reloads_failure.Increment();
  return m.serialize();
}

// Bumped series show up with their labels and values, exactly.
TEST(DaemonMetrics, SerializesBumpedSeriesExactly) {
  Metrics m("1.2.3");
  const std::string text = busy_scrape(m);
  for (const char* line : {
           R"(pooler_pool_size{database="app",user="alice"} 5)",
           R"(pooler_pool_max_overflow{database="app",user="alice"} -1)",
           R"(pooler_pool_server_connections{database="app",state="idle",user="alice"} 2)",
           R"(pooler_pool_server_connections{database="app",state="active",user="alice"} 3)",
           R"(pooler_pool_server_connections{database="app",state="opening",user="alice"} 0)",
           R"(pooler_pool_server_connections{database="app",state="testing",user="alice"} 0)",
           R"(pooler_pool_clients{database="app",state="waiting",user="alice"} 4)",
           R"(pooler_pool_clients{database="app",state="active",user="alice"} 0)",
           R"(pooler_pool_clients{database="app",state="idle",user="alice"} 0)",
           R"(pooler_pool_transactions_total{database="app",user="alice"} 3)",
           R"(pooler_pool_queries_total{database="app",user="alice"} 7)",
           R"(pooler_pool_client_to_server_bytes_total{database="app",user="alice"} 1234)",
           R"(pooler_pool_server_to_client_bytes_total{database="app",user="alice"} 0)",
           R"(pooler_pool_server_connections_closed_total{database="app",reason="ping_failed",user="alice"} 1)",
           R"(pooler_pool_server_connections_closed_total{database="app",reason="recycle",user="alice"} 0)",
           R"(pooler_pool_server_connections_closed_total{database="app",reason="reset_failed",user="alice"} 0)",
           R"(pooler_pool_checkout_wait_seconds_count{database="app",user="alice"} 2)",
           R"(pooler_pool_checkout_wait_seconds_bucket{database="app",user="alice",le="0.0001"} 0)",
           R"(pooler_pool_checkout_wait_seconds_bucket{database="app",user="alice",le="0.00025"} 1)",
           R"(pooler_pool_checkout_wait_seconds_bucket{database="app",user="alice",le="30"} 1)",
           R"(pooler_pool_checkout_wait_seconds_bucket{database="app",user="alice",le="+Inf"} 2)",
           R"(pooler_backend_up{database="app",host="db1:5432"} 1)",
           R"(pooler_backend_consecutive_failures{database="app",host="db1:5432"} 0)",
           R"(pooler_backend_connect_duration_seconds_bucket{database="app",host="db1:5432",le="0.0025"} 0)",
           R"(pooler_backend_connect_duration_seconds_bucket{database="app",host="db1:5432",le="0.005"} 1)",
           R"(pooler_client_connections_accepted_total 9)",
           R"(pooler_client_connections 2)",
           R"(pooler_client_connections_refused_total{reason="max_client_conn"} 0)",
           R"(pooler_config_reloads_total{result="success"} 0)",
           R"(pooler_config_reloads_total{result="failure"} 1)",
           R"(pooler_auth_query_lookups_total{result="not_found"} 0)",
           R"(pooler_build_info{version="1.2.3"} 1)",
       }) {
    EXPECT_TRUE(has_line(text, line)) << "missing: " << line << "\n" << text;
  }
}

// Each family carries HELP and TYPE; counters end in _total, nothing else does; no per-client labels.
TEST(DaemonMetrics, EveryFamilyHasHelpTypeAndConventionalName) {
  Metrics m;
  const std::string text = busy_scrape(m);
  std::set<std::string> seen;
  for (const auto& l : lines_of(text)) {
    if (l.starts_with("# TYPE ")) {
      std::istringstream in(l.substr(7));
      std::string name, type;
      in >> name >> type;
      seen.insert(name);
      ASSERT_TRUE(kFamilies.contains(name)) << "undocumented family " << name;
      EXPECT_EQ(kFamilies.at(name), type) << name;
      EXPECT_TRUE(mentions(text, "# HELP " + name + " ")) << name;
      EXPECT_EQ(type == "counter", name.ends_with("_total")) << name;
    } else if (!l.starts_with("#")) {
      EXPECT_FALSE(mentions(l, "client=")) << l;
    }
  }
  for (const auto& [name, type] : kFamilies) EXPECT_TRUE(seen.contains(name)) << "not exported: " << name;
}

// The start time and first-load timestamp are set at construction to "now" (Unix seconds).
TEST(DaemonMetrics, StartTimeIsNow) {
  const double before = static_cast<double>(std::time(nullptr)) - 1;
  Metrics m;
  EXPECT_GE(m.process().config_last_reload_timestamp_seconds.Value(), before);
  EXPECT_LE(m.process().config_last_reload_timestamp_seconds.Value(), before + 5);
  EXPECT_TRUE(mentions(m.serialize(), "pooler_process_start_time_seconds 1"));
}

// pool() hands out the same series for the same pool and separate ones for another user.
TEST(DaemonMetrics, PoolLookupIsStable) {
  Metrics m;
  PoolMetrics& a = m.pool("app", "alice");
  EXPECT_EQ(&a, &m.pool(std::string("app"), std::string("alice")));
  PoolMetrics& b = m.pool("app", "bob");
  EXPECT_NE(&a, &b);
  EXPECT_NE(&a.transactions, &b.transactions);
  EXPECT_EQ(&m.host("app", "h:1"), &m.host("app", "h:1"));
}

// remove_pool drops exactly that pool's series; a later pool() starts again from zero.
TEST(DaemonMetrics, RemovePoolDropsItsSeries) {
  Metrics m;
  m.pool("app", "alice").transactions.Increment(5);
  m.pool("app", "bob").transactions.Increment(1);
  m.remove_pool("app", "alice");
  std::string text = m.serialize();
  EXPECT_FALSE(mentions(text, R"(user="alice")")) << text;
  EXPECT_TRUE(has_line(text, R"(pooler_pool_transactions_total{database="app",user="bob"} 1)"));
  m.remove_pool("app", "alice");  // twice is harmless
  EXPECT_EQ(m.pool("app", "alice").transactions.Value(), 0);
}

// remove_database drops pools and hosts of that database only.
TEST(DaemonMetrics, RemoveDatabaseDropsPoolsAndHosts) {
  Metrics m;
  m.pool("app", "alice");
  m.pool("other", "alice");
  m.host("app", "db1:5432");
  m.host("other", "db2:5432");
  m.remove_database("app");
  const std::string text = m.serialize();
  EXPECT_FALSE(mentions(text, R"(database="app")")) << text;
  EXPECT_TRUE(mentions(text, R"(pooler_pool_size{database="other",user="alice"} 0)"));
  EXPECT_TRUE(mentions(text, R"(pooler_backend_up{database="other",host="db2:5432"} 0)"));
  m.remove_host("other", "db2:5432");
  EXPECT_FALSE(mentions(m.serialize(), "db2:5432"));
}

// The before-scrape hook runs on every serialize, so gauges are fresh.
TEST(DaemonMetrics, BeforeScrapeHookRefreshesGauges) {
  Metrics m;
  int calls = 0;
  m.set_before_scrape([&] { m.pool("app", "alice").clients_active.Set(++calls); });
  EXPECT_TRUE(has_line(m.serialize(), R"(pooler_pool_clients{database="app",state="active",user="alice"} 1)"));
  EXPECT_TRUE(has_line(m.serialize(), R"(pooler_pool_clients{database="app",state="active",user="alice"} 2)"));
}

// Label values with quotes, backslashes and newlines are escaped, so one odd database name cannot break a scrape.
TEST(DaemonMetrics, LabelValuesAreEscaped) {
  Metrics m;
  m.pool("we\"ird\\db\n", "u");
  EXPECT_TRUE(has_line(m.serialize(), R"(pooler_pool_size{database="we\"ird\\db\n",user="u"} 0)"));
}

// promtool (Debian package prometheus) accepts a real scrape with no lint complaints.
TEST(DaemonMetrics, PromtoolCheckMetricsPasses) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  Metrics m;
  const std::string text = busy_scrape(m);
  char in_path[] = "/tmp/pooler_metrics_XXXXXX";
  const int fd = mkstemp(in_path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  const std::string out_path = std::string(in_path) + ".out";
  const std::string cmd = "promtool check metrics < " + std::string(in_path) + " > " + out_path + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream out_file(out_path);
  const std::string output((std::istreambuf_iterator<char>(out_file)), std::istreambuf_iterator<char>());
  std::remove(in_path);
  std::remove(out_path.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(output, "") << text;
}

}  // namespace
}  // namespace pooler::daemon
