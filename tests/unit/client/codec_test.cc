// Value codecs: what each C++ type is sent as (text, OID, format) and how result text decodes back.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "pooler/client.hpp"

namespace pooler {
namespace {

using namespace std::chrono;

template <class T>
T decode(std::string_view text, std::uint32_t type = oid::kText) {
  return Codec<T>::decode(text, type);
}

// Scalars: text form and type OID of each.
TEST(ClientCodec, ScalarEncodings) {
  struct Case {
    Value v;
    std::optional<std::string> text;
    std::uint32_t type;
  };
  const Case cases[] = {
      {Value(true), "t", oid::kBool},
      {Value(false), "f", oid::kBool},
      {Value(std::int16_t{-7}), "-7", oid::kInt2},
      {Value(42), "42", oid::kInt4},
      {Value(std::int64_t{-9223372036854775807LL - 1}), "-9223372036854775808", oid::kInt8},
      {Value(std::uint64_t{18446744073709551615ULL}), "18446744073709551615", oid::kNumeric},
      {Value(0.1), "0.1", oid::kFloat8},
      {Value(1e300), "1e+300", oid::kFloat8},
      {Value(std::numeric_limits<double>::infinity()), "Infinity", oid::kFloat8},
      {Value(std::nan("")), "NaN", oid::kFloat8},
      {Value(1.5f), "1.5", oid::kFloat4},
      {Value("ann"), "ann", oid::kUnknown},
      {Value(std::string("b'o")), "b'o", oid::kUnknown},
      {Value(std::string_view("sv")), "sv", oid::kUnknown},
      {Value(Numeric{"12345678901234567890.000000001"}), "12345678901234567890.000000001", oid::kNumeric},
      {Value(Json{R"({"a":1})"}), R"({"a":1})", oid::kJson},
      {Value(Jsonb{"[1]"}), "[1]", oid::kJsonb},
      {Value(Uuid::parse("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", oid::kUuid},
      {Value(std::optional<int>{}), std::nullopt, oid::kUnknown},
      {Value(std::optional<int>{5}), "5", oid::kInt4},
      {Value(nullptr), std::nullopt, oid::kUnknown},
      {Value(year{2024} / 2 / 29), "2024-02-29", oid::kDate},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.v.data(), c.text) << c.v.repr();
    EXPECT_EQ(c.v.type_oid(), c.type) << c.v.repr();
    EXPECT_FALSE(c.v.is_binary());
  }
}

// bytea goes in binary format, raw bytes; repr() shows hex.
TEST(ClientCodec, BytesAreBinary) {
  Value v(Bytes{std::byte{0}, std::byte{0xff}, std::byte{'a'}});
  EXPECT_TRUE(v.is_binary());
  EXPECT_EQ(v.type_oid(), oid::kBytea);
  EXPECT_EQ(*v.data(), std::string("\0\xff" "a", 3));
  EXPECT_EQ(v.repr(), "'\\x00ff61'");
  EXPECT_EQ(decode<Bytes>("\\x00ff61", oid::kBytea), (Bytes{std::byte{0}, std::byte{0xff}, std::byte{'a'}}));
  EXPECT_THROW(decode<Bytes>("abc", oid::kBytea), ConversionError);
}

// Timestamps: microseconds, UTC on the way out; any zone offset on the way in.
TEST(ClientCodec, Timestamps) {
  sys_time<microseconds> t = sys_days{year{2024} / 5 / 6} + 7h + 8min + 9s + 123456us;
  Value v(t);
  EXPECT_EQ(v.data(), "2024-05-06 07:08:09.123456+00");
  EXPECT_EQ(v.type_oid(), oid::kTimestamptz);
  EXPECT_EQ(decode<sys_time<microseconds>>("2024-05-06 07:08:09.123456+00", oid::kTimestamptz), t);
  EXPECT_EQ(decode<sys_time<microseconds>>("2024-05-06 09:38:09.123456+02:30", oid::kTimestamptz), t);
  EXPECT_EQ(decode<sys_time<microseconds>>("2024-05-06 07:08:09.123456", oid::kTimestamp), t);
  EXPECT_EQ(decode<sys_time<seconds>>("1969-12-31 23:59:59-00", oid::kTimestamptz), sys_seconds{-1s});
  EXPECT_EQ(Value(sys_seconds{-1s}).data(), "1969-12-31 23:59:59.000000+00");
  EXPECT_EQ(decode<sys_time<microseconds>>("2024-05-06 07:08:09.5+00", oid::kTimestamptz),
            sys_days{year{2024} / 5 / 6} + 7h + 8min + 9s + 500000us);
  EXPECT_THROW(decode<sys_time<microseconds>>("infinity", oid::kTimestamptz), ConversionError);
  EXPECT_THROW(decode<sys_time<microseconds>>("05/06/2024 07:08:09", oid::kTimestamptz), ConversionError);
  EXPECT_EQ(decode<year_month_day>("2024-02-29", oid::kDate), year{2024} / 2 / 29);
  EXPECT_THROW(decode<year_month_day>("2023-02-29", oid::kDate), ConversionError);
}

// Arrays: element OIDs pick the array type; elements are quoted and escaped; NULL elements via optional.
TEST(ClientCodec, Arrays) {
  Value ints(std::vector<std::int64_t>{1, -2, 3});
  EXPECT_EQ(ints.data(), R"({"1","-2","3"})");
  EXPECT_EQ(ints.type_oid(), 1016u);
  Value strs(std::vector<std::string>{"a,b", "q\"uote", "back\\slash", "NULL", ""});
  EXPECT_EQ(strs.data(), R"({"a,b","q\"uote","back\\slash","NULL",""})");
  EXPECT_EQ(strs.type_oid(), 1009u);
  Value opt(std::vector<std::optional<double>>{1.5, std::nullopt});
  EXPECT_EQ(opt.data(), R"({"1.5",NULL})");
  EXPECT_EQ(opt.type_oid(), 1022u);
  EXPECT_EQ(Value(std::vector<std::optional<std::int32_t>>{}).type_oid(), 1007u);
  EXPECT_EQ(Value(std::vector<Bytes>{Bytes{std::byte{1}}}).data(), R"({"\\x01"})");

  EXPECT_EQ(decode<std::vector<std::int64_t>>("{1,-2,3}", 1016), (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(decode<std::vector<std::string>>(R"({"a,b","q\"uote","back\\slash","NULL",""})", 1009),
            (std::vector<std::string>{"a,b", "q\"uote", "back\\slash", "NULL", ""}));
  EXPECT_EQ(decode<std::vector<std::optional<int>>>("{1,NULL}", 1007), (std::vector<std::optional<int>>{1, std::nullopt}));
  EXPECT_EQ(decode<std::vector<int>>("{}", 1007), std::vector<int>{});
  EXPECT_EQ(decode<std::vector<int>>("[0:1]={5,6}", 1007), (std::vector<int>{5, 6}));
  EXPECT_THROW(decode<std::vector<int>>("{1,NULL}", 1007), ConversionError);
  EXPECT_THROW(decode<std::vector<int>>("{{1},{2}}", 1007), ConversionError);
  EXPECT_THROW(decode<std::vector<int>>("1,2", 1007), ConversionError);
}

// Decoding scalars: exact values, ranges checked, messages name the SQL type and the C++ target.
TEST(ClientCodec, ScalarDecodingAndErrors) {
  EXPECT_EQ(decode<std::int64_t>("-9223372036854775808", oid::kInt8), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(decode<std::int16_t>("32767", oid::kInt2), 32767);
  EXPECT_EQ(decode<double>("0.1", oid::kFloat8), 0.1);
  EXPECT_TRUE(std::isinf(decode<double>("-Infinity", oid::kFloat8)));
  EXPECT_TRUE(decode<bool>("t", oid::kBool));
  EXPECT_EQ(decode<Uuid>("{a0eebc999c0b4ef8bb6d6bb9bd380a11}", oid::kUuid).to_string(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  auto message = [](auto f) {
    try {
      f();
    } catch (const ConversionError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([] { (void)decode<std::int32_t>("abc", oid::kText); }), "cannot convert 'abc' (type text) to int32_t");
  EXPECT_EQ(message([] { (void)decode<std::int16_t>("40000", oid::kInt4); }),
            "value 40000 (type int4) is out of range for int16_t");
  EXPECT_EQ(message([] { (void)decode<std::uint32_t>("-1", oid::kInt4); }),
            "value -1 (type int4) is out of range for uint32_t");
  EXPECT_EQ(message([] { (void)decode<bool>("yes", 25); }), "cannot convert 'yes' (type text) to bool");
  EXPECT_EQ(message([] { (void)decode<double>("1.5x", oid::kNumeric); }), "cannot convert '1.5x' (type numeric) to double");
  EXPECT_EQ(message([] { (void)Uuid::parse("xyz"); }), "'xyz' is not a UUID");
  EXPECT_EQ(type_name(1016), "int8[]");
  EXPECT_EQ(type_name(99999), "oid 99999");
}

}  // namespace
}  // namespace pooler
