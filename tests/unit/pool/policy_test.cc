// Tests of the pool's pure predicates and error texts.
#include "pool/policy.h"

#include <gtest/gtest.h>

namespace pooler::pool {
namespace {

using namespace std::chrono_literals;

// The timeout text is SQLAlchemy's, with the pool's name and the seconds to two decimals.
TEST(PoolPolicy, TimeoutMessageMatchesSqlAlchemy) {
  Options o;
  EXPECT_EQ(timeout_message("app/app", o),
            "pool \"app/app\" limit of size 5 overflow 10 reached, connection timed out, timeout 30.00");
  o.pool_size = 0;
  o.max_overflow = -1;
  o.pool_timeout = 2500ms;
  EXPECT_EQ(timeout_message("db/u", o),
            "pool \"db/u\" limit of size 0 overflow -1 reached, connection timed out, timeout 2.50");
}

// The connect failure text carries the server's error.
TEST(PoolPolicy, ConnectFailedMessageCarriesError) {
  EXPECT_EQ(connect_failed_message("app/app", "connection refused"),
            "pool \"app/app\" could not open a server connection: connection refused");
}

// Room is pool_size + max_overflow; -1 has no limit; over_limit only beyond it.
TEST(PoolPolicy, RoomAndLimit) {
  Options o;
  o.pool_size = 2;
  o.max_overflow = 1;
  EXPECT_TRUE(has_room(2, o));
  EXPECT_FALSE(has_room(3, o));
  EXPECT_FALSE(over_limit(3, o));
  EXPECT_TRUE(over_limit(4, o));
  o.max_overflow = -1;
  EXPECT_TRUE(has_room(100000, o));
  EXPECT_FALSE(over_limit(100000, o));
  o.pool_size = 0;
  o.max_overflow = 0;
  EXPECT_FALSE(has_room(0, o));
}

// Pre-ping with pre_ping_after 0 pings every checkout (SQLAlchemy); otherwise only after that much idle.
TEST(PoolPolicy, NeedsPing) {
  Options o;
  EXPECT_FALSE(needs_ping(o, 1h));
  o.pre_ping = true;
  EXPECT_TRUE(needs_ping(o, 0s));
  o.pre_ping_after = 5s;
  EXPECT_FALSE(needs_ping(o, 4s));
  EXPECT_TRUE(needs_ping(o, 5s));
}

// Recycle and idle timeout are due at their boundary, and never when unset.
TEST(PoolPolicy, RecycleAndIdleBoundaries) {
  Options o;
  const TimePoint t0{1h};
  EXPECT_FALSE(recycle_due(o, t0, t0 + 1000h));
  EXPECT_FALSE(idle_expired(o, t0, t0 + 1000h));
  o.pool_recycle = 10s;
  o.idle_timeout = 60s;
  EXPECT_FALSE(recycle_due(o, t0, t0 + 9s));
  EXPECT_TRUE(recycle_due(o, t0, t0 + 10s));
  EXPECT_FALSE(idle_expired(o, t0, t0 + 59s));
  EXPECT_TRUE(idle_expired(o, t0, t0 + 60s));
}

// The refill target is min_pool_size, capped by pool_size.
TEST(PoolPolicy, RefillTarget) {
  Options o;
  o.min_pool_size = 3;
  EXPECT_EQ(refill_target(o), 3u);
  o.pool_size = 2;
  EXPECT_EQ(refill_target(o), 2u);
}

// An open failure fails the oldest waiter only when the opens still in flight cannot cover every waiter.
TEST(PoolPolicy, OpenFailureFailsOldestOnlyWhenUncovered) {
  EXPECT_FALSE(fail_oldest_on_open_failure(0, 0));
  EXPECT_TRUE(fail_oldest_on_open_failure(1, 0));
  EXPECT_FALSE(fail_oldest_on_open_failure(2, 2));
  EXPECT_TRUE(fail_oldest_on_open_failure(3, 2));
}

}  // namespace
}  // namespace pooler::pool
