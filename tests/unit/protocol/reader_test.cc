// Reader: big-endian fields, C strings, and underruns that must not move the position.
#include "protocol/reader.h"

#include <gtest/gtest.h>

#include <limits>

#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using testing::MessageBuilder;

// Each field type reads back what the builder wrote, in order.
TEST(ProtocolReaderTest, ReadsFieldsInOrder) {
  auto body = MessageBuilder().int16(-2).int32(0x01020304).byte(0xff).cstring("abc").raw("xyz").body();
  Reader r(body);
  EXPECT_EQ(r.int16(), -2);
  EXPECT_EQ(r.int32(), 0x01020304);
  EXPECT_EQ(r.byte(), 0xff);
  EXPECT_EQ(r.cstring(), "abc");
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(r.bytes(3), "xyz");
  EXPECT_TRUE(r.at_end());
}

// Negative and extreme int32 values survive the big-endian round trip.
TEST(ProtocolReaderTest, SignedInt32) {
  auto body = MessageBuilder().int32(-1).int32(std::numeric_limits<std::int32_t>::min()).body();
  Reader r(body);
  EXPECT_EQ(r.int32(), -1);
  EXPECT_EQ(r.int32(), std::numeric_limits<std::int32_t>::min());
}

// Reads past the end fail and leave the position unchanged.
TEST(ProtocolReaderTest, UnderrunDoesNotAdvance) {
  Reader r(std::string_view("\x01\x02\x03", 3));
  EXPECT_EQ(r.int32(), std::nullopt);
  EXPECT_EQ(r.bytes(4), std::nullopt);
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(r.int16(), 0x0102);
  EXPECT_EQ(r.int16(), std::nullopt);
  EXPECT_EQ(r.byte(), 3);
  EXPECT_EQ(r.byte(), std::nullopt);
  EXPECT_TRUE(r.at_end());
}

// A string with no NUL before the end is an underrun, not a read to the end.
TEST(ProtocolReaderTest, UnterminatedCString) {
  Reader r("abc");
  EXPECT_EQ(r.cstring(), std::nullopt);
  EXPECT_EQ(r.remaining(), 3u);
}

// An empty string is just its NUL; an empty body is at its end.
TEST(ProtocolReaderTest, EmptyStringAndBody) {
  Reader r(std::string_view("\0", 1));
  EXPECT_EQ(r.cstring(), "");
  EXPECT_TRUE(r.at_end());
  Reader empty("");
  EXPECT_TRUE(empty.at_end());
  EXPECT_EQ(empty.bytes(0), "");
  EXPECT_EQ(empty.byte(), std::nullopt);
}

}  // namespace
}  // namespace pooler::protocol
