// SCRAM-SHA-256 client: the RFC 7677 vector, whole exchanges against our own ScramServer (from a password
// and from keys recovered by a password login, the auth_query case), tampered keys on either side, and
// malformed or out-of-turn server messages.
#include "protocol/scram_client.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/base64.h"
#include "protocol/scram.h"

namespace pooler::protocol {
namespace {

constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

const std::string& rfc_salt() {
  static const std::string salt = *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  return salt;
}

// Runs a whole exchange of `client` against `server`; returns the client's verdict on the server-final.
std::expected<void, Error> exchange(ScramClient& client, ScramServer& server) {
  auto server_first = server.handle_client_first(client.client_first());
  if (!server_first) return std::unexpected(server_first.error());
  auto client_final = client.handle_server_first(*server_first);
  if (!client_final) return std::unexpected(client_final.error());
  auto server_final = server.handle_client_final(*client_final);
  if (!server_final) return std::unexpected(server_final.error());
  return client.handle_server_final(*server_final);
}

// A client that has sent its first message against the RFC's nonce, ready for a server-first.
ScramClient rfc_client() {
  ScramClient client(std::string("pencil"), std::string(kRfcClientNonce));
  client.set_user_name("user");
  EXPECT_EQ(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  return client;
}

// RFC 7677 section 3, with the password: our client-final and our check of the server-final are the RFC's.
TEST(ProtocolScramClientTest, Rfc7677VectorWithPassword) {
  ScramClient client = rfc_client();
  auto client_final = client.handle_server_first(kRfcServerFirst);
  ASSERT_TRUE(client_final) << client_final.error().message;
  EXPECT_EQ(*client_final, kRfcClientFinal);
  EXPECT_FALSE(client.done());
  auto verified = client.handle_server_final(kRfcServerFinal);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_TRUE(client.done());
}

// RFC 7677 section 3, with keys derived beforehand: the same messages without the password.
TEST(ProtocolScramClientTest, Rfc7677VectorWithKeys) {
  ScramKeys keys = scram_keys_from_password("pencil", rfc_salt(), 4096);
  ScramSecret secret = make_scram_secret("pencil", rfc_salt(), 4096);
  EXPECT_EQ(keys.server_key, secret.server_key);
  ScramClient client(keys, std::string(kRfcClientNonce));
  client.set_user_name("user");
  ASSERT_EQ(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  auto client_final = client.handle_server_first(kRfcServerFirst);
  ASSERT_TRUE(client_final);
  EXPECT_EQ(*client_final, kRfcClientFinal);
  EXPECT_TRUE(client.handle_server_final(kRfcServerFinal));
  EXPECT_TRUE(client.done());
}

// The default client-first is libpq's: no user name, an 18-byte random nonce in base64, fresh each time.
TEST(ProtocolScramClientTest, ClientFirstLikeLibpq) {
  ScramClient a(std::string("pw"));
  ScramClient b(std::string("pw"));
  std::string first_a = a.client_first();
  std::string first_b = b.client_first();
  EXPECT_TRUE(first_a.starts_with("n,,n=,r=")) << first_a;
  EXPECT_EQ(first_a.size(), std::string("n,,n=,r=").size() + 24);
  EXPECT_NE(first_a, first_b);
}

// A user name with ',' and '=' is escaped as saslname, so it cannot add attributes.
TEST(ProtocolScramClientTest, UserNameEscaped) {
  ScramClient client(std::string("pw"), "abc");
  client.set_user_name("a,b=c");
  EXPECT_EQ(client.client_first(), "n,,n=a=2Cb=3Dc,r=abc");
}

// Password login against our own server: both sides agree and the server recovers ClientKey.
TEST(ProtocolScramClientTest, RoundTripWithPassword) {
  ScramSecret secret = make_scram_secret("correct horse", "0123456789abcdef", 64);
  ScramServer server(secret);
  ScramClient client(std::string("correct horse"));
  auto result = exchange(client, server);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_TRUE(client.done());
  EXPECT_TRUE(server.authenticated());
  EXPECT_EQ(server.client_key(), scram_keys_from_password("correct horse", "0123456789abcdef", 64).client_key);
}

// Keys from scram_keys_from_password log in without the password.
TEST(ProtocolScramClientTest, RoundTripWithDerivedKeys) {
  ScramSecret secret = make_scram_secret("s3cret", "salty-salt", 32);
  ScramServer server(secret);
  ScramClient client(scram_keys_from_password("s3cret", "salty-salt", 32));
  auto result = exchange(client, server);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_TRUE(server.authenticated());
}

// The auth_query case: a client proves its password to the pooler (ScramServer), the pooler keeps the
// recovered ClientKey and the secret's ServerKey, and logs in to a server holding the same secret with them.
TEST(ProtocolScramClientTest, RoundTripWithKeysRecoveredFromLogin) {
  ScramSecret secret = make_scram_secret("app password", "pooler-salt-1234", 4096);
  ScramServer pooler_side(secret);
  ScramClient app(std::string("app password"));
  ASSERT_TRUE(exchange(app, pooler_side));
  ASSERT_TRUE(pooler_side.authenticated());

  ScramKeys keys{pooler_side.client_key(), secret.server_key};
  ScramServer postgres_side(secret);
  ScramClient pooler_client(keys);
  auto result = exchange(pooler_client, postgres_side);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_TRUE(pooler_client.done());
  EXPECT_TRUE(postgres_side.authenticated());
}

// A flipped bit in ClientKey gives a proof the server refuses.
TEST(ProtocolScramClientTest, WrongClientKeyRefusedByServer) {
  ScramSecret secret = make_scram_secret("pw", "salt-salt-salt", 16);
  ScramKeys keys = scram_keys_from_password("pw", "salt-salt-salt", 16);
  keys.client_key[7] ^= 0x10;
  ScramServer server(secret);
  ScramClient client(keys);
  auto result = exchange(client, server);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().sqlstate, "28P01");
  EXPECT_FALSE(server.authenticated());
  EXPECT_FALSE(client.done());
}

// A flipped bit in ServerKey: the server's (correct) signature no longer matches, and the client refuses it.
TEST(ProtocolScramClientTest, WrongServerKeyRefusesServerFinal) {
  ScramSecret secret = make_scram_secret("pw", "salt-salt-salt", 16);
  ScramKeys keys = scram_keys_from_password("pw", "salt-salt-salt", 16);
  keys.server_key[31] ^= 0x01;
  ScramServer server(secret);
  ScramClient client(keys);
  auto result = exchange(client, server);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().sqlstate, "28P01");
  EXPECT_NE(result.error().message.find("server signature mismatch"), std::string::npos);
  EXPECT_TRUE(server.authenticated());  // the server was satisfied; the client was not
  EXPECT_FALSE(client.done());
}

// A server holding a different password's secret cannot sign: the client refuses even though the proof is
// checked by nobody (an impostor that just answers v=<anything>).
TEST(ProtocolScramClientTest, ImpostorSignatureRefused) {
  ScramClient client = rfc_client();
  ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
  auto result = client.handle_server_final("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().sqlstate, "28P01");
}

// "e=" from the server is 28P01 carrying the server's error.
TEST(ProtocolScramClientTest, ServerErrorAttribute) {
  ScramClient client = rfc_client();
  ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
  auto result = client.handle_server_final("e=invalid-proof");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().sqlstate, "28P01");
  EXPECT_NE(result.error().message.find("invalid-proof"), std::string::npos);
}

// Every malformed server-first-message is 08P01, and the exchange is over after it.
TEST(ProtocolScramClientTest, MalformedServerFirst) {
  const std::string salt = ",s=W22ZaJ0SNY7soEsUEjb6gQ==";
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO";
  const std::vector<std::string> bad = {
      "",
      "garbage",
      nonce + salt + ",i=4096",                                  // the server added nothing to our nonce
      "r=XOprNGfwEbeRWgbNEkqOabc" + salt + ",i=4096",            // not our nonce
      "r=rOprNGfwEbeRWgbNEkq" + salt + ",i=4096",                // a prefix of ours
      nonce + "a b" + salt + ",i=4096",                          // nonce with a space
      nonce + "abc,s=!!!!,i=4096",                               // salt not base64
      nonce + "abc,s=,i=4096",                                   // empty salt
      nonce + "abc,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",            // bad padding
      nonce + "abc" + salt + ",i=0",                             // iterations not positive
      nonce + "abc" + salt + ",i=-1",
      nonce + "abc" + salt + ",i=4096x",
      nonce + "abc" + salt + ",i=",
      nonce + "abc" + salt + ",i=99999999999",                   // beyond int
      nonce + "abc" + salt,                                      // no iterations
      nonce + "abc,i=4096" + salt,                               // wrong order
      nonce + "abc" + salt + ",i=4096,",                         // trailing comma
      "m=ext," + nonce + "abc" + salt + ",i=4096",               // mandatory extension
      nonce + "abc" + salt + ",i=" + std::to_string(kScramMaxIterations + 1),  // too costly to derive
  };
  for (const auto& server_first : bad) {
    ScramClient client(std::string("pencil"), std::string(kRfcClientNonce));
    (void)client.client_first();
    auto result = client.handle_server_first(server_first);
    ASSERT_FALSE(result) << server_first;
    EXPECT_EQ(result.error().sqlstate, "08P01") << server_first;
    auto after = client.handle_server_final(kRfcServerFinal);
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().sqlstate, "08P01");
  }
}

// With keys nothing is derived, so the iteration count is not limited.
TEST(ProtocolScramClientTest, KeysIgnoreIterationLimit) {
  ScramClient client(ScramKeys{}, std::string(kRfcClientNonce));
  client.set_max_iterations(10);
  (void)client.client_first();
  EXPECT_TRUE(client.handle_server_first("r=rOprNGfwEbeRWgbNEkqOabc,s=AAAA,i=2147483647"));
}

// A password login refuses an iteration count above the configured limit before deriving anything.
TEST(ProtocolScramClientTest, PasswordIterationLimit) {
  ScramClient client(std::string("pw"), std::string(kRfcClientNonce));
  client.set_max_iterations(100);
  (void)client.client_first();
  auto result = client.handle_server_first("r=rOprNGfwEbeRWgbNEkqOabc,s=AAAA,i=101");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().sqlstate, "08P01");
}

