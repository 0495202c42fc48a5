// parse_error_response on bodies shaped like the ones PostgreSQL sends.
#include "protocol/error_response.h"

#include <gtest/gtest.h>

#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using testing::MessageBuilder;

// A PostgreSQL 15 "relation does not exist" error: known fields are kept, P/F/L/R are skipped.
TEST(ProtocolErrorResponseTest, RealisticError) {
  auto body = MessageBuilder()
                  .byte('S').cstring("ERROR")
                  .byte('V').cstring("ERROR")
                  .byte('C').cstring("42P01")
                  .byte('M').cstring("relation \"nope\" does not exist")
                  .byte('P').cstring("15")
                  .byte('F').cstring("parse_relation.c")
                  .byte('L').cstring("1392")
                  .byte('R').cstring("parserOpenTable")
                  .byte(0)
                  .body();
  auto e = parse_error_response(body);
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_EQ(e->severity, "ERROR");
  EXPECT_EQ(e->sqlstate, "42P01");
  EXPECT_EQ(e->message, "relation \"nope\" does not exist");
  EXPECT_EQ(e->detail, "");
  EXPECT_EQ(e->hint, "");
}

// The non-localized V wins over a translated S, whatever the order.
TEST(ProtocolErrorResponseTest, LocalizedSeverityPrefersV) {
  auto body = MessageBuilder()
                  .byte('V').cstring("FATAL")
                  .byte('S').cstring("FATAL_DE")
                  .byte('C').cstring("57P01")
                  .byte('M').cstring("terminating connection due to administrator command")
                  .byte(0)
                  .body();
  auto e = parse_error_response(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->severity, "FATAL");
  EXPECT_EQ(e->sqlstate, "57P01");
}

// Servers before 9.6 send only S: it is used for the severity.
TEST(ProtocolErrorResponseTest, SeverityFallsBackToS) {
  auto body = MessageBuilder().byte('S').cstring("WARNING").byte('C').cstring("01000").byte('M').cstring("w").byte(0).body();
  auto e = parse_error_response(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->severity, "WARNING");
}

// Detail and hint are read, e.g. from a unique violation.
TEST(ProtocolErrorResponseTest, DetailAndHint) {
  auto body = MessageBuilder()
                  .byte('S').cstring("ERROR")
                  .byte('C').cstring("23505")
                  .byte('M').cstring("duplicate key value violates unique constraint \"t_pkey\"")
                  .byte('D').cstring("Key (id)=(1) already exists.")
                  .byte('H').cstring("try another id")
                  .byte(0)
                  .body();
  auto e = parse_error_response(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->detail, "Key (id)=(1) already exists.");
  EXPECT_EQ(e->hint, "try another id");
}

// Missing final zero byte, an unterminated field, an empty body and trailing bytes are all rejected.
TEST(ProtocolErrorResponseTest, Malformed) {
  auto no_terminator = MessageBuilder().byte('S').cstring("ERROR").body();
  EXPECT_EQ(parse_error_response(no_terminator).error().sqlstate, "08P01");
  auto unterminated_field = MessageBuilder().byte('S').raw("ERROR").body();
  EXPECT_EQ(parse_error_response(unterminated_field).error().sqlstate, "08P01");
  EXPECT_EQ(parse_error_response("").error().sqlstate, "08P01");
  auto trailing = MessageBuilder().byte('S').cstring("ERROR").byte(0).raw("x").body();
  EXPECT_EQ(parse_error_response(trailing).error().sqlstate, "08P01");
}

}  // namespace
}  // namespace pooler::protocol
