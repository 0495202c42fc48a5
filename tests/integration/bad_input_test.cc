// Bad client input over raw sockets: every case gets its error (or a close), and afterwards the daemon is
// alive and serves a fresh libpq client.
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kMaxMessageSize = 65536;

// A small pool (2 + 2) with a short pool_timeout, so a server connection leaked by a vanished client shows
// up as a failed login within seconds instead of passing unnoticed.
class IntegrationBadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_.start([](PoolerConfig& config) {
      config.max_message_size = kMaxMessageSize;
      config.databases[0].pool_size = 2;
      config.databases[0].max_overflow = 2;
      config.databases[0].pool_timeout = 10.0;
    });
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  static RawClient raw() { return RawClient(stack_.daemon->listen_addr(), stack_.daemon->port()); }
  // A raw client that completed login (SCRAM) and saw ReadyForQuery.
  static std::unique_ptr<RawClient> logged_in() {
    auto client = std::make_unique<RawClient>(stack_.daemon->listen_addr(), stack_.daemon->port());
    LoginResult login = client->login(kAppUser, kAppDatabase, kAppPassword);
    EXPECT_TRUE(login.ready) << (login.error ? login.error->describe() : "closed during login");
    return client;
  }

  inline static Stack stack_;
};

// An HTTP request instead of a startup packet: the pooler closes the connection.
TEST_F(IntegrationBadInput, HttpRequestAsStartup) {
  RawClient client = raw();
  client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  client.shutdown_write();
  EXPECT_TRUE(rejected_and_closed(client));
  EXPECT_TRUE(daemon_serves(stack_));
}

// A plausible length with a garbage protocol code and garbage body: rejected and closed.
TEST_F(IntegrationBadInput, GarbageStartupBody) {
  std::mt19937 random(42);
  std::string body = wire::int32(0x12345678);
  for (int i = 0; i < 56; ++i) body += static_cast<char>(random() & 0xff);
  RawClient client = raw();
  client.send(wire::int32(static_cast<std::uint32_t>(body.size() + 4)) + body);
  client.shutdown_write();
  EXPECT_TRUE(rejected_and_closed(client));
  EXPECT_TRUE(daemon_serves(stack_));
}

// A startup length field below 8 (it counts itself and the version): rejected and closed.
TEST_F(IntegrationBadInput, StartupLengthBelowEight) {
  for (std::uint32_t length : {0u, 4u, 7u}) {
    RawClient client = raw();
    client.send(wire::int32(length) + wire::int32(wire::kProtocol3));
    client.shutdown_write();
    EXPECT_TRUE(rejected_and_closed(client)) << "length " << length;
  }
  EXPECT_TRUE(daemon_serves(stack_));
}

// A startup packet announced larger than 10 KiB gets an ErrorResponse and the connection closes.
TEST_F(IntegrationBadInput, StartupPacketOver10KiB) {
  RawClient client = raw();
  // Only the header: the pooler must judge the length without waiting for 20 000 bytes.
  client.send(wire::int32(20000) + wire::int32(wire::kProtocol3));
  EXPECT_TRUE(rejected_and_closed(client, "", /*error_required=*/true));
  EXPECT_TRUE(daemon_serves(stack_));
}

// Protocol version 2.0 gets a (v3) ErrorResponse with SQLSTATE 0A000.
TEST_F(IntegrationBadInput, ProtocolVersion2) {
  RawClient client = raw();
  client.send(wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}}, 0x00020000));
  EXPECT_TRUE(rejected_and_closed(client, "0A000"));
  EXPECT_TRUE(daemon_serves(stack_));
}

// A client that sends part of its startup packet and vanishes does no harm.
TEST_F(IntegrationBadInput, TruncatedStartupThenClose) {
  for (int i = 0; i < 5; ++i) {
    RawClient client = raw();
    std::string startup = wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}});
    client.send(startup.substr(0, startup.size() / 2));
  }
  EXPECT_TRUE(daemon_serves(stack_));
}

// A client stalled halfway through its startup packet does not hold up other clients.
TEST_F(IntegrationBadInput, StalledStartupDoesNotBlockOthers) {
  RawClient stalled = raw();
  std::string startup = wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}});
  stalled.send(startup.substr(0, 6));
  EXPECT_TRUE(daemon_serves(stack_));
  // The stalled client can still finish: the pooler kept its partial packet.
  stalled.send(startup.substr(6));
  auto reply = stalled.read_message();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type, 'R') << "expected an authentication request";
}

