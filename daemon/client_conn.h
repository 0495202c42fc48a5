// One client connection: startup, authentication against [users], then relay to a server connection taken
// from its pool — for the whole session (session mode) or per transaction (transaction mode).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "daemon/prepared.h"
#include "daemon/socket.h"
#include "daemon/uv_handle.h"
#include "protocol/backend_login.h"
#include "protocol/scram.h"
#include "protocol/stream_scanner.h"
#include "protocol/writer.h"

namespace pooler::daemon {

class Daemon;
class PoolRuntime;
class ServerConn;
struct UserAuth;
struct LookupResult;

class ClientConn final : public SocketOwner {
 public:
  enum class State {
    kStartup,       // reading SSLRequest/GSSENCRequest/CancelRequest/StartupMessage
    kAuthLookup,    // user not in [users]: waiting for auth_query's answer (not reading)
    kAuth,          // challenge sent, waiting for the password / SASL messages
    kLoginWait,     // authenticated; waiting for the pool to hand out a server connection
    kLoginSync,     // server connection assigned; applying the client's startup parameters to it
    kReady,         // logged in, no server connection (transaction mode between transactions)
    kWaitServer,    // logged in, holding the client's first bytes until the pool hands out a server
    kSync,          // server assigned for a transaction; re-applying the client's parameters first
    kLinked,        // relaying to server_
    kAdmin,         // logged in to the admin console: each Query is answered by the daemon itself
    kClosed,        // done; the daemon frees it at the end of the loop iteration
  };

  ClientConn(Daemon& daemon, std::uint64_t id, std::string peer);
  ClientConn(const ClientConn&) = delete;
  ClientConn& operator=(const ClientConn&) = delete;
  ~ClientConn();

  // Starts serving an accepted socket.
  [[nodiscard]] int start(int fd);

  [[nodiscard]] std::uint64_t id() const { return id_; }
  [[nodiscard]] State state() const { return state_; }
  [[nodiscard]] const std::string& peer() const { return peer_; }
  [[nodiscard]] const std::string& user() const { return user_; }
  [[nodiscard]] const std::string& database() const { return database_; }
  [[nodiscard]] std::int32_t cancel_pid() const { return cancel_pid_; }
  [[nodiscard]] std::int32_t cancel_key() const { return cancel_key_; }
  [[nodiscard]] ServerConn* server() const { return server_; }
  [[nodiscard]] std::chrono::steady_clock::time_point connected_at() const { return connected_at_; }
  [[nodiscard]] std::chrono::system_clock::time_point connected_wall() const { return connected_wall_; }
  [[nodiscard]] std::string application_name() const;
  [[nodiscard]] bool is_admin() const { return admin_; }
  [[nodiscard]] bool logged_in() const;
  // A FATAL error was sent and the client closes once it has read it; since when.
  [[nodiscard]] bool closing() const { return close_after_flush_; }
  [[nodiscard]] std::chrono::steady_clock::time_point closing_since() const { return closing_since_; }

  // --- from the server side ---
  // Bytes the linked server sent; returns the client's unsent backlog (for backpressure).
  std::size_t deliver(std::string_view bytes);
  // The linked server sent ReadyForQuery (after its bytes were delivered).
  void on_server_ready(char tx_status);
  // A cancel the linked server connection sent (query_timeout) has been delivered, or the answers the relay
  // waited for are in: held bytes go on.
  void resume_relay();
  // The linked server connection broke; the client is told and closed.
  void on_server_lost(const std::string& reason);

  // --- from the pool ---
  void on_server_assigned(ServerConn* s);
  void on_checkout_failed(const protocol::ErrorFields& e);

  // The daemon is draining or the client's pool was removed by reload: leave now if between transactions,
  // else after the current one.
  void on_pool_retired();
  [[nodiscard]] PoolRuntime* pool() const { return pool_; }

  // Sends a FATAL error and closes once it is written.
  void fatal(std::string_view sqlstate, std::string message, std::string detail = {});
  // Closes now: returns or discards any server connection, leaves the pool's queue.
  void close();

  // SocketOwner
  void on_readable() override;
  void on_drained() override;
  // The linked server's output backlog drained: resume reading the client.
  void on_server_drained();
  void on_socket_error(int uv_error) override;

 private:
  struct RelayHandler;
  struct InterpretHandler;

