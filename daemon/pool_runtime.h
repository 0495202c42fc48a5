// The live side of one pool per (database, user): carries out the decisions of the pure pool::Pool —
// opening, pinging, resetting and closing ServerConns — and hands connections to waiting clients.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/config.h"
#include "daemon/prepared.h"
#include "daemon/server_conn.h"
#include "daemon/uv_handle.h"
#include "pool/host_set.h"
#include "pool/pool.h"

namespace pooler::daemon {

class ClientConn;
class Daemon;

class PoolRuntime final : public ServerConnOwner {
 public:
  PoolRuntime(Daemon& daemon, config::Database db, std::string user, ServerConnParams params,
              config::Seconds health_check_period, pool::HostSet* hosts);
  PoolRuntime(const PoolRuntime&) = delete;
  PoolRuntime& operator=(const PoolRuntime&) = delete;
  ~PoolRuntime();

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const config::Database& database() const { return db_; }
  [[nodiscard]] config::PoolMode mode() const { return db_.pool_mode; }
  [[nodiscard]] const pool::Pool& pool() const { return pool_; }
  [[nodiscard]] const std::string& user() const { return user_; }
  [[nodiscard]] const PoolTotals& totals() const { return totals_; }
  [[nodiscard]] PoolMetrics& metrics() { return metrics_; }
  // The pool's distinct prepared statements (transaction mode with max_prepared_statements > 0).
  [[nodiscard]] StatementRegistry& statements() { return statements_; }
  [[nodiscard]] pool::HostSet* hosts() const { return hosts_; }
  // Server connections, for SHOW SERVERS.
  [[nodiscard]] const std::unordered_map<std::uint64_t, std::unique_ptr<ServerConn>>& connections() const {
    return conns_;
  }
  // Copies the pool's state into its gauges and turns its event counts into counter increments (scrape).
  void refresh_metrics();

  // PAUSE: no new checkouts (clients that need a server wait, without pool_timeout) until resume().
  void pause();
  void resume();
  [[nodiscard]] bool paused() const { return paused_; }
  // KILL: every server connection goes; clients using one are disconnected.
  void kill();
  // RECONNECT: every server connection is replaced: idle ones close now, the others when given back.
  void reconnect();
  // Connects once to every host in the background (start-up), so readiness and host state are known
  // before the first client needs them.
  void probe_all();
  // ParameterStatus values of the first server connection this pool opened: what a transaction-mode client
  // is told at login without taking a server connection. Empty until one has connected.
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& login_params() const { return login_params_; }

  // Removed from the config by a reload: no new checkouts; idle server connections close; clients leave
  // after their current transaction.
  void retire();
  [[nodiscard]] bool retired() const { return retired_; }
  // New settings from a reload, applied in place: pool limits resize (never yanking a connection from a
  // client); when what a connection *is* changed (hosts, dbname, login, sslmode) every existing one is
  // invalidated and replaced as it comes back.
  void reconfigure(const config::Database& db, ServerConnParams params, pool::HostSet* hosts, bool identity_changed);
  // The credentials of the pooler's own login for this pool's server connections (see ServerConnParams::
  // own_login), replaced by each client login that proves newer ones.
  void set_own_login(protocol::LoginCredentials c) { params_.own_login = std::move(c); }

  // A client needs a server connection: answered later (or at once) with on_server_assigned or
  // on_checkout_failed.
  void request(ClientConn* c);
  // The client went away while waiting.
  void cancel_request(ClientConn* c);

  // How the client left the connection it is giving back.
  struct ReleaseInfo {
    bool client_stream_clean = true;  // the client → server stream ended between messages
    bool unsynced = false;            // extended-protocol messages were sent after the last Sync
  };
  // The client is done with `s` (end of transaction, end of session, or client gone). The pool resets it —
  // draining a running query first when needed — or discards it when it cannot be trusted.
  void release(ServerConn* s, ReleaseInfo info);

