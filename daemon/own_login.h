// The pooler's own server login, for the one case libpq cannot handle: a user authenticated through
// auth_query (or with a SCRAM secret in [users]) has no plain password, only the SCRAM keys its client just
// proved or an md5 secret. OwnLogin opens the socket (TCP or unix), negotiates TLS as libpq's sslmode would,
// and runs protocol::BackendLogin over it, one non-blocking step per readiness event. Afterwards the socket
// (and TLS session) go on as an ordinary ServerConn stream; every other login stays on libpq.
#pragma once

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/backend_login.h"

namespace pooler::daemon {

struct OwnLoginTarget {
  std::string host;  // a name, an address, or a unix socket directory (starting with '/')
  std::uint16_t port = 5432;
  std::string dbname;
  std::string user;
  std::string application_name;
  std::string sslmode = "prefer";  // libpq's spellings; "allow" behaves as "disable" (no TLS attempt)
  std::string sslrootcert, sslcert, sslkey, sslcrl;
  std::string target_session_attrs = "any";
  int keepalive_idle_s = 0;  // 0 = no keepalive
  protocol::LoginCredentials credentials;
};

// Where a CancelRequest for the session goes: the address the login connected to.
struct CancelTarget {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::int32_t pid = 0;
  std::int32_t key = 0;
};

// Sends a CancelRequest over a new plain connection (PostgreSQL 15 reads it before any TLS) and waits for the
// server to close it, blocking, with a few seconds' limit: call it off the loop thread. Empty on success,
// else why it failed.
std::string send_cancel_request(const CancelTarget& target);

class OwnLogin {
 public:
  enum class Step { kWantRead, kWantWrite, kDone, kFailed };

  explicit OwnLogin(OwnLoginTarget target);
  OwnLogin(const OwnLogin&) = delete;
  OwnLogin& operator=(const OwnLogin&) = delete;
  // Frees the TLS session and closes the socket (after the caller stopped polling it).
  ~OwnLogin();

  // Resolves the host and starts connecting to its first address.
  [[nodiscard]] Step start();
  // Continues after the readiness start()/resume() asked for. The fd may change (the next address of a
  // host is tried when one refuses), so the caller re-registers it after every step.
  [[nodiscard]] Step resume();

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] SSL* ssl() const { return ssl_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] const protocol::BackendLogin& login() const { return *login_; }
  [[nodiscard]] std::string host_label() const;
  [[nodiscard]] CancelTarget cancel_target() const;
  // Best-effort TLS close_notify before the socket goes (a clean Terminate was already sent).
  void shutdown_tls();

 private:
  enum class Phase { kConnecting, kSslRequest, kSslAnswer, kHandshake, kLogin, kDone, kFailed };

  Step fail(std::string message);
  Step connect_next();
  void note_connect_error(const std::string& what);  // one address's failure, for the final message
  Step after_connect();
  void begin_login();
  Step start_tls();
  Step run();
  Step login_io();
  bool flush();  // false on a hard error (error_ set)
  void close_fd();
  [[nodiscard]] bool check_session_attrs();

  OwnLoginTarget target_;
  std::vector<sockaddr_storage> addrs_;
  std::vector<socklen_t> addr_lens_;
  std::size_t next_addr_ = 0;
  std::size_t current_addr_ = SIZE_MAX;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  Phase phase_ = Phase::kConnecting;
  std::string out_;  // bytes still to write
  std::optional<protocol::BackendLogin> login_;
  std::string error_;
  std::string connect_errors_;  // one line per address that failed, for the final message
};

}  // namespace pooler::daemon
