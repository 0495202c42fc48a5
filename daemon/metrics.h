// The Prometheus registry of the daemon: every metric family is created once here, with its HELP text, and
// the daemon bumps the series through cached references. Serialised by HttpServer's /metrics.
//
// | Metric | Type | Labels | Meaning |
// |---|---|---|---|
// | `pooler_pool_size` | gauge | database, user | Configured `pool_size`: server connections kept open. |
// | `pooler_pool_max_overflow` | gauge | database, user | Configured `max_overflow` (-1 = unlimited). |
// | `pooler_pool_server_connections` | gauge | database, user, state | Server connections by state: `idle` (in the pool), `active` (linked to a client or resetting), `opening` (connecting/authenticating), `testing` (pre-ping or health check running). |
// | `pooler_pool_overflow_in_use` | gauge | database, user | Open server connections beyond `pool_size`. |
// | `pooler_pool_clients` | gauge | database, user, state | Logged-in clients by state: `active` (linked to a server connection), `waiting` (queued for one), `idle` (between transactions). |
// | `pooler_pool_checkout_wait_seconds` | histogram | database, user | Time a client waited for a server connection, including zero waits (100µs … 30s buckets). |
// | `pooler_pool_timeouts_total` | counter | database, user | Clients that gave up after `pool_timeout` (SQLSTATE 53300). |
// | `pooler_pool_transactions_total` | counter | database, user | Transactions completed (ReadyForQuery back to idle after work). |
// | `pooler_pool_queries_total` | counter | database, user | Queries run: simple Query messages plus extended-protocol Syncs. |
// | `pooler_pool_transaction_duration_seconds` | histogram | database, user | Time from a transaction's first message to its closing ReadyForQuery. |
// | `pooler_pool_client_to_server_bytes_total` | counter | database, user | Bytes relayed from clients to server connections. |
// | `pooler_pool_server_to_client_bytes_total` | counter | database, user | Bytes relayed from server connections to clients. |
// | `pooler_pool_server_connections_opened_total` | counter | database, user | Server connections successfully opened. |
// | `pooler_pool_server_connections_closed_total` | counter | database, user, reason | Server connections closed, by reason: `recycle` (older than `pool_recycle`), `idle` (`idle_timeout`), `overflow` (returned beyond `pool_size`), `error` (I/O or protocol error, server gone), `invalidated` (older than a pool invalidation), `shrink` (pool made smaller by reload or KILL), `ping_failed` (pre-ping or health check failed), `reset_failed` (reset on return failed). |
// | `pooler_pool_server_connections_failed_total` | counter | database, user | Attempts to open a server connection that failed. |
// | `pooler_pool_pre_ping_failures_total` | counter | database, user | Pre-pings that found a dead connection. |
// | `pooler_pool_invalidations_total` | counter | database, user | Times the pool invalidated every connection opened before a given moment. |
// | `pooler_pool_prepared_statements_prepared_total` | counter | database, user | Named statements the pooler prepared on a server connection for a client (transaction mode with `max_prepared_statements`): a client's first Parse, or its statement brought to another server connection. |
// | `pooler_pool_prepared_statements_reused_total` | counter | database, user | Client Parse messages answered without a server round trip because the server connection already had the statement. |
// | `pooler_pool_prepared_statements_evicted_total` | counter | database, user | Statements closed on a server connection to keep it within `max_prepared_statements`. |
// | `pooler_backend_up` | gauge | database, host | 1 while the backend host is considered reachable, 0 while it is down (backing off). |
// | `pooler_backend_connect_duration_seconds` | histogram | database, host | Time to open a server connection on this host, TCP connect through authentication. |
// | `pooler_backend_consecutive_failures` | gauge | database, host | Connection attempts to this host that failed in a row (0 after a success). |
// | `pooler_client_connections_accepted_total` | counter | | Client connections accepted on the listeners. |
// | `pooler_client_connections` | gauge | | Client connections currently open (logging in, logged in, or closing). |
// | `pooler_client_connections_refused_total` | counter | reason | Client connections refused; `reason="max_client_conn"`. |
// | `pooler_config_reloads_total` | counter | result | Config reloads (SIGHUP or RELOAD) by `result`: `success` or `failure`. |
// | `pooler_config_last_reload_timestamp_seconds` | gauge | | Unix time of the last successful config load (the start-up load counts). |
// | `pooler_build_info` | gauge | version | Always 1; the `version` label carries the pooler version. |
// | `pooler_process_start_time_seconds` | gauge | | Unix time the process started. |
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace pooler::daemon {

// Why a server connection was closed: the `reason` label of pooler_pool_server_connections_closed_total.
enum class CloseReason { kRecycle, kIdle, kOverflow, kError, kInvalidated, kShrink, kPingFailed, kResetFailed, kEvicted };
inline constexpr std::size_t kCloseReasonCount = 9;
// The label value: "recycle", "idle", "overflow", "error", "invalidated", "shrink", "ping_failed", "reset_failed".
[[nodiscard]] std::string_view close_reason_name(CloseReason r);

// The series of one pool (database, user). References stay valid until Metrics::remove_pool for that pool
// or the Metrics object's destruction.
struct PoolMetrics {
  prometheus::Gauge& pool_size;
  prometheus::Gauge& max_overflow;
  prometheus::Gauge& servers_idle;
  prometheus::Gauge& servers_active;
  prometheus::Gauge& servers_opening;
  prometheus::Gauge& servers_testing;
  prometheus::Gauge& overflow_in_use;
  prometheus::Gauge& clients_active;
  prometheus::Gauge& clients_waiting;
  prometheus::Gauge& clients_idle;
  prometheus::Histogram& checkout_wait_seconds;
  prometheus::Counter& timeouts;
  prometheus::Counter& transactions;
  prometheus::Counter& queries;
  prometheus::Histogram& transaction_duration_seconds;
  prometheus::Counter& client_to_server_bytes;
  prometheus::Counter& server_to_client_bytes;
  prometheus::Counter& server_connections_opened;
  prometheus::Counter& server_connections_failed;
  prometheus::Counter& pre_ping_failures;
  prometheus::Counter& invalidations;
  prometheus::Counter& statements_prepared;
  prometheus::Counter& statements_reused;
  prometheus::Counter& statements_evicted;
  std::array<prometheus::Counter*, kCloseReasonCount> server_connections_closed_by_reason;

  prometheus::Counter& server_connections_closed(CloseReason r) {
    return *server_connections_closed_by_reason[static_cast<std::size_t>(r)];
  }
};

// The series of one backend host of a database. Valid until remove_host/remove_database or destruction.
struct HostMetrics {
  prometheus::Gauge& up;
  prometheus::Histogram& connect_duration_seconds;
  prometheus::Gauge& consecutive_failures;
};

// Process-wide series.
struct ProcessMetrics {
  prometheus::Counter& client_connections_accepted;
  prometheus::Gauge& client_connections;
  prometheus::Counter& client_connections_refused_max_client_conn;
  prometheus::Counter& config_reloads_success;
  prometheus::Counter& config_reloads_failure;
  prometheus::Gauge& config_last_reload_timestamp_seconds;
  // auth_query lookups of users missing from [users], by result.
  prometheus::Counter& auth_query_found;
  prometheus::Counter& auth_query_not_found;
  prometheus::Counter& auth_query_failed;
};

class Metrics {
 public:
  // `version` becomes pooler_build_info's label; the process start time and the first config load (the
  // last-reload timestamp) are taken now.
  explicit Metrics(std::string_view version = POOLER_VERSION);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  ~Metrics();

  // The series of a pool, created (at zero) on first use. Cheap enough per event, but meant to be cached.
  PoolMetrics& pool(std::string_view database, std::string_view user);
  // Drops every series of the pool (database or user removed by reload): references to it dangle afterwards.
  void remove_pool(std::string_view database, std::string_view user);

  HostMetrics& host(std::string_view database, std::string_view host);
  void remove_host(std::string_view database, std::string_view host);
  // Drops every pool and host series of the database.
  void remove_database(std::string_view database);

  ProcessMetrics& process() { return *process_; }

  // Runs before every serialize(): the daemon copies pool state into the gauges there.
  void set_before_scrape(std::function<void()> hook) { before_scrape_ = std::move(hook); }

  // The Prometheus text exposition format (version 0.0.4) of every series.
  [[nodiscard]] std::string serialize();

  [[nodiscard]] prometheus::Registry& registry() { return *registry_; }

 private:
  struct Families;
  using Key = std::pair<std::string, std::string>;
  // Lets pool()/host() look up with string_views, without building a key.
  struct KeyLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::tie(a.first, a.second) < std::tie(b.first, b.second);
    }
  };

  void drop_pool(PoolMetrics& m);
  void drop_host(HostMetrics& m);

  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;  // points into *registry_
  std::unique_ptr<ProcessMetrics> process_;
  std::map<Key, std::unique_ptr<PoolMetrics>, KeyLess> pools_;
  std::map<Key, std::unique_ptr<HostMetrics>, KeyLess> hosts_;
  std::function<void()> before_scrape_;
};

}  // namespace pooler::daemon
