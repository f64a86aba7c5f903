#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace acceptbench {

// A log-linear (HDR-style) latency histogram of nanosecond values: exact below 128 ns,
// then 128 sub-buckets per power of two, so any value's bucket is within 1/128 (0.78%) of
// it and the reported midpoint within 0.4%. Fixed memory (3,840 counters, 30 KiB) from
// 1 ns to 2^36 ns (68.7 s); larger values are clamped and counted. Histograms with this
// layout merge exactly, also through their JSON (raw buckets). One writer at a time.
class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBuckets = 1u << kSubBucketBits;
  static constexpr int kMaxExponent = 35;  // highest power of two covered: [2^35, 2^36)
  static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << (kMaxExponent + 1)) - 1;
  static constexpr std::size_t kBucketCount = kSubBuckets + (kMaxExponent - kSubBucketBits + 1) * kSubBuckets;

  Histogram();

  void record(std::uint64_t value_ns);
  void merge(const Histogram& other);
  void reset();

  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::uint64_t min() const { return count_ ? min_ : 0; }
  [[nodiscard]] std::uint64_t max() const { return max_; }
  [[nodiscard]] std::uint64_t clamped() const { return clamped_; }
  [[nodiscard]] std::uint64_t bucket_count(std::size_t index) const { return counts_.at(index); }
  [[nodiscard]] double mean() const;
  // The value at percentile p in [0, 100]: the midpoint of the bucket that holds the
  // ceil(p/100 * count)-th smallest value, kept within [min, max]. 0 when empty.
  [[nodiscard]] std::uint64_t percentile(double p) const;

  // The rank (1..count) of percentile p: ceil(p/100 * count), computed so that a level that
  // falls on a sample (99.9 of 5000: rank 4995) is not pushed to the next rank by the binary
  // rounding of p/100. count > 0.
  static std::uint64_t rank_of(double p, std::uint64_t count);
  static std::size_t bucket_of(std::uint64_t value);
  static std::uint64_t bucket_low(std::size_t index);
  static std::uint64_t bucket_width(std::size_t index);

  // {"count", "min", "max", "mean", "p50", "p90", "p99", "p999", "p9999", "clamped",
  //  "layout": "log-linear/7/35", "buckets": [[index, count], ...] (non-zero only)}
  [[nodiscard]] nlohmann::json to_json() const;
  // Inverse of to_json (its buckets, min and max); throws std::invalid_argument on a
  // different layout or malformed input.
  static Histogram from_json(const nlohmann::json& j);

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0, min_ = UINT64_MAX, max_ = 0, clamped_ = 0;
  long double sum_ = 0;
};

}  // namespace acceptbench
