// The config schema: which keys each table has, their types, ranges and cross-checks, applied to a parsed
// TOML document.
#pragma once

#include <toml++/toml.h>

#include "config/config.h"
#include "config/table_reader.h"

namespace pooler::config {

// Builds the Config from a parsed document. Every problem goes to `errors`; the returned Config is only
// meaningful when none was found.
[[nodiscard]] Config read_config(const toml::table& root, ErrorList& errors);

}  // namespace pooler::config
