// Server side of SASL SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, plus the secrets it
// checks against, in pg_authid's text form.
//
// Passwords are used byte for byte: there is no SASLprep, so a non-ASCII password only matches a secret
// made from the same bytes. PostgreSQL applies SASLprep when the password is valid UTF-8; pure-ASCII
// passwords (the common case) give the same secret either way.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr int kScramDefaultIterations = 4096;

struct ScramSecret {
  int iterations = kScramDefaultIterations;
  std::string salt;  // raw bytes
  std::array<std::uint8_t, 32> stored_key{};
  std::array<std::uint8_t, 32> server_key{};
};

// True when `s` is a well-formed SCRAM-SHA-256 secret, i.e. parse_scram_secret accepts it.
bool is_scram_secret(std::string_view s);

// "SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>". 28P01 when malformed,
// which is what a client logging in against such a secret ends up with.
[[nodiscard]] std::expected<ScramSecret, Error> parse_scram_secret(std::string_view s);

// SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations); the keys follow RFC 5802.
ScramSecret make_scram_secret(std::string_view password, std::string_view raw_salt,
                              int iterations = kScramDefaultIterations);

std::string format_scram_secret(const ScramSecret& s);

// One authentication exchange; make a new one per attempt.
// Channel binding is not offered: a client-first-message with "p=" is refused (28000); "n,," and "y,," are
// accepted ("y" only says the client could have bound, which is fine because we never advertise -PLUS).
class ScramServer {
 public:
  explicit ScramServer(ScramSecret secret);
  // Fixes the server's part of the nonce instead of drawing 18 random bytes. For tests (RFC vectors).
  ScramServer(ScramSecret secret, std::string server_nonce);

  // client-first-message → server-first-message. 08P01 when malformed or out of turn; 0A000 for an
  // authorization identity or a mandatory extension ("m="); 28000 for channel binding.
  [[nodiscard]] std::expected<std::string, Error> handle_client_first(std::string_view client_first);

  // client-final-message → server-final-message ("v=<base64 ServerSignature>"). 28P01 "password
  // authentication failed" for a wrong proof or nonce; 08P01 when malformed or out of turn.
  [[nodiscard]] std::expected<std::string, Error> handle_client_final(std::string_view client_final);

  // True once handle_client_final has succeeded.
  [[nodiscard]] bool authenticated() const { return state_ == State::kAuthenticated; }

  // After success: the ClientKey recovered from the proof, which can log in to a server holding the same
  // secret. All zeros before that.
  [[nodiscard]] const std::array<std::uint8_t, 32>& client_key() const { return client_key_; }

 private:
  // kExpectClientFirst → kExpectClientFinal → kAuthenticated; any error moves to kFailed for good, so a
  // client cannot retry a proof against the same nonce.
  enum class State { kExpectClientFirst, kExpectClientFinal, kAuthenticated, kFailed };

  std::unexpected<Error> fail(std::string sqlstate, std::string message);

  ScramSecret secret_;
  std::string server_nonce_;
  State state_ = State::kExpectClientFirst;
  std::string gs2_header_;         // "n,," or "y,,": the client must echo it, base64, in c=
  std::string client_nonce_;
  std::string client_first_bare_;  // with server_first_, the first two parts of AuthMessage
  std::string server_first_;
  std::array<std::uint8_t, 32> client_key_{};
};

}  // namespace pooler::protocol
