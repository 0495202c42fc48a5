// Typed reads of one TOML table that record every problem as a ConfigError instead of stopping at the
// first, and that know which keys were asked for so the rest can be reported as unknown.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "config/config.h"
#include "config/config_error.h"
#include "config/enum_names.h"

namespace pooler::config {

struct SourcePos {
  int line = 0;
  int column = 0;
};

[[nodiscard]] SourcePos to_pos(const toml::source_region& region);

// "a string", "an integer", ... as used in "expected X, got Y".
[[nodiscard]] std::string_view describe(toml::node_type type);

// A key as it appears in a dotted path: bare when TOML allows it bare, else quoted.
[[nodiscard]] std::string path_part(std::string_view key);

// The errors found in one file, later handed out sorted into file order.
class ErrorList {
 public:
  explicit ErrorList(std::string file) : file_(std::move(file)) {}

  void add(SourcePos pos, std::string key, std::string message);
  [[nodiscard]] bool empty() const { return errors_.empty(); }
  [[nodiscard]] std::vector<ConfigError> take_sorted();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

class TableReader {
 public:
  // The largest value of T that an int64 can hold.
  template <typename T>
  static constexpr std::int64_t max_of() {
    if constexpr (sizeof(T) >= sizeof(std::int64_t)) {
      return std::numeric_limits<std::int64_t>::max();
    } else {
      return static_cast<std::int64_t>(std::numeric_limits<T>::max());
    }
  }

  // path is the table's dotted key ("" for the root); pos is where the table is defined.
  TableReader(const toml::table& table, std::string path, SourcePos pos, ErrorList& errors);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string key_path(std::string_view key) const;
  [[nodiscard]] SourcePos position() const { return pos_; }
  // Where the key's value is, or the table's position when the key is absent.
  [[nodiscard]] SourcePos position_of(std::string_view key) const;

  // Marks the key as known and returns its value, nullptr when absent.
  const toml::node* take(std::string_view key);

  // Each read leaves `out` untouched (at its default) when the key is absent or wrong, and returns
  // whether it set it.
  bool string(std::string_view key, std::string& out, bool allow_empty);
  bool optional_string(std::string_view key, std::optional<std::string>& out);
  bool boolean(std::string_view key, bool& out);
  bool integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max);
  template <typename T>
  bool integer(std::string_view key, T& out, std::int64_t min, std::int64_t max = max_of<T>()) {
    std::int64_t value = 0;
    if (!integer(key, value, min, max)) return false;
    out = static_cast<T>(value);
    return true;
  }
  // min_exclusive: the value must be > min, else >= min.
  bool seconds(std::string_view key, Seconds& out, double min, bool min_exclusive);
  // -1 stores nullopt ("never"/"none"); anything else must be > 0.
  bool optional_seconds(std::string_view key, std::optional<Seconds>& out, std::string_view minus_one_means);
  bool string_choice(std::string_view key, std::string& out, std::span<const std::string_view> choices);
  template <typename E>
  bool choice(std::string_view key, E& out) {
    std::string text;
    if (!string(key, text, true)) return false;
    if (auto value = parse_enum<E>(text)) {
      out = *value;
      return true;
    }
    error(key, fmt::format("invalid value \"{}\", expected one of {}", text, quoted_choices<E>()));
    return false;
  }
  // A table or array value, with a type error when the key holds something else.
  const toml::table* table(std::string_view key);
  const toml::array* array(std::string_view key);

  // Reports at the key's value (or the table when absent).
  void error(std::string_view key, std::string message);
  void type_error(std::string_view key, const toml::node& node, std::string_view expected);

  // Call once every known key has been taken: reports the rest, with a suggestion when one is obvious.
  void report_unknown_keys();

  [[nodiscard]] ErrorList& errors() { return errors_; }

 private:
  // The value as a finite number of seconds, or nullopt after reporting why not.
  std::optional<double> number(std::string_view key);

  const toml::table& table_;
  std::string path_;
  SourcePos pos_;
  ErrorList& errors_;
  std::vector<std::string> known_;
};

}  // namespace pooler::config
