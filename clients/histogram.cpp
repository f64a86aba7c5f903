#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace acceptbench {

namespace {
constexpr const char* kLayout = "log-linear/7/35";
}

Histogram::Histogram() : counts_(kBucketCount, 0) {}

std::size_t Histogram::bucket_of(std::uint64_t v) {
  if (v < kSubBuckets) return static_cast<std::size_t>(v);
  const int exponent = static_cast<int>(std::bit_width(v)) - 1;  // >= kSubBucketBits
  const int shift = exponent - kSubBucketBits;
  const std::uint64_t sub = (v >> shift) - kSubBuckets;  // [0, 128)
  return static_cast<std::size_t>(kSubBuckets + static_cast<std::uint64_t>(shift) * kSubBuckets + sub);
}

std::uint64_t Histogram::bucket_low(std::size_t index) {
  if (index < kSubBuckets) return index;
  const std::uint64_t shift = (index - kSubBuckets) / kSubBuckets;
  const std::uint64_t sub = (index - kSubBuckets) % kSubBuckets;
  return (kSubBuckets + sub) << shift;
}

std::uint64_t Histogram::bucket_width(std::size_t index) {
  if (index < kSubBuckets) return 1;
  return std::uint64_t{1} << ((index - kSubBuckets) / kSubBuckets);
}

void Histogram::record(std::uint64_t v) {
  if (v > kMaxValue) {
    v = kMaxValue;
    ++clamped_;
  }
  ++counts_[bucket_of(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += static_cast<long double>(v);
}

void Histogram::merge(const Histogram& o) {
  for (std::size_t i = 0; i < kBucketCount; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  clamped_ += o.clamped_;
  sum_ += o.sum_;
}

void Histogram::reset() { *this = Histogram(); }

double Histogram::mean() const { return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0; }

std::uint64_t Histogram::rank_of(double p, std::uint64_t count) {
  // 99.9 / 100 * 5000 is 4995.000000000001: a relative tolerance far below one rank (for any
  // count below 10^11) takes the rounding off before the ceil.
  const double x = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(count);
  return std::clamp<std::uint64_t>(static_cast<std::uint64_t>(std::ceil(x * (1 - 1e-12))), 1, count);
}

std::uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  const std::uint64_t rank = rank_of(p, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t mid = bucket_low(i) + (bucket_width(i) - 1) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

nlohmann::json Histogram::to_json() const {
  nlohmann::json buckets = nlohmann::json::array();
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    if (counts_[i]) buckets.push_back({i, counts_[i]});
  }
  return {{"count", count_},          {"min", min()},
          {"max", max_},              {"mean", mean()},
          {"p50", percentile(50)},    {"p90", percentile(90)},
          {"p99", percentile(99)},    {"p999", percentile(99.9)},
          {"p9999", percentile(99.99)}, {"clamped", clamped_},
          {"sum", static_cast<double>(sum_)}, {"layout", kLayout},
          {"buckets", buckets}};
}

Histogram Histogram::from_json(const nlohmann::json& j) {
  try {
    if (j.at("layout").get<std::string>() != kLayout) {
      throw std::invalid_argument("histogram layout '" + j.at("layout").get<std::string>() + "', expected " + kLayout);
    }
    Histogram h;
    for (const auto& b : j.at("buckets")) {
      const auto index = b.at(0).get<std::size_t>();
      const auto n = b.at(1).get<std::uint64_t>();
      if (index >= kBucketCount) throw std::invalid_argument("histogram bucket index out of range");
      h.counts_[index] += n;
      h.count_ += n;
    }
    if (h.count_ != j.at("count").get<std::uint64_t>()) throw std::invalid_argument("histogram buckets do not sum to count");
    if (h.count_) {
      h.min_ = j.at("min").get<std::uint64_t>();
      h.max_ = j.at("max").get<std::uint64_t>();
    }
    h.clamped_ = j.value("clamped", std::uint64_t{0});
    h.sum_ = static_cast<long double>(j.value("sum", j.value("mean", 0.0) * static_cast<double>(h.count_)));
    return h;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed histogram: ") + e.what());
  }
}

}  // namespace acceptbench
