// Formatting of config errors in the compiler-style form editors and terminals recognise.
#include "config/config_error.h"

#include <fmt/format.h>

namespace pooler::config {

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

}  // namespace pooler::config
