// The metric families of metrics.h, their HELP text and buckets, and the per-pool/per-host series.
#include "daemon/metrics.h"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <string>
#include <vector>

namespace pooler::daemon {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// 100µs to 30s: a checkout served from idle connections takes microseconds, one that waits for a new
// connection milliseconds, one that waits for a busy pool up to pool_timeout (30s by default).
const Histogram::BucketBoundaries kCheckoutWaitBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                          1.0,    2.5,     5.0,    10.0,  30.0};
// Transactions: sub-millisecond point queries to minute-long reports.
const Histogram::BucketBoundaries kTransactionBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                         0.05,   0.1,   0.25,   0.5,   1.0,  2.5,
                                                         5.0,    10.0,  30.0,   60.0,  300.0};
// Connects: local socket plus trust auth is ~1ms, SCRAM over a WAN tens of ms, connect_timeout caps it.
const Histogram::BucketBoundaries kConnectBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,   0.5,   1.0,    2.5,   5.0,  10.0,  30.0};

constexpr std::array<CloseReason, kCloseReasonCount> kCloseReasons = {
    CloseReason::kRecycle,    CloseReason::kIdle,        CloseReason::kOverflow,
    CloseReason::kError,      CloseReason::kInvalidated, CloseReason::kShrink,
    CloseReason::kPingFailed, CloseReason::kResetFailed, CloseReason::kEvicted};

template <class T>
Family<T>& build(prometheus::Registry& r, const std::string& name, const std::string& help);

