#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "histogram.hpp"

namespace acceptbench {

// Data out of a results document (acceptbench/2) in formats other tools read.

// The CSV columns, in order (documented in results/SCHEMA.md, "CSV export").
const std::vector<std::string>& csv_columns();

// RFC 4180 CSV: a header, then one row per configuration and repetition. A failed
// repetition has its status and reason and empty measurements. Throws
// std::invalid_argument on a malformed document.
std::string results_csv(const nlohmann::json& doc);

// HdrHistogram's percentile-distribution text (as wrk2 prints it and HdrHistogram's plotter
// reads): "Value Percentile TotalCount 1/(1-Percentile)" lines, then the #[Mean ...] footer.
// Levels as HdrHistogram's outputPercentileDistribution with 5 ticks per half distance, plus
// the exact levels 50, 90, 99, 99.9 and 99.99 so that the summary percentiles can be read
// directly. The value at a level is the top of the bucket where the cumulative count first
// reaches it, kept within [min, max]. Values are divided by `unit_ns` (1e6: milliseconds).
std::string hgrm_text(const Histogram& h, double unit_ns);

struct HgrmFile {
  std::string name;  // <config key, unsafe characters as '_'>.<kind>.hgrm
  std::string text;
};
// One file per configuration with a successful repetition and per latency kind (connect,
// ttfb, total, total_uncorrected) that has samples, from the histograms of its successful repetitions merged
// exactly (the same data as the summary's latency_us).
std::vector<HgrmFile> results_hgrm(const nlohmann::json& doc, double unit_ns);

}  // namespace acceptbench
