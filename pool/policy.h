// The pool's small decisions as pure predicates over numbers and times, so that each rule reads on its own,
// is tested on its own, and can be changed (e.g. by the health-check work) without touching the state machine.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "pool/options.h"

namespace pooler::pool {

// After an open fails, refill for min_pool_size waits this long: a down server must not turn tick() into a
// connect loop. The health checker will replace this with per-host backoff.
inline constexpr Duration kRefillRetryDelay = std::chrono::seconds(1);

// Total open connections allowed: pool_size + max_overflow, or unlimited for max_overflow -1.
[[nodiscard]] bool has_room(std::size_t total_open, const Options& options);
// More open than the limits allow; only possible after reconfigure() shrank them.
[[nodiscard]] bool over_limit(std::size_t total_open, const Options& options);

// pool_recycle: is a connection opened at `opened_at` too old to be handed out or kept? Inclusive at the
// boundary so that the instant next_deadline() names is the instant tick() acts.
[[nodiscard]] bool recycle_due(const Options& options, TimePoint opened_at, TimePoint now);
// idle_timeout, inclusive for the same reason.
[[nodiscard]] bool idle_expired(const Options& options, TimePoint idle_since, TimePoint now);
// Pre-ping a connection idle for `idle_for` before handing it out? pre_ping_after 0 pings every checkout,
// as SQLAlchemy does.
[[nodiscard]] bool needs_ping(const Options& options, Duration idle_for);
// How many connections tick() keeps open: min_pool_size, never more than pool_size would keep idle
// (otherwise refilled connections would be closed as overflow and refilled again, forever).
[[nodiscard]] std::size_t refill_target(const Options& options);

// An open failed and `waiting` clients wait while `opening` other opens are still in flight. Fail the oldest
// waiter (kConnectFailed, with the server's error) if the remaining opens can no longer cover them all.
// Why: SQLAlchemy raises the connect error in the checkout that tried to connect, and we keep that, with
// the oldest waiter standing in for "the one it was opened for" (opens are not bound to waiters so the FIFO
// order holds). Each waiter so costs at most one connect attempt: a down server gives prompt errors, not
// waits until pool_timeout, and no retry storm. Retrying until the deadline instead would hammer a down
// server and still fail, only later.
[[nodiscard]] bool fail_oldest_on_open_failure(std::size_t waiting, std::size_t opening);

// SQLAlchemy's TimeoutError text with our pool name, e.g.
// `pool "app/app" limit of size 5 overflow 10 reached, connection timed out, timeout 30.00`.
[[nodiscard]] std::string timeout_message(std::string_view pool_name, const Options& options);
[[nodiscard]] std::string connect_failed_message(std::string_view pool_name, std::string_view error);

}  // namespace pooler::pool
