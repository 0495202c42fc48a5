// BackendLogin: the startup and authentication flow of the protocol docs ("Start-up"), client side, from the
// StartupMessage to the first ReadyForQuery.
#include "protocol/backend_login.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <cassert>

#include "protocol/auth_messages.h"
#include "protocol/error_response.h"
#include "protocol/frame.h"
#include "protocol/md5_auth.h"
#include "protocol/reader.h"
#include "protocol/scram.h"
#include "protocol/writer.h"

namespace pooler::protocol {
namespace {

constexpr std::int32_t kProtocolVersion30 = 3 << 16;

// Server-chosen text in our own error messages: see printable_excerpt.
std::string printable(std::string_view s, std::size_t max = 100) { return printable_excerpt(s, max); }

std::string printable_type(char type) {
  auto u = static_cast<unsigned char>(type);
  if (u >= 0x20 && u < 0x7f) return fmt::format("'{}'", type);
  return fmt::format("0x{:02x}", u);
}

std::string_view unsupported_name(std::int32_t code) {
  switch (code) {
    case kAuthKerberosV5: return "Kerberos V5";
    case kAuthScmCredential: return "SCM credentials";
    case kAuthGss: return "GSSAPI";
    case kAuthGssContinue: return "GSSAPI continuation";
    case kAuthSspi: return "SSPI";
    default: return "unknown";
  }
}

// Five characters from [0-9A-Z], as the SQLSTATE of every error we hand on must be.
bool is_sqlstate(std::string_view s) {
  if (s.size() != 5) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

// PasswordMessage and SASLResponse: type 'p', the body as given.
void write_password_message(std::string& out, std::string_view password) {
  auto start = begin_message(out, 'p');
  append_cstring(out, password);
  finish_message(out, start);
}

void write_sasl_response(std::string& out, std::string_view data) {
  auto start = begin_message(out, 'p');
  out.append(data);
  finish_message(out, start);
}

void write_sasl_initial_response(std::string& out, std::string_view mechanism, std::string_view data) {
  auto start = begin_message(out, 'p');
  append_cstring(out, mechanism);
  append_int32(out, static_cast<std::int32_t>(data.size()));
  out.append(data);
  finish_message(out, start);
}

}  // namespace

BackendLogin::BackendLogin(std::vector<std::pair<std::string, std::string>> startup, LoginCredentials credentials,
                           std::size_t max_message_size)
    : startup_(std::move(startup)), credentials_(std::move(credentials)), max_message_size_(max_message_size) {
  // The last "user" wins, as in PostgreSQL's reading of the StartupMessage.
  for (const auto& [key, value] : startup_) {
    if (key == "user") user_ = value;
  }
  assert(!user_.empty());
}

std::string BackendLogin::start() {
  assert(!started_);
  started_ = true;
  // No type byte: Int32 length (counting itself), Int32 version, name/value Strings, a terminating zero.
  std::string out(4, '\0');
  append_int32(out, kProtocolVersion30);
  for (const auto& [key, value] : startup_) {
    append_cstring(out, key);
    append_cstring(out, value);
  }
  out.push_back('\0');
  finish_message(out, 0);
  return out;
}

BackendLogin::Status BackendLogin::fail(std::string sqlstate, std::string message) {
  assert(is_sqlstate(sqlstate));
  status_ = Status::kFailed;
  error_ = Error{std::move(sqlstate), std::move(message)};
  return status_;
}

BackendLogin::Status BackendLogin::feed(std::string_view data, std::string& out) {
  if (status_ != Status::kInProgress) return status_;
  assert(started_);
  in_.append(data);
  std::size_t pos = 0;
  while (status_ == Status::kInProgress) {
    auto frame = decode_frame(std::string_view(in_).substr(pos), max_message_size_);
    // decode_frame calls an oversized message 54000 (a limit of ours), but during login a server that sends
    // one is simply not speaking the protocol we can follow.
    if (!frame) {
      fail("08P01", frame.error().message);
      break;
    }
    if (!frame->has_value()) break;
    const Frame f = **frame;
    pos += f.size;
    handle(f.type, f.body, out);
  }
  if (status_ == Status::kFailed) {
    in_.clear();
  } else {
    // After ReadyForQuery, what remains belongs to whoever takes over the connection.
    in_.erase(0, pos);
  }
  return status_;
}

BackendLogin::Status BackendLogin::handle(char type, std::string_view body, std::string& out) {
  Reader r(body);
  switch (type) {
    case 'R':
      if (authenticated_) return fail("08P01", "authentication request from server after AuthenticationOk");
      return handle_auth(body, out);
    case 'E': {
      auto err = parse_error_response(body);
      if (!err) return fail("08P01", fmt::format("malformed ErrorResponse from server: {}", err.error().message));
      severity_ = err->severity;
      if (!is_sqlstate(err->sqlstate)) {
        return fail("08P01", fmt::format("server sent an ErrorResponse without a valid SQLSTATE: {}",
                                         printable(err->message, 200)));
      }
      status_ = Status::kFailed;
      error_ = Error{std::move(err->sqlstate), std::move(err->message)};
      return status_;
    }
    case 'N':
      // Notices (e.g. about an expiring password) do not change the outcome.
      return status_;
    case 'v': {
      // NegotiateProtocolVersion: the server lacks a minor version or _pq_ option we asked for and goes on
      // without it. We ask for plain 3.0, so nothing changes; the body is still checked.
      if (authenticated_) return fail("08P01", "NegotiateProtocolVersion from server after AuthenticationOk");
      auto minor = r.int32();
      auto count = r.int32();
      if (!minor || !count || *count < 0) return fail("08P01", "malformed NegotiateProtocolVersion from server");
      for (std::int32_t i = 0; i < *count; ++i) {
        if (!r.cstring()) return fail("08P01", "malformed NegotiateProtocolVersion from server");
      }
      if (!r.at_end()) return fail("08P01", "malformed NegotiateProtocolVersion from server");
      return status_;
    }
    case 'S': {
      if (!authenticated_) return fail("08P01", "ParameterStatus from server before AuthenticationOk");
      auto name = r.cstring();
      auto value = r.cstring();
      if (!name || !value || !r.at_end()) return fail("08P01", "malformed ParameterStatus from server");
      for (auto& [n, v] : params_) {
        if (n == *name) {
          v = std::string(*value);
          return status_;
        }
      }
      params_.emplace_back(std::string(*name), std::string(*value));
      return status_;
    }
    case 'K': {
      if (!authenticated_) return fail("08P01", "BackendKeyData from server before AuthenticationOk");
      auto pid = r.int32();
      auto key = r.int32();
      // Protocol 3.0 keys are exactly four bytes (longer ones come only with 3.2, which we do not ask for).
      if (!pid || !key || !r.at_end()) return fail("08P01", "malformed BackendKeyData from server");
      pid_ = *pid;
      key_ = *key;
      return status_;
    }
    case 'Z': {
      if (!authenticated_) return fail("08P01", "ReadyForQuery from server before AuthenticationOk");
      auto tx = r.byte();
      if (!tx || !r.at_end() || (*tx != 'I' && *tx != 'T' && *tx != 'E')) {
        return fail("08P01", "malformed ReadyForQuery from server");
      }
      status_ = Status::kDone;
      return status_;
    }
    default:
      return fail("08P01", fmt::format("unexpected message of type {} from server during login", printable_type(type)));
  }
}

BackendLogin::Status BackendLogin::handle_auth(std::string_view body, std::string& out) {
  Reader r(body);
  auto code = r.int32();
  if (!code) return fail("08P01", "malformed authentication request from server");
  auto out_of_turn = [this](std::string_view what) {
    return fail("08P01", fmt::format("unexpected {} from server during authentication", what));
  };

  switch (*code) {
    case kAuthOk:
      if (!r.at_end()) return fail("08P01", "malformed AuthenticationOk from server");
      // The server's signature in SASLFinal is what proves it holds the secret; skipping it is not success.
      if (step_ == AuthStep::kSaslContinue || step_ == AuthStep::kSaslFinal) {
        return fail("08P01", "server sent AuthenticationOk before completing SCRAM authentication, without "
                             "proving that it holds the user's secret");
      }
      authenticated_ = true;
      return status_;

    case kAuthCleartextPassword: {
      if (step_ != AuthStep::kAwaitRequest) return out_of_turn("AuthenticationCleartextPassword");
      if (!r.at_end()) return fail("08P01", "malformed AuthenticationCleartextPassword from server");
      auto* password = std::get_if<PlainPassword>(&credentials_);
      if (!password) return cannot_answer("a cleartext password");
      write_password_message(out, password->password);
      step_ = AuthStep::kAwaitOk;
      return status_;
    }

    case kAuthMd5Password: {
      if (step_ != AuthStep::kAwaitRequest) return out_of_turn("AuthenticationMD5Password");
      auto salt = r.bytes(4);
      if (!salt || !r.at_end()) return fail("08P01", "malformed AuthenticationMD5Password from server");
      std::string secret;
      if (auto* password = std::get_if<PlainPassword>(&credentials_)) {
        secret = md5_secret(password->password, user_);
      } else if (auto* md5 = std::get_if<Md5Secret>(&credentials_)) {
        if (!is_md5_secret(md5->secret)) {
          return fail("28000", fmt::format("server requested md5 password authentication for user \"{}\", but "
                                           "the md5 secret configured for that user is malformed",
                                           printable(user_)));
        }
        secret = md5->secret;
      } else {
        return cannot_answer("md5 password authentication");
      }
      // "md5" + md5(hex(md5(password + user)) + salt); the stored secret is "md5" + that inner hex.
      std::string salted = secret.substr(3);
      salted.append(*salt);
      write_password_message(out, "md5" + md5_hex(salted));
      OPENSSL_cleanse(secret.data(), secret.size());
      OPENSSL_cleanse(salted.data(), salted.size());
      step_ = AuthStep::kAwaitOk;
      return status_;
    }

    case kAuthSasl:
      if (step_ != AuthStep::kAwaitRequest) return out_of_turn("AuthenticationSASL");
      return handle_sasl(r.rest(), out);

    case kAuthSaslContinue: {
      if (step_ != AuthStep::kSaslContinue) return out_of_turn("AuthenticationSASLContinue");
      auto client_final = scram_->handle_server_first(r.rest());
      if (!client_final) return fail(client_final.error().sqlstate, client_final.error().message);
      write_sasl_response(out, *client_final);
      step_ = AuthStep::kSaslFinal;
      return status_;
    }

    case kAuthSaslFinal: {
      if (step_ != AuthStep::kSaslFinal) return out_of_turn("AuthenticationSASLFinal");
      auto verified = scram_->handle_server_final(r.rest());
      if (!verified) return fail(verified.error().sqlstate, verified.error().message);
      step_ = AuthStep::kAwaitOk;
      return status_;
    }

    default:
      return fail("08P01", fmt::format("unsupported authentication request from server: {} (code {})",
                                       unsupported_name(*code), *code));
  }
}

BackendLogin::Status BackendLogin::handle_sasl(std::string_view mechanisms, std::string& out) {
  // A list of Strings ended by an empty one, and nothing after it.
  Reader r(mechanisms);
  bool scram = false;
  std::string offered;
  for (;;) {
    auto name = r.cstring();
    if (!name) return fail("08P01", "malformed AuthenticationSASL from server");
    if (name->empty()) break;
    // -PLUS needs channel binding over TLS, which this login does not do; plain SCRAM is always offered too.
    if (*name == kScramSha256) scram = true;
    if (!offered.empty()) offered += ", ";
    offered += printable(*name, 40);
  }
  if (!r.at_end()) return fail("08P01", "malformed AuthenticationSASL from server");
  if (!scram) {
    return fail("08P01", fmt::format("unsupported authentication request from server: none of the SASL "
                                     "mechanisms offered ({}) is SCRAM-SHA-256",
                                     printable(offered, 200)));
  }

  if (auto* keys = std::get_if<ScramKeys>(&credentials_)) {
    if (scram_nonce_.empty()) {
      scram_.emplace(*keys);
    } else {
      scram_.emplace(*keys, scram_nonce_);
    }
  } else if (auto* password = std::get_if<PlainPassword>(&credentials_)) {
    if (scram_nonce_.empty()) {
      scram_.emplace(password->password);
    } else {
      scram_.emplace(password->password, scram_nonce_);
    }
  } else {
    return cannot_answer("SCRAM-SHA-256 authentication");
  }
  scram_->set_max_iterations(scram_max_iterations_);
  write_sasl_initial_response(out, kScramSha256, scram_->client_first());
  step_ = AuthStep::kSaslContinue;
  return status_;
}

BackendLogin::Status BackendLogin::cannot_answer(std::string_view request) {
  // Says what is missing, never what is held: the secret itself must not reach logs or clients.
  std::string_view why;
  if (std::holds_alternative<NoCredentials>(credentials_)) {
    why = "no password is configured for this user";
  } else if (std::holds_alternative<Md5Secret>(credentials_)) {
    why = "the pooler holds only an md5 secret for this user, not the password, and an md5 secret can answer "
          "only md5 authentication";
  } else if (std::holds_alternative<ScramKeys>(credentials_)) {
    why = "the pooler holds only SCRAM-SHA-256 keys for this user (from auth_query), not the password, and they "
          "can answer only SCRAM-SHA-256 authentication";
  } else {
    why = "a password cannot answer it";
  }
  return fail("28000", fmt::format("server requested {} for user \"{}\", which the pooler cannot answer: {}",
                                   request, printable(user_), why));
}

}  // namespace pooler::protocol
