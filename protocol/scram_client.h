// Client side of SASL SCRAM-SHA-256 as PostgreSQL's server expects it (RFC 5802, RFC 7677), for the one
// server login the pooler does itself: a user authenticated through auth_query, whose plain password the
// pooler never sees. The client proof needs only ClientKey (for StoredKey = H(ClientKey)); the server's
// signature is checked with ServerKey. Both come from the client's own proof to the pooler (ScramServer::
// client_key) and the stored secret, so no password is needed anywhere.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

struct ScramKeys {
  std::array<std::uint8_t, 32> client_key{};
  std::array<std::uint8_t, 32> server_key{};

  friend bool operator==(const ScramKeys&, const ScramKeys&) = default;
};

// ClientKey = HMAC(SaltedPassword, "Client Key"), ServerKey = HMAC(SaltedPassword, "Server Key"), with
// SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations) (raw salt bytes).
ScramKeys scram_keys_from_password(std::string_view password, std::string_view raw_salt, int iterations);

// The most PBKDF2 iterations a server may ask a password login to compute. PostgreSQL allows up to INT_MAX,
// but the derivation runs on the caller's thread (the daemon's event loop), and a hostile or misconfigured
// server asking for two billion would stall it for an hour. A million is ~0.5 s and far above real settings
// (PostgreSQL's default is 4096). Logins with ScramKeys derive nothing and are not limited.
inline constexpr int kScramMaxIterations = 1'000'000;

// One exchange; make a new one per login. Channel binding is not used ("n,," header, SCRAM-SHA-256 only).
class ScramClient {
 public:
  // With the keys already known (the auth_query path).
  explicit ScramClient(ScramKeys keys);
  // With a plain password: the keys are derived once the server-first-message names salt and iterations.
  explicit ScramClient(std::string password);
  // Fixes the client nonce instead of drawing 18 random bytes (tests: RFC 7677's vector).
  ScramClient(ScramKeys keys, std::string client_nonce);
  ScramClient(std::string password, std::string client_nonce);

  // The user name in client-first ("n=<name>", ',' and '=' escaped as RFC 5802 says), before client_first().
  // PostgreSQL ignores it and libpq sends it empty, which is the default; RFC 7677's vector needs "user",
  // because the name is part of AuthMessage and so of the proof.
  void set_user_name(std::string_view user);

  // Lowers kScramMaxIterations for this exchange (fuzzing keeps hostile inputs cheap with it).
  void set_max_iterations(int max_iterations) { max_iterations_ = max_iterations; }

  // "n,,n=,r=<nonce>" (PostgreSQL ignores the user name in SCRAM: it takes the startup packet's). Called
  // out of turn (a second time), it ends the exchange and returns an empty string.
  [[nodiscard]] std::string client_first();

  // server-first-message → client-final-message. 08P01 when malformed, out of turn, when the server's nonce
  // does not extend ours, or when the iteration count is not a positive int (or, with a password, exceeds
  // the maximum, see set_max_iterations).
  [[nodiscard]] std::expected<std::string, Error> handle_server_first(std::string_view server_first);

  // Checks "v=<base64 ServerSignature>". 28P01 "server signature mismatch" (the server does not hold the
  // secret we logged in against: we must not trust it); an "e=<error>" answer is 28P01 carrying it;
  // 08P01 when malformed or out of turn.
  [[nodiscard]] std::expected<void, Error> handle_server_final(std::string_view server_final);

  [[nodiscard]] bool done() const { return state_ == State::kDone; }

 private:
  // kStart → kExpectServerFirst → kExpectServerFinal → kDone, one step per call; any error moves to kFailed
  // for good, so nothing is answered after the server (or we) found the exchange wrong.
  enum class State { kStart, kExpectServerFirst, kExpectServerFinal, kDone, kFailed };

  std::unexpected<Error> fail(std::string sqlstate, std::string message);

  std::optional<ScramKeys> keys_;
  std::string password_;
  std::string client_nonce_;
  std::string user_name_;  // escaped
  std::string client_first_bare_;
  std::string auth_message_;  // complete once the server-first-message arrived; both signatures cover it
  int max_iterations_ = kScramMaxIterations;
  State state_ = State::kStart;
};

}  // namespace pooler::protocol
