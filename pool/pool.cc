// The QueuePool state machine: events in, connection moves between state lists, decisions out.
#include "pool/pool.h"

#include <cassert>

#include <fmt/format.h>

#include "pool/policy.h"

namespace pooler::pool {

Pool::Pool(std::string name, Options options) : name_(std::move(name)), options_(std::move(options)) {
  assert(validate(options_).has_value());
}

Pool::Conn* Pool::find(ConnId id, State expected) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != expected) {
    assert(false && "pool event for an unknown connection or one in another state");
    return nullptr;
  }
  return &it->second;
}

void Pool::move(Conn& c, State to, bool to_front) {
  auto& from_list = list(c.state);
  auto& to_list = list(to);
  // splice keeps the node (and so c.pos) valid: no allocation per move.
  to_list.splice(to_front ? to_list.begin() : to_list.end(), from_list, c.pos);
  c.state = to;
}

void Pool::open_new(std::vector<Action>& out) {
  const ConnId id = next_conn_id_++;
  auto& l = list(State::kOpening);
  l.push_back(id);
  Conn& c = conns_[id];
  c.id = id;
  c.state = State::kOpening;
  c.pos = std::prev(l.end());
  ++counters_.opens_total;
  out.push_back(OpenConn{id});
}

void Pool::close(Conn& c, CloseReason reason, std::vector<Action>& out) {
  if (c.for_waiter) pinging_for_.erase(c.for_waiter->id);
  list(c.state).erase(c.pos);
  const ConnId id = c.id;
  conns_.erase(id);  // c dangles from here
  ++counters_.closes_total;
  out.push_back(CloseConn{id, reason});
}

bool Pool::evict_idle(std::vector<Action>& out) {
  auto& idle = list(State::kIdle);
  if (idle.empty()) return false;
  close(conns_.at(idle.front()), CloseReason::kEvicted, out);  // ordered by idle_since: front waited longest
  return true;
}

std::optional<TimePoint> Pool::oldest_idle_since() const {
  const auto& idle = list(State::kIdle);
  if (idle.empty()) return std::nullopt;
  return conns_.at(idle.front()).idle_since;
}

void Pool::enqueue(const Waiter& w) {
  queue_.emplace(w.seq, w);
  waiter_seq_.emplace(w.id, w.seq);
  deadlines_.emplace(w.deadline, w.seq);
}

Pool::Waiter Pool::pop_oldest_waiter() {
  Waiter w = queue_.begin()->second;
  drop_waiter(queue_.begin());
  return w;
}

void Pool::drop_waiter(std::map<std::uint64_t, Waiter>::iterator it) {
  waiter_seq_.erase(it->second.id);
  deadlines_.erase({it->second.deadline, it->second.seq});
  queue_.erase(it);
}

Pool::Conn* Pool::take_idle(TimePoint now, std::vector<Action>& out) {
  auto& idle = list(State::kIdle);
  while (!idle.empty()) {
    Conn& c = conns_.at(options_.use_lifo ? idle.back() : idle.front());
    if (stale(c)) {
      close(c, CloseReason::kInvalidated, out);
    } else if (recycle_due(options_, c.opened_at, now)) {
      close(c, CloseReason::kRecycle, out);
    } else {
      return &c;
    }
  }
  return nullptr;
}

void Pool::hand_over(Conn& c, const Waiter& w, bool known_good, TimePoint now, std::vector<Action>& out) {
  if (!known_good && needs_ping(options_, now - c.idle_since)) {
    move(c, State::kPinging);
    c.for_waiter = w;
    pinging_for_[w.id] = c.id;
    out.push_back(PingConn{c.id, w.id});
    return;
  }
  move(c, State::kActive);
  c.holder = w.id;
  ++counters_.checkouts_total;
  out.push_back(AssignConn{w.id, c.id});
}

void Pool::serve_waiters(TimePoint now, std::vector<Action>& out) {
  while (!queue_.empty()) {
    Conn* c = take_idle(now, out);
    if (c == nullptr) break;
    hand_over(*c, pop_oldest_waiter(), /*known_good=*/false, now, out);
  }
  // Opens are not bound to waiters: whichever finishes first serves the oldest waiter, so FIFO holds even
  // when connects finish out of order.
  while (queue_.size() > list(State::kOpening).size() && has_room(total_open(), options_)) open_new(out);
}

void Pool::release(Conn& c, bool known_good, TimePoint now, std::vector<Action>& out) {
  c.idle_since = now;
  if (stale(c)) return close(c, CloseReason::kInvalidated, out);
  if (over_limit(total_open(), options_)) return close(c, CloseReason::kShrink, out);
  if (!queue_.empty()) return hand_over(c, pop_oldest_waiter(), known_good, now, out);
  if (list(State::kIdle).size() < static_cast<std::size_t>(options_.pool_size)) {
    // Appended, so the idle list stays ordered by idle_since: FIFO takes the front, LIFO the back, and
    // idle_timeout closes from the front.
    move(c, State::kIdle);
    return;
  }
  close(c, CloseReason::kOverflow, out);
}

