// One problem found in a config file, with where it is, so an operator can jump straight to it.
#pragma once

#include <string>

namespace pooler::config {

struct ConfigError {
  std::string file;
  int line = 0;                              // 1-based; 0 when the problem has no place in the file
  int column = 0;                            // 1-based; 0 with line 0
  std::string key;                           // dotted, e.g. "databases.app.pool_size"; "" when none applies
  std::string message;

  // "pooler.toml:12:5: databases.app.pool_size: must be >= 0, got -3";
  // without a position: "pooler.toml: cannot open file: No such file or directory".
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const ConfigError&, const ConfigError&) = default;
};

}  // namespace pooler::config
