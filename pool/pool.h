// One QueuePool (per database/user) as a pure state machine: server connections on per-state lists, a FIFO
// wait queue with deadlines, and decisions (Action) out. Shared by the daemon (libuv) and the client library
// (blocking libpq), so it does no I/O, starts no threads and reads no clock: time comes in with every event.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/action.h"
#include "pool/options.h"

namespace pooler::pool {

// Every event appends the decisions it leads to to `out`, in the order they should be carried out.
// Events about a connection must name one the pool gave out and in the state the event implies (e.g.
// ping_ok() only for a connection the owner was asked to ping); that is asserted, and ignored in release.
class Pool {
 public:
  struct Stats {
    // Connections by state; total = idle + active + opening + testing, the number bounded by
    // pool_size + max_overflow.
    int idle = 0;
    int active = 0;   // checked out to a client
    int opening = 0;
    int testing = 0;  // pinging + resetting
    int pinging = 0;
    int resetting = 0;
    int total = 0;
    int waiting = 0;          // clients in the wait queue
    int overflow_in_use = 0;  // max(0, total - pool_size)
    std::optional<TimePoint> oldest_waiter_since;  // PgBouncer's maxwait = now - this
    // Counters since the pool was created.
    std::uint64_t checkouts_total = 0;          // connections handed to clients
    std::uint64_t timeouts_total = 0;           // waiters failed by pool_timeout
    std::uint64_t connect_failures_total = 0;   // waiters failed because an open failed
    std::uint64_t opens_total = 0;              // OpenConn emitted
    std::uint64_t open_failures_total = 0;
    std::uint64_t closes_total = 0;             // CloseConn emitted, any reason
    std::uint64_t ping_failures_total = 0;
    std::uint64_t reset_failures_total = 0;
    std::uint64_t invalidations_total = 0;      // generation bumps, including those by ping failures
  };

  // `name` ("db/user") appears in error messages. `options` must pass validate().
  Pool(std::string name, Options options);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A client needs a connection: AssignConn now (idle one), or PingConn then AssignConn, or it waits in
  // FIFO order (an OpenConn may be emitted for it) until a connection is free or its deadline,
  // now + pool_timeout, passes in tick(). `waiter` must not be waiting already.
  void checkout(WaiterId waiter, TimePoint now, std::vector<Action>& out);
  // The client went away before it got a connection. Returns false if it was not waiting (its AssignConn
  // has been emitted: the owner must checkin() or discard() that connection instead). A ping under way for
  // it goes on; its connection then returns to the pool.
  bool cancel_waiter(WaiterId waiter);
  // The client is done with `conn`: closed if stale, too old, over the limits, or surplus (pool_size idle
  // already and nobody waiting); otherwise reset, then handed to the oldest waiter, or kept idle.
  void checkin(ConnId conn, TimePoint now, std::vector<Action>& out);
  // A checked-out connection is broken: closed without reset; its slot may open one for a waiter.
  void discard(ConnId conn, TimePoint now, std::vector<Action>& out);

  // The owner saw `conn` die on its own (server closed it, I/O error) in whatever state the pool has it:
  // it is forgotten as if closed (a CloseConn is still emitted so every close goes through one path), and
  // whatever was waiting on it carries on: a pinging waiter is re-queued, an opening one counts as failed.
  void lost(ConnId conn, TimePoint now, std::vector<Action>& out);

  // Outcomes of the owner's work.
  void opened(ConnId conn, TimePoint now, std::vector<Action>& out);
  void open_failed(ConnId conn, TimePoint now, std::string_view error, std::vector<Action>& out);
  void ping_ok(ConnId conn, TimePoint now, std::vector<Action>& out);
  // Closes it, invalidates every connection opened before now, and retries the checkout for its waiter
  // (who keeps its place and deadline), so no client ever receives a dead connection.
  void ping_failed(ConnId conn, TimePoint now, std::vector<Action>& out);
  void reset_done(ConnId conn, bool ok, TimePoint now, std::vector<Action>& out);

  // Health check of idle connections: every idle one idle for at least `idle_for` is pinged (PingConn with
  // waiter 0) and, when the ping succeeds, goes back to the idle list in its old place with its idle time
  // kept, so checks never keep a connection from reaching idle_timeout. A failed check is a failed ping.
  void check_idle(Duration idle_for, TimePoint now, std::vector<Action>& out);

  // Generation bump: idle connections are closed now; those checked out, pinging or resetting are closed
  // when next touched. Connections still opening count as new.
  void invalidate(TimePoint now, std::vector<Action>& out);
  // Fails waiters whose deadline has come, closes idle connections past pool_recycle or idle_timeout,
  // refills to min_pool_size. Call it at next_deadline(). Only tick() fails waiters: an event that frees a
  // connection serves the oldest waiter even if its deadline passed and tick() has not run yet, so for a
  // return and a deadline at the same instant the outcome follows the order the owner delivers them in.
  void tick(TimePoint now, std::vector<Action>& out);
  // When tick() next has something to do; nullopt = nothing until another event. After tick(t) it is
  // always later than t.
  [[nodiscard]] std::optional<TimePoint> next_deadline() const;
  // New settings in place: surplus idle connections close now; connections over the new limits close when
  // they come back (never taken from a client); more room opens for waiters now. Waiters keep their
  // deadlines. `options` must pass validate().
  void reconfigure(Options options, TimePoint now, std::vector<Action>& out);
  // Another pool needs a server connection and a limit shared between pools (the daemon's
  // max_db_connections / max_user_connections) is full: the connection idle longest is closed (kEvicted).
  // False when none is idle. A pool left below min_pool_size refills at its next tick(), like after any close.
  bool evict_idle(std::vector<Action>& out);
  // How long the longest-idle connection has been idle, for choosing whom to evict; nullopt when none is.
  [[nodiscard]] std::optional<TimePoint> oldest_idle_since() const;

