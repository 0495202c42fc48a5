// base64_encode / base64_decode: RFC 4648 test vectors and strict rejection of anything else.
#include "protocol/base64.h"

#include <gtest/gtest.h>

namespace pooler::protocol {
namespace {

using namespace std::string_literals;

// RFC 4648 section 10 vectors encode and decode both ways.
TEST(ProtocolBase64Test, Rfc4648Vectors) {
  std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (auto [raw, text] : vectors) {
    EXPECT_EQ(base64_encode(raw), text);
    auto decoded = base64_decode(text);
    ASSERT_TRUE(decoded.has_value()) << text;
    EXPECT_EQ(*decoded, raw);
  }
}

// Every byte value survives a round trip, including NUL and high bytes.
TEST(ProtocolBase64Test, AllBytesRoundTrip) {
  std::string raw;
  for (int i = 0; i < 256; ++i) raw.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= raw.size(); n += 37) {
    auto part = raw.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(part)).value(), part);
  }
  EXPECT_EQ(base64_encode("\xfb\xff"s), "+/8=");
}

// Wrong length, bad characters, misplaced padding, whitespace and non-zero spare bits are refused.
TEST(ProtocolBase64Test, RejectsMalformed) {
  for (std::string_view bad : {"Zg=", "Zg", "Z===", "Zm9v=Zg=", "Zm 9", "Zm9v\n", "Zm*v", "=Zm9", "Zh==", "Zm9=A===",
                               "Zm8=Zm8="}) {
    auto r = base64_decode(bad);
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_EQ(r.error().sqlstate, "08P01");
    }
  }
}

}  // namespace
}  // namespace pooler::protocol
