// Validation of pool options: reports every problem at once, in the settings' own names.
#include "pool/options.h"

#include <fmt/format.h>

namespace pooler::pool {

namespace {

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::expected<void, std::vector<std::string>> validate(const Options& options) {
  std::vector<std::string> problems;
  if (options.pool_size < 0) {
    problems.push_back(fmt::format("pool_size of {} cannot be negative", options.pool_size));
  }
  if (options.max_overflow < -1) {
    problems.push_back(
        fmt::format("max_overflow of {} is invalid: use -1 for no limit", options.max_overflow));
  }
  if (options.pool_timeout < Duration::zero()) {
    problems.push_back(fmt::format("pool_timeout of {:.2f} cannot be negative", seconds(options.pool_timeout)));
  }
  // A zero recycle age would close every connection the moment it is idle, and min_pool_size would reopen
  // it at once: a busy loop, never what anyone means.
  if (options.pool_recycle && *options.pool_recycle <= Duration::zero()) {
    problems.push_back(fmt::format("pool_recycle of {:.2f} must be positive (or unset for never)",
                                   seconds(*options.pool_recycle)));
  }
  if (options.pre_ping_after < Duration::zero()) {
    problems.push_back(
        fmt::format("pre_ping_after of {:.2f} cannot be negative", seconds(options.pre_ping_after)));
  }
  if (options.min_pool_size < 0) {
    problems.push_back(fmt::format("min_pool_size of {} cannot be negative", options.min_pool_size));
  } else if (options.min_pool_size > options.pool_size) {
    problems.push_back(fmt::format("min_pool_size of {} cannot be larger than pool_size of {}",
                                   options.min_pool_size, options.pool_size));
  }
  if (options.idle_timeout && *options.idle_timeout <= Duration::zero()) {
    problems.push_back(fmt::format("idle_timeout of {:.2f} must be positive (or unset for never)",
                                   seconds(*options.idle_timeout)));
  }
  if (!problems.empty()) return std::unexpected(std::move(problems));
  return {};
}

}  // namespace pooler::pool
