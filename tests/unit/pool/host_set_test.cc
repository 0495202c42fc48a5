// Unit tests for pool::HostSet: candidate order by state and role, backoff growth and cap, retries.
#include "pool/host_set.h"

#include <gtest/gtest.h>

namespace pooler::pool {
namespace {

using namespace std::chrono_literals;
using Idx = std::vector<std::size_t>;

const TimePoint kT0{std::chrono::hours(1)};

// Untried hosts are all candidates, in config order.
TEST(PoolHostSet, UntriedHostsInConfigOrder) {
  HostSet hs({"a:5432", "b:5432", "c:5432"});
  EXPECT_EQ(hs.candidates(Want::kAny, kT0), (Idx{0, 1, 2}));
  EXPECT_TRUE(hs.any_up());
  EXPECT_FALSE(hs.next_retry());
}

// A failed host leaves the candidates until its backoff has passed, then comes back last.
TEST(PoolHostSet, FailedHostBacksOffThenRetriesLast) {
  HostSet hs({"a:5432", "b:5432"}, 1s, 8s);
  hs.failed(0, "connection refused", kT0);
  EXPECT_EQ(hs.candidates(Want::kAny, kT0), (Idx{1}));  // b is still up, so a is left out while backing off
  EXPECT_EQ(hs.candidates(Want::kAny, kT0 + 999ms), (Idx{1}));
  EXPECT_EQ(hs.candidates(Want::kAny, kT0 + 1s), (Idx{1, 0}));
  EXPECT_EQ(hs.next_retry(), kT0 + 1s);
  EXPECT_EQ(hs.due_for_retry(kT0 + 1s), (Idx{0}));
  EXPECT_EQ(hs.last_error(), "connection refused");
  EXPECT_EQ(hs.hosts()[0].consecutive_failures, 1);
}

// Backoff doubles with each failure and stops at the maximum; a success resets it.
TEST(PoolHostSet, BackoffDoublesAndCaps) {
  HostSet hs({"a:5432"}, 1s, 8s);
  TimePoint t = kT0;
  for (Duration expect : {1s, 2s, 4s, 8s, 8s}) {
    hs.failed(0, "down", t);
    EXPECT_EQ(hs.hosts()[0].retry_at - t, expect);
    t = hs.hosts()[0].retry_at;  // each retry fails when its backoff has run out
  }
  EXPECT_EQ(hs.hosts()[0].down_since, kT0);
  EXPECT_FALSE(hs.any_up());
  hs.connected(0, HostRole::kPrimary, t);
  EXPECT_TRUE(hs.any_up());
  hs.failed(0, "down again", t);
  EXPECT_EQ(hs.hosts()[0].retry_at - t, 1s);
}

// Failures of attempts made before the host was known down do not escalate the backoff; one after the
// backoff ran out does.
TEST(PoolHostSet, SimultaneousFailuresCountOnce) {
  HostSet hs({"a:5432"}, 1s, 30s);
  for (int i = 0; i < 8; ++i) hs.failed(0, "refused", kT0);
  EXPECT_EQ(hs.hosts()[0].retry_at, kT0 + 1s);
  EXPECT_EQ(hs.hosts()[0].consecutive_failures, 1);
  hs.failed(0, "refused", kT0 + 1s);
  EXPECT_EQ(hs.hosts()[0].retry_at, kT0 + 3s);
  EXPECT_EQ(hs.hosts()[0].consecutive_failures, 2);
}

// Readiness counts only hosts that were actually reached.
TEST(PoolHostSet, ConfirmedUpNeedsAContact) {
  HostSet hs({"a:5432", "b:5432"});
  EXPECT_TRUE(hs.any_up());
  EXPECT_FALSE(hs.any_confirmed_up());
  hs.connected(1, HostRole::kUnknown, kT0);
  EXPECT_TRUE(hs.any_confirmed_up());
  hs.failed(1, "gone", kT0);
  EXPECT_FALSE(hs.any_confirmed_up());
}

// Every host down and backing off: they are still tried (one real attempt per client, which fails fast
// while the server is down and works as soon as it is back).
TEST(PoolHostSet, AllDownStillGivesThemAsLastResort) {
  HostSet hs({"a:5432", "b:5432"});
  hs.failed(0, "refused a", kT0);
  hs.failed(1, "refused b", kT0);
  EXPECT_EQ(hs.candidates(Want::kAny, kT0), (Idx{0, 1}));
  EXPECT_EQ(hs.last_error(), "refused b");
  // With one host up, the backing-off one is left out.
  hs.connected(0, HostRole::kUnknown, kT0);
  EXPECT_EQ(hs.candidates(Want::kAny, kT0), (Idx{0}));
}

// read-write skips known standbys; read-only and standby skip known primaries; unknown roles stay in.
TEST(PoolHostSet, RolesFilterCandidates) {
  HostSet hs({"standby:5432", "primary:5432", "new:5432"});
  hs.unfit(0, HostRole::kStandby, kT0);
  hs.connected(1, HostRole::kPrimary, kT0);
  EXPECT_EQ(hs.candidates(Want::kReadWrite, kT0), (Idx{1, 2}));
  EXPECT_EQ(hs.candidates(Want::kPrimary, kT0), (Idx{1, 2}));
  EXPECT_EQ(hs.candidates(Want::kStandby, kT0), (Idx{0, 2}));
  EXPECT_EQ(hs.candidates(Want::kReadOnly, kT0), (Idx{0, 2}));
  EXPECT_EQ(hs.candidates(Want::kAny, kT0), (Idx{0, 1, 2}));
}

// prefer-standby: known standbys first, unknown next, primaries as the fallback.
TEST(PoolHostSet, PreferStandbyOrdersStandbysFirst) {
  HostSet hs({"primary:5432", "unknown:5432", "standby:5432"});
  hs.connected(0, HostRole::kPrimary, kT0);
  hs.connected(2, HostRole::kStandby, kT0);
  EXPECT_EQ(hs.candidates(Want::kPreferStandby, kT0), (Idx{2, 1, 0}));
}

}  // namespace
}  // namespace pooler::pool
