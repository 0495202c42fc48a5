// The daemon: one libuv loop owning the listeners, the clients, the pools and the signal handlers.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <deque>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "pool/host_set.h"
#include "daemon/admin_console.h"
#include "daemon/auth_lookup.h"
#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "daemon/tls_context.h"
#include "daemon/uv_handle.h"
#include "protocol/scram.h"

namespace pooler::daemon {

class ClientConn;
class PoolRuntime;
class ServerConn;

// How one [users] entry can authenticate, prepared once per config load (PBKDF2 is too slow per login).
struct UserAuth {
  enum class Kind { kPlain, kMd5Secret, kScramSecret };
  std::string name;
  std::string password;  // as configured
  Kind kind = Kind::kPlain;
  std::optional<protocol::ScramSecret> scram;  // parsed, or derived from a plain password with a random salt
};

// A [users] entry's password (or an auth_query answer) made ready for client authentication.
UserAuth make_user_auth(const std::string& name, const std::string& password);

class Daemon final : public AdminBackend {
 public:
  explicit Daemon(config::Config cfg);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();

  // Binds the listeners and runs the loop until shutdown. Returns the process exit code.
  int run();

  [[nodiscard]] uv_loop_t* loop() { return &loop_; }
  [[nodiscard]] const config::Config& config() const { return config_; }
  [[nodiscard]] const UserAuth* find_user(std::string_view name) const;
  // The TLS context new client sessions are made from; nullptr when client TLS is off.
  [[nodiscard]] SSL_CTX* client_tls_context() const { return client_tls_.get(); }

  // The pool for (database, user), created on first use. With own_login its server connections log in with
  // those credentials (the pooler's own login) from now on, instead of libpq with a configured password.
  PoolRuntime& pool_for(const config::Database& db, const std::string& user,
                        std::optional<protocol::LoginCredentials> own_login = std::nullopt);

  // auth_query for a client of `db` whose user is not in [users]: nullopt when auth_query is off there (the
  // user does not exist), else a ticket for cancel_lookup; `done` runs once with the result.
  std::optional<std::uint64_t> lookup_user(const config::Database& db, const std::string& user, LookupDone done);
  void cancel_lookup(std::uint64_t ticket);

  // max_db_connections / max_user_connections (PgBouncer's semantics): whether one more server connection
  // for this pool fits, counting every pool's open and connecting connections of its database, and of its
  // server login user. One that does not fit waits (defer_open), oldest first; its clients wait meanwhile,
  // up to pool_timeout.
  [[nodiscard]] bool server_slot_free(const PoolRuntime& pool) const;
  // A deferred open goes first to room freed anywhere; when none is free, the connection idle longest in
  // another pool sharing the full limit is closed for it (PgBouncer evicts the same way), so an idle pool
  // cannot starve a busy one. Checked after each loop iteration that deferred an open, closed a server
  // connection, or left one idle while opens wait.
  void defer_open(PoolRuntime* pool, std::uint64_t conn);
  [[nodiscard]] bool has_deferred_opens() const { return !deferred_opens_.empty(); }
  void kick_deferred_opens();
  // Forgets one deferred open of `pool`, or all of them (nullopt: the pool is going away).
  void cancel_deferred_open(PoolRuntime* pool, std::optional<std::uint64_t> conn);

  // Gives a logged-in client its BackendKeyData and makes it reachable for CancelRequest.
  void register_cancel_key(ClientConn* c, std::int32_t& pid, std::int32_t& key);
  void handle_cancel(std::int32_t pid, std::int32_t key);

  // A client finished: forget it and free it once the current callback stack has unwound.
  void retire(ClientConn* c);
  // A server connection finished; freed the same way.
  void retire(std::unique_ptr<ServerConn> s);

  [[nodiscard]] std::size_t client_count() const { return clients_.size(); }
  [[nodiscard]] bool shutting_down() const { return shutting_down_; }
  [[nodiscard]] Metrics& metrics() { return metrics_; }
  // /readyz: listening, and every configured database has a backend host not known to be down.
  [[nodiscard]] std::pair<bool, std::string> readiness() const;