// SSLRequest is answered with the single byte 'N', and a normal startup then proceeds on that connection.
TEST_F(IntegrationBadInput, SslRequestAnsweredN) {
  RawClient client = raw();
  ASSERT_TRUE(client.send(wire::ssl_request()));
  EXPECT_EQ(client.read_byte(), 'N');
  LoginResult login = client.login(kAppUser, kAppDatabase, kAppPassword);
  EXPECT_TRUE(login.ready) << (login.error ? login.error->describe() : "closed");
}

// GSSENCRequest is answered with the single byte 'N', and a normal startup then proceeds.
TEST_F(IntegrationBadInput, GssEncRequestAnsweredN) {
  RawClient client = raw();
  ASSERT_TRUE(client.send(wire::gssenc_request()));
  EXPECT_EQ(client.read_byte(), 'N');
  LoginResult login = client.login(kAppUser, kAppDatabase, kAppPassword);
  EXPECT_TRUE(login.ready) << (login.error ? login.error->describe() : "closed");
}

// A CancelRequest with a key nobody has is dropped: the connection closes and nothing else happens.
TEST_F(IntegrationBadInput, CancelRequestUnknownKey) {
  RawClient client = raw();
  client.send(wire::cancel_request(12345, 67890));
  EXPECT_TRUE(client.wait_closed());
  EXPECT_TRUE(daemon_serves(stack_));
}

// Connections opened and closed without a byte sent are harmless.
TEST_F(IntegrationBadInput, ConnectAndCloseSilently) {
  for (int i = 0; i < 50; ++i) RawClient client = raw();
  EXPECT_TRUE(daemon_serves(stack_));
}

// After login, a message announced larger than max_message_size gets ErrorResponse 54000 and a close.
TEST_F(IntegrationBadInput, OversizedMessageAfterLogin) {
  auto client = logged_in();
  // Only the header: the limit must apply before the body is buffered.
  client->send(std::string(1, 'Q') + wire::int32(static_cast<std::uint32_t>(kMaxMessageSize + 1000)));
  EXPECT_TRUE(rejected_and_closed(*client, "54000"));
  EXPECT_TRUE(daemon_serves(stack_));
}

// A message just under max_message_size is accepted and relayed.
TEST_F(IntegrationBadInput, LargeMessageUnderLimitPasses) {
  auto client = logged_in();
  std::string literal(static_cast<std::size_t>(kMaxMessageSize - 200), 'x');
  auto reply = client->simple_query("SELECT length('" + literal + "')");
  ASSERT_TRUE(reply);
  bool saw_row = false;
  for (const auto& message : *reply) {
    EXPECT_NE(message.type, 'E') << parse_error_fields(message.body).describe();
    if (message.type == 'D') saw_row = message.body.find(std::to_string(literal.size())) != std::string::npos;
  }
  EXPECT_TRUE(saw_row);
}

// After login, a message with a length field below 4 gets ErrorResponse 08P01 and a close.
TEST_F(IntegrationBadInput, MessageLengthBelowFourAfterLogin) {
  auto client = logged_in();
  client->send(std::string(1, 'Q') + wire::int32(3));
  EXPECT_TRUE(rejected_and_closed(*client, "08P01"));
  EXPECT_TRUE(daemon_serves(stack_));
}

// Clients that vanish in the middle of a message after login release their server connections: more of
// them than the pool holds, one after another, and the pool still serves.
TEST_F(IntegrationBadInput, ClientVanishesMidMessageAfterLogin) {
  for (int i = 0; i < 6; ++i) {
    auto client = logged_in();
    client->send(std::string(1, 'Q') + wire::int32(100) + "SELECT");
    client->close();
  }
  EXPECT_TRUE(daemon_serves(stack_));
}

// A client that vanishes during authentication (after the startup packet) does no harm.
TEST_F(IntegrationBadInput, ClientVanishesDuringAuthentication) {
  for (int i = 0; i < 6; ++i) {
    RawClient client = raw();
    client.send(wire::startup_message({{"user", kAppUser}, {"database", kAppDatabase}}));
    auto request = client.read_message();
    ASSERT_TRUE(request);
    EXPECT_EQ(request->type, 'R');
  }
  EXPECT_TRUE(daemon_serves(stack_));
}

// An unknown message type after login is answered with an error and the client is let go.
TEST_F(IntegrationBadInput, UnknownMessageTypeAfterLogin) {
  auto client = logged_in();
  client->send(wire::message('~', "junk"));
  EXPECT_TRUE(rejected_and_closed(*client, "", /*error_required=*/true));
  EXPECT_TRUE(daemon_serves(stack_));
}

}  // namespace
}  // namespace pooler::test
