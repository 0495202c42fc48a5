// One connection to a PostgreSQL server: opened with libpq's non-blocking connect, then used as a raw
// v3 byte stream — relayed to a linked client, or driven by the pooler itself for reset, ping and SET.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/metrics.h"
#include "daemon/own_login.h"
#include "daemon/prepared.h"
#include "daemon/socket.h"
#include "daemon/uv_handle.h"
#include "protocol/stream_scanner.h"

namespace pooler::daemon {

class ClientConn;
class ServerConn;

// Running totals of a pool, for SHOW STATS (the Prometheus counters hold the same, by label).
struct PoolTotals {
  std::uint64_t xacts = 0, queries = 0, received = 0, sent = 0, xact_time_us = 0, wait_time_us = 0;
};

// Told about a server connection's life; implemented by the pool runtime that owns the connection.
class ServerConnOwner {
 public:
  virtual void on_server_connected(ServerConn* s) = 0;
  virtual void on_server_connect_failed(ServerConn* s, std::string error) = 0;
  // The connection broke (EOF, I/O error, FATAL from the server) while idle, linked or busy. The owner
  // must drop it; if a client was linked it has already been told.
  virtual void on_server_lost(ServerConn* s, std::string reason) = 0;

 protected:
  ~ServerConnOwner() = default;
};

// Result of a batch of queries the pooler ran itself.
struct InternalResult {
  bool ok = true;
  std::string sqlstate;  // of the first ErrorResponse, if any
  std::string message;
  std::string severity;
  std::optional<std::string> value;  // first column of the first row, when a query returned one (not NULL)
  std::vector<std::optional<std::string>> row;  // every column of the first row (nullopt = NULL)
  int rows = 0;                                 // DataRows received
};

struct ServerConnParams {
  // keyword/value pairs for PQconnectStartParams, without host/port/target_session_attrs: the pool picks
  // one host per attempt (see pool::HostSet) and adds them.
  std::vector<std::pair<std::string, std::string>> libpq;
  std::chrono::duration<double> connect_timeout{5.0};
  // Limit for the pooler's own queries (ping, reset, SET): past it the connection is treated as dead.
  std::chrono::duration<double> internal_timeout{5.0};
  // Limit for finishing a request a departed client left running (after cancelling it).
  std::chrono::duration<double> drain_timeout{30.0};
  std::size_t max_message_size = SIZE_MAX;
  // Bound of the connection's prepared-statement cache (transaction mode; 0 = the feature is off).
  std::size_t max_prepared_statements = 0;
  // A request (Query, Sync, FunctionCall) of a linked client outstanding this long is cancelled.
  std::optional<std::chrono::duration<double>> query_timeout;
  // Set: the pooler logs in itself (OwnLogin) with these, instead of libpq with a password. For users with
  // no plain password: SCRAM keys proven by their client, or an md5 secret (auth_query, [users] secrets).
  std::optional<protocol::LoginCredentials> own_login;
};

class ServerConn final : public SocketOwner {
 public:
  enum class State {
    kConnecting,  // libpq is connecting and authenticating; left for kIdle or closed
    kIdle,        // owned by its pool, no client; reading only to notice a server-side close
    kLinked,      // relaying for client_
    kInternal,    // running the pooler's own queries (reset, ping, SET); left when the last RFQ arrives
    kClosed,      // finished; the owner deletes it
  };

  using InternalDone = std::function<void(ServerConn*, const InternalResult&)>;

  ServerConn(uv_loop_t* loop, ServerConnOwner* owner, std::uint64_t id);
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;
  ~ServerConn();

  // Starts connecting. Failure (immediate or later) is reported through on_server_connect_failed.
  void connect(const ServerConnParams& params);

  [[nodiscard]] std::uint64_t id() const { return id_; }
  [[nodiscard]] State state() const { return state_; }
  [[nodiscard]] int backend_pid() const { return backend_pid_; }
  [[nodiscard]] char tx_status() const { return tx_status_; }
  [[nodiscard]] int outstanding() const { return outstanding_; }
  [[nodiscard]] bool in_copy() const { return copy_in_ || copy_out_; }
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& params() const { return params_; }
  [[nodiscard]] const std::string* param(std::string_view name) const;
  // Values the pooler SET that the server does not report (search_path, ...); cleared by a DISCARD ALL reset.
  [[nodiscard]] const std::string* applied(std::string_view name) const;
  void remember_applied(std::string_view name, std::string_view value);
  void forget_applied() { applied_.clear(); }
  void forget_applied(std::string_view name);
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& applied_all() const { return applied_; }
  // Unsent bytes towards the server; with notify_drained_to the client hears when they are gone.
  [[nodiscard]] std::size_t backlog() const { return sock_.pending(); }
  void notify_drained_to(ClientConn* c) { drain_waiter_ = c; }
  // The linked client hears (resume_relay) once nothing is owed to it any more.
  void notify_when_settled(ClientConn* c) { settle_waiter_ = c; }
  [[nodiscard]] const std::string& host_label() const { return host_label_; }
  [[nodiscard]] ClientConn* client() const { return client_; }
  // The server said it is shutting down or restarting (FATAL 57P01/57P02/57P03): its siblings are suspect.
  [[nodiscard]] bool shutdown_seen() const { return shutdown_seen_; }

  // True when the byte stream towards the server is between messages and every request got its answer:
  // the connection can be reset and reused.
  [[nodiscard]] bool is_clean() const;

  // Prepared statements (transaction mode): what this connection has prepared, and the answers it owes
  // its client (see prepared.h). The linked client records every request it sends in owed().
  [[nodiscard]] ServerStatements& statements() { return statements_; }
  [[nodiscard]] OwedAnswers& owed() { return owed_; }
  void set_query_timeout(std::optional<std::chrono::duration<double>> t) { query_timeout_ = t; }
  // A DISCARD ALL reset dropped every prepared statement on the server.
  void forget_statements() { (void)statements_.take_all(); }
  // Sends the made-up answers now at the head of owed() to the client; true if one was a ReadyForQuery.
  bool deliver_made_up();

