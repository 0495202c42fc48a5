// HostSet: per-host up/down state, backoff and candidate order.
#include "pool/host_set.h"

#include <algorithm>

namespace pooler::pool {

HostSet::HostSet(std::vector<std::string> labels, Duration base_backoff, Duration max_backoff)
    : base_backoff_(base_backoff), max_backoff_(max_backoff) {
  hosts_.reserve(labels.size());
  for (auto& l : labels) {
    HostStatus h;
    h.label = std::move(l);
    hosts_.push_back(std::move(h));
  }
}

bool HostSet::fits(HostRole role, Want want) {
  switch (want) {
    case Want::kAny:
    case Want::kPreferStandby:
      return true;
    case Want::kReadWrite:
    case Want::kPrimary:
      return role != HostRole::kStandby;
    case Want::kReadOnly:
    case Want::kStandby:
      return role != HostRole::kPrimary;
  }
  return true;
}

std::vector<std::size_t> HostSet::candidates(Want want, TimePoint now) const {
  // Ranks: 0 = up, known to fit; 1 = up, role unknown; 2 = a known primary under prefer-standby (the
  // fallback); 3 = down but due for a retry. Config order within a rank.
  std::vector<std::pair<int, std::size_t>> ranked;
  bool backing_off = false;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    const HostStatus& h = hosts_[i];
    if (h.state == HostState::kDown && now < h.retry_at) {
      backing_off = true;
      continue;
    }
    if (h.role != HostRole::kUnknown && !fits(h.role, want)) continue;
    int rank = 0;
    if (h.state == HostState::kDown) {
      rank = 3;
    } else if (h.role == HostRole::kUnknown && want != Want::kAny) {
      // With a role to match, hosts known to fit go first; with "any", config order is the preference.
      rank = 1;
    } else if (want == Want::kPreferStandby && h.role == HostRole::kPrimary) {
      rank = 2;
    }
    ranked.emplace_back(rank, i);
  }
  if (ranked.empty() && backing_off) {
    // Nothing else left: a client that needs a connection still gets one real attempt (which fails within
    // connect_timeout if the host is still down) rather than an error without trying.
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      const HostStatus& h = hosts_[i];
      if (h.state == HostState::kDown && (h.role == HostRole::kUnknown || fits(h.role, want))) ranked.emplace_back(3, i);
    }
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::size_t> out;
  out.reserve(ranked.size());
  for (const auto& [rank, i] : ranked) out.push_back(i);
  return out;
}

void HostSet::connected(std::size_t i, HostRole role, TimePoint /*now*/) {
  if (i >= hosts_.size()) return;  // from before a reload changed the host list
  HostStatus& h = hosts_[i];
  h.state = HostState::kUp;
  h.confirmed = true;
  h.role = role;
  h.consecutive_failures = 0;
  h.backoff = Duration::zero();
}

void HostSet::failed(std::size_t i, std::string error, TimePoint now) {
  if (i >= hosts_.size()) return;  // from before a reload changed the host list
  HostStatus& h = hosts_[i];
  h.last_error = error;
  last_error_ = std::move(error);
  // Many attempts started before the host went down fail together (and every idle connection is lost at
  // once when a server shuts down): only the first failure, or one after the backoff ran out, counts.
  if (h.state == HostState::kDown && now < h.retry_at) return;
  if (h.state != HostState::kDown) h.down_since = now;
  h.state = HostState::kDown;
  ++h.consecutive_failures;
  h.backoff = h.backoff == Duration::zero() ? base_backoff_ : std::min(h.backoff * 2, max_backoff_);
  h.retry_at = now + h.backoff;
}

void HostSet::unfit(std::size_t i, HostRole role, TimePoint now) {
  // Reachable, just the wrong role for what was asked: as good as a connection for the host's health.
  connected(i, role, now);
}

std::optional<TimePoint> HostSet::next_retry() const {
  std::optional<TimePoint> best;
  for (const auto& h : hosts_) {
    if (h.state == HostState::kDown && (!best || h.retry_at < *best)) best = h.retry_at;
  }
  return best;
}

std::vector<std::size_t> HostSet::due_for_retry(TimePoint now) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].state == HostState::kDown && now >= hosts_[i].retry_at) out.push_back(i);
  }
  return out;
}

const std::string& HostSet::label(std::size_t i) const {
  static const std::string kUnknown = "(unknown host)";
  return i < hosts_.size() ? hosts_[i].label : kUnknown;
}

bool HostSet::any_up() const {
  return std::any_of(hosts_.begin(), hosts_.end(), [](const HostStatus& h) { return h.state == HostState::kUp; });
}

bool HostSet::any_confirmed_up() const {
  return std::any_of(hosts_.begin(), hosts_.end(),
                     [](const HostStatus& h) { return h.state == HostState::kUp && h.confirmed; });
}

}  // namespace pooler::pool
