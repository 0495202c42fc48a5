// The pooler's own login to a PostgreSQL server, as a pure state machine: it writes the StartupMessage,
// answers the server's authentication requests (trust, cleartext, md5, SCRAM-SHA-256) from what it was
// given, and collects ParameterStatus, BackendKeyData and the first ReadyForQuery. No I/O: the caller moves
// bytes (daemon/own_login.h does, over a socket it opened, with TLS when sslmode asks).
//
// Used only where libpq cannot log in: users authenticated through auth_query, whose server login has the
// SCRAM keys their client just proved, or an md5 secret, and no plain password.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/error.h"
#include "protocol/scram_client.h"

namespace pooler::protocol {

// What the pooler can answer the server's challenge with.
struct NoCredentials {};                      // trust only
struct PlainPassword { std::string password; };
struct Md5Secret { std::string secret; };     // "md5" + 32 hex digits, as pg_authid stores it
using LoginCredentials = std::variant<NoCredentials, PlainPassword, Md5Secret, ScramKeys>;

class BackendLogin {
 public:
  enum class Status { kInProgress, kDone, kFailed };

  // `startup` are the StartupMessage's parameters in order; "user" must be among them (it is the user the
  // md5 response is salted with). `max_message_size` bounds each message the server sends during login.
  BackendLogin(std::vector<std::pair<std::string, std::string>> startup, LoginCredentials credentials,
               std::size_t max_message_size = 1024 * 1024);

  // For tests and fuzzing, before start(): a fixed SCRAM client nonce instead of 18 random bytes (so a run
  // is reproducible), and a lower PBKDF2 iteration limit for password logins than kScramMaxIterations.
  void set_scram_client_nonce(std::string nonce) { scram_nonce_ = std::move(nonce); }
  void set_scram_max_iterations(int max_iterations) { scram_max_iterations_ = max_iterations; }

  // The StartupMessage (protocol 3.0). Call once, first.
  [[nodiscard]] std::string start();

  // Feeds bytes the server sent (any split). Appends what must be sent back to `out`. Returns kDone once
  // ReadyForQuery arrived (bytes after it are kept in leftover()), kFailed on an ErrorResponse from the
  // server (error() then has its SQLSTATE and message, e.g. 28P01 "password authentication failed for user
  // ...") or on a protocol problem of ours (08P01: unexpected message, malformed message, oversized message,
  // unsupported authentication request, AuthenticationOk before SCRAM finished; 28P01: the server's SCRAM
  // signature did not verify, or the server's SCRAM error; 28000: a cleartext/md5/SASL request the
  // credentials cannot answer). A server that says AuthenticationOk in the middle of SCRAM has skipped
  // proving it holds the secret: that is 08P01, the exchange broke off, not a wrong password. After
  // kDone or kFailed further calls change nothing and return the same status.
  [[nodiscard]] Status feed(std::string_view data, std::string& out);

  [[nodiscard]] Status status() const { return status_; }
  [[nodiscard]] const Error& error() const { return error_; }
  // ErrorResponse severity from the server ("FATAL" usually); empty for errors of our own.
  [[nodiscard]] const std::string& error_severity() const { return severity_; }
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& params() const { return params_; }
  [[nodiscard]] std::int32_t backend_pid() const { return pid_; }
  [[nodiscard]] std::int32_t cancel_key() const { return key_; }
  [[nodiscard]] const std::string& leftover() const { return in_; }

 private:
  Status fail(std::string sqlstate, std::string message);
  Status handle(char type, std::string_view body, std::string& out);
  Status handle_auth(std::string_view body, std::string& out);
  Status handle_sasl(std::string_view mechanisms, std::string& out);
  Status cannot_answer(std::string_view request);

  // Where the authentication exchange stands until AuthenticationOk: the first request is awaited; a
  // cleartext or md5 answer moves to kAwaitOk; SASL goes kSaslContinue → kSaslFinal → kAwaitOk. An
  // authentication message that does not fit the step fails the login (08P01).
  enum class AuthStep { kAwaitRequest, kAwaitOk, kSaslContinue, kSaslFinal };

  std::vector<std::pair<std::string, std::string>> startup_;
  std::string user_;
  LoginCredentials credentials_;
  std::size_t max_message_size_;
  std::optional<ScramClient> scram_;
  bool authenticated_ = false;  // AuthenticationOk seen
  AuthStep step_ = AuthStep::kAwaitRequest;
  std::string scram_nonce_;  // empty: random
  int scram_max_iterations_ = kScramMaxIterations;
  bool started_ = false;
  Status status_ = Status::kInProgress;
  Error error_;
  std::string severity_;
  std::string in_;
  std::vector<std::pair<std::string, std::string>> params_;
  std::int32_t pid_ = 0;
  std::int32_t key_ = 0;
};

}  // namespace pooler::protocol
