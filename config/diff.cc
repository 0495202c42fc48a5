// Field-by-field comparison of two configs, by name.
#include "config/diff.h"

namespace pooler::config {

namespace {

// One merge pass over two maps sorted by name.
template <typename Map>
void diff_maps(const Map& before, const Map& after, std::vector<std::string>& added, std::vector<std::string>& removed,
               std::vector<std::string>& changed) {
  auto b = before.begin();
  auto a = after.begin();
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && b->first < a->first)) {
      removed.push_back(b->first);
      ++b;
    } else if (b == before.end() || a->first < b->first) {
      added.push_back(a->first);
      ++a;
    } else {
      if (!(b->second == a->second)) changed.push_back(a->first);
      ++b;
      ++a;
    }
  }
}

}  // namespace

bool ConfigDiff::empty() const {
  return added_databases.empty() && removed_databases.empty() && changed_databases.empty() && added_users.empty() &&
         removed_users.empty() && changed_users.empty() && !pooler_changed;
}

ConfigDiff diff(const Config& before, const Config& after) {
  ConfigDiff result;
  diff_maps(before.databases, after.databases, result.added_databases, result.removed_databases,
            result.changed_databases);
  diff_maps(before.users, after.users, result.added_users, result.removed_users, result.changed_users);
  result.pooler_changed = !(before.pooler == after.pooler);
  return result;
}

}  // namespace pooler::config
