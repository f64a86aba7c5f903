#include "histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

namespace acceptbench {
namespace {

std::uint64_t exact_percentile(std::vector<std::uint64_t> v, double p) {
  std::sort(v.begin(), v.end());
  const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))));
  return v[rank - 1];
}

void expect_within_one_percent(const std::vector<std::uint64_t>& values) {
  Histogram h;
  for (auto v : values) h.record(v);
  for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const double exact = static_cast<double>(exact_percentile(values, p));
    const double got = static_cast<double>(h.percentile(p));
    EXPECT_LE(std::abs(got - exact), 0.01 * exact + 0.5) << "p" << p << " exact " << exact << " got " << got;
  }
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(h.min(), *std::min_element(values.begin(), values.end()));
}

TEST(HistogramTest, PercentilesWithinOnePercentOnUniform) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> d(1'000, 60'000'000'000ULL);  // 1 us .. 60 s
  std::vector<std::uint64_t> v(200'000);
  for (auto& x : v) x = d(rng);
  expect_within_one_percent(v);
}

TEST(HistogramTest, PercentilesWithinOnePercentOnExponentialAndBimodal) {
  std::mt19937_64 rng(2);
  std::exponential_distribution<double> e(1.0 / 250'000.0);  // mean 250 us
  std::vector<std::uint64_t> v(200'000);
  for (auto& x : v) x = 1'000 + static_cast<std::uint64_t>(e(rng));
  expect_within_one_percent(v);
  std::normal_distribution<double> fast(50'000, 5'000), slow(20'000'000, 1'000'000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint64_t>(std::max(1000.0, (i % 100 == 0 ? slow : fast)(rng)));
  expect_within_one_percent(v);
}

// 99.9 / 100 * 5000 is 4995.000000000001 in binary floating point: its ceil skipped to rank
// 4996, the first of the five slow samples, so p99.9 read 100 where it is 10.
TEST(HistogramTest, PercentileRankIsExactWhenTheLevelFallsOnASample) {
  Histogram h;
  for (int i = 0; i < 4995; ++i) h.record(10);
  for (int i = 0; i < 5; ++i) h.record(100);
  EXPECT_EQ(h.percentile(99.9), 10u);
  EXPECT_EQ(h.percentile(99.99), 100u);
  EXPECT_EQ(Histogram::rank_of(99.9, 5000), 4995u);
  EXPECT_EQ(Histogram::rank_of(0, 5000), 1u);
  EXPECT_EQ(Histogram::rank_of(100, 5000), 5000u);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (std::uint64_t v = 0; v < 128; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 63u);
  EXPECT_EQ(h.percentile(100), 127u);
}

TEST(HistogramTest, BucketBoundsContainTheirValues) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100'000; ++i) {
    const std::uint64_t v = rng() >> (28 + rng() % 36);
    if (v > Histogram::kMaxValue) continue;
    const std::size_t b = Histogram::bucket_of(v);
    ASSERT_LT(b, Histogram::kBucketCount);
    EXPECT_GE(v, Histogram::bucket_low(b));
    EXPECT_LT(v, Histogram::bucket_low(b) + Histogram::bucket_width(b));
    EXPECT_LE(static_cast<double>(Histogram::bucket_width(b)), std::max(1.0, static_cast<double>(v) / 128.0));
  }
}

TEST(HistogramTest, ValuesAboveTheRangeAreClampedAndCounted) {
  Histogram h;
  h.record(Histogram::kMaxValue + 1000);
  EXPECT_EQ(h.clamped(), 1u);
  EXPECT_EQ(h.max(), Histogram::kMaxValue);
}

TEST(HistogramTest, MergeEqualsRecordingIntoOne) {
  std::mt19937_64 rng(4);
  std::lognormal_distribution<double> d(12.0, 1.5);
  Histogram a, b, both;
  for (int i = 0; i < 50'000; ++i) {
    const auto v = static_cast<std::uint64_t>(d(rng));
    (i % 3 ? a : b).record(v);
    both.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.to_json(), both.to_json());
}

TEST(HistogramTest, JsonRoundTripIsExactAndMergeable) {
  Histogram h;
  for (std::uint64_t v = 1; v < 5'000'000; v = v * 3 / 2 + 1) h.record(v);
  const Histogram back = Histogram::from_json(h.to_json());
  EXPECT_EQ(back.to_json(), h.to_json());
  Histogram sum = Histogram::from_json(h.to_json());
  sum.merge(back);
  EXPECT_EQ(sum.count(), 2 * h.count());
  EXPECT_EQ(sum.percentile(50), h.percentile(50));
}

TEST(HistogramTest, MalformedJsonIsRejected) {
  Histogram h;
  h.record(10);
  nlohmann::json j = h.to_json();
  j["layout"] = "other";
  EXPECT_THROW(Histogram::from_json(j), std::invalid_argument);
  j = h.to_json();
  j["count"] = 5;
  EXPECT_THROW(Histogram::from_json(j), std::invalid_argument);
  EXPECT_THROW(Histogram::from_json(nlohmann::json::object()), std::invalid_argument);
  j = h.to_json();
  j["buckets"] = {{999999, 1}};
  j["count"] = 1;
  EXPECT_THROW(Histogram::from_json(j), std::invalid_argument);
}

}  // namespace
}  // namespace acceptbench
