// BackendLogin against a fake PostgreSQL server written here over protocol/'s own server pieces (writer,
// md5_verify, ScramServer): every authentication method, the server's errors, hostile framing, credentials
// that cannot answer, and that no secret ever shows in an error message.
#include "protocol/backend_login.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "protocol/auth_messages.h"
#include "protocol/base64.h"
#include "protocol/frame.h"
#include "protocol/md5_auth.h"
#include "protocol/scram.h"
#include "protocol/startup.h"
#include "protocol/writer.h"
#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using Status = BackendLogin::Status;
using testing::MessageBuilder;

constexpr std::string_view kUser = "app";
constexpr std::string_view kPassword = "hunter2-very-secret";
constexpr std::string_view kSalt = "0123456789abcdef";
constexpr int kIterations = 16;
constexpr std::array<std::uint8_t, 4> kMd5Salt{0xde, 0xad, 0x01, 0x7f};

std::vector<std::pair<std::string, std::string>> startup_params() {
  return {{"user", std::string(kUser)}, {"database", "appdb"}, {"application_name", "pooler"}};
}

const ScramSecret& scram_secret() {
  static const ScramSecret secret = make_scram_secret(kPassword, kSalt, kIterations);
  return secret;
}

ScramKeys scram_keys() { return scram_keys_from_password(kPassword, kSalt, kIterations); }

// Everything secret the tests hand BackendLogin, in every spelling an error message could leak it in.
std::vector<std::string> secret_spellings() {
  std::vector<std::string> out = {std::string(kPassword), md5_secret(kPassword, kUser),
                                  md5_secret(kPassword, kUser).substr(3)};
  ScramKeys keys = scram_keys();
  for (const auto& key : {keys.client_key, keys.server_key}) {
    std::string raw(reinterpret_cast<const char*>(key.data()), key.size());
    out.push_back(raw);
    out.push_back(base64_encode(raw));
  }
  return out;
}

void expect_no_secret(const BackendLogin& login) {
  for (const auto& s : secret_spellings()) {
    EXPECT_EQ(login.error().message.find(s), std::string::npos) << login.error().message;
  }
}

enum class Auth { kTrust, kCleartext, kMd5, kScram };

// A PostgreSQL server as far as login goes: reads the StartupMessage, asks for `auth`, checks the answer
// with protocol/'s server-side code, and on success sends AuthenticationOk, ParameterStatus, BackendKeyData
// and ReadyForQuery (plus `trailing` bytes); on failure a FATAL 28P01 ErrorResponse.
class FakeServer {
 public:
  explicit FakeServer(Auth auth, std::string stored = std::string(kPassword))
      : auth_(auth), stored_(std::move(stored)), scram_(scram_secret()) {}

  bool skip_sasl_final = false;  // AuthenticationOk straight after the client-final-message
  std::string trailing;          // sent after ReadyForQuery

  // The server's answer to what the client sent (any split).
  std::string receive(std::string_view bytes) {
    in_.append(bytes);
    std::string out;
    for (;;) {
      if (!got_startup_) {
        auto decoded = decode_startup(in_);
        EXPECT_TRUE(decoded) << decoded.error().message;
        if (!decoded || !*decoded) return out;
        auto* startup = std::get_if<StartupMessage>(&(*decoded)->packet);
        EXPECT_NE(startup, nullptr);
        startup_params = startup->params;
        in_.erase(0, (*decoded)->consumed);
        got_startup_ = true;
        ask(out);
        continue;
      }
      auto frame = decode_frame(in_, 1 << 20);
      EXPECT_TRUE(frame);
      if (!frame || !*frame) return out;
      std::string body((*frame)->body);
      EXPECT_EQ((*frame)->type, 'p');
      in_.erase(0, (*frame)->size);
      answer(body, out);
    }
  }

  std::vector<std::pair<std::string, std::string>> startup_params;
  bool authenticated = false;
  const ScramServer& scram() const { return scram_; }

