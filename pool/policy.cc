// The pool's pure predicates and its error texts.
#include "pool/policy.h"

#include <algorithm>

#include <fmt/format.h>

namespace pooler::pool {

bool has_room(std::size_t total_open, const Options& options) {
  if (options.max_overflow < 0) return true;
  return total_open < static_cast<std::size_t>(options.pool_size) + static_cast<std::size_t>(options.max_overflow);
}

bool over_limit(std::size_t total_open, const Options& options) {
  if (options.max_overflow < 0) return false;
  return total_open > static_cast<std::size_t>(options.pool_size) + static_cast<std::size_t>(options.max_overflow);
}

bool recycle_due(const Options& options, TimePoint opened_at, TimePoint now) {
  return options.pool_recycle && now - opened_at >= *options.pool_recycle;
}

bool idle_expired(const Options& options, TimePoint idle_since, TimePoint now) {
  return options.idle_timeout && now - idle_since >= *options.idle_timeout;
}

bool needs_ping(const Options& options, Duration idle_for) {
  return options.pre_ping && idle_for >= options.pre_ping_after;
}

std::size_t refill_target(const Options& options) {
  return static_cast<std::size_t>(std::clamp(options.min_pool_size, 0, std::max(options.pool_size, 0)));
}

bool fail_oldest_on_open_failure(std::size_t waiting, std::size_t opening) { return waiting > opening; }

std::string timeout_message(std::string_view pool_name, const Options& options) {
  return fmt::format("pool \"{}\" limit of size {} overflow {} reached, connection timed out, timeout {:.2f}",
                     pool_name, options.pool_size, options.max_overflow,
                     std::chrono::duration<double>(options.pool_timeout).count());
}

std::string connect_failed_message(std::string_view pool_name, std::string_view error) {
  return fmt::format("pool \"{}\" could not open a server connection: {}", pool_name, error);
}

}  // namespace pooler::pool