void Pool::bump_generation(std::vector<Action>& out) {
  ++generation_;
  ++counters_.invalidations_total;
  auto& idle = list(State::kIdle);
  while (!idle.empty()) close(conns_.at(idle.front()), CloseReason::kInvalidated, out);
}

void Pool::refill(TimePoint now, std::vector<Action>& out) {
  if (now < refill_after_) return;
  while (total_open() < refill_target(options_) && has_room(total_open(), options_)) open_new(out);
}

void Pool::checkout(WaiterId waiter, TimePoint now, std::vector<Action>& out) {
  assert(!waiter_seq_.contains(waiter) && !pinging_for_.contains(waiter) && "waiter already waiting");
  // Join the back of the line and let serve_waiters() decide: with an idle connection and nobody ahead,
  // that is an immediate hand-over; otherwise it waits (with an open under way if there is room).
  enqueue(Waiter{waiter, next_seq_++, now, now + options_.pool_timeout});
  serve_waiters(now, out);
}

bool Pool::cancel_waiter(WaiterId waiter) {
  if (auto it = waiter_seq_.find(waiter); it != waiter_seq_.end()) {
    drop_waiter(queue_.find(it->second));
    return true;
  }
  if (auto it = pinging_for_.find(waiter); it != pinging_for_.end()) {
    // The ping goes on; its outcome finds nobody to hand to and releases the connection.
    conns_.at(it->second).for_waiter.reset();
    pinging_for_.erase(it);
    return true;
  }
  return false;
}

void Pool::checkin(ConnId id, TimePoint now, std::vector<Action>& out) {
  Conn* c = find(id, State::kActive);
  if (c == nullptr) return;
  c->holder.reset();
  if (stale(*c)) {
    close(*c, CloseReason::kInvalidated, out);
  } else if (recycle_due(options_, c->opened_at, now)) {
    close(*c, CloseReason::kRecycle, out);
  } else if (over_limit(total_open(), options_)) {
    close(*c, CloseReason::kShrink, out);
  } else if (queue_.empty() && list(State::kIdle).size() >= static_cast<std::size_t>(options_.pool_size)) {
    // Surplus (overflow, or pool_size 0): it would be closed after the reset anyway, so skip the reset
    // round trip; closing ends the client's transaction just as surely. Someone arriving meanwhile gets
    // the slot this frees.
    close(*c, CloseReason::kOverflow, out);
  } else if (options_.reset_on_return != ResetOnReturn::kNone) {
    move(*c, State::kResetting);
    out.push_back(ResetConn{id, options_.reset_on_return});
  } else {
    release(*c, /*known_good=*/false, now, out);
  }
  serve_waiters(now, out);
}

void Pool::discard(ConnId id, TimePoint now, std::vector<Action>& out) {
  Conn* c = find(id, State::kActive);
  if (c == nullptr) return;
  close(*c, CloseReason::kError, out);
  serve_waiters(now, out);
}

void Pool::lost(ConnId id, TimePoint now, std::vector<Action>& out) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  switch (c.state) {
    case State::kOpening:
      open_failed(id, now, "server connection lost while opening", out);
      return;
    case State::kPinging:
      ping_failed(id, now, out);
      return;
    case State::kResetting:
      reset_done(id, false, now, out);
      return;
    case State::kActive:
      discard(id, now, out);
      return;
    case State::kIdle:
      close(c, CloseReason::kError, out);
      serve_waiters(now, out);
      return;
  }
}

void Pool::opened(ConnId id, TimePoint now, std::vector<Action>& out) {
  Conn* c = find(id, State::kOpening);
  if (c == nullptr) return;
  // Stamped with the generation at the moment it is known to work: an invalidation while it was opening
  // (the server was down then) does not make it stale.
  c->opened_at = now;
  c->generation = generation_;
  release(*c, /*known_good=*/true, now, out);
  serve_waiters(now, out);
}

void Pool::open_failed(ConnId id, TimePoint now, std::string_view error, std::vector<Action>& out) {
  Conn* c = find(id, State::kOpening);
  if (c == nullptr) return;
  list(State::kOpening).erase(c->pos);
  conns_.erase(id);
  ++counters_.open_failures_total;
  refill_after_ = now + kRefillRetryDelay;
  if (fail_oldest_on_open_failure(queue_.size(), list(State::kOpening).size())) {
    const Waiter w = pop_oldest_waiter();
    ++counters_.connect_failures_total;
    out.push_back(FailWaiter{w.id, FailReason::kConnectFailed, connect_failed_message(name_, error)});
  }
  serve_waiters(now, out);
}