 private:
  void ask(std::string& out) {
    switch (auth_) {
      case Auth::kTrust: succeed(out); break;
      case Auth::kCleartext: write_authentication_cleartext_password(out); break;
      case Auth::kMd5: write_authentication_md5_password(out, kMd5Salt); break;
      case Auth::kScram: write_authentication_sasl(out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}); break;
    }
  }

  void answer(std::string_view body, std::string& out) {
    switch (auth_) {
      case Auth::kTrust: ADD_FAILURE() << "message after trust"; break;
      case Auth::kCleartext: {
        auto password = parse_password_message(body);
        ASSERT_TRUE(password);
        if (*password == stored_) return succeed(out);
        return refuse(out);
      }
      case Auth::kMd5: {
        auto response = parse_password_message(body);
        ASSERT_TRUE(response);
        if (md5_verify(stored_, kUser, kMd5Salt, *response)) return succeed(out);
        return refuse(out);
      }
      case Auth::kScram: {
        if (!sasl_started_) {
          sasl_started_ = true;
          auto initial = parse_sasl_initial_response(body);
          ASSERT_TRUE(initial);
          EXPECT_EQ(initial->mechanism, kScramSha256);
          auto server_first = scram_.handle_client_first(initial->data);
          ASSERT_TRUE(server_first) << server_first.error().message;
          return write_authentication_sasl_continue(out, *server_first);
        }
        auto response = parse_sasl_response(body);
        ASSERT_TRUE(response);
        auto server_final = scram_.handle_client_final(*response);
        if (!server_final) return refuse(out);
        if (!skip_sasl_final) write_authentication_sasl_final(out, *server_final);
        return succeed(out);
      }
    }
  }

  void succeed(std::string& out) {
    authenticated = true;
    write_authentication_ok(out);
    write_parameter_status(out, "server_version", "16.2");
    write_parameter_status(out, "client_encoding", "UTF8");
    write_parameter_status(out, "TimeZone", "UTC");
    write_backend_key_data(out, 4242, -559038737);
    write_ready_for_query(out, 'I');
    out += trailing;
  }

  void refuse(std::string& out) {
    write_error_response(out, ErrorFields{Severity::kFatal, "28P01",
                                          "password authentication failed for user \"app\"", "", ""});
  }

  Auth auth_;
  std::string stored_;
  ScramServer scram_;
  std::string in_;
  bool got_startup_ = false;
  bool sasl_started_ = false;
};

// Moves bytes between the two until the login ends or nobody has anything to say; `byte_at_a_time` feeds the
// server's answers one byte per call.
Status run(BackendLogin& login, FakeServer& server, bool byte_at_a_time = false) {
  std::string to_server = login.start();
  for (int round = 0; round < 10 && login.status() == Status::kInProgress; ++round) {
    std::string to_client = server.receive(to_server);
    to_server.clear();
    if (to_client.empty()) break;
    if (byte_at_a_time) {
      for (char c : to_client) (void)login.feed(std::string_view(&c, 1), to_server);
    } else {
      (void)login.feed(to_client, to_server);
    }
  }
  return login.status();
}

void expect_logged_in(const BackendLogin& login) {
  ASSERT_EQ(login.status(), Status::kDone) << login.error().sqlstate << " " << login.error().message;
  const std::vector<std::pair<std::string, std::string>> params = {
      {"server_version", "16.2"}, {"client_encoding", "UTF8"}, {"TimeZone", "UTC"}};
  EXPECT_EQ(login.params(), params);
  EXPECT_EQ(login.backend_pid(), 4242);
  EXPECT_EQ(login.cancel_key(), -559038737);
  EXPECT_EQ(login.leftover(), "");
}

// Feeds one server byte stream after start(); returns the status and what the login answered.
Status feed_raw(BackendLogin& login, std::string_view server_bytes, std::string* answered = nullptr) {
  (void)login.start();
  std::string out;
  auto status = login.feed(server_bytes, out);
  if (answered) *answered = out;
  return status;
}

std::string auth_request(std::int32_t code, std::string_view extra = {}) {
  return MessageBuilder().int32(code).raw(extra).message('R');
}

std::string ok_then_ready() {
  std::string s;
  write_authentication_ok(s);
  write_ready_for_query(s, 'I');
  return s;
}

// The StartupMessage is protocol 3.0 with the parameters in order, and the server sees them.
TEST(ProtocolBackendLoginTest, StartupMessage) {
  BackendLogin login(startup_params(), NoCredentials{});
  std::string packet = login.start();
  auto decoded = decode_startup(packet);
  ASSERT_TRUE(decoded && *decoded);
  EXPECT_EQ((*decoded)->consumed, packet.size());
  auto* startup = std::get_if<StartupMessage>(&(*decoded)->packet);
  ASSERT_NE(startup, nullptr);
  EXPECT_EQ(startup->major, 3);
  EXPECT_EQ(startup->minor, 0);
  EXPECT_EQ(startup->params, startup_params());
}

