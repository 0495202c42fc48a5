// decode_frame: regular messages whole, partial, back to back, and with lying headers.
#include "protocol/frame.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <limits>

#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using testing::MessageBuilder;

constexpr std::size_t kMax = 1 << 20;

// A simple Query decodes into its type, body and total size.
TEST(ProtocolFrameTest, DecodesQuery) {
  auto bytes = MessageBuilder().cstring("SELECT 1").message('Q');
  auto r = decode_frame(bytes, kMax);
  ASSERT_TRUE(r.has_value() && r->has_value());
  EXPECT_EQ((*r)->type, 'Q');
  EXPECT_EQ((*r)->body, std::string_view("SELECT 1\0", 9));
  EXPECT_EQ((*r)->size, bytes.size());
  EXPECT_EQ((*r)->size, 1 + 4 + (*r)->body.size());
}

// A message with an empty body (length 4) is complete with just its header.
TEST(ProtocolFrameTest, EmptyBody) {
  auto bytes = MessageBuilder().message('S');
  auto r = decode_frame(bytes, kMax);
  ASSERT_TRUE(r.has_value() && r->has_value());
  EXPECT_EQ((*r)->type, 'S');
  EXPECT_TRUE((*r)->body.empty());
  EXPECT_EQ((*r)->size, 5u);
}

// Fed one byte at a time, every prefix needs more; the whole message decodes.
TEST(ProtocolFrameTest, OneByteAtATime) {
  auto bytes = MessageBuilder().cstring("SELECT now()").message('Q');
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_frame(std::string_view(bytes).substr(0, n), kMax);
    ASSERT_TRUE(r.has_value()) << n;
    EXPECT_FALSE(r->has_value()) << n;
  }
  EXPECT_TRUE(decode_frame(bytes, kMax)->has_value());
}

// Two messages in one buffer: the first decodes, its size leads to the second.
TEST(ProtocolFrameTest, TwoMessagesInOneBuffer) {
  auto both = MessageBuilder().cstring("BEGIN").message('Q') + MessageBuilder().byte('I').message('Z');
  auto first = decode_frame(both, kMax);
  ASSERT_TRUE(first.has_value() && first->has_value());
  EXPECT_EQ((*first)->type, 'Q');
  auto second = decode_frame(std::string_view(both).substr((*first)->size), kMax);
  ASSERT_TRUE(second.has_value() && second->has_value());
  EXPECT_EQ((*second)->type, 'Z');
  EXPECT_EQ((*second)->body, "I");
  EXPECT_EQ((*first)->size + (*second)->size, both.size());
}

// Lengths below 4 (0, 3, negative) are protocol violations, detected from the header alone.
TEST(ProtocolFrameTest, LengthBelowFour) {
  for (std::int32_t length : {0, 3, -1, std::numeric_limits<std::int32_t>::min()}) {
    auto header = MessageBuilder().byte('Q').int32(length).body();
    auto r = decode_frame(header, kMax);
    ASSERT_FALSE(r.has_value()) << length;
    EXPECT_EQ(r.error().sqlstate, "08P01");
  }
}

// A body over max_message_size is refused from the 5 header bytes, before any body byte arrives.
TEST(ProtocolFrameTest, OversizedBodyDetectedFromHeader) {
  auto header = MessageBuilder().byte('Q').int32(0x7fffffff).body();
  auto r = decode_frame(header, kMax);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().sqlstate, "54000");
  EXPECT_EQ(r.error().message,
            fmt::format("message of type 'Q' with length {} exceeds max_message_size {}", 0x7fffffff - 4, kMax));
}

// A body of exactly max_message_size is fine; one byte more is refused.
TEST(ProtocolFrameTest, MaxMessageSizeBoundary) {
  constexpr std::size_t kSmall = 8;
  auto exact = MessageBuilder().raw(std::string(kSmall, 'x')).message('d');
  auto ok = decode_frame(exact, kSmall);
  ASSERT_TRUE(ok.has_value() && ok->has_value());
  EXPECT_EQ((*ok)->body.size(), kSmall);
  auto over = MessageBuilder().raw(std::string(kSmall + 1, 'x')).message('d');
  auto r = decode_frame(std::string_view(over).substr(0, 5), kSmall);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().sqlstate, "54000");
}

// A header promising more than the buffer holds waits for the rest.
TEST(ProtocolFrameTest, LengthLongerThanBuffer) {
  auto bytes = MessageBuilder().cstring("SELECT 1").message('Q', 10);
  auto r = decode_frame(bytes, kMax);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->has_value());
}

// A non-printable type byte is shown in hex in the error message.
TEST(ProtocolFrameTest, NonPrintableTypeInError) {
  auto header = MessageBuilder().byte(0x01).int32(2).body();
  auto r = decode_frame(header, kMax);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("0x01"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace pooler::protocol
