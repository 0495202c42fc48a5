// Loading a config file: read it, parse the TOML, apply the schema, hand back all problems at once.
#include "config/config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <toml++/toml.h>

#include "config/schema.h"
#include "config/table_reader.h"

namespace pooler::config {

ResetOnReturn Database::effective_reset() const {
  if (reset_on_return) return *reset_on_return;
  return pool_mode == PoolMode::kSession ? ResetOnReturn::kDiscard : ResetOnReturn::kRollback;
}

const Database* Config::find_database(std::string_view name) const {
  const auto it = databases.find(name);
  return it == databases.end() ? nullptr : &it->second;
}

const User* Config::find_user(std::string_view name) const {
  const auto it = users.find(name);
  return it == users.end() ? nullptr : &it->second;
}

AuthQuery Config::auth_query_for(const Database& db) const {
  return AuthQuery{.user = db.auth_user.value_or(pooler.auth_user),
                   .query = db.auth_query.value_or(pooler.auth_query),
                   .dbname = db.auth_dbname.value_or(pooler.auth_dbname)};
}

std::expected<Config, std::vector<ConfigError>> load_file(const std::string& path) {
  const auto fail = [&path](std::string_view what) {
    return std::unexpected(std::vector<ConfigError>{
        ConfigError{.file = path, .key = {}, .message = fmt::format("{}: {}", what, std::strerror(errno))}});
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return fail("cannot open file");
  std::string text;
  char buffer[8192];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  // A directory opens fine and fails only here, with EISDIR.
  if (std::ferror(file.get())) return fail("cannot read file");
  return load_string(text, path);
}

std::expected<Config, std::vector<ConfigError>> load_string(std::string_view toml_text,
                                                           const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view{source_name});
  } catch (const toml::parse_error& e) {
    const SourcePos pos = to_pos(e.source());
    return std::unexpected(std::vector<ConfigError>{ConfigError{.file = source_name,
                                                                .line = pos.line,
                                                                .column = pos.column,
                                                                .key = {},
                                                                .message = std::string(e.description())}});
  }
  ErrorList errors(source_name);
  Config config = read_config(root, errors);
  if (!errors.empty()) return std::unexpected(errors.take_sorted());
  config.path = source_name;
  return config;
}

}  // namespace pooler::config