void Pool::check_idle(Duration idle_for, TimePoint now, std::vector<Action>& out) {
  std::vector<ConnId> due;
  for (ConnId id : list(State::kIdle)) {
    if (now - conns_.at(id).idle_since >= idle_for) due.push_back(id);
  }
  for (ConnId id : due) {
    Conn& c = conns_.at(id);
    move(c, State::kPinging);
    c.background = true;
    out.push_back(PingConn{id, 0});
  }
}

void Pool::ping_ok(ConnId id, TimePoint now, std::vector<Action>& out) {
  Conn* c = find(id, State::kPinging);
  if (c == nullptr) return;
  std::optional<Waiter> w = std::exchange(c->for_waiter, std::nullopt);
  if (w) pinging_for_.erase(w->id);
  if (std::exchange(c->background, false)) {
    if (stale(*c)) {
      close(*c, CloseReason::kInvalidated, out);
    } else if (!queue_.empty()) {
      // Someone started waiting meanwhile (the pool was full): this one was just proven alive.
      hand_over(*c, pop_oldest_waiter(), /*known_good=*/true, now, out);
    } else {
      // Back where its idle time puts it, so idle_timeout and FIFO order are as if it had never left.
      auto& idle = list(State::kIdle);
      auto pos = idle.begin();
      while (pos != idle.end() && conns_.at(*pos).idle_since <= c->idle_since) ++pos;
      idle.splice(pos, list(State::kPinging), c->pos);
      c->state = State::kIdle;
    }
  } else if (!w) {
    // Just proven alive: the next taker needs no second ping.
    release(*c, /*known_good=*/true, now, out);
  } else if (stale(*c)) {
    // Invalidated while the ping was in flight: the rule is the rule, and the waiter tries again in place.
    close(*c, CloseReason::kInvalidated, out);
    enqueue(*w);
  } else {
    move(*c, State::kActive);
    c->holder = w->id;
    ++counters_.checkouts_total;
    out.push_back(AssignConn{w->id, id});
  }
  serve_waiters(now, out);
}

void Pool::ping_failed(ConnId id, TimePoint now, std::vector<Action>& out) {
  Conn* c = find(id, State::kPinging);
  if (c == nullptr) return;
  c->background = false;
  std::optional<Waiter> w = std::exchange(c->for_waiter, std::nullopt);
  if (w) pinging_for_.erase(w->id);
  ++counters_.ping_failures_total;
  close(*c, CloseReason::kPingFailed, out);
  // A dead connection usually means the server restarted: every connection opened before now is suspect.
  bump_generation(out);
  if (w) enqueue(*w);  // keeps its seq, so it is served before everyone who arrived after it
  serve_waiters(now, out);
}

void Pool::reset_done(ConnId id, bool ok, TimePoint now, std::vector<Action>& out) {
  Conn* c = find(id, State::kResetting);
  if (c == nullptr) return;
  if (ok) {
    release(*c, /*known_good=*/false, now, out);
  } else {
    ++counters_.reset_failures_total;
    close(*c, CloseReason::kResetFailed, out);
  }
  serve_waiters(now, out);
}

void Pool::invalidate(TimePoint now, std::vector<Action>& out) {
  bump_generation(out);
  serve_waiters(now, out);
}

void Pool::tick(TimePoint now, std::vector<Action>& out) {
  // Deadlines first. A connection that came back at this same instant was handed to the oldest waiter when
  // its event arrived (events are never held back for deadlines), so whether a waiter due now gets it or
  // times out follows the order the owner delivered the two events in.
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const Waiter w = queue_.at(deadlines_.begin()->second);
    drop_waiter(queue_.find(w.seq));
    ++counters_.timeouts_total;
    out.push_back(FailWaiter{w.id, FailReason::kTimeout, timeout_message(name_, options_)});
  }
  auto& idle = list(State::kIdle);
  for (auto it = idle.begin(); it != idle.end();) {
    Conn& c = conns_.at(*it++);  // advance first: close() erases c's node
    if (recycle_due(options_, c.opened_at, now)) {
      close(c, CloseReason::kRecycle, out);
    } else if (total_open() > refill_target(options_) && idle_expired(options_, c.idle_since, now)) {
      // Front first: the longest idle go, min_pool_size stay.
      close(c, CloseReason::kIdleTimeout, out);
    }
  }
  refill(now, out);
  serve_waiters(now, out);
}