  // The daemon found room under max_db_connections / max_user_connections for a deferred open.
  void start_deferred_open(std::uint64_t conn);
  // Closes this pool's longest-idle connection so that pool `for_pool` can open one (see Daemon::defer_open).
  bool evict_idle(std::string_view for_pool);

  // ServerConnOwner
  void on_server_connected(ServerConn* s) override;
  void on_server_connect_failed(ServerConn* s, std::string error) override;
  void on_server_lost(ServerConn* s, std::string reason) override;

 private:
  static void on_timer(uv_timer_t* t) noexcept;
  static void on_health_timer(uv_timer_t* t) noexcept;
  void run(std::vector<pool::Action>& actions);
  void carry_out(const pool::Action& a);
  void arm_timer();
  void reset_then_checkin(ServerConn* s, config::ResetOnReturn how);
  void drop(std::uint64_t id);
  // Carries out an OpenConn: picks the candidate hosts and starts connecting (or fails it at once).
  void begin_open(std::uint64_t conn, std::vector<pool::Action>& next);
  // Starts (or continues) opening connection `id` on the next candidate host; false when none is left.
  bool connect_next(std::uint64_t id);
  [[nodiscard]] ServerConnParams params_for(std::size_t host, const char* tsa = nullptr) const;
  void probe_hosts();
  static void on_probe_timer(uv_timer_t* t) noexcept;
  void arm_probe_timer();
  ServerConn* find(std::uint64_t id);
  static std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }

  Daemon& daemon_;
  config::Database db_;
  std::string user_;
  std::string name_;
  ServerConnParams params_;
  config::Seconds health_check_period_;
  pool::Pool pool_;
  std::unordered_map<std::uint64_t, std::unique_ptr<ServerConn>> conns_;
  struct Waiting {
    ClientConn* client;
    std::chrono::steady_clock::time_point since;
  };
  std::unordered_map<std::uint64_t, Waiting> waiters_;  // WaiterId (client id) → client
  std::vector<ClientConn*> paused_waiters_;  // asked while paused; they ask the pool on resume()
  bool paused_ = false;
  PoolMetrics& metrics_;
  PoolTotals totals_;
  StatementRegistry statements_;
  std::uint64_t seen_ping_failures_ = 0;
  std::uint64_t seen_invalidations_ = 0;
  std::uint64_t seen_received_ = 0, seen_sent_ = 0, seen_queries_ = 0;  // totals_ already in the counters
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_timer_t> health_timer_;  // every health_check_period: ping connections idle that long
  UvHandle<uv_timer_t> probe_timer_;   // when a down host's backoff ends: try it again in the background
  pool::HostSet* hosts_;               // shared by every pool of this database; owned by the Daemon
  pool::Want want_ = pool::Want::kAny;
  // Connections being opened: the hosts still to try, in order, and which one is being tried.
  struct Attempt {
    // Host and the target_session_attrs for that try (nullptr = the database's own).
    std::vector<std::pair<std::size_t, const char*>> candidates;
    std::size_t next = 0;
    std::size_t host = 0;
    std::vector<std::size_t> failed;  // hosts that could not be reached during this attempt
    std::chrono::steady_clock::time_point started;
  };
  std::unordered_map<std::uint64_t, Attempt> attempts_;
  // OpenConns the pool made that wait for room under the daemon-wide server connection limits; the pool
  // counts them as opening meanwhile.
  std::unordered_set<std::uint64_t> deferred_;
  // Background probes of down hosts: a plain connect that is closed again once it worked.
  class Prober;
  std::unique_ptr<Prober> prober_;
  std::vector<pool::Action> pending_;  // decisions not yet carried out (events may nest)
  std::vector<pool::Action> scratch_;  // where request() and release() collect the pool's decisions
  bool in_run_ = false;
  bool retired_ = false;
  std::vector<std::pair<std::string, std::string>> login_params_;
};

}  // namespace pooler::daemon