  // AdminBackend (the `pooler` console)
  std::vector<AdminPool> pools() override;
  std::vector<AdminClient> clients() override;
  std::vector<AdminServer> servers() override;
  std::vector<AdminStats> stats() override;
  std::vector<AdminDatabase> databases() override;
  std::vector<std::pair<std::string, std::string>> config_values() override;
  std::expected<void, std::string> pause(std::optional<std::string> db) override;
  std::expected<void, std::string> resume(std::optional<std::string> db) override;
  std::expected<void, std::string> kill(const std::string& db) override;
  std::expected<void, std::string> reconnect(std::optional<std::string> db) override;
  std::expected<void, std::string> disable(const std::string& db) override;
  std::expected<void, std::string> enable(const std::string& db) override;
  // DISABLE: logins to this database are refused (FATAL 55000) until ENABLE; kept across reloads.
  [[nodiscard]] bool database_disabled(std::string_view db) const { return disabled_.contains(db); }
  std::expected<void, std::string> shutdown() override;

  // Re-reads the config file and applies it in place (SIGHUP, admin RELOAD). On error the running config
  // stays and the errors are logged with file:line:column.
  std::expected<void, std::string> reload() override;
  [[nodiscard]] std::uint64_t reloads_ok() const { return reloads_ok_; }
  [[nodiscard]] std::uint64_t reloads_failed() const { return reloads_failed_; }

  // Stops accepting and ends the loop; `fast` closes every client at once.
  void shutdown(bool fast);

 private:
  struct Listener;

  static void on_signal(uv_signal_t* h, int signum) noexcept;
  static void on_check(uv_check_t* h) noexcept;
  static void on_janitor(uv_timer_t* h) noexcept;
  void prepare_users();
  [[nodiscard]] struct ServerConnParams server_params(const config::Database& db, const std::string& user) const;
  pool::HostSet* host_set(const config::Database& db);
  bool listen_tcp();
  bool listen_unix();
  // Unlinks the unix socket file if it is still the one we bound.
  void remove_unix_socket();
  void accept_ready(Listener& l);
  void free_retired();
  void start_deferred_opens();
  struct SharedLimits {
    bool db_full = false;    // max_db_connections reached for the pool's database
    bool user_full = false;  // max_user_connections reached for its server login user
  };
  [[nodiscard]] SharedLimits shared_limits(const PoolRuntime& pool) const;
  // Closes the longest-idle connection of a pool other than `pool` whose closing makes room for it.
  bool evict_for(const PoolRuntime& pool);
  void janitor();

  void refresh_metrics();
  std::expected<void, std::string> apply_reload();
  [[nodiscard]] std::string status_line() const;

  config::Config config_;
  uv_loop_t loop_{};
  Metrics metrics_;
  std::unique_ptr<HttpServer> http_;
  SslCtxPtr client_tls_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<std::string, UserAuth> users_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<PoolRuntime>> pools_;
  // Host health per database, shared by its pools (one per user).
  std::map<std::string, std::unique_ptr<pool::HostSet>, std::less<>> host_sets_;
  // Pools replaced after a reload removed and re-added their database; kept while clients still use them.
  std::vector<std::unique_ptr<PoolRuntime>> retired_pools_;
  std::vector<std::unique_ptr<pool::HostSet>> old_host_sets_;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
  std::unordered_map<std::uint64_t, std::unique_ptr<ClientConn>> clients_;
  std::unordered_map<std::int32_t, ClientConn*> by_cancel_pid_;
  std::vector<std::unique_ptr<ClientConn>> retired_clients_;
  std::vector<std::unique_ptr<ServerConn>> retired_servers_;
  std::unique_ptr<AuthLookup> auth_lookup_;
  // OpenConns waiting for max_db_connections / max_user_connections room, oldest first.
  std::deque<std::pair<PoolRuntime*, std::uint64_t>> deferred_opens_;
  UvHandle<uv_check_t> check_;
  UvHandle<uv_timer_t> janitor_;
  std::vector<UvHandle<uv_signal_t>> signals_;
  std::uint64_t next_client_id_ = 1;
  std::int32_t next_cancel_pid_ = 1;
  bool shutting_down_ = false;
  bool paused_all_ = false;
  std::set<std::string, std::less<>> disabled_;  // DISABLEd databases  // PAUSE without a database: pools created later start paused too
  std::chrono::steady_clock::time_point shutdown_deadline_{};
  std::string unix_socket_path_;
  std::optional<std::pair<dev_t, ino_t>> unix_socket_id_;  // the socket file we bound
};

}  // namespace pooler::daemon
