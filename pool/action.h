// The decisions a Pool hands back to its owner (the daemon's event loop, or the client library), and the
// ids and reasons they carry. The owner carries each one out and reports the outcome with the matching event.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "pool/options.h"

namespace pooler::pool {

using ConnId = std::uint64_t;    // assigned by the pool: monotonic, never reused
using WaiterId = std::uint64_t;  // assigned by the owner (the daemon's client id)

// Why the pool gave up a connection; for logs and per-reason metrics.
enum class CloseReason {
  kRecycle,      // older than pool_recycle
  kIdleTimeout,  // idle longer than idle_timeout, beyond min_pool_size
  kOverflow,     // returned (or opened for nobody) while pool_size are already idle
  kError,        // the owner discarded it as broken
  kInvalidated,  // opened before the last invalidation (generation)
  kShrink,       // over the limits after reconfigure()
  kPingFailed,   // pre-ping failed
  kResetFailed,  // reset on return failed
  kEvicted,      // idle, closed to make room for another pool (evict_idle)
};

// Why a waiting client gets an error instead of a connection.
enum class FailReason {
  kTimeout,        // pool_timeout passed: SQLSTATE 53300
  kConnectFailed,  // the connection opened for it failed (see policy.h for who is failed)
};

// Open a new server connection, then report opened() or open_failed().
struct OpenConn {
  ConnId conn;
};
// Close it; the pool has already forgotten it and counts it no more, so a replacement may be opened at once.
struct CloseConn {
  ConnId conn;
  CloseReason reason;
};
// Check it is alive (empty query, await ReadyForQuery), then report ping_ok() or ping_failed(). `waiter`
// is whom it is meant for, for logs; the pool re-checks on the outcome in case that waiter went away.
struct PingConn {
  ConnId conn;
  WaiterId waiter;
};
// Reset it as `how` says, then report reset_done().
struct ResetConn {
  ConnId conn;
  ResetOnReturn how;
};
// Checkout complete: `conn` is the waiter's until checkin() or discard().
struct AssignConn {
  WaiterId waiter;
  ConnId conn;
};
// The waiter is no longer waiting; send it `message` (as an ErrorResponse; 53300 for kTimeout).
struct FailWaiter {
  WaiterId waiter;
  FailReason reason;
  std::string message;
};

using Action = std::variant<OpenConn, CloseConn, PingConn, ResetConn, AssignConn, FailWaiter>;

[[nodiscard]] std::string_view to_string(CloseReason reason);
[[nodiscard]] std::string_view to_string(FailReason reason);
// One line, key=value, for logs and test failure messages.
[[nodiscard]] std::string to_string(const Action& action);

}  // namespace pooler::pool