// Unknown optional extensions after the iteration count are ignored, as RFC 5802 allows.
TEST(ProtocolScramClientTest, ServerFirstExtensionsIgnored) {
  ScramClient client = rfc_client();
  auto client_final = client.handle_server_first(std::string(kRfcServerFirst) + ",x=1");
  ASSERT_TRUE(client_final);
  EXPECT_TRUE(client_final->starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="));
}

// Every malformed server-final-message is 08P01.
TEST(ProtocolScramClientTest, MalformedServerFinal) {
  const std::vector<std::string> bad = {
      "", "v=", "v=!!!!", "x=abc", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,", "6rriTRBi23Wp",
  };
  for (const auto& server_final : bad) {
    ScramClient client = rfc_client();
    ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
    auto result = client.handle_server_final(server_final);
    ASSERT_FALSE(result) << server_final;
    // "v=" decodes to nothing: a signature of the wrong length is a mismatch, not a malformed message.
    EXPECT_TRUE(result.error().sqlstate == "08P01" || server_final == "v=") << server_final;
    EXPECT_FALSE(client.done());
  }
}

// Calls out of turn are 08P01 and end the exchange.
TEST(ProtocolScramClientTest, OutOfTurn) {
  {
    // server-first before client-first
    ScramClient client(std::string("pw"), "abc");
    auto result = client.handle_server_first("r=abcdef,s=AAAA,i=1");
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().sqlstate, "08P01");
  }
  {
    // server-final before server-first
    ScramClient client(std::string("pw"), "abc");
    (void)client.client_first();
    auto result = client.handle_server_final(kRfcServerFinal);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().sqlstate, "08P01");
    EXPECT_FALSE(client.handle_server_first("r=abcdef,s=AAAA,i=1"));
  }
  {
    // server-first twice
    ScramClient client = rfc_client();
    ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
    auto again = client.handle_server_first(kRfcServerFirst);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().sqlstate, "08P01");
    EXPECT_FALSE(client.handle_server_final(kRfcServerFinal));
  }
  {
    // server-final after success
    ScramClient client = rfc_client();
    ASSERT_TRUE(client.handle_server_first(kRfcServerFirst));
    ASSERT_TRUE(client.handle_server_final(kRfcServerFinal));
    auto again = client.handle_server_final(kRfcServerFinal);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().sqlstate, "08P01");
  }
  {
    // client-first twice ends the exchange
    ScramClient client(std::string("pw"), "abc");
    (void)client.client_first();
    EXPECT_EQ(client.client_first(), "");
    EXPECT_FALSE(client.handle_server_first("r=abcdef,s=AAAA,i=1"));
  }
}

}  // namespace
}  // namespace pooler::protocol