  [[nodiscard]] Stats stats() const;
  [[nodiscard]] const Options& options() const { return options_; }
  [[nodiscard]] std::string_view name() const { return name_; }
  // Debug aid for tests: the first broken internal invariant, if any.
  [[nodiscard]] std::expected<void, std::string> check_invariants() const;

 private:
  // A connection's state is the list it sits on (PgBouncer's idea); move() is the one way between lists.
  enum class State {
    kOpening,    // enters: OpenConn emitted. leaves: opened() → handed out / idle / closed; open_failed().
    kIdle,       // enters: returned, reset, pinged or opened with nobody waiting and room under pool_size.
                 // leaves: taken by the oldest waiter (front for FIFO, back for LIFO), or closed by
                 // recycle, idle_timeout, invalidate(), shrink. Ordered by idle_since, oldest first.
    kPinging,    // enters: taken for a waiter and pre-ping needed. leaves: ping_ok() → active (or back to
                 // the pool if the waiter went away); ping_failed() → closed.
    kActive,     // enters: AssignConn emitted. leaves: checkin() → resetting / idle / closed; discard().
    kResetting,  // enters: checkin() with reset_on_return. leaves: reset_done() → handed out / idle / closed.
  };
  static constexpr std::size_t kStateCount = 5;

  // A client waiting for a connection, kept in arrival order; `seq` is its place in line, which it keeps
  // if a pre-ping for it fails and it has to wait again.
  struct Waiter {
    WaiterId id = 0;
    std::uint64_t seq = 0;
    TimePoint since;
    TimePoint deadline;
  };

  struct Conn {
    ConnId id = 0;
    State state = State::kOpening;
    std::list<ConnId>::iterator pos;  // where it sits in lists_[state]
    TimePoint opened_at;              // for pool_recycle
    TimePoint idle_since;             // for idle_timeout and pre_ping_after
    std::uint64_t generation = 0;     // pool generation when it opened; older than generation_ = stale
    std::optional<Waiter> for_waiter;  // kPinging: whom it is for (nullopt if that waiter went away)
    std::optional<WaiterId> holder;    // kActive: the client that has it
    bool background = false;           // kPinging: a health check of an idle connection, not a checkout
  };

  [[nodiscard]] std::list<ConnId>& list(State s) { return lists_[static_cast<std::size_t>(s)]; }
  [[nodiscard]] const std::list<ConnId>& list(State s) const { return lists_[static_cast<std::size_t>(s)]; }
  [[nodiscard]] std::size_t total_open() const { return conns_.size(); }
  [[nodiscard]] bool stale(const Conn& c) const { return c.generation < generation_; }
  // The connection `id` if it exists and is in state `expected`; asserts otherwise.
  [[nodiscard]] Conn* find(ConnId id, State expected);

  void move(Conn& c, State to, bool to_front = false);
  void open_new(std::vector<Action>& out);
  void close(Conn& c, CloseReason reason, std::vector<Action>& out);

  void enqueue(const Waiter& w);
  Waiter pop_oldest_waiter();
  void drop_waiter(std::map<std::uint64_t, Waiter>::iterator it);

  // Hands every idle connection it can to waiters, oldest first, then opens (within the limits) so that
  // each remaining waiter has an open in flight. Every event ends with it: afterwards either nobody waits
  // or nothing is idle.
  void serve_waiters(TimePoint now, std::vector<Action>& out);
  // Takes the next idle connection in use_lifo order, closing stale or too-old ones met on the way.
  [[nodiscard]] Conn* take_idle(TimePoint now, std::vector<Action>& out);
  // `c` goes to `w`: pinged first if it has been idle long enough, else assigned. known_good (just opened or
  // just pinged) skips the ping, as SQLAlchemy skips it for fresh connections.
  void hand_over(Conn& c, const Waiter& w, bool known_good, TimePoint now, std::vector<Action>& out);
  // A usable connection that belongs to nobody (opened, reset, pinged for a waiter that left): to the
  // oldest waiter, or idle, or closed.
  void release(Conn& c, bool known_good, TimePoint now, std::vector<Action>& out);
  void bump_generation(std::vector<Action>& out);
  void refill(TimePoint now, std::vector<Action>& out);

  std::string name_;
  Options options_;
  std::unordered_map<ConnId, Conn> conns_;  // every open connection, whatever its state
  std::array<std::list<ConnId>, kStateCount> lists_;
  ConnId next_conn_id_ = 1;
  std::uint64_t generation_ = 0;
  // Refill for min_pool_size waits until then after an open failure (kRefillRetryDelay).
  TimePoint refill_after_{};

  // The wait queue. enters: checkout() with nothing free, or a failed/stale pre-ping (by its old seq).
  // leaves: served (pinged or assigned), failed (deadline, open failure) or cancel_waiter().
  std::map<std::uint64_t, Waiter> queue_;                    // by seq: oldest first
  std::unordered_map<WaiterId, std::uint64_t> waiter_seq_;   // queue_ by waiter id, for cancel
  std::set<std::pair<TimePoint, std::uint64_t>> deadlines_;  // queue_ by deadline, for tick()
  std::unordered_map<WaiterId, ConnId> pinging_for_;         // waiters whose connection is being pinged
  std::uint64_t next_seq_ = 0;

  Stats counters_;  // only the *_total fields are kept here; the rest are computed by stats()
};

}  // namespace pooler::pool
