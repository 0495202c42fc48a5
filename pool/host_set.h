// Health of a database's backend hosts: which one a new server connection should try, in what order, and
// when a host that failed may be tried again (exponential backoff). Pure: time comes in with every event.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "pool/options.h"

namespace pooler::pool {

// libpq's target_session_attrs, as far as host choice goes.
enum class Want { kAny, kReadWrite, kReadOnly, kPrimary, kStandby, kPreferStandby };

enum class HostState {
  kUp,    // the last attempt worked, or nothing was tried yet (optimistic: the config says it exists)
  kDown,  // the last attempt failed; not tried again before retry_at (unless nothing else is left)
};

enum class HostRole { kUnknown, kPrimary, kStandby };

struct HostStatus {
  std::string label;  // "host:port"
  HostState state = HostState::kUp;
  HostRole role = HostRole::kUnknown;
  TimePoint down_since{};
  TimePoint retry_at{};
  Duration backoff{};
  int consecutive_failures = 0;
  std::string last_error;
  bool confirmed = false;  // a connection or probe reached it at least once
};

class HostSet {
 public:
  explicit HostSet(std::vector<std::string> labels, Duration base_backoff = std::chrono::seconds(1),
                   Duration max_backoff = std::chrono::seconds(30));

  // Indexes of the hosts a new connection should try, best first: up hosts whose known role fits `want`
  // (for kPreferStandby: standbys, then unknown, then primaries), then up hosts of unknown role, then down
  // hosts whose retry time has come. Down hosts still backing off, and up hosts known not to fit, are
  // left out — unless nothing else is left, when the backing-off ones are returned so a client still gets
  // one real attempt. Empty only without any host that could fit.
  [[nodiscard]] std::vector<std::size_t> candidates(Want want, TimePoint now) const;

  // A connection to host `i` worked; `role` is what the server reported (in_hot_standby).
  void connected(std::size_t i, HostRole role, TimePoint now);
  // Host `i` could not be reached: down, backoff doubled (base, 2×, 4× … max), retried after it.
  void failed(std::size_t i, std::string error, TimePoint now);
  // Host `i` answered but has the wrong role for what was asked: it is up, just not a candidate for that.
  void unfit(std::size_t i, HostRole role, TimePoint now);

  // The earliest retry time of a down host, for a background probe; nullopt when every host is up.
  [[nodiscard]] std::optional<TimePoint> next_retry() const;
  // Down hosts whose retry time has come.
  [[nodiscard]] std::vector<std::size_t> due_for_retry(TimePoint now) const;

  [[nodiscard]] bool any_up() const;
  // Up and actually reached at least once (readiness: an untried host does not count).
  [[nodiscard]] bool any_confirmed_up() const;
  // "host:port" of host `i`; indexes from before a host-list change are tolerated everywhere.
  [[nodiscard]] const std::string& label(std::size_t i) const;
  [[nodiscard]] const std::vector<HostStatus>& hosts() const { return hosts_; }
  // The most recent connect error of any host, for messages when nothing can be reached.
  [[nodiscard]] const std::string& last_error() const { return last_error_; }

  // Whether a host of `role` fits `want` (kUnknown never counts as a known misfit).
  [[nodiscard]] static bool fits(HostRole role, Want want);

 private:
  std::vector<HostStatus> hosts_;
  Duration base_backoff_;
  Duration max_backoff_;
  std::string last_error_;
};

}  // namespace pooler::pool