// trust: AuthenticationOk straight away, then the parameters, the key and ReadyForQuery.
TEST(ProtocolBackendLoginTest, Trust) {
  BackendLogin login(startup_params(), NoCredentials{});
  FakeServer server(Auth::kTrust);
  run(login, server);
  expect_logged_in(login);
  EXPECT_EQ(server.startup_params, startup_params());
}

// Cleartext with the password.
TEST(ProtocolBackendLoginTest, CleartextPassword) {
  BackendLogin login(startup_params(), PlainPassword{std::string(kPassword)});
  FakeServer server(Auth::kCleartext);
  run(login, server);
  expect_logged_in(login);
  EXPECT_TRUE(server.authenticated);
}

// A wrong password: the server's FATAL 28P01 comes through with its SQLSTATE, message and severity.
TEST(ProtocolBackendLoginTest, ServerErrorPassedThrough) {
  BackendLogin login(startup_params(), PlainPassword{"wrong"});
  FakeServer server(Auth::kCleartext);
  EXPECT_EQ(run(login, server), Status::kFailed);
  EXPECT_EQ(login.error().sqlstate, "28P01");
  EXPECT_EQ(login.error().message, "password authentication failed for user \"app\"");
  EXPECT_EQ(login.error_severity(), "FATAL");
  EXPECT_FALSE(server.authenticated);
}

// md5 with the password, against a server storing the md5 secret and one storing the plain password.
TEST(ProtocolBackendLoginTest, Md5WithPassword) {
  for (const std::string& stored : {md5_secret(kPassword, kUser), std::string(kPassword)}) {
    BackendLogin login(startup_params(), PlainPassword{std::string(kPassword)});
    FakeServer server(Auth::kMd5, stored);
    run(login, server);
    expect_logged_in(login);
    EXPECT_TRUE(server.authenticated);
  }
}

// md5 with only the stored secret (what auth_query gives for md5 users).
TEST(ProtocolBackendLoginTest, Md5WithSecret) {
  BackendLogin login(startup_params(), Md5Secret{md5_secret(kPassword, kUser)});
  FakeServer server(Auth::kMd5, md5_secret(kPassword, kUser));
  run(login, server);
  expect_logged_in(login);
  EXPECT_TRUE(server.authenticated);
}

// md5 with the wrong secret: the server refuses, and the error names no secret.
TEST(ProtocolBackendLoginTest, Md5WrongSecret) {
  BackendLogin login(startup_params(), Md5Secret{md5_secret("other", kUser)});
  FakeServer server(Auth::kMd5, md5_secret(kPassword, kUser));
  EXPECT_EQ(run(login, server), Status::kFailed);
  EXPECT_EQ(login.error().sqlstate, "28P01");
  expect_no_secret(login);
}

// SCRAM with keys only: the server accepts the proof, and the login checks the server's signature.
TEST(ProtocolBackendLoginTest, ScramWithKeys) {
  BackendLogin login(startup_params(), scram_keys());
  FakeServer server(Auth::kScram);
  run(login, server);
  expect_logged_in(login);
  EXPECT_TRUE(server.scram().authenticated());
  EXPECT_EQ(server.scram().client_key(), scram_keys().client_key);
}

// SCRAM with the password: the keys are derived from the server's salt and iterations.
TEST(ProtocolBackendLoginTest, ScramWithPassword) {
  BackendLogin login(startup_params(), PlainPassword{std::string(kPassword)});
  FakeServer server(Auth::kScram);
  run(login, server);
  expect_logged_in(login);
  EXPECT_TRUE(server.scram().authenticated());
}

