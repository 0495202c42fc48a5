// Tests of pool options: SQLAlchemy's defaults and validation that names every problem.
#include "pool/options.h"

#include <gtest/gtest.h>

namespace pooler::pool {
namespace {

using namespace std::chrono_literals;

// The defaults are QueuePool's: size 5, overflow 10, timeout 30 s, no recycle, no pre-ping, FIFO, rollback.
TEST(PoolOptions, DefaultsAreSqlAlchemys) {
  Options o;
  EXPECT_EQ(o.pool_size, 5);
  EXPECT_EQ(o.max_overflow, 10);
  EXPECT_EQ(o.pool_timeout, 30s);
  EXPECT_FALSE(o.pool_recycle.has_value());
  EXPECT_FALSE(o.pre_ping);
  EXPECT_FALSE(o.use_lifo);
  EXPECT_EQ(o.reset_on_return, ResetOnReturn::kRollback);
  EXPECT_EQ(o.min_pool_size, 0);
  EXPECT_FALSE(o.idle_timeout.has_value());
  EXPECT_TRUE(validate(o).has_value());
}

// Edge values the pool supports are valid: pool_size 0, max_overflow -1 and 0, zero timeout.
TEST(PoolOptions, EdgeValuesAreValid) {
  Options o;
  o.pool_size = 0;
  o.max_overflow = -1;
  o.pool_timeout = 0s;
  EXPECT_TRUE(validate(o).has_value());
  o.max_overflow = 0;
  EXPECT_TRUE(validate(o).has_value());
}

// Every problem is reported at once, each in the setting's own name.
TEST(PoolOptions, ValidateReportsEveryProblem) {
  Options o;
  o.pool_size = 3;
  o.max_overflow = -2;
  o.min_pool_size = 5;
  o.pool_recycle = 0s;
  o.idle_timeout = -1s;
  auto r = validate(o);
  ASSERT_FALSE(r.has_value());
  const std::vector<std::string> expected = {
      "max_overflow of -2 is invalid: use -1 for no limit",
      "pool_recycle of 0.00 must be positive (or unset for never)",
      "min_pool_size of 5 cannot be larger than pool_size of 3",
      "idle_timeout of -1.00 must be positive (or unset for never)",
  };
  EXPECT_EQ(r.error(), expected);
}

}  // namespace
}  // namespace pooler::pool
