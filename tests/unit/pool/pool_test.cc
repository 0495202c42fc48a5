// Tests of the Pool state machine, rule by rule, with a fake clock and recorded decisions.
#include "pool/pool.h"

#include <gtest/gtest.h>

#include "tests/unit/pool/pool_test_support.h"

namespace pooler::pool::testing {
namespace {

Options sized(int pool_size, int max_overflow) {
  Options o;
  o.pool_size = pool_size;
  o.max_overflow = max_overflow;
  return o;
}

class PoolCheckout : public PoolFixture {};
class PoolReturn : public PoolFixture {};
class PoolWait : public PoolFixture {};
class PoolLimits : public PoolFixture {};
class PoolOpenFailure : public PoolFixture {};
class PoolPrePing : public PoolFixture {};
class PoolInvalidate : public PoolFixture {};
class PoolRecycle : public PoolFixture {};
class PoolMaintenance : public PoolFixture {};
class PoolReconfigure : public PoolFixture {};

// The pool starts empty: the first checkout opens a connection and assigns it once opened.
TEST_F(PoolCheckout, FirstCheckoutOpensThenAssigns) {
  make(Options{});
  EXPECT_EQ(pool().stats().total, 0);
  const Actions a = checkout(1);
  ASSERT_EQ(a.size(), 1u) << describe(a);
  const ConnId c = one_of<OpenConn>(a).conn;
  EXPECT_EQ(pool().stats().opening, 1);
  EXPECT_EQ(pool().stats().waiting, 1);
  const AssignConn assigned = one_of<AssignConn>(opened(c));
  EXPECT_EQ(assigned.waiter, 1u);
  EXPECT_EQ(assigned.conn, c);
  EXPECT_EQ(pool().stats().active, 1);
  EXPECT_EQ(pool().stats().checkouts_total, 1u);
}

// A returned connection is rolled back, kept idle, and handed out again at once without an open.
TEST_F(PoolReturn, ResetThenIdleThenReused) {
  make(Options{});
  const ConnId c = open_for(1);
  const ResetConn reset = one_of<ResetConn>(checkin(c));
  EXPECT_EQ(reset.conn, c);
  EXPECT_EQ(reset.how, ResetOnReturn::kRollback);
  EXPECT_EQ(pool().stats().resetting, 1);
  EXPECT_TRUE(reset_done(c).empty());
  EXPECT_EQ(pool().stats().idle, 1);
  const Actions a = checkout(2);
  ASSERT_EQ(a.size(), 1u) << describe(a);
  EXPECT_EQ(one_of<AssignConn>(a).conn, c);
}

// reset_on_return none skips the reset; discard asks for DISCARD ALL.
TEST_F(PoolReturn, ResetModes) {
  Options o;
  o.reset_on_return = ResetOnReturn::kNone;
  make(o);
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkin(c).empty());
  EXPECT_EQ(pool().stats().idle, 1);
  o.reset_on_return = ResetOnReturn::kDiscard;
  EXPECT_TRUE(reconfigure(o).empty());
  ASSERT_EQ(one_of<AssignConn>(checkout(2)).conn, c);
  EXPECT_EQ(one_of<ResetConn>(checkin(c)).how, ResetOnReturn::kDiscard);
}

// A failed reset closes the connection instead of keeping it.
TEST_F(PoolReturn, ResetFailureClosesConnection) {
  make(Options{});
  const ConnId c = open_for(1);
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  const CloseConn closed = one_of<CloseConn>(reset_done(c, false));
  EXPECT_EQ(closed.conn, c);
  EXPECT_EQ(closed.reason, CloseReason::kResetFailed);
  EXPECT_EQ(pool().stats().total, 0);
  EXPECT_EQ(pool().stats().reset_failures_total, 1u);
}

// A failed reset while someone waits frees the slot, which opens a connection for the waiter.
TEST_F(PoolReturn, ResetFailureOpensForWaiter) {
  make(sized(1, 0));
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  const Actions a = reset_done(c, false);
  EXPECT_EQ(one_of<CloseConn>(a).reason, CloseReason::kResetFailed);
  const ConnId fresh = one_of<OpenConn>(a).conn;
  EXPECT_EQ(one_of<AssignConn>(opened(fresh)).waiter, 2u);
}

// A broken connection is discarded without reset, and its slot opens one for the waiter.
TEST_F(PoolReturn, DiscardClosesWithoutResetAndOpensForWaiter) {
  make(sized(1, 0));
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  const Actions a = discard(c);
  EXPECT_TRUE(none_of<ResetConn>(a)) << describe(a);
  EXPECT_EQ(one_of<CloseConn>(a).reason, CloseReason::kError);
  EXPECT_EQ(one_of<AssignConn>(opened(one_of<OpenConn>(a).conn)).waiter, 2u);
}

// An idle connection the server closed is forgotten, and a waiter's slot opens a new one.
TEST_F(PoolReturn, LostWhileIdleIsForgotten) {
  make(sized(1, 0));
  const ConnId c = open_for(1);
  give_back(c);
  EXPECT_EQ(pool().stats().idle, 1);
  const Actions a = lost(c);
  EXPECT_EQ(one_of<CloseConn>(a).reason, CloseReason::kError);
  EXPECT_EQ(pool().stats().total, 0);
  // The next checkout opens afresh instead of getting the dead one.
  EXPECT_EQ(one_of<AssignConn>(opened(one_of<OpenConn>(checkout(2)).conn)).waiter, 2u);
}

// A connection lost while checked out, pinging or resetting goes the way discard, ping failure and reset
// failure go; an unknown id is ignored.
TEST_F(PoolReturn, LostInOtherStatesFollowsTheMatchingEvent) {
  Options o = sized(2, 0);
  o.pre_ping = true;
  o.pre_ping_after = 1s;
  make(o);
  const ConnId c1 = open_for(1);
  const ConnId c2 = open_for(2);
  // Checked out: like discard.
  EXPECT_EQ(one_of<CloseConn>(lost(c1)).reason, CloseReason::kError);
  // Resetting: like a failed reset.
  const Actions r = checkin(c2);
  ASSERT_EQ(all_of<ResetConn>(r).size(), 1u) << describe(r);
  EXPECT_EQ(one_of<CloseConn>(lost(c2)).reason, CloseReason::kResetFailed);
  EXPECT_EQ(pool().stats().total, 0);
  EXPECT_TRUE(lost(c2).empty());
  // Pinging: like a failed ping; the waiter is served by a fresh connection.
  const ConnId c3 = open_for(3);
  give_back(c3);
  clock_.advance(2s);
  const ConnId pinged = one_of<PingConn>(checkout(4)).conn;
  const Actions p = lost(pinged);
  EXPECT_EQ(one_of<CloseConn>(p).reason, CloseReason::kPingFailed);
  EXPECT_EQ(one_of<AssignConn>(opened(one_of<OpenConn>(p).conn)).waiter, 4u);
}

// The idle health check pings only connections idle long enough; a good answer puts each back in its old
// place with its idle time kept, so idle_timeout still closes it on schedule.
TEST_F(PoolMaintenance, IdleCheckKeepsIdleTimeAndOrder) {
  Options o = sized(3, 0);
  o.idle_timeout = 100s;
  make(o);
  const ConnId c1 = open_for(1), c2 = open_for(2), c3 = open_for(3);
  give_back(c1);
  clock_.advance(10s);
  give_back(c2);
  clock_.advance(10s);
  give_back(c3);
  clock_.advance(5s);
  // c1 idle 25 s, c2 15 s, c3 5 s: a 10 s check pings c1 and c2 only.
  const Actions a = check_idle(10s);
  const auto pings = all_of<PingConn>(a);
  ASSERT_EQ(pings.size(), 2u) << describe(a);
  EXPECT_EQ(pool().stats().testing, 2);
  EXPECT_TRUE(ping_ok(c2).empty());
  EXPECT_TRUE(ping_ok(c1).empty());
  EXPECT_EQ(pool().stats().idle, 3);
  // FIFO order is still c1, c2, c3.
  EXPECT_EQ(one_of<AssignConn>(checkout(4)).conn, c1);
  give_back(c1);
  // c2 was idle since t=10 s: it times out at t=110 s, the check did not renew it.
  clock_.advance(85s);  // now t=110 s
  const Actions t = tick();
  ASSERT_EQ(all_of<CloseConn>(t).size(), 1u) << describe(t);
  EXPECT_EQ(one_of<CloseConn>(t).conn, c2);
}

// A failed idle check closes the connection and invalidates the ones opened before it.
TEST_F(PoolMaintenance, IdleCheckFailureInvalidates) {
  make(sized(2, 0));
  const ConnId c1 = open_for(1), c2 = open_for(2);
  give_back(c1);
  give_back(c2);
  clock_.advance(60s);
  const Actions a = check_idle(30s);
  ASSERT_EQ(all_of<PingConn>(a).size(), 2u);
  const Actions f = ping_failed(c1);
  EXPECT_EQ(one_of<CloseConn>(f).reason, CloseReason::kPingFailed);
  EXPECT_EQ(pool().stats().invalidations_total, 1u);
  // c2 answers, but it is from before the invalidation: closed, not kept.
  EXPECT_EQ(one_of<CloseConn>(ping_ok(c2)).reason, CloseReason::kInvalidated);
  EXPECT_EQ(pool().stats().total, 0);
}

// evict_idle (another pool needs the room) closes the connection idle longest, and only idle ones; a pool
// left below min_pool_size refills at its next tick like after any close.
TEST_F(PoolMaintenance, EvictClosesLongestIdle) {
  Options o = sized(3, 0);
  o.min_pool_size = 2;
  make(o);
  const ConnId c1 = open_for(1), c2 = open_for(2), c3 = open_for(3);
  give_back(c2);
  clock_.advance(1s);
  give_back(c1);
  EXPECT_EQ(pool().oldest_idle_since(), clock_.now - 1s);
  Actions a = run([&](Actions& out) { EXPECT_TRUE(pool().evict_idle(out)); });
  ASSERT_EQ(one_of<CloseConn>(a).conn, c2);
  EXPECT_EQ(one_of<CloseConn>(a).reason, CloseReason::kEvicted);
  a = run([&](Actions& out) { EXPECT_TRUE(pool().evict_idle(out)); });
  EXPECT_EQ(one_of<CloseConn>(a).conn, c1);
  // c3 is checked out: nothing idle to evict.
  a = run([&](Actions& out) { EXPECT_FALSE(pool().evict_idle(out)); });
  EXPECT_TRUE(a.empty()) << describe(a);
  EXPECT_FALSE(pool().oldest_idle_since().has_value());
  EXPECT_EQ(pool().stats().active, 1);
  EXPECT_EQ(all_of<OpenConn>(tick()).size(), 1u) << "refills to min_pool_size 2";
  (void)c3;
}

// Overflow connections are closed on return once pool_size are idle, without a pointless reset.
TEST_F(PoolReturn, OverflowClosedWhenPoolSizeIdle) {
  make(sized(2, 1));
  const ConnId c1 = open_for(1), c2 = open_for(2), c3 = open_for(3);
  EXPECT_EQ(pool().stats().overflow_in_use, 1);
  give_back(c1);
  give_back(c2);
  EXPECT_EQ(pool().stats().idle, 2);
  const Actions a = checkin(c3);
  EXPECT_TRUE(none_of<ResetConn>(a)) << describe(a);
  const CloseConn closed = one_of<CloseConn>(a);
  EXPECT_EQ(closed.conn, c3);
  EXPECT_EQ(closed.reason, CloseReason::kOverflow);
  EXPECT_EQ(pool().stats().total, 2);
  EXPECT_EQ(pool().stats().overflow_in_use, 0);
}

// A returned connection goes to the longest-waiting client, after its reset, in arrival order.
TEST_F(PoolWait, ReturnGoesToLongestWaiter) {
  make(sized(1, 0));
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  EXPECT_TRUE(checkout(3).empty());
  EXPECT_EQ(pool().stats().waiting, 2);
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  const AssignConn first = one_of<AssignConn>(reset_done(c));
  EXPECT_EQ(first.waiter, 2u);
  EXPECT_EQ(first.conn, c);
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  EXPECT_EQ(one_of<AssignConn>(reset_done(c)).waiter, 3u);
  EXPECT_EQ(pool().stats().waiting, 0);
}

// Opens are not bound to waiters: whichever finishes first serves the oldest waiter.
TEST_F(PoolWait, OpensFinishingOutOfOrderServeOldestFirst) {
  make(Options{});
  const ConnId c1 = one_of<OpenConn>(checkout(1)).conn;
  const ConnId c2 = one_of<OpenConn>(checkout(2)).conn;
  EXPECT_EQ(one_of<AssignConn>(opened(c2)).waiter, 1u);
  EXPECT_EQ(one_of<AssignConn>(opened(c1)).waiter, 2u);
}

// A waiter past pool_timeout gets SQLAlchemy's message; tick is not early, and the deadline is announced.
TEST_F(PoolWait, TimeoutFailsWaiterWithLimitsMessage) {
  make(sized(1, 0));
  open_for(1);
  const TimePoint asked = clock_.now;
  EXPECT_TRUE(checkout(2).empty());
  EXPECT_EQ(pool().next_deadline(), asked + 30s);
  EXPECT_EQ(pool().stats().oldest_waiter_since, asked);
  clock_.advance(29s);
  EXPECT_TRUE(tick().empty());
  clock_.advance(1s);
  const FailWaiter failed = one_of<FailWaiter>(tick());
  EXPECT_EQ(failed.waiter, 2u);
  EXPECT_EQ(failed.reason, FailReason::kTimeout);
  EXPECT_EQ(failed.message,
            "pool \"app/app\" limit of size 1 overflow 0 reached, connection timed out, timeout 30.00");
  EXPECT_EQ(pool().stats().waiting, 0);
  EXPECT_EQ(pool().stats().timeouts_total, 1u);
  EXPECT_EQ(pool().next_deadline(), std::nullopt);
}

// A timed-out client's session stays usable: it may check out again and waits anew.
TEST_F(PoolWait, TimedOutClientCanRetry) {
  make(sized(1, 0));
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  clock_.advance(30s);
  ASSERT_FALSE(none_of<FailWaiter>(tick()));
  EXPECT_TRUE(checkout(2).empty());
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  EXPECT_EQ(one_of<AssignConn>(reset_done(c)).waiter, 2u);
}

// Same instant, return delivered before the tick: the waiter gets the connection and the tick has nothing to do.
TEST_F(PoolWait, SameInstantReturnBeforeTickServesWaiter) {
  Options o = sized(1, 0);
  o.reset_on_return = ResetOnReturn::kNone;
  make(o);
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  clock_.advance(30s);  // exactly the deadline
  EXPECT_EQ(one_of<AssignConn>(checkin(c)).waiter, 2u);
  EXPECT_TRUE(tick().empty());
  EXPECT_EQ(pool().stats().timeouts_total, 0u);
}

// Same instant, tick delivered before the return: the waiter times out and the connection goes idle.
TEST_F(PoolWait, SameInstantTickBeforeReturnTimesOut) {
  Options o = sized(1, 0);
  o.reset_on_return = ResetOnReturn::kNone;
  make(o);
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  clock_.advance(30s);
  EXPECT_EQ(one_of<FailWaiter>(tick()).waiter, 2u);
  EXPECT_TRUE(checkin(c).empty());
  EXPECT_EQ(pool().stats().idle, 1);
}

// A waiter already past its deadline but not yet ticked is still served by a return: never withheld.
TEST_F(PoolWait, OverdueWaiterServedIfReturnComesFirst) {
  Options o = sized(1, 0);
  o.reset_on_return = ResetOnReturn::kNone;
  make(o);
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  clock_.advance(31s);
  EXPECT_EQ(one_of<AssignConn>(checkin(c)).waiter, 2u);
}

// A client that leaves while waiting is skipped; cancelling an unknown or served client says so.
TEST_F(PoolWait, CancelRemovesWaiter) {
  make(sized(1, 0));
  const ConnId c = open_for(1);
  EXPECT_TRUE(checkout(2).empty());
  EXPECT_TRUE(checkout(3).empty());
  EXPECT_TRUE(pool().cancel_waiter(2));
  EXPECT_FALSE(pool().cancel_waiter(2));
  EXPECT_FALSE(pool().cancel_waiter(1));  // already assigned: the owner must check it in
  EXPECT_EQ(pool().stats().waiting, 1);
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  EXPECT_EQ(one_of<AssignConn>(reset_done(c)).waiter, 3u);
}

// A cancelled waiter whose open is still under way leaves the connection idle when it opens.
TEST_F(PoolWait, CancelWithOpenUnderWayLeavesConnIdle) {
  make(Options{});
  const ConnId c = one_of<OpenConn>(checkout(1)).conn;
  EXPECT_TRUE(pool().cancel_waiter(1));
  EXPECT_TRUE(opened(c).empty());
  EXPECT_EQ(pool().stats().idle, 1);
}

// Total open never exceeds pool_size + max_overflow; the next client waits without an open.
TEST_F(PoolLimits, GrowsToSizePlusOverflowThenWaits) {
  make(sized(2, 1));
  open_for(1);
  open_for(2);
  open_for(3);
  EXPECT_EQ(pool().stats().overflow_in_use, 1);
  EXPECT_TRUE(checkout(4).empty());
  EXPECT_EQ(pool().stats().total, 3);
  EXPECT_EQ(pool().stats().waiting, 1);
}

// max_overflow 0 caps at pool_size.
TEST_F(PoolLimits, MaxOverflowZeroCapsAtPoolSize) {
  make(sized(2, 0));
  open_for(1);
  open_for(2);
  EXPECT_TRUE(checkout(3).empty());
  EXPECT_EQ(pool().stats().total, 2);
}

// max_overflow -1 opens without limit; returns beyond pool_size are closed.
TEST_F(PoolLimits, MaxOverflowUnlimited) {
  make(sized(1, -1));
  std::vector<ConnId> conns;
  for (WaiterId w = 1; w <= 50; ++w) conns.push_back(open_for(w));
  EXPECT_EQ(pool().stats().total, 50);
  EXPECT_EQ(pool().stats().overflow_in_use, 49);
  for (ConnId c : conns) give_back(c);
  EXPECT_EQ(pool().stats().total, 1);
  EXPECT_EQ(pool().stats().idle, 1);
}

// pool_size 0 keeps nothing: every return with nobody waiting closes, and max_overflow is the cap.
TEST_F(PoolLimits, PoolSizeZeroClosesEveryReturn) {
  make(sized(0, 2));
  const ConnId c1 = open_for(1), c2 = open_for(2);
  EXPECT_TRUE(checkout(3).empty());
  const Actions a = checkin(c1);  // someone waits: reset and hand over
  ASSERT_FALSE(none_of<ResetConn>(a));
  EXPECT_EQ(one_of<AssignConn>(reset_done(c1)).waiter, 3u);
  const Actions b = checkin(c2);  // nobody waits: closed, no reset
  EXPECT_TRUE(none_of<ResetConn>(b));
  EXPECT_EQ(one_of<CloseConn>(b).reason, CloseReason::kOverflow);
  EXPECT_EQ(one_of<CloseConn>(checkin(c1)).reason, CloseReason::kOverflow);
  EXPECT_EQ(pool().stats().total, 0);
}

// pool_size 0 and max_overflow 0 (as in SQLAlchemy): nothing can ever be opened, so every checkout waits
// and fails at pool_timeout.
TEST_F(PoolLimits, PoolSizeZeroOverflowZeroTimesOut) {
  make(sized(0, 0));
  EXPECT_TRUE(checkout(1).empty());
  clock_.advance(30s);
  const FailWaiter failed = one_of<FailWaiter>(tick());
  EXPECT_EQ(failed.reason, FailReason::kTimeout);
  EXPECT_EQ(failed.message,
            "pool \"app/app\" limit of size 0 overflow 0 reached, connection timed out, timeout 30.00");
}

// The only open for a waiter fails: that waiter gets the server's error at once, and nothing is retried.
TEST_F(PoolOpenFailure, FailsOldestUncoveredWaiter) {
  make(Options{});
  const ConnId c = one_of<OpenConn>(checkout(1)).conn;
  const Actions a = open_failed(c, "connection refused");
  ASSERT_EQ(a.size(), 1u) << describe(a);
  const FailWaiter failed = one_of<FailWaiter>(a);
  EXPECT_EQ(failed.waiter, 1u);
  EXPECT_EQ(failed.reason, FailReason::kConnectFailed);
  EXPECT_EQ(failed.message, "pool \"app/app\" could not open a server connection: connection refused");
  EXPECT_EQ(pool().stats().total, 0);
  EXPECT_EQ(pool().stats().connect_failures_total, 1u);
  EXPECT_EQ(pool().next_deadline(), std::nullopt);
}

// At the limit, a failed open fails the oldest waiter and its slot opens for the next one uncovered.
TEST_F(PoolOpenFailure, AtLimitFailsOldestAndOpensForNext) {
  make(sized(1, 1));
  const ConnId c1 = one_of<OpenConn>(checkout(1)).conn;
  const ConnId c2 = one_of<OpenConn>(checkout(2)).conn;
  EXPECT_TRUE(checkout(3).empty());
  const Actions a = open_failed(c1);
  EXPECT_EQ(one_of<FailWaiter>(a).waiter, 1u);
  const ConnId c3 = one_of<OpenConn>(a).conn;
  EXPECT_EQ(one_of<AssignConn>(opened(c2)).waiter, 2u);
  EXPECT_EQ(one_of<AssignConn>(opened(c3)).waiter, 3u);
}

// A failed open while other opens still cover every waiter fails nobody.
TEST_F(PoolOpenFailure, CoveredWaitersAreNotFailed) {
  Options o;
  o.min_pool_size = 2;
  make(o);
  const auto opens = all_of<OpenConn>(tick());
  ASSERT_EQ(opens.size(), 2u);
  EXPECT_TRUE(checkout(1).empty());  // covered by the refill opens
  EXPECT_TRUE(open_failed(opens[0].conn).empty());
  EXPECT_EQ(one_of<AssignConn>(opened(opens[1].conn)).waiter, 1u);
}

// After a failed open, refill to min_pool_size backs off instead of reconnecting in a loop.
TEST_F(PoolOpenFailure, RefillBacksOff) {
  Options o;
  o.min_pool_size = 1;
  make(o);
  EXPECT_LE(pool().next_deadline(), clock_.now);
  const ConnId c = one_of<OpenConn>(tick()).conn;
  EXPECT_EQ(pool().next_deadline(), std::nullopt);  // nothing to do while it opens
  EXPECT_TRUE(open_failed(c).empty());
  EXPECT_EQ(pool().next_deadline(), clock_.now + 1s);
  EXPECT_TRUE(tick().empty());
  clock_.advance(1s);
  EXPECT_EQ(all_of<OpenConn>(tick()).size(), 1u);
}

// With pre-ping, an idle connection is pinged before it is handed out.
TEST_F(PoolPrePing, IdleConnectionPingedBeforeAssign) {
  Options o;
  o.pre_ping = true;
  make(o);
  const ConnId c = open_for(1);  // fresh: not pinged
  give_back(c);
  const PingConn ping = one_of<PingConn>(checkout(2));
  EXPECT_EQ(ping.conn, c);
  EXPECT_EQ(ping.waiter, 2u);
  EXPECT_EQ(pool().stats().pinging, 1);
  EXPECT_EQ(one_of<AssignConn>(ping_ok(c)).waiter, 2u);
}

// pre_ping_after: only connections idle at least that long are pinged.
TEST_F(PoolPrePing, OnlyAfterIdleThreshold) {
  Options o;
  o.pre_ping = true;
  o.pre_ping_after = 5s;
  make(o);
  const ConnId c = open_for(1);
  give_back(c);
  clock_.advance(2s);
  ASSERT_EQ(one_of<AssignConn>(checkout(2)).conn, c);
  give_back(c);
  clock_.advance(5s);
  EXPECT_EQ(one_of<PingConn>(checkout(3)).conn, c);
}

// A failed ping closes it, invalidates every older connection, and retries for the same client unseen.
TEST_F(PoolPrePing, FailureInvalidatesAndRetriesTransparently) {
  Options o;
  o.pre_ping = true;
  make(o);
  const ConnId c1 = open_for(1), c2 = open_for(2), c3 = open_for(3);
  give_back(c1);
  give_back(c2);
  clock_.advance(1s);
  ASSERT_EQ(one_of<PingConn>(checkout(4)).conn, c1);
  clock_.advance(1s);
  const Actions a = ping_failed(c1);
  EXPECT_TRUE(none_of<FailWaiter>(a)) << describe(a);
  const auto closes = all_of<CloseConn>(a);
  ASSERT_EQ(closes.size(), 2u) << describe(a);
  EXPECT_EQ(closes[0].conn, c1);
  EXPECT_EQ(closes[0].reason, CloseReason::kPingFailed);
  EXPECT_EQ(closes[1].conn, c2);
  EXPECT_EQ(closes[1].reason, CloseReason::kInvalidated);
  const ConnId fresh = one_of<OpenConn>(a).conn;
  EXPECT_EQ(one_of<AssignConn>(opened(fresh)).waiter, 4u);  // fresh: no second ping
  EXPECT_EQ(one_of<CloseConn>(checkin(c3)).reason, CloseReason::kInvalidated);  // checked out before it
  EXPECT_EQ(pool().stats().ping_failures_total, 1u);
  EXPECT_EQ(pool().stats().invalidations_total, 1u);
}

// The retried client keeps its place: served before those who arrived after it.
TEST_F(PoolPrePing, RetriedClientKeepsItsPlace) {
  Options o = sized(1, 1);
  o.pre_ping = true;
  make(o);
  const ConnId c1 = open_for(1);
  give_back(c1);
  ASSERT_EQ(one_of<PingConn>(checkout(2)).conn, c1);
  const ConnId c2 = one_of<OpenConn>(checkout(3)).conn;
  const ConnId c3 = one_of<OpenConn>(ping_failed(c1)).conn;
  EXPECT_EQ(one_of<AssignConn>(opened(c3)).waiter, 2u);
  EXPECT_EQ(one_of<AssignConn>(opened(c2)).waiter, 3u);
}

// A client that leaves during its ping: the pinged connection returns to the pool.
TEST_F(PoolPrePing, CancelDuringPingReturnsConnection) {
  Options o;
  o.pre_ping = true;
  make(o);
  const ConnId c = open_for(1);
  give_back(c);
  ASSERT_FALSE(none_of<PingConn>(checkout(2)));
  EXPECT_TRUE(pool().cancel_waiter(2));
  EXPECT_TRUE(ping_ok(c).empty());
  EXPECT_EQ(pool().stats().idle, 1);
}

// An invalidation during a ping: the ping's success does not save the connection; the client retries.
TEST_F(PoolPrePing, InvalidatedDuringPingIsReplaced) {
  Options o;
  o.pre_ping = true;
  make(o);
  const ConnId c = open_for(1);
  give_back(c);
  ASSERT_FALSE(none_of<PingConn>(checkout(2)));
  EXPECT_TRUE(invalidate().empty());
  const Actions a = ping_ok(c);
  EXPECT_EQ(one_of<CloseConn>(a).reason, CloseReason::kInvalidated);
  EXPECT_EQ(one_of<AssignConn>(opened(one_of<OpenConn>(a).conn)).waiter, 2u);
}

// Invalidation closes idle connections now and checked-out ones on return, without a reset.
TEST_F(PoolInvalidate, CheckedOutClosedOnReturn) {
  make(Options{});
  const ConnId c1 = open_for(1), c2 = open_for(2);
  give_back(c1);
  const Actions a = invalidate();
  EXPECT_EQ(one_of<CloseConn>(a).conn, c1);
  EXPECT_EQ(pool().stats().total, 1);
  const Actions b = checkin(c2);
  EXPECT_TRUE(none_of<ResetConn>(b));
  EXPECT_EQ(one_of<CloseConn>(b).reason, CloseReason::kInvalidated);
  EXPECT_FALSE(none_of<OpenConn>(checkout(3)));
}

// A connection being reset when the pool is invalidated is closed when the reset ends.
TEST_F(PoolInvalidate, ResettingClosedAfterReset) {
  make(Options{});
  const ConnId c = open_for(1);
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  EXPECT_TRUE(invalidate().empty());
  EXPECT_EQ(one_of<CloseConn>(reset_done(c)).reason, CloseReason::kInvalidated);
}

// A connection still opening when the pool is invalidated counts as new: it is kept.
TEST_F(PoolInvalidate, OpeningDuringInvalidationIsKept) {
  make(Options{});
  const ConnId c = one_of<OpenConn>(checkout(1)).conn;
  EXPECT_TRUE(invalidate().empty());
  EXPECT_EQ(one_of<AssignConn>(opened(c)).conn, c);
  give_back(c);
  EXPECT_EQ(pool().stats().idle, 1);
}

// pool_recycle at checkout: a too-old idle connection is closed and a new one opened for the client.
TEST_F(PoolRecycle, AtCheckout) {
  Options o;
  o.pool_recycle = 10s;
  make(o);
  const ConnId c = open_for(1);
  give_back(c);
  clock_.advance(10s);
  const Actions a = checkout(2);
  const CloseConn closed = one_of<CloseConn>(a);
  EXPECT_EQ(closed.conn, c);
  EXPECT_EQ(closed.reason, CloseReason::kRecycle);
  EXPECT_EQ(one_of<AssignConn>(opened(one_of<OpenConn>(a).conn)).waiter, 2u);
}

// pool_recycle at return: a too-old connection is closed instead of reset.
TEST_F(PoolRecycle, AtReturn) {
  Options o;
  o.pool_recycle = 10s;
  make(o);
  const ConnId c = open_for(1);
  clock_.advance(9s);
  ASSERT_FALSE(none_of<ResetConn>(checkin(c)));
  reset_done(c);
  ASSERT_EQ(one_of<AssignConn>(checkout(2)).conn, c);
  clock_.advance(1s);
  const Actions a = checkin(c);
  EXPECT_TRUE(none_of<ResetConn>(a));
  EXPECT_EQ(one_of<CloseConn>(a).reason, CloseReason::kRecycle);
}

// pool_recycle of idle connections happens in tick, at the deadline it announced.
TEST_F(PoolRecycle, IdleInTick) {
  Options o;
  o.pool_recycle = 10s;
  make(o);
  const TimePoint opened_at = clock_.now;
  const ConnId c = open_for(1);
  clock_.advance(3s);
  give_back(c);
  EXPECT_EQ(pool().next_deadline(), opened_at + 10s);
  clock_.advance(7s);
  EXPECT_EQ(one_of<CloseConn>(tick()).reason, CloseReason::kRecycle);
  EXPECT_EQ(pool().next_deadline(), std::nullopt);
}

// FIFO hands out the connection idle longest; LIFO the one returned last.
TEST_F(PoolMaintenance, FifoAndLifoOrder) {
  for (bool lifo : {false, true}) {
    Options o;
    o.use_lifo = lifo;
    make(o);
    const ConnId c1 = open_for(1), c2 = open_for(2);
    give_back(c1);
    clock_.advance(1s);
    give_back(c2);
    EXPECT_EQ(one_of<AssignConn>(checkout(3)).conn, lifo ? c2 : c1) << "lifo=" << lifo;
  }
}

// min_pool_size is refilled by tick (from the start), counting every open connection.
TEST_F(PoolMaintenance, MinPoolSizeRefill) {
  Options o;
  o.min_pool_size = 2;
  make(o);
  ASSERT_TRUE(pool().next_deadline().has_value());
  EXPECT_LE(*pool().next_deadline(), clock_.now);
  const auto opens = all_of<OpenConn>(tick());
  ASSERT_EQ(opens.size(), 2u);
  EXPECT_TRUE(opened(opens[0].conn).empty());
  EXPECT_TRUE(opened(opens[1].conn).empty());
  EXPECT_EQ(pool().stats().idle, 2);
  EXPECT_EQ(pool().next_deadline(), std::nullopt);
  const ConnId c = one_of<AssignConn>(checkout(1)).conn;
  EXPECT_EQ(one_of<CloseConn>(discard(c)).reason, CloseReason::kError);
  EXPECT_EQ(all_of<OpenConn>(tick()).size(), 1u);
}

// idle_timeout closes the longest-idle connections beyond min_pool_size, at the announced deadline.
TEST_F(PoolMaintenance, IdleTimeoutKeepsMinPoolSize) {
  Options o;
  o.min_pool_size = 1;
  o.idle_timeout = 60s;
  make(o);
  const ConnId c1 = open_for(1), c2 = open_for(2), c3 = open_for(3);
  const TimePoint first_idle = clock_.now;
  give_back(c1);
  clock_.advance(1s);
  give_back(c2);
  give_back(c3);
  EXPECT_EQ(pool().next_deadline(), first_idle + 60s);
  clock_.advance(59s);
  const auto closes = all_of<CloseConn>(tick());
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].conn, c1);
  EXPECT_EQ(closes[0].reason, CloseReason::kIdleTimeout);
  clock_.advance(1s);
  EXPECT_EQ(all_of<CloseConn>(tick()).size(), 1u);
  EXPECT_EQ(pool().stats().idle, 1);
  EXPECT_EQ(pool().next_deadline(), std::nullopt);
}

