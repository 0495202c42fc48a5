// Logging: key=value parsing, JSON conversion (quotes, escapes, UTF-8, empty values, junk) and the text/JSON
// lines spdlog writes through our formatter.
#include "daemon/logging.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>
#include <string>

namespace pooler::daemon {
namespace {

std::string json(std::string_view message) {
  std::string out;
  append_json_line(out, "2026-11-25T06:44:58.775Z", "info", message);
  return out;
}

constexpr std::string_view kHead = R"({"ts":"2026-11-25T06:44:58.775Z","level":"info",)";

// Bare pairs become string fields in order.
TEST(DaemonLogging, BarePairs) {
  EXPECT_EQ(json("event=login client=3 user=app"),
            std::string(kHead) + R"("event":"login","client":"3","user":"app"})" + "\n");
}

// Quoted values keep their spaces; \" and \\ are unescaped, then re-escaped for JSON.
TEST(DaemonLogging, QuotedValues) {
  EXPECT_EQ(json(R"(event=client_error message="relation \"t\" does not exist" path="C:\\x")"),
            std::string(kHead) +
                R"("event":"client_error","message":"relation \"t\" does not exist","path":"C:\\x"})" + "\n");
}

// Empty values, bare or quoted, are empty strings; '=' inside a bare value stays.
TEST(DaemonLogging, EmptyValuesAndEqualsInValue) {
  auto f = parse_key_values(R"(a= b="" c=x=y d=)");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, (LogFields{{"a", ""}, {"b", ""}, {"c", "x=y"}, {"d", ""}}));
}

// Escapes of log_value round-trip through the parser, including newlines and tabs.
TEST(DaemonLogging, LogValueRoundTrips) {
  for (std::string_view v : {"plain", "", "two words", "quote\"d", "back\\slash", "line\nbreak\r\ttab", "é ü 日本"}) {
    const std::string msg = "k=" + log_value(v) + " z=1";
    auto f = parse_key_values(msg);
    ASSERT_TRUE(f.has_value()) << msg;
    EXPECT_EQ(*f, (LogFields{{"k", std::string(v)}, {"z", "1"}})) << msg;
  }
  EXPECT_EQ(log_value("plain"), "plain");
  EXPECT_EQ(log_value("a b"), R"("a b")");
  EXPECT_EQ(log_value(""), R"("")");
}

// Unknown backslash pairs inside quotes are kept as written.
TEST(DaemonLogging, UnknownEscapesKept) {
  auto f = parse_key_values(R"(k="a\qb")");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ((*f)[0].second, R"(a\qb)");
}

// Control characters are escaped for JSON; a value with a newline stays on one line.
TEST(DaemonLogging, JsonEscapesControlCharacters) {
  EXPECT_EQ(json("k=" + log_value("a\nb\x01\x1f\b\f")),
            std::string(kHead) + R"("k":"a\nb\u0001\u001f\b\f"})" + "\n");
}

// Valid UTF-8 passes through untouched; invalid bytes become U+FFFD escapes.
TEST(DaemonLogging, Utf8PassthroughAndRepair) {
  EXPECT_EQ(json("user=José db=日本 emoji=😀"), std::string(kHead) + R"("user":"José","db":"日本","emoji":"😀"})" + "\n");
  std::string out;
  append_json_escaped(out, "a\xff" "b\xc3" "c\xe0\x80\x80" "d\xed\xa0\x80");  // stray, truncated, overlong, surrogate
  EXPECT_EQ(out, R"(a\ufffdb\ufffdc\ufffd\ufffd\ufffdd\ufffd\ufffd\ufffd)");
  out.clear();
  append_json_escaped(out, "\xf4\x90\x80\x80");  // past U+10FFFF
  EXPECT_EQ(out, R"(\ufffd\ufffd\ufffd\ufffd)");
}

// Messages that are not key=value go whole into "msg".
TEST(DaemonLogging, JunkGoesToMsg) {
  for (std::string_view junk : {"hello world", "", "   ", "=x", "event=a then words", R"(k="unterminated)",
                                R"(k="v"glued)", "9key=1", "key =1", "k=v \"q\""}) {
    EXPECT_FALSE(parse_key_values(junk).has_value()) << junk;
    std::string expected = std::string(kHead) + "\"msg\":\"";
    append_json_escaped(expected, junk);
    expected += "\"}\n";
    EXPECT_EQ(json(junk), expected) << junk;
  }
}

// Keys may hold digits, dots and dashes; extra spaces and tabs between pairs are fine.
TEST(DaemonLogging, KeyCharsAndSpacing) {
  auto f = parse_key_values("  a.b=1\t\tc-d_2=x  ");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, (LogFields{{"a.b", "1"}, {"c-d_2", "x"}}));
}

// Repeated keys, and keys clashing with ts/level, keep their first occurrence only.
TEST(DaemonLogging, DuplicateKeysDropped) {
  EXPECT_EQ(json("a=1 ts=x a=2 level=y b=3"), std::string(kHead) + R"("a":"1","b":"3"})" + "\n");
}

// Text lines: timestamp, level, message; embedded newlines escaped.
TEST(DaemonLogging, TextLine) {
  std::string out;
  append_text_line(out, "T", "warn", "event=x message=\"a\nb\"");
  EXPECT_EQ(out, "T warn event=x message=\"a\\nb\"\n");
}

// Level names parse as config spells them; anything else is rejected.
TEST(DaemonLogging, ParseLogLevel) {
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("warning"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error"), spdlog::level::err);
  EXPECT_EQ(parse_log_level("off"), spdlog::level::off);
  EXPECT_FALSE(parse_log_level("loud").has_value());
  EXPECT_FALSE(parse_log_level("INFO").has_value());
}

class DaemonLoggingSetup : public ::testing::Test {
 protected:
  ~DaemonLoggingSetup() override { spdlog::drop_all(); }
  std::ostringstream out_;
  spdlog::sink_ptr sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
};

// The text format through spdlog: UTC ISO-8601 with milliseconds, our level names.
TEST_F(DaemonLoggingSetup, TextFormat) {
  setup_logging(config::LogFormat::kText, "info", sink_);
  spdlog::info("event=login client={} user={}", 3, "app");
  spdlog::warn("event=slow");
  spdlog::debug("event=hidden");
  const std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info event=login client=3 user=app
\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn event=slow
)");
  EXPECT_TRUE(std::regex_match(out_.str(), line)) << out_.str();
}

// The JSON format through spdlog, and set_log_level changing what passes (unknown names ignored).
TEST_F(DaemonLoggingSetup, JsonFormatAndLevelChange) {
  setup_logging(config::LogFormat::kJson, "warn", sink_);
  spdlog::info("event=hidden");
  set_log_level("debug");
  spdlog::debug("event=shown db={}", log_value("my db"));
  set_log_level("nonsense");  // warns, keeps debug
  spdlog::debug("plain words");
  const std::string s = out_.str();
  const std::regex re(
      R"(\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"debug","event":"shown","db":"my db"\}
\{"ts":"[^"]+","level":"warn","event":"bad_log_level","requested":"nonsense","using":"debug"\}
\{"ts":"[^"]+","level":"debug","msg":"plain words"\}
)");
  EXPECT_TRUE(std::regex_match(s, re)) << s;
}

}  // namespace
}  // namespace pooler::daemon
