// Edit-distance based "did you mean" for unknown config keys.
#include "config/closest_key.h"

#include <algorithm>
#include <vector>

namespace pooler::config {

namespace {

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the commonest typo.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

bool has_part(std::string_view key, std::string_view part) {
  std::size_t start = 0;
  while (start <= key.size()) {
    const auto end = std::min(key.find('_', start), key.size());
    if (key.substr(start, end - start) == part) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

std::optional<std::string> closest_key(std::string_view typo, std::span<const std::string> known) {
  // Short keys are close to too much by chance; a key of 4 or fewer characters gets at most one edit.
  const std::size_t limit = typo.size() <= 4 ? 1 : 2;
  std::size_t best = limit + 1;
  const std::string* best_key = nullptr;
  bool tie = false;
  for (const auto& candidate : known) {
    const std::size_t distance = edit_distance(typo, candidate);
    if (distance < best) {
      best = distance;
      best_key = &candidate;
      tie = false;
    } else if (distance == best) {
      tie = true;
    }
  }
  if (best_key != nullptr && !tie) return *best_key;

  const std::string* part_match = nullptr;
  for (const auto& candidate : known) {
    if (candidate != typo && has_part(candidate, typo)) {
      if (part_match != nullptr) return std::nullopt;
      part_match = &candidate;
    }
  }
  if (part_match != nullptr) return *part_match;
  return std::nullopt;
}

}  // namespace pooler::config