// Shrinking closes idle connections first and never a checked-out one; surplus ones close on return.
TEST_F(PoolReconfigure, ShrinkClosesIdleFirstNeverActive) {
  make(sized(3, 0));
  const ConnId c1 = open_for(1), c2 = open_for(2), c3 = open_for(3);
  give_back(c1);
  give_back(c2);
  const Actions a = reconfigure(sized(1, 0));
  const auto closes = all_of<CloseConn>(a);
  ASSERT_EQ(closes.size(), 2u) << describe(a);
  EXPECT_EQ(closes[0].reason, CloseReason::kShrink);
  EXPECT_EQ(pool().stats().active, 1);
  give_back(c3);
  EXPECT_EQ(pool().stats().idle, 1);
}

// Shrinking below the checked-out count: returns close until under the limit, then waiters are served.
TEST_F(PoolReconfigure, ShrinkBelowActiveClosesOnReturn) {
  make(sized(2, 0));
  const ConnId c1 = open_for(1), c2 = open_for(2);
  EXPECT_TRUE(checkout(3).empty());
  EXPECT_TRUE(reconfigure(sized(1, 0)).empty());
  EXPECT_EQ(one_of<CloseConn>(checkin(c1)).reason, CloseReason::kShrink);
  EXPECT_EQ(pool().stats().waiting, 1);
  ASSERT_FALSE(none_of<ResetConn>(checkin(c2)));
  EXPECT_EQ(one_of<AssignConn>(reset_done(c2)).waiter, 3u);
}

// Growing opens at once for clients already waiting, who keep their deadlines.
TEST_F(PoolReconfigure, GrowOpensForWaiters) {
  make(sized(1, 0));
  open_for(1);
  const TimePoint asked = clock_.now;
  EXPECT_TRUE(checkout(2).empty());
  EXPECT_TRUE(checkout(3).empty());
  Options bigger = sized(1, 2);
  bigger.pool_timeout = 100s;
  EXPECT_EQ(all_of<OpenConn>(reconfigure(bigger)).size(), 2u);
  EXPECT_EQ(pool().next_deadline(), asked + 30s);
}

}  // namespace
}  // namespace pooler::pool::testing
