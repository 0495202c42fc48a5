// What changed between two configs, for reload: which pools to create, drop or resize in place.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace pooler::config {

// Names are sorted. A database or user is "changed" when any of its fields differs.
struct ConfigDiff {
  std::vector<std::string> added_databases;
  std::vector<std::string> removed_databases;
  std::vector<std::string> changed_databases;
  std::vector<std::string> added_users;
  std::vector<std::string> removed_users;
  std::vector<std::string> changed_users;
  bool pooler_changed = false;

  // True when nothing differs (a reload that has nothing to do).
  [[nodiscard]] bool empty() const;

  friend bool operator==(const ConfigDiff&, const ConfigDiff&) = default;
};

[[nodiscard]] ConfigDiff diff(const Config& before, const Config& after);

}  // namespace pooler::config
