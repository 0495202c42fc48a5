// Typed, error-collecting reads over toml++ tables.
#include "config/table_reader.h"

#include <algorithm>
#include <cmath>

#include "config/closest_key.h"

namespace pooler::config {

SourcePos to_pos(const toml::source_region& region) {
  return {static_cast<int>(region.begin.line), static_cast<int>(region.begin.column)};
}

std::string_view describe(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string path_part(std::string_view key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (bare) return std::string(key);
  std::string out = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

void ErrorList::add(SourcePos pos, std::string key, std::string message) {
  errors_.push_back(ConfigError{
      .file = file_, .line = pos.line, .column = pos.column, .key = std::move(key), .message = std::move(message)});
}

std::vector<ConfigError> ErrorList::take_sorted() {
  // Stable, so problems found at one place keep the order the checks found them in.
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return std::move(errors_);
}

TableReader::TableReader(const toml::table& table, std::string path, SourcePos pos, ErrorList& errors)
    : table_(table), path_(std::move(path)), pos_(pos), errors_(errors) {}

std::string TableReader::key_path(std::string_view key) const {
  return path_.empty() ? path_part(key) : path_ + "." + path_part(key);
}

SourcePos TableReader::position_of(std::string_view key) const {
  if (const toml::node* node = table_.get(key)) {
    const SourcePos pos = to_pos(node->source());
    if (pos.line > 0) return pos;
  }
  return pos_;
}

const toml::node* TableReader::take(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  return table_.get(key);
}

void TableReader::error(std::string_view key, std::string message) {
  errors_.add(position_of(key), key_path(key), std::move(message));
}

void TableReader::type_error(std::string_view key, const toml::node& node, std::string_view expected) {
  error(key, fmt::format("expected {}, got {}", expected, describe(node.type())));
}

bool TableReader::string(std::string_view key, std::string& out, bool allow_empty) {
  const toml::node* node = take(key);
  if (node == nullptr) return false;
  const auto* value = node->as_string();
  if (value == nullptr) {
    type_error(key, *node, "a string");
    return false;
  }
  if (!allow_empty && value->get().empty()) {
    error(key, "must not be empty");
    return false;
  }
  out = value->get();
  return true;
}

bool TableReader::optional_string(std::string_view key, std::optional<std::string>& out) {
  std::string value;
  if (!string(key, value, false)) return false;
  out = std::move(value);
  return true;
}

bool TableReader::boolean(std::string_view key, bool& out) {
  const toml::node* node = take(key);
  if (node == nullptr) return false;
  const auto* value = node->as_boolean();
  if (value == nullptr) {
    type_error(key, *node, "a boolean (true or false)");
    return false;
  }
  out = value->get();
  return true;
}

bool TableReader::integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max) {
  const toml::node* node = take(key);
  if (node == nullptr) return false;
  const auto* value = node->as_integer();
  if (value == nullptr) {
    type_error(key, *node, "an integer");
    return false;
  }
  const std::int64_t v = value->get();
  if (v < min || v > max) {
    // A limit only there because of the C++ type is not worth mentioning unless it was hit.
    if (max < std::numeric_limits<int>::max()) {
      error(key, fmt::format("must be from {} to {}, got {}", min, max, v));
    } else if (v < min) {
      error(key, fmt::format("must be >= {}, got {}", min, v));
    } else {
      error(key, fmt::format("must be <= {}, got {}", max, v));
    }
    return false;
  }
  out = v;
  return true;
}

std::optional<double> TableReader::number(std::string_view key) {
  const toml::node* node = take(key);
  if (node == nullptr) return std::nullopt;
  double v = 0;
  if (const auto* i = node->as_integer()) {
    v = static_cast<double>(i->get());
  } else if (const auto* f = node->as_floating_point()) {
    v = f->get();
  } else {
    type_error(key, *node, "a number of seconds");
    return std::nullopt;
  }
  if (!std::isfinite(v)) {
    error(key, fmt::format("must be a finite number of seconds, got {}", v));
    return std::nullopt;
  }
  return v;
}

bool TableReader::seconds(std::string_view key, Seconds& out, double min, bool min_exclusive) {
  const auto v = number(key);
  if (!v) return false;
  if (min_exclusive ? !(*v > min) : !(*v >= min)) {
    error(key, fmt::format("must be {} {}, got {}", min_exclusive ? ">" : ">=", min, *v));
    return false;
  }
  out = Seconds{*v};
  return true;
}

bool TableReader::optional_seconds(std::string_view key, std::optional<Seconds>& out,
                                   std::string_view minus_one_means) {
  const auto v = number(key);
  if (!v) return false;
  if (*v == -1.0) {
    out = std::nullopt;
    return true;
  }
  if (!(*v > 0)) {
    error(key, fmt::format("must be > 0, or -1 for {}, got {}", minus_one_means, *v));
    return false;
  }
  out = Seconds{*v};
  return true;
}

bool TableReader::string_choice(std::string_view key, std::string& out, std::span<const std::string_view> choices) {
  std::string text;
  if (!string(key, text, true)) return false;
  if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
    error(key, fmt::format("invalid value \"{}\", expected one of {}", text, quoted_list(choices)));
    return false;
  }
  out = std::move(text);
  return true;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* node = take(key);
  if (node == nullptr) return nullptr;
  if (const auto* t = node->as_table()) return t;
  type_error(key, *node, "a table");
  return nullptr;
}

const toml::array* TableReader::array(std::string_view key) {
  const toml::node* node = take(key);
  if (node == nullptr) return nullptr;
  if (const auto* a = node->as_array()) return a;
  type_error(key, *node, "an array");
  return nullptr;
}

void TableReader::report_unknown_keys() {
  for (const auto& [key, node] : table_) {
    if (std::find(known_.begin(), known_.end(), key.str()) != known_.end()) continue;
    std::string message = "unknown key";
    if (auto suggestion = closest_key(key.str(), known_)) {
      message += fmt::format("; did you mean \"{}\"?", *suggestion);
    }
    SourcePos pos = to_pos(key.source());
    if (pos.line == 0) pos = pos_;
    errors_.add(pos, key_path(key.str()), std::move(message));
  }
}

}  // namespace pooler::config