// A server without the right ServerKey cannot sign: 28P01 even though the server accepted our proof.
TEST(ProtocolBackendLoginTest, ScramWrongServerSignature) {
  ScramKeys keys = scram_keys();
  keys.server_key[3] ^= 0x40;
  BackendLogin login(startup_params(), keys);
  FakeServer server(Auth::kScram);
  EXPECT_EQ(run(login, server), Status::kFailed);
  EXPECT_EQ(login.error().sqlstate, "28P01");
  EXPECT_NE(login.error().message.find("server signature mismatch"), std::string::npos);
  EXPECT_EQ(login.error_severity(), "");
  EXPECT_TRUE(server.scram().authenticated());
  expect_no_secret(login);
}

// A wrong ClientKey: the server refuses the proof with its own FATAL 28P01.
TEST(ProtocolBackendLoginTest, ScramWrongClientKey) {
  ScramKeys keys = scram_keys();
  keys.client_key[0] ^= 0x01;
  BackendLogin login(startup_params(), keys);
  FakeServer server(Auth::kScram);
  EXPECT_EQ(run(login, server), Status::kFailed);
  EXPECT_EQ(login.error().sqlstate, "28P01");
  EXPECT_EQ(login.error_severity(), "FATAL");
  expect_no_secret(login);
}

// AuthenticationOk without SASLFinal: the server never proved itself, so the login fails (08P01).
TEST(ProtocolBackendLoginTest, ScramOkWithoutServerFinal) {
  BackendLogin login(startup_params(), scram_keys());
  FakeServer server(Auth::kScram);
  server.skip_sasl_final = true;
  EXPECT_EQ(run(login, server), Status::kFailed);
  EXPECT_EQ(login.error().sqlstate, "08P01");
  EXPECT_NE(login.error().message.find("AuthenticationOk"), std::string::npos);
}

// Every method fed one byte at a time ends exactly as fed whole.
TEST(ProtocolBackendLoginTest, ByteAtATime) {
  for (Auth auth : {Auth::kTrust, Auth::kCleartext, Auth::kMd5, Auth::kScram}) {
    LoginCredentials credentials = PlainPassword{std::string(kPassword)};
    if (auth == Auth::kScram) credentials = scram_keys();
    BackendLogin login(startup_params(), credentials);
    login.set_scram_client_nonce("fixed-nonce");
    FakeServer server(auth);
    server.trailing = MessageBuilder().cstring("x").message('N').substr(0, 3);
    run(login, server, true);
    ASSERT_EQ(login.status(), Status::kDone) << login.error().message;
    EXPECT_EQ(login.params().size(), 3u);
    EXPECT_EQ(login.backend_pid(), 4242);
    EXPECT_EQ(login.cancel_key(), -559038737);
    // ReadyForQuery ended its one-byte feed; the trailing bytes came in calls after kDone, which take nothing.
    EXPECT_EQ(login.leftover(), "");
  }
}

// Bytes after ReadyForQuery (the start of the next message) are kept, and later feeds change nothing.
TEST(ProtocolBackendLoginTest, LeftoverKept) {
  BackendLogin login(startup_params(), NoCredentials{});
  std::string stream = ok_then_ready() + std::string("N\0\0", 3);
  std::string out;
  EXPECT_EQ(feed_raw(login, stream, &out), Status::kDone);
  EXPECT_EQ(login.leftover(), std::string("N\0\0", 3));
  EXPECT_EQ(out, "");
  EXPECT_EQ(login.feed("more", out), Status::kDone);
  EXPECT_EQ(login.leftover(), std::string("N\0\0", 3));
}

// A repeated ParameterStatus replaces the earlier value in place; notices and NegotiateProtocolVersion pass.
TEST(ProtocolBackendLoginTest, ParameterStatusUpdatedInPlace) {
  std::string s;
  std::vector<std::string> unrecognized = {"_pq_.x"};
  write_negotiate_protocol_version(s, 0, unrecognized);
  write_authentication_ok(s);
  write_parameter_status(s, "a", "1");
  write_notice_response(s, ErrorFields{Severity::kWarning, "01000", "note", "", ""});
  write_parameter_status(s, "b", "2");
  write_parameter_status(s, "a", "3");
  write_ready_for_query(s, 'T');
  BackendLogin login(startup_params(), NoCredentials{});
  EXPECT_EQ(feed_raw(login, s), Status::kDone);
  const std::vector<std::pair<std::string, std::string>> params = {{"a", "3"}, {"b", "2"}};
  EXPECT_EQ(login.params(), params);
  EXPECT_EQ(login.backend_pid(), 0);
}

