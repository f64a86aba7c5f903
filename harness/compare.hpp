#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace acceptbench {

struct CompareOptions {
  double threshold = 0.05;          // conn/s and CPU per connection: relative change that counts
  double latency_threshold = 0.20;  // p99: noisier, so a wider threshold
  double alpha = 0.05;              // Mann-Whitney significance level
};

struct CompareReport {
  nlohmann::json rows = nlohmann::json::array();  // one per (config, metric)
  int regressions = 0;
  int improvements = 0;
  int compared_configs = 0;
  std::string table;     // for the terminal
  std::string markdown;  // for a CI summary
};

// Compares two acceptbench/1 documents configuration by configuration (matched by key).
// Throws std::invalid_argument when they share no configuration with status ok.
CompareReport compare_results(const nlohmann::json& base, const nlohmann::json& next, const CompareOptions& o,
                              const std::string& base_name = "BASE", const std::string& next_name = "NEW");

}  // namespace acceptbench