  void handle_startup_bytes(std::string_view data);
  void handle_startup_packet(std::string_view data);
  void handle_auth_bytes(std::string_view data);
  void handle_auth_message(char type, std::string_view body);
  void admin_login();
  void handle_admin_bytes(std::string_view data);
  void begin_auth();
  // Sends the challenge `method` calls for (or finishes a trust/cert login) for the user in auth_.
  void challenge(config::HbaMethod method);
  void on_lookup(config::HbaMethod method, const LookupResult& result);
  // After a successful password exchange: what the pooler itself can log in to the server with, for users
  // without a plain password in [users] (their SCRAM keys as just proven, or their md5 secret).
  void note_credentials();
  // TLS towards the client: after our 'S' to an SSLRequest, or at once for a direct TLS ClientHello.
  void start_tls(bool direct);
  void continue_tls_handshake();
  // client_tls_mode, client certificate and [[pooler.hba]] checks; nullopt when refused (FATAL sent).
  [[nodiscard]] std::optional<config::HbaMethod> access_method();
  void check_cert_login();
  void auth_ok();
  void after_login_server(ServerConn* s);
  void relay_to_server(std::string_view data);
  // Transaction mode: Query and extended-protocol messages are looked at whole (prepared statements,
  // LISTEN), everything else streams through.
  void relay_interpreting(std::string_view data);
  // Moves bytes of the message being assembled from `data` into msg_; true once msg_ holds all of it.
  bool assemble(std::string_view& data);
  // False when the relay must wait for the server's answers first (stalled_): nothing of `msg` is used.
  bool handle_message(std::string_view msg);
  void handle_query(std::string_view msg, std::string_view sql);
  // Answers a LISTEN with 0A000; in the extended protocol the client's messages up to its Sync are skipped.
  void refuse_listen(bool extended);
  bool handle_statement_message(char type, std::string_view msg, std::string_view body);
  // Makes `st` usable on the server by what goes into out_ next: prepared there first when absent (the
  // Parse hidden from the client unless it is the client's own), closed and prepared again when stale; for
  // the client's own Parse of a statement that is ready, the ParseComplete is made up.
  void use_statement(const StatementRef& st, std::string_view client_name, bool client_parse);
  void forward(std::string_view bytes, int requests = 0);
  void flush_out();
  void refresh_search_path_then_release();
  void arm_idle_tx_timer();
  void stop_idle_tx_timer();
  void on_idle_tx_timeout();
  void need_server(std::string_view data);
  void link_for_transaction(ServerConn* s);
  void release_server();
  bool leave_if_asked();
  void apply_params_then(ServerConn* s, void (ClientConn::*next)(ServerConn*));
  void send_and_flush(const std::string& bytes);
  [[nodiscard]] std::vector<std::string> param_sync_sql(const ServerConn& s) const;
  void capture_params(const ServerConn& s);

  Daemon& daemon_;
  std::uint64_t id_;
  std::string peer_;
  State state_ = State::kStartup;
  Socket sock_;
  std::chrono::steady_clock::time_point connected_at_;
  std::chrono::system_clock::time_point connected_wall_ = std::chrono::system_clock::now();
  bool admin_ = false;  // logged in to the admin console (database "pooler")
  std::string in_;  // unparsed bytes before login, and client bytes held while waiting for a server
  // Client bytes still in the loop's read buffer while the pool is asked for a server (see need_server).
  std::string_view held_view_;
  bool have_view_ = false;
  std::string user_;
  std::string database_;
  // Parameters the client asked for (startup packet, then changes the server reported during its links).
  std::vector<std::pair<std::string, std::string>> params_;
  const UserAuth* auth_ = nullptr;
  enum class AuthStep { kNone, kMd5, kSaslInit, kSaslFinal };
  AuthStep auth_step_ = AuthStep::kNone;
  std::array<std::uint8_t, 4> md5_salt_{};
  std::unique_ptr<protocol::ScramServer> scram_;
  std::unique_ptr<UserAuth> looked_up_;  // the user as auth_query found it (auth_ then points here)
  bool mock_auth_ = false;               // auth_query did not find the user: the exchange can only fail
  std::optional<std::uint64_t> lookup_ticket_;
  std::optional<protocol::LoginCredentials> proven_;  // see note_credentials
  PoolRuntime* pool_ = nullptr;
  ServerConn* server_ = nullptr;
  protocol::StreamScanner scanner_;  // client → server stream
  bool unsynced_ = false;            // extended-protocol messages sent since the last Sync
  bool interpret_ = false;           // transaction mode: see relay_interpreting
  bool prepared_ = false;            // and named statements are mapped to the pool's (max_prepared_statements)
  bool assembling_ = false;          // msg_ holds the first bytes of a message still arriving
  bool search_path_changed_ = false;
  bool skip_to_sync_ = false;
  bool stalled_ = false;             // client bytes wait in in_ until the server has answered all sent        // the pooler answered an extended-protocol message with an error  // a SET search_path ran: read it back before releasing the server
  std::string msg_;                  // a message being assembled
  std::string out_;                  // bytes for the server, sent once per read
  int out_requests_ = 0;             // requests (Query, Sync, FunctionCall) in out_
  // A DEALLOCATE of the client's names sent as the unnamed statement (psycopg 3 does), answered by the
  // pooler: the command tag for the unnamed statement, and for the unnamed portal bound from it.
  std::string fake_statement_tag_;
  std::string fake_portal_tag_;
  // The client's named statements: its name → the pool's statement.
  StringMap<StatementRef> statements_;
  UvHandle<uv_timer_t> idle_tx_timer_;  // idle_transaction_timeout; made on first use
  bool idle_tx_armed_ = false;
  bool close_after_flush_ = false;
  bool terminated_ = false;  // the client sent Terminate: its socket is closed without draining
  std::chrono::steady_clock::time_point closing_since_{};
  std::int32_t cancel_pid_ = 0;
  std::int32_t cancel_key_ = 0;
  SSL* ssl_ = nullptr;          // our TLS session with the client (owned; it holds its own SSL_CTX reference)
  bool tls_handshake_ = false;  // the handshake is under way; the client is still in kStartup
  bool direct_tls_ = false;     // TLS began without SSLRequest (PostgreSQL 17's sslnegotiation=direct)
};

}  // namespace pooler::daemon