// Framing and ordering problems from the server are all 08P01.
TEST(ProtocolBackendLoginTest, ProtocolViolations) {
  std::string ok;
  write_authentication_ok(ok);
  std::string status;
  write_parameter_status(status, "a", "b");
  struct Case {
    std::string name;
    std::string stream;
  };
  const std::vector<Case> cases = {
      {"oversized", MessageBuilder().raw(std::string(100, 'x')).message('N')},
      {"length below 4", MessageBuilder().message('R', -1)},
      {"negative length", std::string("R\xff\xff\xff\xff", 5)},
      {"unexpected type", ok + MessageBuilder().int16(0).message('D')},
      {"ReadyForQuery before AuthenticationOk", MessageBuilder().byte('I').message('Z')},
      {"ParameterStatus before AuthenticationOk", status},
      {"BackendKeyData before AuthenticationOk", MessageBuilder().int32(1).int32(2).message('K')},
      {"short BackendKeyData", ok + MessageBuilder().int32(1).message('K')},
      {"bad ReadyForQuery status", ok + MessageBuilder().byte('X').message('Z')},
      {"ParameterStatus without value", ok + MessageBuilder().cstring("a").message('S')},
      {"AuthenticationOk with a body", auth_request(0, "x")},
      {"short authentication request", MessageBuilder().int16(0).message('R')},
      {"authentication after AuthenticationOk", ok + ok},
      {"SASLContinue out of turn", auth_request(11, "r=abc,s=AAAA,i=1")},
      {"SASLFinal out of turn", auth_request(12, "v=AAAA")},
      {"md5 salt too short", auth_request(5, "ab")},
      {"SASL list unterminated", auth_request(10, std::string("SCRAM-SHA-256\0", 14))},
      {"SASL without SCRAM-SHA-256", auth_request(10, std::string("SCRAM-SHA-256-PLUS\0\0", 20))},
      {"malformed ErrorResponse", MessageBuilder().byte('C').cstring("28P01").message('E')},
      {"ErrorResponse without SQLSTATE", MessageBuilder().byte('M').cstring("no").byte(0).message('E')},
      {"malformed NegotiateProtocolVersion", MessageBuilder().int32(0).int32(2).cstring("a").message('v')},
  };
  for (const auto& c : cases) {
    BackendLogin login(startup_params(), PlainPassword{std::string(kPassword)}, 64);
    EXPECT_EQ(feed_raw(login, c.stream), Status::kFailed) << c.name;
    EXPECT_EQ(login.error().sqlstate, "08P01") << c.name << ": " << login.error().message;
    EXPECT_EQ(login.leftover(), "") << c.name;
    expect_no_secret(login);
    std::string out;
    EXPECT_EQ(login.feed(ok_then_ready(), out), Status::kFailed) << c.name;
    EXPECT_EQ(out, "");
  }
}

// Kerberos, SCM, GSSAPI, SSPI and unknown requests are unsupported (08P01).
TEST(ProtocolBackendLoginTest, UnsupportedAuthentication) {
  for (std::int32_t code : {2, 6, 7, 8, 9, 4, 13, -1}) {
    BackendLogin login(startup_params(), PlainPassword{std::string(kPassword)});
    EXPECT_EQ(feed_raw(login, auth_request(code)), Status::kFailed) << code;
    EXPECT_EQ(login.error().sqlstate, "08P01") << code;
    EXPECT_NE(login.error().message.find("unsupported authentication request"), std::string::npos);
  }
}

