// TextClause: :name → $n, skipping quoted text, dollar quotes and comments.
#include <algorithm>
#include <cctype>

#include "pooler/errors.hpp"
#include "pooler/text.hpp"

namespace pooler::client {
namespace {

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }

}  // namespace

TextClause::TextClause(std::string_view sql) : text_(sql) {
  sql_.reserve(sql.size() + 8);
  const std::size_t n = sql.size();
  std::size_t i = 0;
  auto copy_until = [&](std::size_t end) {
    sql_.append(sql.substr(i, end - i));
    i = end;
  };
  while (i < n) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      // '…' with '' escapes (and backslash escapes in E'…'), "…" identifiers with "" escapes.
      const bool backslashes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                               (i < 2 || !word_char(sql[i - 2]));
      std::size_t j = i + 1;
      while (j < n) {
        if (backslashes && sql[j] == '\\') {
          j += 2;
          continue;
        }
        if (sql[j] == c) {
          if (j + 1 < n && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      copy_until(std::min(n, j + 1));
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      std::size_t j = sql.find('\n', i);
      copy_until(j == std::string_view::npos ? n : j);
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 0;
      std::size_t j = i;
      while (j < n) {
        if (sql.compare(j, 2, "/*") == 0) {
          ++depth;
          j += 2;
        } else if (sql.compare(j, 2, "*/") == 0) {
          j += 2;
          if (--depth == 0) break;
        } else {
          ++j;
        }
      }
      copy_until(std::min(n, j));
    } else if (c == '$' && (i == 0 || !word_char(sql[i - 1]))) {
      // $tag$ … $tag$ (tag empty or an identifier); $1 is a positional placeholder, copied as is.
      std::size_t j = i + 1;
      while (j < n && word_char(sql[j]) && !(j == i + 1 && std::isdigit(static_cast<unsigned char>(sql[j])))) ++j;
      if (j < n && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        std::size_t close = sql.find(tag, j + 1);
        copy_until(close == std::string_view::npos ? n : close + tag.size());
      } else {
        copy_until(i + 1);
      }
    } else if (c == '\\' && i + 1 < n && sql[i + 1] == ':') {
      sql_ += ':';
      i += 2;
    } else if (c == ':' && i + 1 < n && sql[i + 1] == ':') {
      copy_until(i + 2);  // a cast
    } else if (c == ':' && (i == 0 || !word_char(sql[i - 1])) && i + 1 < n && name_start(sql[i + 1])) {
      std::size_t j = i + 1;
      while (j < n && word_char(sql[j])) ++j;
      std::string name(sql.substr(i + 1, j - i - 1));
      auto it = std::ranges::find(names_, name);
      std::size_t index = static_cast<std::size_t>(it - names_.begin());
      if (it == names_.end()) names_.push_back(std::move(name));
      sql_ += '$';
      sql_ += std::to_string(index + 1);
      i = j;
    } else {
      sql_ += c;
      ++i;
    }
  }
}

}  // namespace pooler::client
