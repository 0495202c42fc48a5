// decode_startup: the first packet of a connection, fed whole, byte by byte, and malformed.
#include "protocol/startup.h"

#include <gtest/gtest.h>

#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using testing::MessageBuilder;
using testing::startup_message;

StartupMessage decode_message(std::string_view in) {
  auto r = decode_startup(in);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->has_value());
  EXPECT_EQ((*r)->consumed, in.size());
  return std::get<StartupMessage>((*r)->packet);
}

Error decode_error(std::string_view in) {
  auto r = decode_startup(in);
  EXPECT_FALSE(r.has_value());
  return r ? Error{} : r.error();
}

// A typical libpq StartupMessage decodes with its parameters in wire order.
TEST(ProtocolStartupTest, DecodesStartupMessage) {
  auto packet = startup_message({{"user", "alice"}, {"database", "app"}, {"application_name", "psql"}});
  auto msg = decode_message(packet);
  EXPECT_EQ(msg.major, 3);
  EXPECT_EQ(msg.minor, 0);
  ASSERT_EQ(msg.params.size(), 3u);
  EXPECT_EQ(msg.params[0], (std::pair<std::string, std::string>{"user", "alice"}));
  EXPECT_EQ(msg.params[2], (std::pair<std::string, std::string>{"application_name", "psql"}));
  ASSERT_NE(msg.find("database"), nullptr);
  EXPECT_EQ(*msg.find("database"), "app");
  EXPECT_EQ(msg.find("options"), nullptr);
}

// A repeated parameter keeps both entries; find() returns the last, as PostgreSQL applies it.
TEST(ProtocolStartupTest, DuplicateParameterLastWins) {
  auto msg = decode_message(startup_message({{"user", "a"}, {"user", "b"}}));
  EXPECT_EQ(msg.params.size(), 2u);
  EXPECT_EQ(*msg.find("user"), "b");
}

// Fed one byte at a time, the decoder asks for more until the last byte, then decodes.
TEST(ProtocolStartupTest, OneByteAtATime) {
  auto packet = startup_message({{"user", "alice"}});
  for (std::size_t n = 0; n < packet.size(); ++n) {
    auto r = decode_startup(std::string_view(packet).substr(0, n));
    ASSERT_TRUE(r.has_value()) << "at " << n << ": " << r.error().message;
    EXPECT_FALSE(r->has_value()) << "at " << n;
  }
  EXPECT_EQ(*decode_message(packet).find("user"), "alice");
}

// Two packets in one buffer: the first decodes and `consumed` points at the second.
TEST(ProtocolStartupTest, TwoPacketsInOneBuffer) {
  auto ssl = MessageBuilder().int32(kSslRequestCode).startup();
  auto startup = startup_message({{"user", "alice"}});
  auto both = ssl + startup;
  auto first = decode_startup(both);
  ASSERT_TRUE(first.has_value() && first->has_value());
  EXPECT_TRUE(std::holds_alternative<SslRequest>((*first)->packet));
  EXPECT_EQ((*first)->consumed, 8u);
  auto second = decode_message(std::string_view(both).substr((*first)->consumed));
  EXPECT_EQ(*second.find("user"), "alice");
}

// SSLRequest and GSSENCRequest are 8-byte packets.
TEST(ProtocolStartupTest, EncryptionRequests) {
  auto ssl = decode_startup(MessageBuilder().int32(80877103).startup());
  ASSERT_TRUE(ssl.has_value() && ssl->has_value());
  EXPECT_TRUE(std::holds_alternative<SslRequest>((*ssl)->packet));
  auto gss = decode_startup(MessageBuilder().int32(80877104).startup());
  ASSERT_TRUE(gss.has_value() && gss->has_value());
  EXPECT_TRUE(std::holds_alternative<GssEncRequest>((*gss)->packet));
}

// CancelRequest carries the process id and secret key, including negative ones.
TEST(ProtocolStartupTest, CancelRequest) {
  auto r = decode_startup(MessageBuilder().int32(80877102).int32(4242).int32(-7).startup());
  ASSERT_TRUE(r.has_value() && r->has_value());
  auto cancel = std::get<CancelRequest>((*r)->packet);
  EXPECT_EQ(cancel.process_id, 4242);
  EXPECT_EQ(cancel.secret_key, -7);
  EXPECT_EQ((*r)->consumed, 16u);
}