  // Links a client: everything the server sends is forwarded to it.
  void link(ClientConn* client);
  // Cuts the link; the server connection goes back to kIdle (the pool decides what happens next).
  void unlink();

  // Sends client bytes to the server, counting the requests that will each end with ReadyForQuery.
  // Returns false when the socket failed (the connection is then lost).
  bool send_from_client(std::string_view bytes, int new_requests);
  // Backpressure from the client side.
  void pause_reading(bool paused);

  // Runs `sql_batch` (each a separate Query message) and swallows the responses; `done` runs after the
  // last ReadyForQuery (or with ok=false on error or when the connection is lost).
  void run_internal(const std::vector<std::string>& sql_batch, InternalDone done);
  // Sends raw bytes (e.g. a Sync or CopyFail) expecting `requests` ReadyForQuery, then behaves like run_internal.
  void drain_internal(std::string_view raw, int requests, InternalDone done, bool long_wait = false);

  // Forwards a cancel for whatever this connection is running (asynchronously, on the libuv thread pool).
  void cancel_running_query();
  // A cancel is on its way: PostgreSQL may still signal the backend, so nothing new may run here until it
  // is done (the drain waits; the linked client holds its next request).
  [[nodiscard]] bool cancel_in_flight() const { return cancels_in_flight_ > 0; }

  // Closes the connection (sending Terminate when the stream is clean). Idempotent.
  void close();

  // Where relayed traffic is counted (owned by the pool; set before connect()).
  void set_accounting(PoolMetrics* metrics, PoolTotals* totals) {
    metrics_ = metrics;
    totals_ = totals;
  }
  // Which host of its database's HostSet this connection went to.
  void set_host_index(std::size_t i) { host_index_ = i; }
  [[nodiscard]] std::size_t host_index() const { return host_index_; }

  // Time bookkeeping for the pool and the janitor.
  std::chrono::steady_clock::time_point created_at;

  // SocketOwner
  void on_readable() override;
  void on_drained() override;
  void on_socket_error(int uv_error) override;

 private:
  struct RelayHandler;
  struct InternalHandler;

  void poll_connect();
  void arm_connect_timer(std::chrono::duration<double> timeout);
  // (Re)registers the connecting socket `fd` (libpq's or OwnLogin's); false after reporting the failure.
  bool watch(int fd);
  void start_own_login(const ServerConnParams& params);
  void own_login_step(OwnLogin::Step step);
  void finish_own_login();
  void connect_failed(std::string error);
  void finish_connect();
  void process(std::string_view data);
  void lost(std::string reason);
  void on_connect_timeout();
  void start_internal(InternalDone done, std::chrono::duration<double> timeout);
  void on_internal_timeout();
  void finish_internal();
  void arm_request_timer(std::chrono::duration<double> after);
  void on_request_timeout();
  void note_error(std::string_view body);
  // Bookkeeping every handler shares: transaction status, outstanding requests, COPY, ParameterStatus.
  void observe(char type, std::string_view body);
  void end_transaction();

  uv_loop_t* loop_;
  ServerConnOwner* owner_;
  std::uint64_t id_;
  State state_ = State::kConnecting;
  PGconn* pg_ = nullptr;
  std::unique_ptr<OwnLogin> own_;  // instead of pg_ when the pooler logged in itself; owns fd and TLS session
  std::optional<CancelTarget> own_cancel_;
  Socket sock_;
  UvHandle<uv_timer_t> connect_timer_;
  UvHandle<uv_timer_t> internal_timer_;  // made on first use; armed while kInternal
  std::chrono::duration<double> internal_timeout_{5.0};
  std::chrono::duration<double> drain_timeout_{30.0};
  bool shutdown_seen_ = false;
  PoolMetrics* metrics_ = nullptr;
  PoolTotals* totals_ = nullptr;
  std::size_t host_index_ = SIZE_MAX;
  bool in_tx_ = false;  // client work sent since the last ReadyForQuery 'I'
  std::chrono::steady_clock::time_point tx_start_{};
  protocol::StreamScanner scanner_;
  ClientConn* client_ = nullptr;
  int backend_pid_ = 0;
  char tx_status_ = 'I';
  int outstanding_ = 0;  // requests (Query, Sync, FunctionCall) sent whose ReadyForQuery has not arrived
  bool copy_in_ = false;
  bool copy_out_ = false;
  bool paused_ = false;
  std::vector<std::pair<std::string, std::string>> params_;  // the server's current ParameterStatus values
  std::vector<std::pair<std::string, std::string>> applied_;
  ClientConn* drain_waiter_ = nullptr;
  ClientConn* settle_waiter_ = nullptr;
  std::string host_label_;
  InternalDone internal_done_;
  InternalResult internal_result_;
  ServerStatements statements_;
  OwedAnswers owed_;
  bool hiding_ = false;  // the next message (already announced by the scanner) answers a pooler-added request
  std::optional<std::chrono::duration<double>> query_timeout_;
  UvHandle<uv_timer_t> request_timer_;  // made on first use; armed while a linked request is outstanding
  bool request_timer_armed_ = false;
  bool cancel_sent_ = false;            // query_timeout fired and a cancel went out for the current request
  int cancels_in_flight_ = 0;
  bool finish_after_cancel_ = false;    // the internal run ended while a cancel was in flight
  std::shared_ptr<ServerConn*> self_;   // lets a cancel finishing on the thread pool find us, or not
  void on_cancel_done();
};

}  // namespace pooler::daemon
