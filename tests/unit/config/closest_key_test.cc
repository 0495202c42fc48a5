// Tests of the "did you mean" suggestion for unknown keys.
#include "config/closest_key.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pooler::config {
namespace {

const std::vector<std::string> kKeys{"pool_size", "min_pool_size", "pool_mode", "pool_timeout", "listen_port",
                                     "max_overflow", "host", "hosts", "port"};

// One substituted letter is a typo of the nearest key.
TEST(ConfigClosestKey, OneEditSuggestsThatKey) { EXPECT_EQ(closest_key("pool_sise", kKeys), "pool_size"); }

// Swapped neighbouring letters count as one edit.
TEST(ConfigClosestKey, TranspositionIsOneEdit) { EXPECT_EQ(closest_key("max_ovreflow", kKeys), "max_overflow"); }

// A word far from every key gets no suggestion rather than a random one.
TEST(ConfigClosestKey, FarWordSuggestsNothing) { EXPECT_EQ(closest_key("compression", kKeys), std::nullopt); }

// Two equally close keys are a guess, so nothing is suggested.
TEST(ConfigClosestKey, TieSuggestsNothing) { EXPECT_EQ(closest_key("pool_xode", {{"pool_mode", "pool_node"}}), std::nullopt); }

// A bare word that is one part of exactly one key suggests that key.
TEST(ConfigClosestKey, WholePartOfOneKey) {
  EXPECT_EQ(closest_key("listen", kKeys), "listen_port");
  EXPECT_EQ(closest_key("overflow", kKeys), "max_overflow");
}
}  // namespace
}  // namespace pooler::config
