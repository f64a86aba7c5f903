#include "compare.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "stats_math.hpp"

namespace acceptbench {

namespace {

struct Metric {
  const char* name;
  const char* label;
  bool higher_is_better;
  bool latency;
};
constexpr Metric kMetrics[] = {{"conn_per_s", "conn/s", true, false},
                               {"server_cpu_us_per_conn", "server CPU us/conn", false, false},
                               {"p99_total_us", "p99 total us", false, true}};

std::vector<double> values_of(const nlohmann::json& config_result, const char* metric) {
  std::vector<double> v;
  for (const auto& rep : config_result.at("repetitions")) {
    if (rep.value("status", "") == "ok") v.push_back(rep.at("derived").at(metric).get<double>());
  }
  return v;
}

const nlohmann::json* find(const nlohmann::json& doc, const std::string& key) {
  for (const auto& c : doc.at("configs")) {
    if (c.at("config").at("key") == key) return &c;
  }
  return nullptr;
}

}  // namespace

CompareReport compare_results(const nlohmann::json& base, const nlohmann::json& next, const CompareOptions& o,
                              const std::string& base_name, const std::string& next_name) {
  CompareReport r;
  r.table = fmt::format("{:<58} {:<20} {:>12} {:>12} {:>8} {:>8}  {}\n", "configuration", "metric", base_name, next_name,
                        "ratio", "p", "verdict");
  r.markdown = fmt::format("| configuration | metric | {} | {} | ratio | p | verdict |\n|---|---|---:|---:|---:|---:|---|\n",
                           base_name, next_name);
  try {
    for (const auto& b : base.at("configs")) {
      const std::string key = b.at("config").at("key");
      const nlohmann::json* n = find(next, key);
      if (!n || b.at("status") != "ok" || n->at("status") != "ok") continue;
      ++r.compared_configs;
      for (const Metric& m : kMetrics) {
        const auto bv = values_of(b, m.name), nv = values_of(*n, m.name);
        if (bv.empty() || nv.empty()) continue;
        const double bm = stats::median(bv), nm = stats::median(nv);
        if (bm <= 0) continue;
        const double ratio = nm / bm;
        const auto test = stats::mann_whitney(nv, bv);
        const double threshold = m.latency ? o.latency_threshold : o.threshold;
        const bool worse = m.higher_is_better ? ratio < 1 - threshold : ratio > 1 + threshold;
        const bool better = m.higher_is_better ? ratio > 1 + threshold : ratio < 1 - threshold;
        const bool significant = test.p_value < o.alpha;
        std::string verdict = "same";
        if (worse && significant) {
          verdict = "REGRESSION";
          ++r.regressions;
        } else if (better && significant) {
          verdict = "improved";
          ++r.improvements;
        } else if (worse || better) {
          verdict = "changed, not significant";
        }
        r.rows.push_back({{"key", key},
                          {"metric", m.name},
                          {"base_median", bm},
                          {"new_median", nm},
                          {"ratio", ratio},
                          {"p_value", test.p_value},
                          {"exact_test", test.exact},
                          {"base_n", bv.size()},
                          {"new_n", nv.size()},
                          {"verdict", verdict}});
        r.table += fmt::format("{:<58} {:<20} {:>12.1f} {:>12.1f} {:>8.3f} {:>8.4f}  {}\n", key.substr(0, 58), m.label, bm,
                               nm, ratio, test.p_value, verdict);
        r.markdown += fmt::format("| `{}` | {} | {:.1f} | {:.1f} | {:.3f} | {:.4f} | {} |\n", key, m.label, bm, nm, ratio,
                                  test.p_value, verdict == "REGRESSION" ? "**REGRESSION**" : verdict);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed results: ") + e.what());
  }
  if (r.compared_configs == 0) {
    throw std::invalid_argument("the two results share no configuration with status ok: nothing to compare");
  }
  const std::string verdict = fmt::format(
      "{} configurations compared: {} regressions, {} improvements (threshold {:.0f}% for conn/s and CPU, {:.0f}% for "
      "p99; Mann-Whitney U, alpha {})\n",
      r.compared_configs, r.regressions, r.improvements, o.threshold * 100, o.latency_threshold * 100, o.alpha);
  r.table += verdict;
  r.markdown = "## acceptbench compare\n\n" + r.markdown + "\n" + verdict;
  return r;
}

}  // namespace acceptbench
