#include "stats_math.hpp"

#include <gtest/gtest.h>

namespace acceptbench::stats {
namespace {

TEST(StatsMathTest, MedianAndCv) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 2, 3}), 2.5);
  EXPECT_DOUBLE_EQ(cv({5, 5, 5}), 0);
  EXPECT_NEAR(cv({1, 2, 3}), 0.5, 1e-12);  // sd 1, mean 2
}

TEST(StatsMathTest, MedianIntervalUsesOrderStatistics) {
  // n = 5: no symmetric interval reaches 95%, so [min, max] with coverage 1 - 2/32.
  const auto small = median_interval({5, 1, 4, 2, 3});
  EXPECT_EQ(small.low, 1);
  EXPECT_EQ(small.high, 5);
  EXPECT_NEAR(small.coverage, 0.9375, 1e-12);
  // n = 20: [x_(6), x_(15)] covers 95.86% (the textbook value).
  std::vector<double> v;
  for (int i = 1; i <= 20; ++i) v.push_back(i);
  const auto big = median_interval(v);
  EXPECT_EQ(big.low, 6);
  EXPECT_EQ(big.high, 15);
  EXPECT_NEAR(big.coverage, 0.9586, 1e-4);
}

TEST(StatsMathTest, MannWhitneyExactMatchesTables) {
  // Complete separation with 5 vs 5: p = 2 / C(10,5) = 2/252.
  const auto r = mann_whitney({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10});
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.u, 0);
  EXPECT_NEAR(r.p_value, 2.0 / 252.0, 1e-12);
  // 3 vs 3 fully separated: 2/20 = 0.1, never below 0.05.
  EXPECT_NEAR(mann_whitney({1, 2, 3}, {4, 5, 6}).p_value, 0.1, 1e-12);
  // Interleaved samples: no evidence.
  EXPECT_GT(mann_whitney({1, 3, 5, 7, 9}, {2, 4, 6, 8, 10}).p_value, 0.5);
}

TEST(StatsMathTest, MannWhitneyNormalApproximationWithTies) {
  std::vector<double> x, y;
  for (int i = 0; i < 30; ++i) {
    x.push_back(i % 5);
    y.push_back(i % 5 + 2);
  }
  const auto r = mann_whitney(x, y);
  EXPECT_FALSE(r.exact);
  EXPECT_LT(r.p_value, 1e-4);
  EXPECT_DOUBLE_EQ(mann_whitney({1, 1, 1}, {1, 1, 1}).p_value, 1.0);
}

TEST(StatsMathTest, JainIndex) {
  EXPECT_DOUBLE_EQ(jain_index({10, 10, 10, 10}), 1.0);
  EXPECT_DOUBLE_EQ(jain_index({40, 0, 0, 0}), 0.25);
  EXPECT_NEAR(jain_index({1, 2}), 9.0 / 10.0, 1e-12);
}

}  // namespace
}  // namespace acceptbench::stats