std::optional<TimePoint> Pool::next_deadline() const {
  std::optional<TimePoint> next;
  auto consider = [&next](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  if (!deadlines_.empty()) consider(deadlines_.begin()->first);
  for (ConnId id : list(State::kIdle)) {
    const Conn& c = conns_.at(id);
    if (options_.pool_recycle) consider(c.opened_at + *options_.pool_recycle);
    if (options_.idle_timeout && total_open() > refill_target(options_)) {
      consider(c.idle_since + *options_.idle_timeout);
    }
  }
  if (total_open() < refill_target(options_) && has_room(total_open(), options_)) consider(refill_after_);
  return next;
}

void Pool::reconfigure(Options options, TimePoint now, std::vector<Action>& out) {
  assert(validate(options).has_value());
  options_ = std::move(options);
  // Shrink from the longest idle; checked-out connections over the limits close on return (release()).
  auto& idle = list(State::kIdle);
  while (!idle.empty() && (idle.size() > static_cast<std::size_t>(options_.pool_size) ||
                           over_limit(total_open(), options_))) {
    close(conns_.at(idle.front()), CloseReason::kShrink, out);
  }
  refill(now, out);
  serve_waiters(now, out);
}

Pool::Stats Pool::stats() const {
  Stats s = counters_;
  s.idle = static_cast<int>(list(State::kIdle).size());
  s.active = static_cast<int>(list(State::kActive).size());
  s.opening = static_cast<int>(list(State::kOpening).size());
  s.pinging = static_cast<int>(list(State::kPinging).size());
  s.resetting = static_cast<int>(list(State::kResetting).size());
  s.testing = s.pinging + s.resetting;
  s.total = static_cast<int>(total_open());
  s.waiting = static_cast<int>(queue_.size());
  s.overflow_in_use = std::max(0, s.total - options_.pool_size);
  if (!queue_.empty()) s.oldest_waiter_since = queue_.begin()->second.since;
  return s;
}

std::expected<void, std::string> Pool::check_invariants() const {
  auto fail = [](std::string what) { return std::unexpected(std::move(what)); };
  std::size_t listed = 0;
  for (std::size_t i = 0; i < kStateCount; ++i) {
    for (auto it = lists_[i].begin(); it != lists_[i].end(); ++it) {
      auto c = conns_.find(*it);
      if (c == conns_.end()) return fail(fmt::format("conn {} listed but unknown", *it));
      if (static_cast<std::size_t>(c->second.state) != i) {
        return fail(fmt::format("conn {} on list {} but in state {}", *it, i, static_cast<int>(c->second.state)));
      }
      if (c->second.pos != it) return fail(fmt::format("conn {} has a stale list position", *it));
      ++listed;
    }
  }
  if (listed != conns_.size()) return fail("a connection is on no list");
  const auto& idle = list(State::kIdle);
  if (!queue_.empty() && !idle.empty()) return fail("clients wait while connections are idle");
  if (queue_.size() > list(State::kOpening).size() && has_room(total_open(), options_)) {
    return fail("a waiter has no open under way although there is room");
  }
  if (idle.size() > static_cast<std::size_t>(options_.pool_size)) return fail("more idle than pool_size");
  if (waiter_seq_.size() != queue_.size() || deadlines_.size() != queue_.size()) {
    return fail("wait queue indexes disagree");
  }
  for (const auto& [seq, w] : queue_) {
    auto it = waiter_seq_.find(w.id);
    if (it == waiter_seq_.end() || it->second != seq) return fail(fmt::format("waiter {} not indexed", w.id));
    if (!deadlines_.contains({w.deadline, seq})) return fail(fmt::format("waiter {} has no deadline", w.id));
    if (pinging_for_.contains(w.id)) return fail(fmt::format("waiter {} both waits and is pinged for", w.id));
  }
  for (const auto& [waiter, conn] : pinging_for_) {
    auto c = conns_.find(conn);
    if (c == conns_.end() || c->second.state != State::kPinging || !c->second.for_waiter ||
        c->second.for_waiter->id != waiter) {
      return fail(fmt::format("waiter {} pinged-for index points at conn {} wrongly", waiter, conn));
    }
  }
  TimePoint last_idle{TimePoint::min()};
  for (ConnId id : idle) {
    const Conn& c = conns_.at(id);
    if (stale(c)) return fail(fmt::format("stale conn {} is idle", id));
    if (c.idle_since < last_idle) return fail("idle list not ordered by idle_since");
    last_idle = c.idle_since;
  }
  for (const auto& [id, c] : conns_) {
    if ((c.state == State::kActive) != c.holder.has_value()) return fail(fmt::format("conn {} holder wrong", id));
    if (c.state != State::kPinging && c.for_waiter) return fail(fmt::format("conn {} pinged-for wrong", id));
    if (id >= next_conn_id_) return fail(fmt::format("conn {} id from the future", id));
  }
  return {};
}

}  // namespace pooler::pool
