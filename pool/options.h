// Settings of one pool: SQLAlchemy QueuePool's names and defaults plus the daemon's extras, and the check
// that a set of them is coherent (the Pool assumes it was passed).
#pragma once

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <vector>

namespace pooler::pool {

// The pool never reads a clock: every event carries `now`. steady_clock because wall-clock jumps must not
// recycle or time out anything.
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

// What is done to a connection when a client gives it back, before anyone else may have it.
enum class ResetOnReturn {
  kRollback,  // ROLLBACK: SQLAlchemy's default; enough in transaction pooling
  kDiscard,   // DISCARD ALL: session pooling, where a client may have changed session state
  kNone,      // hand it on as is
};

struct Options {
  // Connections kept open when idle. 0 keeps none: every return closes (see DESIGN.md; SQLAlchemy instead
  // reads 0 as "no limit on idle", an artefact of Python's Queue(maxsize=0) that we do not copy).
  int pool_size = 5;
  // Connections allowed beyond pool_size at once; -1 = no limit.
  int max_overflow = 10;
  // How long a client waits for a connection before it is failed with SQLSTATE 53300.
  Duration pool_timeout = std::chrono::seconds(30);
  // Connections older than this are closed at checkout, at return and when idle; nullopt = never
  // (SQLAlchemy's -1).
  std::optional<Duration> pool_recycle;
  // Ping a connection before handing it out, if it has been idle at least pre_ping_after (0 = every
  // checkout, as SQLAlchemy's pool_pre_ping does). Freshly opened connections are never pinged.
  bool pre_ping = false;
  Duration pre_ping_after = Duration::zero();
  // Hand out the most recently returned idle connection first, so surplus ones age out by idle_timeout.
  bool use_lifo = false;
  ResetOnReturn reset_on_return = ResetOnReturn::kRollback;
  // Daemon extras (PgBouncer's meaning): open connections kept at least this many, refilled by tick().
  int min_pool_size = 0;
  // Idle connections beyond min_pool_size are closed after being idle this long; nullopt = never.
  std::optional<Duration> idle_timeout;
};

// Every problem with `options`, each a sentence naming the setting, or nothing if the Pool can use them.
[[nodiscard]] std::expected<void, std::vector<std::string>> validate(const Options& options);

}  // namespace pooler::pool
