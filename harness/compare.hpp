#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace acceptbench {

struct CompareOptions {
  double threshold = 0.03;          // conn/s and CPU per connection: change of the median that counts
  double latency_threshold = 0.20;  // p99: noisier, so a wider threshold
  double alpha = 0.05;              // family-wise significance level (Holm over the configurations)
};

struct CompareReport {
  nlohmann::json rows = nlohmann::json::array();  // one per (config, metric)
  int regressions = 0;
  int improvements = 0;
  int compared_configs = 0;
  // Set when some configuration's repetitions are too few for the exact test ever to reach
  // alpha after Holm's correction (even fully separated samples): the comparison cannot
  // decide; `cannot_decide` says why and how many repetitions are needed.
  bool unreachable = false;
  std::string cannot_decide;
  std::string table;     // for the terminal
  std::string markdown;  // for a CI summary
};

// Compares two acceptbench/2 documents configuration by configuration (matched by key): per
// metric, the exact two-sided Mann-Whitney test (ties handled) of the repetitions, or, when
// both files come from one `acceptbench ab` job (the same "ab"."job"), the exact Wilcoxon
// signed-rank test of the per-round log ratios (A and B of a round ran back to back), with the
// p-values of the configurations adjusted by Holm's step-down method; a change is a
// regression when it exceeds the threshold and its adjusted p is below alpha.
// Throws std::invalid_argument when they share no configuration with status ok, or when a
// configuration is malformed (the message names the side, the configuration and the field).
CompareReport compare_results(const nlohmann::json& base, const nlohmann::json& next, const CompareOptions& o,
                              const std::string& base_name = "BASE", const std::string& next_name = "NEW");

// The fewest repetitions per side with which `configs` configurations compared at `alpha`
// (Holm) can reach significance at all: the smallest r with k * 2 / C(2r, r) < alpha
// (Mann-Whitney), or with `paired` (rounds of one ab job) k * 2 / 2^r < alpha.
int repetitions_to_reach(double alpha, int configs, bool paired = false);

}  // namespace acceptbench
