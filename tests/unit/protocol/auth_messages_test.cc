// Parsers of the client's 'p' messages: PasswordMessage, SASLInitialResponse, SASLResponse.
#include "protocol/auth_messages.h"

#include <gtest/gtest.h>

#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using testing::MessageBuilder;

// A PasswordMessage is one String filling the body.
TEST(ProtocolAuthMessagesTest, PasswordMessage) {
  auto body = MessageBuilder().cstring("md5abc").body();
  auto p = parse_password_message(body);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, "md5abc");
}

// A password without its NUL, or with bytes after it, is refused.
TEST(ProtocolAuthMessagesTest, PasswordMessageMalformed) {
  EXPECT_EQ(parse_password_message("secret").error().sqlstate, "08P01");
  EXPECT_EQ(parse_password_message(MessageBuilder().cstring("a").raw("b").body()).error().sqlstate, "08P01");
  EXPECT_EQ(parse_password_message("").error().sqlstate, "08P01");
}

// SASLInitialResponse as libpq sends it: mechanism, length, client-first-message.
TEST(ProtocolAuthMessagesTest, SaslInitialResponse) {
  std::string_view first = "n,,n=,r=abcdef";
  auto body = MessageBuilder().cstring("SCRAM-SHA-256").int32(static_cast<std::int32_t>(first.size())).raw(first).body();
  auto r = parse_sasl_initial_response(body);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(r->data, first);
}

// Length -1 means no initial response: data is empty.
TEST(ProtocolAuthMessagesTest, SaslInitialResponseWithoutData) {
  auto r = parse_sasl_initial_response(MessageBuilder().cstring("SCRAM-SHA-256").int32(-1).body());
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->data.empty());
}

// A length past the end, below -1, trailing bytes or a missing length are refused.
TEST(ProtocolAuthMessagesTest, SaslInitialResponseMalformed) {
  auto longer = MessageBuilder().cstring("SCRAM-SHA-256").int32(10).raw("abc").body();
  EXPECT_EQ(parse_sasl_initial_response(longer).error().sqlstate, "08P01");
  auto negative = MessageBuilder().cstring("SCRAM-SHA-256").int32(-2).body();
  EXPECT_EQ(parse_sasl_initial_response(negative).error().sqlstate, "08P01");
  auto trailing = MessageBuilder().cstring("SCRAM-SHA-256").int32(1).raw("ab").body();
  EXPECT_EQ(parse_sasl_initial_response(trailing).error().sqlstate, "08P01");
  auto no_length = MessageBuilder().cstring("SCRAM-SHA-256").body();
  EXPECT_EQ(parse_sasl_initial_response(no_length).error().sqlstate, "08P01");
  EXPECT_EQ(parse_sasl_initial_response("SCRAM").error().sqlstate, "08P01");
}

// A SASLResponse is its whole body.
TEST(ProtocolAuthMessagesTest, SaslResponse) {
  auto r = parse_sasl_response("c=biws,r=x,p=y");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "c=biws,r=x,p=y");
}

}  // namespace
}  // namespace pooler::protocol
