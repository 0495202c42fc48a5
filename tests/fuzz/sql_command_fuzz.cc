// classify_query (daemon/prepared.cc): the transaction-mode reading of a client's simple Query text that
// decides LISTEN refusals, DEALLOCATE/DISCARD bookkeeping and search_path tracking. It sees every Query a
// client sends, so it must take any bytes; and its answer must not depend on what cannot change a
// statement's meaning: leading whitespace and comments, and the case of unquoted words.
//
// Input: the query text, as it arrives in a Query message (it may contain NULs; the text ends at the first).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/prepared.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using pooler::daemon::classify_query;
using pooler::daemon::QueryCommand;

// The text with every byte outside "quoted identifiers" and 'string literals' upper-cased. Comments are
// upper-cased too, which changes nothing; a quote inside a comment may end the copy's view of what is quoted
// early, so the caller compares kinds only when the text has no comment opener.
std::string upper_outside_quotes(std::string_view s) {
  std::string out(s);
  char quote = 0;
  for (char& c : out) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql = pooler::fuzz::as_view(data, size);
  const QueryCommand cmd = classify_query(sql);
  using K = QueryCommand::Kind;
  // Only DEALLOCATE of one statement names one, and that name is never empty.
  FUZZ_CHECK((cmd.kind == K::kDeallocate) == !cmd.name.empty());

  // Leading whitespace and a comment are nothing to SQL.
  for (const char* prefix : {" \t\r\n", "/* c */", "-- c\n"}) {
    const QueryCommand again = classify_query(std::string(prefix) + std::string(sql));
    FUZZ_CHECK(again.kind == cmd.kind && again.name == cmd.name);
  }
  // Unquoted words fold to lower case; quoted names keep theirs, so compare names only when none is quoted.
  const std::string_view text = sql.substr(0, sql.find('\0'));
  if (text.find("--") == std::string_view::npos && text.find("/*") == std::string_view::npos) {
    const QueryCommand upper = classify_query(upper_outside_quotes(text));
    FUZZ_CHECK(upper.kind == cmd.kind);
    if (text.find('"') == std::string_view::npos) FUZZ_CHECK(upper.name == cmd.name);
  }
  return 0;
}
