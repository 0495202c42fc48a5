// Suggests the key an operator probably meant when they wrote one we do not know.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pooler::config {

// The known key `typo` is obviously a misspelling of, or nullopt when none is close enough to be sure:
// a unique nearest key within a small edit distance (one or two edits, fewer for short keys), else the
// only known key that has `typo` as a whole underscore-separated part (e.g. "port" → "listen_port").
[[nodiscard]] std::optional<std::string> closest_key(std::string_view typo, std::span<const std::string> known);

}  // namespace pooler::config