template <>
Family<Counter>& build<Counter>(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
template <>
Family<Gauge>& build<Gauge>(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
template <>
Family<Histogram>& build<Histogram>(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string_view close_reason_name(CloseReason r) {
  switch (r) {
    case CloseReason::kRecycle: return "recycle";
    case CloseReason::kIdle: return "idle";
    case CloseReason::kOverflow: return "overflow";
    case CloseReason::kError: return "error";
    case CloseReason::kInvalidated: return "invalidated";
    case CloseReason::kShrink: return "shrink";
    case CloseReason::kPingFailed: return "ping_failed";
    case CloseReason::kResetFailed: return "reset_failed";
    case CloseReason::kEvicted: return "evicted";
  }
  return "unknown";
}

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : pool_size(build<Gauge>(r, "pooler_pool_size", "Configured pool_size: server connections kept open.")),
        max_overflow(build<Gauge>(r, "pooler_pool_max_overflow",
                                  "Configured max_overflow: extra server connections allowed under load "
                                  "(-1 = unlimited).")),
        server_connections(build<Gauge>(r, "pooler_pool_server_connections",
                                        "Server connections by state (idle, active, opening, testing).")),
        overflow_in_use(build<Gauge>(r, "pooler_pool_overflow_in_use",
                                     "Open server connections beyond pool_size.")),
        clients(build<Gauge>(r, "pooler_pool_clients", "Logged-in clients by state (active, waiting, idle).")),
        checkout_wait(build<Histogram>(r, "pooler_pool_checkout_wait_seconds",
                                       "Time clients waited for a server connection.")),
        timeouts(build<Counter>(r, "pooler_pool_timeouts_total",
                                "Clients that waited pool_timeout for a server connection and got an error.")),
        transactions(build<Counter>(r, "pooler_pool_transactions_total", "Transactions completed.")),
        queries(build<Counter>(r, "pooler_pool_queries_total",
                               "Queries run (simple Query messages and extended-protocol Syncs).")),
        transaction_duration(build<Histogram>(r, "pooler_pool_transaction_duration_seconds",
                                              "Time from a transaction's first message to its end.")),
        client_to_server_bytes(build<Counter>(r, "pooler_pool_client_to_server_bytes_total",
                                              "Bytes relayed from clients to server connections.")),
        server_to_client_bytes(build<Counter>(r, "pooler_pool_server_to_client_bytes_total",
                                              "Bytes relayed from server connections to clients.")),
        server_opened(build<Counter>(r, "pooler_pool_server_connections_opened_total",
                                     "Server connections opened successfully.")),
        server_closed(build<Counter>(r, "pooler_pool_server_connections_closed_total",
                                     "Server connections closed, by reason.")),
        server_failed(build<Counter>(r, "pooler_pool_server_connections_failed_total",
                                     "Attempts to open a server connection that failed.")),
        pre_ping_failures(build<Counter>(r, "pooler_pool_pre_ping_failures_total",
                                         "Pre-pings that found a dead server connection.")),
        invalidations(build<Counter>(r, "pooler_pool_invalidations_total",
                                     "Times every connection of the pool opened before then was invalidated.")),
        statements_prepared(build<Counter>(r, "pooler_pool_prepared_statements_prepared_total",
                                           "Named statements prepared on a server connection for a client.")),
        statements_reused(build<Counter>(r, "pooler_pool_prepared_statements_reused_total",
                                         "Client Parse messages answered from a server connection's statements.")),
        statements_evicted(build<Counter>(r, "pooler_pool_prepared_statements_evicted_total",
                                          "Statements closed to keep a server connection within "
                                          "max_prepared_statements.")),
        backend_up(build<Gauge>(r, "pooler_backend_up", "Whether the backend host is considered reachable (1) or down (0).")),
        backend_connect(build<Histogram>(r, "pooler_backend_connect_duration_seconds",
                                         "Time to open a server connection, connect through authentication.")),
        backend_failures(build<Gauge>(r, "pooler_backend_consecutive_failures",
                                      "Connection attempts to the backend host that failed in a row.")),
        accepted(build<Counter>(r, "pooler_client_connections_accepted_total", "Client connections accepted.")),
        client_connections(build<Gauge>(r, "pooler_client_connections", "Client connections currently open.")),
        refused(build<Counter>(r, "pooler_client_connections_refused_total", "Client connections refused, by reason.")),
        reloads(build<Counter>(r, "pooler_config_reloads_total", "Config reloads, by result.")),
        auth_query(build<Counter>(r, "pooler_auth_query_lookups_total",
                                  "auth_query lookups of users missing from [users], by result.")),
        last_reload(build<Gauge>(r, "pooler_config_last_reload_timestamp_seconds",
                                 "Unix time of the last successful config load.")),
        build_info(build<Gauge>(r, "pooler_build_info", "Always 1; the version label carries the pooler version.")),
        start_time(build<Gauge>(r, "pooler_process_start_time_seconds", "Unix time the process started.")) {}

  Family<Gauge>& pool_size;
  Family<Gauge>& max_overflow;
  Family<Gauge>& server_connections;
  Family<Gauge>& overflow_in_use;
  Family<Gauge>& clients;
  Family<Histogram>& checkout_wait;
  Family<Counter>& timeouts;
  Family<Counter>& transactions;
  Family<Counter>& queries;
  Family<Histogram>& transaction_duration;
  Family<Counter>& client_to_server_bytes;
  Family<Counter>& server_to_client_bytes;
  Family<Counter>& server_opened;
  Family<Counter>& server_closed;
  Family<Counter>& server_failed;
  Family<Counter>& pre_ping_failures;
  Family<Counter>& invalidations;
  Family<Counter>& statements_prepared;
  Family<Counter>& statements_reused;
  Family<Counter>& statements_evicted;
  Family<Gauge>& backend_up;
  Family<Histogram>& backend_connect;
  Family<Gauge>& backend_failures;
  Family<Counter>& accepted;
  Family<Gauge>& client_connections;
  Family<Counter>& refused;
  Family<Counter>& reloads;
  Family<Counter>& auth_query;
  Family<Gauge>& last_reload;
  Family<Gauge>& build_info;
  Family<Gauge>& start_time;
};

Metrics::Metrics(std::string_view version)
    : registry_(std::make_unique<prometheus::Registry>()),
      f_(std::make_unique<Families>(*registry_)),
      process_(std::make_unique<ProcessMetrics>(ProcessMetrics{
          .client_connections_accepted = f_->accepted.Add({}),
          .client_connections = f_->client_connections.Add({}),
          .client_connections_refused_max_client_conn = f_->refused.Add({{"reason", "max_client_conn"}}),
          .config_reloads_success = f_->reloads.Add({{"result", "success"}}),
          .config_reloads_failure = f_->reloads.Add({{"result", "failure"}}),
          .config_last_reload_timestamp_seconds = f_->last_reload.Add({}),
          .auth_query_found = f_->auth_query.Add({{"result", "found"}}),
          .auth_query_not_found = f_->auth_query.Add({{"result", "not_found"}}),
          .auth_query_failed = f_->auth_query.Add({{"result", "failed"}}),
      })) {
  const double now = unix_now();
  f_->build_info.Add({{"version", std::string(version)}}).Set(1);
  f_->start_time.Add({}).Set(now);
  process_->config_last_reload_timestamp_seconds.Set(now);
}

Metrics::~Metrics() = default;

PoolMetrics& Metrics::pool(std::string_view database, std::string_view user) {
  const std::pair<std::string_view, std::string_view> key{database, user};
  if (auto it = pools_.find(key); it != pools_.end()) return *it->second;

  const prometheus::Labels l{{"database", std::string(database)}, {"user", std::string(user)}};
  auto with = [&l](const char* name, std::string_view value) {
    prometheus::Labels out = l;
    out.emplace(name, std::string(value));
    return out;
  };
  std::array<Counter*, kCloseReasonCount> closed{};
  for (CloseReason r : kCloseReasons) {
    closed[static_cast<std::size_t>(r)] = &f_->server_closed.Add(with("reason", close_reason_name(r)));
  }
  auto m = std::make_unique<PoolMetrics>(PoolMetrics{
      .pool_size = f_->pool_size.Add(l),
      .max_overflow = f_->max_overflow.Add(l),
      .servers_idle = f_->server_connections.Add(with("state", "idle")),
      .servers_active = f_->server_connections.Add(with("state", "active")),
      .servers_opening = f_->server_connections.Add(with("state", "opening")),
      .servers_testing = f_->server_connections.Add(with("state", "testing")),
      .overflow_in_use = f_->overflow_in_use.Add(l),
      .clients_active = f_->clients.Add(with("state", "active")),
      .clients_waiting = f_->clients.Add(with("state", "waiting")),
      .clients_idle = f_->clients.Add(with("state", "idle")),
      .checkout_wait_seconds = f_->checkout_wait.Add(l, kCheckoutWaitBuckets),
      .timeouts = f_->timeouts.Add(l),
      .transactions = f_->transactions.Add(l),
      .queries = f_->queries.Add(l),
      .transaction_duration_seconds = f_->transaction_duration.Add(l, kTransactionBuckets),
      .client_to_server_bytes = f_->client_to_server_bytes.Add(l),
      .server_to_client_bytes = f_->server_to_client_bytes.Add(l),
      .server_connections_opened = f_->server_opened.Add(l),
      .server_connections_failed = f_->server_failed.Add(l),
      .pre_ping_failures = f_->pre_ping_failures.Add(l),
      .invalidations = f_->invalidations.Add(l),
      .statements_prepared = f_->statements_prepared.Add(l),
      .statements_reused = f_->statements_reused.Add(l),
      .statements_evicted = f_->statements_evicted.Add(l),
      .server_connections_closed_by_reason = closed,
  });
  PoolMetrics& ref = *m;
  pools_.emplace(Key{std::string(database), std::string(user)}, std::move(m));
  return ref;
}

void Metrics::drop_pool(PoolMetrics& m) {
  f_->pool_size.Remove(&m.pool_size);
  f_->max_overflow.Remove(&m.max_overflow);
  f_->server_connections.Remove(&m.servers_idle);
  f_->server_connections.Remove(&m.servers_active);
  f_->server_connections.Remove(&m.servers_opening);
  f_->server_connections.Remove(&m.servers_testing);
  f_->overflow_in_use.Remove(&m.overflow_in_use);
  f_->clients.Remove(&m.clients_active);
  f_->clients.Remove(&m.clients_waiting);
  f_->clients.Remove(&m.clients_idle);
  f_->checkout_wait.Remove(&m.checkout_wait_seconds);
  f_->timeouts.Remove(&m.timeouts);
  f_->transactions.Remove(&m.transactions);
  f_->queries.Remove(&m.queries);
  f_->transaction_duration.Remove(&m.transaction_duration_seconds);
  f_->client_to_server_bytes.Remove(&m.client_to_server_bytes);
  f_->server_to_client_bytes.Remove(&m.server_to_client_bytes);
  f_->server_opened.Remove(&m.server_connections_opened);
  f_->server_failed.Remove(&m.server_connections_failed);
  f_->pre_ping_failures.Remove(&m.pre_ping_failures);
  f_->invalidations.Remove(&m.invalidations);
  f_->statements_prepared.Remove(&m.statements_prepared);
  f_->statements_reused.Remove(&m.statements_reused);
  f_->statements_evicted.Remove(&m.statements_evicted);
  for (Counter* c : m.server_connections_closed_by_reason) f_->server_closed.Remove(c);
}

void Metrics::remove_pool(std::string_view database, std::string_view user) {
  const std::pair<std::string_view, std::string_view> key{database, user};
  auto it = pools_.find(key);
  if (it == pools_.end()) return;
  drop_pool(*it->second);
  pools_.erase(it);
}

HostMetrics& Metrics::host(std::string_view database, std::string_view host) {
  const std::pair<std::string_view, std::string_view> key{database, host};
  if (auto it = hosts_.find(key); it != hosts_.end()) return *it->second;
  const prometheus::Labels l{{"database", std::string(database)}, {"host", std::string(host)}};
  auto m = std::make_unique<HostMetrics>(HostMetrics{
      .up = f_->backend_up.Add(l),
      .connect_duration_seconds = f_->backend_connect.Add(l, kConnectBuckets),
      .consecutive_failures = f_->backend_failures.Add(l),
  });
  HostMetrics& ref = *m;
  hosts_.emplace(Key{std::string(database), std::string(host)}, std::move(m));
  return ref;
}

void Metrics::drop_host(HostMetrics& m) {
  f_->backend_up.Remove(&m.up);
  f_->backend_connect.Remove(&m.connect_duration_seconds);
  f_->backend_failures.Remove(&m.consecutive_failures);
}

void Metrics::remove_host(std::string_view database, std::string_view host) {
  const std::pair<std::string_view, std::string_view> key{database, host};
  auto it = hosts_.find(key);
  if (it == hosts_.end()) return;
  drop_host(*it->second);
  hosts_.erase(it);
}

void Metrics::remove_database(std::string_view database) {
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (it->first.first == database) {
      drop_pool(*it->second);
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    if (it->first.first == database) {
      drop_host(*it->second);
      it = hosts_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string Metrics::serialize() {
  if (before_scrape_) before_scrape_();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace pooler::daemon
