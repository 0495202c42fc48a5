// Names of pool decisions and reasons, as they appear in logs and metric labels.
#include "pool/action.h"

#include <fmt/format.h>

namespace pooler::pool {

namespace {

std::string_view to_string(ResetOnReturn how) {
  switch (how) {
    case ResetOnReturn::kRollback: return "rollback";
    case ResetOnReturn::kDiscard: return "discard";
    case ResetOnReturn::kNone: return "none";
  }
  return "?";
}

}  // namespace

std::string_view to_string(CloseReason reason) {
  switch (reason) {
    case CloseReason::kRecycle: return "recycle";
    case CloseReason::kIdleTimeout: return "idle_timeout";
    case CloseReason::kOverflow: return "overflow";
    case CloseReason::kError: return "error";
    case CloseReason::kInvalidated: return "invalidated";
    case CloseReason::kShrink: return "shrink";
    case CloseReason::kPingFailed: return "ping_failed";
    case CloseReason::kResetFailed: return "reset_failed";
    case CloseReason::kEvicted: return "evicted";
  }
  return "?";
}

std::string_view to_string(FailReason reason) {
  switch (reason) {
    case FailReason::kTimeout: return "timeout";
    case FailReason::kConnectFailed: return "connect_failed";
  }
  return "?";
}

std::string to_string(const Action& action) {
  struct Describe {
    std::string operator()(const OpenConn& a) const { return fmt::format("open conn={}", a.conn); }
    std::string operator()(const CloseConn& a) const {
      return fmt::format("close conn={} reason={}", a.conn, to_string(a.reason));
    }
    std::string operator()(const PingConn& a) const {
      return fmt::format("ping conn={} waiter={}", a.conn, a.waiter);
    }
    std::string operator()(const ResetConn& a) const {
      return fmt::format("reset conn={} how={}", a.conn, to_string(a.how));
    }
    std::string operator()(const AssignConn& a) const {
      return fmt::format("assign waiter={} conn={}", a.waiter, a.conn);
    }
    std::string operator()(const FailWaiter& a) const {
      return fmt::format("fail waiter={} reason={} message=\"{}\"", a.waiter, to_string(a.reason), a.message);
    }
  };
  return std::visit(Describe{}, action);
}

}  // namespace pooler::pool
