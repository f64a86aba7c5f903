#include "stats_math.hpp"

#include <gtest/gtest.h>

#include <cmath>

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

TEST(StatsMathTest, MannWhitneyExactWithTies) {
  // Tied values (p99 bucket values often are): 3 vs 3 fully separated is still p = 0.1
  // exactly (the normal approximation said 0.047, anti-conservative).
  const auto r = mann_whitney({1, 1, 1}, {2, 2, 2});
  EXPECT_TRUE(r.exact);
  EXPECT_NEAR(r.p_value, 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(mann_whitney({1, 1, 1}, {1, 1, 1}).p_value, 1.0);
  // x = {1,1,2}, y = {2,3,3}: mid-ranks 1.5 1.5 3.5 | 3.5 5.5 5.5; rank sum of x = 6.5, the
  // smallest of the 20 splits' sums, reached by 2 splits (either 2); with the 2 mirror
  // splits (14.5): p = 4/20.
  EXPECT_NEAR(mann_whitney({1, 1, 2}, {2, 3, 3}).p_value, 0.2, 1e-12);
  // Against a brute-force enumeration of all C(8,4) splits, with ties.
  const std::vector<double> x = {1, 2, 2, 4}, y = {2, 4, 5, 5};
  std::vector<double> pooled = x;
  pooled.insert(pooled.end(), y.begin(), y.end());
  const auto observed = mann_whitney(x, y);
  int extreme = 0, total = 0;
  const double mu = 4 * 4 / 2.0;
  for (unsigned mask = 0; mask < 256; ++mask) {
    if (__builtin_popcount(mask) != 4) continue;
    std::vector<double> a, b;
    for (unsigned i = 0; i < 8; ++i) (mask >> i & 1 ? a : b).push_back(pooled[i]);
    ++total;
    if (std::abs(mann_whitney(a, b).u - mu) >= std::abs(observed.u - mu) - 1e-9) ++extreme;
  }
  EXPECT_NEAR(observed.p_value, static_cast<double>(extreme) / total, 1e-12);
}

TEST(StatsMathTest, MannWhitneyNormalApproximationBeyondHundredValues) {
  std::vector<double> x, y;
  for (int i = 0; i < 60; ++i) {
    x.push_back(i % 5);
    y.push_back(i % 5 + 2);
  }
  const auto r = mann_whitney(x, y);
  EXPECT_FALSE(r.exact);
  EXPECT_LT(r.p_value, 1e-4);
}

TEST(StatsMathTest, SignedRankExact) {
  // Six positive differences: only the all-positive and all-negative assignments are as
  // extreme, p = 2 / 64; the smallest possible with six pairs.
  const auto r = signed_rank({0.1, 0.2, 0.05, 0.3, 0.15, 0.25});
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.n, 6U);
  EXPECT_NEAR(r.p_value, 2.0 / 64.0, 1e-12);
  EXPECT_NEAR(min_p_value_paired(6), 2.0 / 64.0, 1e-12);
  EXPECT_NEAR(min_p_value_paired(8), 2.0 / 256.0, 1e-12);
  // Zeros are dropped; symmetric differences give no evidence.
  EXPECT_EQ(signed_rank({0, 0, 1, -1}).n, 2U);
  EXPECT_DOUBLE_EQ(signed_rank({0, 0, 1, -1}).p_value, 1.0);
  EXPECT_DOUBLE_EQ(signed_rank({}).p_value, 1.0);
  // Against a brute-force enumeration of all 2^8 sign assignments, with tied magnitudes.
  const std::vector<double> d = {0.5, -0.5, 1, 2, 2, -3, 4, 4};
  const auto observed = signed_rank(d);
  const double mean = 8 * 9 / 4.0;
  int extreme = 0;
  for (unsigned mask = 0; mask < 256; ++mask) {
    std::vector<double> flipped;
    for (unsigned i = 0; i < 8; ++i) flipped.push_back(mask >> i & 1 ? -std::abs(d[i]) : std::abs(d[i]));
    if (std::abs(signed_rank(flipped).w_plus - mean) >= std::abs(observed.w_plus - mean) - 1e-9) ++extreme;
  }
  EXPECT_NEAR(observed.p_value, extreme / 256.0, 1e-12);
  // Beyond 200 pairs the normal approximation: a consistent shift is decisive.
  std::vector<double> many;
  for (int i = 0; i < 250; ++i) many.push_back(i % 7 == 0 ? -0.01 : 0.02 + 0.001 * (i % 5));
  const auto big = signed_rank(many);
  EXPECT_FALSE(big.exact);
  EXPECT_LT(big.p_value, 1e-10);
}

TEST(StatsMathTest, SmallestPossibleP) {
  EXPECT_NEAR(min_p_value(3, 3), 0.1, 1e-12);
  EXPECT_NEAR(min_p_value(8, 8), 2.0 / 12870.0, 1e-15);
  EXPECT_NEAR(min_p_value(4, 4), 2.0 / 70.0, 1e-12);
}

TEST(StatsMathTest, HolmAdjustment) {
  // Sorted 0.01, 0.02, 0.03, 0.04 with k = 4: 0.04, 0.06, 0.06, 0.06 (monotone).
  const auto a = holm_adjust({0.03, 0.01, 0.04, 0.02});
  EXPECT_NEAR(a[1], 0.04, 1e-12);
  EXPECT_NEAR(a[3], 0.06, 1e-12);
  EXPECT_NEAR(a[0], 0.06, 1e-12);
  EXPECT_NEAR(a[2], 0.06, 1e-12);
  EXPECT_DOUBLE_EQ(holm_adjust({0.5, 0.9})[1], 1.0);
}

TEST(StatsMathTest, JainIndex) {
  EXPECT_DOUBLE_EQ(jain_index({10, 10, 10, 10}), 1.0);
  EXPECT_DOUBLE_EQ(jain_index({40, 0, 0, 0}), 0.25);
  EXPECT_NEAR(jain_index({1, 2}), 9.0 / 10.0, 1e-12);
}

}  // namespace
}  // namespace acceptbench::stats