// Credentials that cannot answer the server's request: 28000, naming the request and why, never the secret.
TEST(ProtocolBackendLoginTest, CredentialsThatCannotAnswer) {
  struct Case {
    LoginCredentials credentials;
    std::string request;
    std::string named;   // what the message must say the server asked for
    std::string reason;  // and why we cannot
  };
  const std::string sasl = auth_request(10, std::string("SCRAM-SHA-256\0\0", 15));
  const std::string md5 = auth_request(5, "salt");
  const std::string cleartext = auth_request(3);
  const std::vector<Case> cases = {
      {NoCredentials{}, cleartext, "cleartext password", "no password"},
      {NoCredentials{}, md5, "md5", "no password"},
      {NoCredentials{}, sasl, "SCRAM-SHA-256", "no password"},
      {Md5Secret{md5_secret(kPassword, kUser)}, cleartext, "cleartext password", "md5 secret"},
      {Md5Secret{md5_secret(kPassword, kUser)}, sasl, "SCRAM-SHA-256", "md5 secret"},
      {Md5Secret{"md5nothex"}, md5, "md5", "malformed"},
      {scram_keys(), cleartext, "cleartext password", "SCRAM-SHA-256 keys"},
      {scram_keys(), md5, "md5", "SCRAM-SHA-256 keys"},
  };
  for (const auto& c : cases) {
    BackendLogin login(startup_params(), c.credentials);
    std::string out;
    EXPECT_EQ(feed_raw(login, c.request, &out), Status::kFailed) << c.named;
    EXPECT_EQ(login.error().sqlstate, "28000") << login.error().message;
    EXPECT_NE(login.error().message.find(c.named), std::string::npos) << login.error().message;
    EXPECT_NE(login.error().message.find(c.reason), std::string::npos) << login.error().message;
    EXPECT_NE(login.error().message.find("\"app\""), std::string::npos) << login.error().message;
    EXPECT_EQ(out, "");
    expect_no_secret(login);
  }
}

// The answers on the wire: cleartext is a PasswordMessage, md5 is salted from the secret, SASL picks plain
// SCRAM-SHA-256 even when -PLUS is listed first.
TEST(ProtocolBackendLoginTest, AnswersOnTheWire) {
  {
    BackendLogin login(startup_params(), PlainPassword{"pw"});
    std::string out;
    EXPECT_EQ(feed_raw(login, auth_request(3), &out), Status::kInProgress);
    EXPECT_EQ(out, MessageBuilder().cstring("pw").message('p'));
  }
  {
    BackendLogin login(startup_params(), Md5Secret{md5_secret("pw", kUser)});
    std::string out;
    EXPECT_EQ(feed_raw(login, auth_request(5, "\xde\xad\x01\x7f"), &out), Status::kInProgress);
    auto frame = decode_frame(out, 1024);
    ASSERT_TRUE(frame && *frame);
    auto response = parse_password_message((*frame)->body);
    ASSERT_TRUE(response);
    EXPECT_TRUE(md5_verify("pw", kUser, kMd5Salt, *response));
  }
  {
    BackendLogin login(startup_params(), scram_keys());
    login.set_scram_client_nonce("nonce");
    std::string out;
    auto request = auth_request(10, std::string("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 34));
    EXPECT_EQ(feed_raw(login, request, &out), Status::kInProgress);
    EXPECT_EQ(out, MessageBuilder().cstring("SCRAM-SHA-256").int32(13).raw("n,,n=,r=nonce").message('p'));
  }
}

// A SCRAM protocol problem inside SASLContinue keeps ScramClient's 08P01; a server e= error is 28P01.
TEST(ProtocolBackendLoginTest, ScramErrorsMapped) {
  const std::string sasl = auth_request(10, std::string("SCRAM-SHA-256\0\0", 15));
  {
    BackendLogin login(startup_params(), scram_keys());
    login.set_scram_client_nonce("nonce");
    EXPECT_EQ(feed_raw(login, sasl + auth_request(11, "r=other,s=AAAA,i=1")), Status::kFailed);
    EXPECT_EQ(login.error().sqlstate, "08P01");
  }
  {
    BackendLogin login(startup_params(), scram_keys());
    login.set_scram_client_nonce("nonce");
    EXPECT_EQ(feed_raw(login, sasl + auth_request(11, "r=nonceX,s=AAAA,i=1") + auth_request(12, "e=other-error")),
              Status::kFailed);
    EXPECT_EQ(login.error().sqlstate, "28P01");
    EXPECT_NE(login.error().message.find("other-error"), std::string::npos);
    expect_no_secret(login);
  }
  {
    // A password login refuses to derive keys with more iterations than allowed.
    BackendLogin login(startup_params(), PlainPassword{std::string(kPassword)});
    login.set_scram_client_nonce("nonce");
    login.set_scram_max_iterations(100);
    EXPECT_EQ(feed_raw(login, sasl + auth_request(11, "r=nonceX,s=AAAA,i=101")), Status::kFailed);
    EXPECT_EQ(login.error().sqlstate, "08P01");
  }
}

}  // namespace
}  // namespace pooler::protocol