// A CancelRequest or SSLRequest of the wrong size is a protocol violation.
TEST(ProtocolStartupTest, FixedSizeRequestsWithWrongLength) {
  EXPECT_EQ(decode_error(MessageBuilder().int32(80877102).int32(1).startup()).sqlstate, "08P01");
  EXPECT_EQ(decode_error(MessageBuilder().int32(80877103).int32(0).startup()).sqlstate, "08P01");
}

// An unknown code in the 1234.xxxx request space is rejected.
TEST(ProtocolStartupTest, UnknownRequestCode) {
  auto e = decode_error(MessageBuilder().int32((1234 << 16) | 5681).startup());
  EXPECT_EQ(e.sqlstate, "08P01");
}

// Lengths 0, 3, 4, 7, negative and huge are rejected from the 4 length bytes alone.
TEST(ProtocolStartupTest, BadLengthsRejectedFromHeader) {
  for (std::int32_t length : {0, 3, 4, 7, -1, -8, static_cast<std::int32_t>(kMaxStartupPacket) + 1, 0x7fffffff}) {
    auto header = MessageBuilder().int32(length).body();
    auto e = decode_error(header);
    EXPECT_EQ(e.sqlstate, "08P01") << length;
  }
}

// A packet of exactly kMaxStartupPacket bytes is accepted; one byte more is not.
TEST(ProtocolStartupTest, MaxLengthBoundary) {
  MessageBuilder b;
  b.int32(3 << 16).cstring("user").cstring("alice").cstring("options");
  std::size_t value_size = kMaxStartupPacket - (4 + b.body().size() + 2);
  b.cstring(std::string(value_size, 'x')).byte(0);
  auto packet = b.startup();
  ASSERT_EQ(packet.size(), kMaxStartupPacket);
  EXPECT_EQ(decode_message(packet).find("options")->size(), value_size);

  MessageBuilder big;
  big.int32(3 << 16).cstring("user").cstring("alice").cstring("options").cstring(std::string(value_size + 1, 'x')).byte(0);
  EXPECT_EQ(decode_error(big.startup()).sqlstate, "08P01");
}

// Protocol 2.0 gets PostgreSQL's wording and SQLSTATE 0A000.
TEST(ProtocolStartupTest, Protocol2Rejected) {
  auto e = decode_error(startup_message({{"user", "alice"}}, 2, 0));
  EXPECT_EQ(e.sqlstate, "0A000");
  EXPECT_EQ(e.message, "unsupported frontend protocol 2.0: server supports 3.0 to 3.0");
}

// Protocol 3.1 is accepted and its minor version recorded, along with _pq_ options.
TEST(ProtocolStartupTest, Protocol31Accepted) {
  auto msg = decode_message(startup_message({{"user", "alice"}, {"_pq_.feature", "on"}}, 3, 1));
  EXPECT_EQ(msg.major, 3);
  EXPECT_EQ(msg.minor, 1);
  EXPECT_EQ(*msg.find("_pq_.feature"), "on");
}

// Without a "user" parameter, or with an empty one, the packet is refused.
TEST(ProtocolStartupTest, MissingUser) {
  EXPECT_EQ(decode_error(startup_message({{"database", "app"}})).sqlstate, "08P01");
  EXPECT_EQ(decode_error(startup_message({{"user", ""}})).sqlstate, "08P01");
  EXPECT_EQ(decode_error(startup_message({})).sqlstate, "08P01");
}

// The final zero byte is required and must be the last byte.
TEST(ProtocolStartupTest, MissingTerminator) {
  auto no_terminator = MessageBuilder().int32(3 << 16).cstring("user").cstring("alice").startup();
  EXPECT_EQ(decode_error(no_terminator).sqlstate, "08P01");
  auto trailing = MessageBuilder().int32(3 << 16).cstring("user").cstring("alice").byte(0).raw("x").startup();
  EXPECT_EQ(decode_error(trailing).sqlstate, "08P01");
}

// A key without a value (odd number of strings) or a string without its NUL is malformed.
TEST(ProtocolStartupTest, MalformedParameterList) {
  auto odd = MessageBuilder().int32(3 << 16).cstring("user").cstring("alice").cstring("database").byte(0).startup();
  EXPECT_EQ(decode_error(odd).sqlstate, "08P01");
  auto unterminated = MessageBuilder().int32(3 << 16).cstring("user").raw("alice").startup();
  EXPECT_EQ(decode_error(unterminated).sqlstate, "08P01");
  auto only_version = MessageBuilder().int32(3 << 16).startup();
  EXPECT_EQ(decode_error(only_version).sqlstate, "08P01");
}

}  // namespace
}  // namespace pooler::protocol
