// text(): :name parameters become $n outside strings, identifiers, dollar quotes and comments.
#include <gtest/gtest.h>

#include "pooler/client.hpp"

namespace pooler {
namespace {

using Names = std::vector<std::string>;

// Names are numbered by first appearance; a repeated name reuses its number.
TEST(ClientText, NamedParametersBecomePositional) {
  auto t = text("SELECT * FROM t WHERE a = :a AND b = :b_2 OR a = :a");
  EXPECT_EQ(t.sql(), "SELECT * FROM t WHERE a = $1 AND b = $2 OR a = $1");
  EXPECT_EQ(t.names(), (Names{"a", "b_2"}));
  EXPECT_EQ(t.text(), "SELECT * FROM t WHERE a = :a AND b = :b_2 OR a = :a");
}

// Casts, slices, escaped colons and time literals are left alone.
TEST(ClientText, ColonsThatAreNotParameters) {
  auto t = text(R"(SELECT :x::int, arr[1:2], arr[:n], '10:30'::time, a\:b, "col:x", ts::date)");
  EXPECT_EQ(t.sql(), R"(SELECT $1::int, arr[1:2], arr[$2], '10:30'::time, a:b, "col:x", ts::date)");
  EXPECT_EQ(t.names(), (Names{"x", "n"}));
}

// Quoted text, E'' strings, dollar quotes and comments hide colons; $1 placeholders pass through.
TEST(ClientText, QuotedAndCommentedTextIsSkipped) {
  auto t = text(
      "SELECT ':a', 'it''s :b', E'\\' :c', $$ :d $$, $fn$ :e $fn$ -- :f\n"
      "/* :g /* :h */ */ , :real");
  EXPECT_EQ(t.names(), (Names{"real"}));
  EXPECT_EQ(t.sql(),
            "SELECT ':a', 'it''s :b', E'\\' :c', $$ :d $$, $fn$ :e $fn$ -- :f\n"
            "/* :g /* :h */ */ , $1");
}

// Unterminated quotes do not crash or invent parameters.
TEST(ClientText, UnterminatedQuotes) {
  EXPECT_TRUE(text("SELECT ':a").names().empty());
  EXPECT_TRUE(text("SELECT $$ :a").names().empty());
  EXPECT_TRUE(text("SELECT /* :a").names().empty());
  EXPECT_EQ(text("SELECT :").sql(), "SELECT :");
  EXPECT_EQ(text("SELECT $1, $2").sql(), "SELECT $1, $2");
}

}  // namespace
}  // namespace pooler
