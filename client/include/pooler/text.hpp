// text("SELECT … WHERE id = :id"): SQL with :name bind parameters, rewritten once to $1…$n so values travel
// as protocol parameters and are never spliced into the SQL.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pooler {
inline namespace client {

class TextClause {
 public:
  // Finds :name parameters outside quotes, dollar-quoted strings and comments. `::` is a cast and `\:` a
  // literal colon, as in SQLAlchemy.
  explicit TextClause(std::string_view sql);

  [[nodiscard]] const std::string& text() const { return text_; }  // as written
  [[nodiscard]] const std::string& sql() const { return sql_; }    // with $1…$n
  // Parameter names in $n order (each name once, however often it appears).
  [[nodiscard]] const std::vector<std::string>& names() const { return names_; }

 private:
  std::string text_;
  std::string sql_;
  std::vector<std::string> names_;
};

[[nodiscard]] inline TextClause text(std::string_view sql) { return TextClause(sql); }

}  // namespace client
}  // namespace pooler
