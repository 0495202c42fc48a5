// Test helpers for pool/: a fake clock (plain TimePoints we advance) and an action recorder that runs one
// pool event, checks the pool's invariants, and lets the test pick the decisions out by type.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pool/pool.h"

namespace pooler::pool::testing {

using namespace std::chrono_literals;
using Actions = std::vector<Action>;

// Time is only ever what the test says it is.
struct FakeClock {
  TimePoint now{std::chrono::hours(1)};  // away from the epoch, so "never" and "now" differ
  void advance(Duration d) { now += d; }
};

inline std::string describe(const Actions& actions) {
  std::string s = "actions:";
  for (const Action& a : actions) s += "\n  " + to_string(a);
  return s;
}

template <class T>
std::vector<T> all_of(const Actions& actions) {
  std::vector<T> found;
  for (const Action& a : actions) {
    if (const T* t = std::get_if<T>(&a)) found.push_back(*t);
  }
  return found;
}

// The one decision of type T; a test failure (and a default T) if there is not exactly one.
template <class T>
T one_of(const Actions& actions) {
  auto found = all_of<T>(actions);
  EXPECT_EQ(found.size(), 1u) << describe(actions);
  return found.empty() ? T{} : found.front();
}

template <class T>
bool none_of(const Actions& actions) {
  return all_of<T>(actions).empty();
}

// A pool plus a clock; each event method runs it at clock.now and returns what the pool decided.
class PoolFixture : public ::testing::Test {
 protected:
  void make(Options options) { pool_.emplace("app/app", std::move(options)); }
  Pool& pool() { return *pool_; }

  Actions checkout(WaiterId w) { return run([&](Actions& a) { pool_->checkout(w, clock_.now, a); }); }
  Actions checkin(ConnId c) { return run([&](Actions& a) { pool_->checkin(c, clock_.now, a); }); }
  Actions discard(ConnId c) { return run([&](Actions& a) { pool_->discard(c, clock_.now, a); }); }
  Actions opened(ConnId c) { return run([&](Actions& a) { pool_->opened(c, clock_.now, a); }); }
  Actions open_failed(ConnId c, std::string_view error = "connection refused") {
    return run([&](Actions& a) { pool_->open_failed(c, clock_.now, error, a); });
  }
  Actions ping_ok(ConnId c) { return run([&](Actions& a) { pool_->ping_ok(c, clock_.now, a); }); }
  Actions ping_failed(ConnId c) { return run([&](Actions& a) { pool_->ping_failed(c, clock_.now, a); }); }
  Actions reset_done(ConnId c, bool ok = true) {
    return run([&](Actions& a) { pool_->reset_done(c, ok, clock_.now, a); });
  }
  Actions check_idle(Duration idle_for) {
    return run([&](Actions& a) { pool_->check_idle(idle_for, clock_.now, a); });
  }
  Actions lost(ConnId c) { return run([&](Actions& a) { pool_->lost(c, clock_.now, a); }); }
  Actions invalidate() { return run([&](Actions& a) { pool_->invalidate(clock_.now, a); }); }
  Actions tick() { return run([&](Actions& a) { pool_->tick(clock_.now, a); }); }
  Actions reconfigure(Options o) {
    return run([&](Actions& a) { pool_->reconfigure(std::move(o), clock_.now, a); });
  }

  // Checkout on a pool with nothing idle: expects an open, completes it, expects the assignment.
  ConnId open_for(WaiterId w) {
    const ConnId c = one_of<OpenConn>(checkout(w)).conn;
    const AssignConn assigned = one_of<AssignConn>(opened(c));
    EXPECT_EQ(assigned.waiter, w);
    EXPECT_EQ(assigned.conn, c);
    return c;
  }
  // Returns a connection through the reset (when one is asked for) so that it ends up idle or reused.
  Actions give_back(ConnId c) {
    Actions a = checkin(c);
    if (!all_of<ResetConn>(a).empty()) return reset_done(c, true);
    return a;
  }

  template <class F>
  Actions run(F&& f) {
    Actions a;
    f(a);
    auto ok = pool_->check_invariants();
    EXPECT_TRUE(ok.has_value()) << (ok ? "" : ok.error()) << "\n" << describe(a);
    return a;
  }

  FakeClock clock_;
  std::optional<Pool> pool_;
};

}  // namespace pooler::pool::testing
