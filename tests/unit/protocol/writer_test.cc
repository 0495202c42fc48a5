// Writer: every builder byte-exact against hand-built bytes, and a round trip through decode_frame/Reader.
#include "protocol/writer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/reader.h"
#include "tests/unit/protocol/message_builder.h"

namespace pooler::protocol {
namespace {

using testing::MessageBuilder;
using namespace std::string_literals;

// AuthenticationOk is 'R', length 8, code 0.
TEST(ProtocolWriterTest, AuthenticationOk) {
  std::string out;
  write_authentication_ok(out);
  EXPECT_EQ(out, "R\0\0\0\x08\0\0\0\0"s);
}

// AuthenticationCleartextPassword is 'R', length 8, code 3.
TEST(ProtocolWriterTest, AuthenticationCleartextPassword) {
  std::string out;
  write_authentication_cleartext_password(out);
  EXPECT_EQ(out, "R\0\0\0\x08\0\0\0\x03"s);
}

// AuthenticationMD5Password is 'R', length 12, code 5, then the 4 salt bytes verbatim.
TEST(ProtocolWriterTest, AuthenticationMd5Password) {
  std::string out;
  write_authentication_md5_password(out, {0x00, 0xff, 0x10, 0x7f});
  EXPECT_EQ(out, "R\0\0\0\x0c\0\0\0\x05\x00\xff\x10\x7f"s);
}

// AuthenticationSASL lists mechanisms as Strings and ends the list with a zero byte.
TEST(ProtocolWriterTest, AuthenticationSasl) {
  std::string out;
  write_authentication_sasl(out, {"SCRAM-SHA-256"});
  EXPECT_EQ(out, "R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"s);
}

// SASLContinue and SASLFinal carry their data raw, without a NUL.
TEST(ProtocolWriterTest, AuthenticationSaslContinueAndFinal) {
  std::string out;
  write_authentication_sasl_continue(out, "r=abc");
  EXPECT_EQ(out, MessageBuilder().int32(11).raw("r=abc").message('R'));
  out.clear();
  write_authentication_sasl_final(out, "v=xyz");
  EXPECT_EQ(out, "R\0\0\0\x0d\0\0\0\x0cv=xyz"s);
}

// ParameterStatus is two Strings.
TEST(ProtocolWriterTest, ParameterStatus) {
  std::string out;
  write_parameter_status(out, "TimeZone", "UTC");
  EXPECT_EQ(out, "S\0\0\0\x11TimeZone\0UTC\0"s);
}

// BackendKeyData is two big-endian Int32s.
TEST(ProtocolWriterTest, BackendKeyData) {
  std::string out;
  write_backend_key_data(out, 0x01020304, -1);
  EXPECT_EQ(out, "K\0\0\0\x0c\x01\x02\x03\x04\xff\xff\xff\xff"s);
}

// ReadyForQuery is length 5 with the status byte.
TEST(ProtocolWriterTest, ReadyForQuery) {
  std::string out;
  write_ready_for_query(out, 'T');
  EXPECT_EQ(out, "Z\0\0\0\x05T"s);
}

// NegotiateProtocolVersion: newest minor, option count, option names.
TEST(ProtocolWriterTest, NegotiateProtocolVersion) {
  std::string out;
  std::vector<std::string> options{"_pq_.a", "_pq_.bc"};
  write_negotiate_protocol_version(out, 0, options);
  EXPECT_EQ(out, "v\0\0\0\x1b\0\0\0\0\0\0\0\x02_pq_.a\0_pq_.bc\0"s);
  out.clear();
  write_negotiate_protocol_version(out, 0, {});
  EXPECT_EQ(out, "v\0\0\0\x0c\0\0\0\0\0\0\0\0"s);
}

// ErrorResponse writes S, V, C, M, D, H in order, skips empty ones, and ends with a zero byte.
TEST(ProtocolWriterTest, ErrorResponse) {
  std::string out;
  write_error_response(out, {Severity::kFatal, "53300", "too many", "", "wait"});
  auto expected = MessageBuilder()
                      .byte('S').cstring("FATAL")
                      .byte('V').cstring("FATAL")
                      .byte('C').cstring("53300")
                      .byte('M').cstring("too many")
                      .byte('H').cstring("wait")
                      .byte(0)
                      .message('E');
  EXPECT_EQ(out, expected);
}

// NoticeResponse has the same layout with type 'N'.
TEST(ProtocolWriterTest, NoticeResponse) {
  std::string out;
  write_notice_response(out, {Severity::kWarning, "01000", "careful", "d", ""});
  EXPECT_EQ(out, "N\0\0\0\x2aSWARNING\0VWARNING\0C01000\0Mcareful\0Dd\0\0"s);
}

// Query, Terminate and Sync.
TEST(ProtocolWriterTest, QueryTerminateSync) {
  std::string out;
  write_query(out, "SELECT 1");
  write_terminate(out);
  write_sync(out);
  EXPECT_EQ(out, "Q\0\0\0\x0dSELECT 1\0"s + "X\0\0\0\x04"s + "S\0\0\0\x04"s);
}

// An embedded NUL is cut off so it cannot end the String early and shift the rest of the message.
TEST(ProtocolWriterTest, EmbeddedNulTruncated) {
  std::string out;
  write_parameter_status(out, "a\0b"s, "c");
  EXPECT_EQ(out, "S\0\0\0\x08" "a\0c\0"s);
}

// Builders append: earlier content of `out` is kept, so callers can batch several messages.
TEST(ProtocolWriterTest, AppendsToExistingBuffer) {
  std::string out = "prefix";
  write_ready_for_query(out, 'I');
  EXPECT_EQ(out, "prefixZ\0\0\0\x05I"s);
}

// Round trip: a batch built by the writer splits with decode_frame and reads back with Reader.
TEST(ProtocolWriterTest, RoundTripThroughDecodeFrameAndReader) {
  std::string out;
  write_authentication_md5_password(out, {1, 2, 3, 4});
  write_parameter_status(out, "server_version", "15.0");
  write_backend_key_data(out, 77, -88);
  write_ready_for_query(out, 'I');

  std::string_view rest = out;
  auto next = [&rest] {
    auto r = decode_frame(rest, 1024);
    EXPECT_TRUE(r.has_value() && r->has_value());
    auto frame = **r;
    rest.remove_prefix(frame.size);
    return frame;
  };

  auto auth = next();
  EXPECT_EQ(auth.type, 'R');
  Reader ar(auth.body);
  EXPECT_EQ(ar.int32(), 5);
  EXPECT_EQ(ar.bytes(4), "\x01\x02\x03\x04");
  EXPECT_TRUE(ar.at_end());

  auto status = next();
  EXPECT_EQ(status.type, 'S');
  Reader sr(status.body);
  EXPECT_EQ(sr.cstring(), "server_version");
  EXPECT_EQ(sr.cstring(), "15.0");
  EXPECT_TRUE(sr.at_end());

  auto key = next();
  EXPECT_EQ(key.type, 'K');
  Reader kr(key.body);
  EXPECT_EQ(kr.int32(), 77);
  EXPECT_EQ(kr.int32(), -88);

  auto ready = next();
  EXPECT_EQ(ready.type, 'Z');
  EXPECT_EQ(ready.body, "I");
  EXPECT_TRUE(rest.empty());
}

}  // namespace
}  // namespace pooler::protocol
