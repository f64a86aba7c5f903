#include "compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <utility>
#include <stdexcept>

#include <fmt/format.h>

#include "stats_math.hpp"
#include "summary.hpp"

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

// A metric of each successful repetition (the raw records).
std::vector<double> values_of(const ConfigResult& result, const char* metric) {
  std::vector<double> v;
  for (const auto& rep : result.repetitions) {
    if (rep.value("status", "") == "ok") v.push_back(rep.at("derived").at(metric).get<double>());
  }
  return v;
}

// The repetitions of two configurations made side by side by one `acceptbench ab` job: pairs
// of (base, new) values from the same round, both ok.
std::vector<std::pair<double, double>> paired_values(const ConfigResult& b, const ConfigResult& n, const char* metric) {
  std::map<int, double> by_round;
  for (const auto& rep : b.repetitions) {
    if (rep.value("status", "") == "ok" && rep.contains("round")) by_round[rep.at("round").get<int>()] = rep.at("derived").at(metric).get<double>();
  }
  std::vector<std::pair<double, double>> out;
  for (const auto& rep : n.repetitions) {
    if (rep.value("status", "") != "ok" || !rep.contains("round")) continue;
    const auto it = by_round.find(rep.at("round").get<int>());
    if (it != by_round.end()) out.emplace_back(it->second, rep.at("derived").at(metric).get<double>());
  }
  return out;
}

// Both files come from one ab job (the same job id): its rounds ran A and B back to back.
bool same_ab_job(const nlohmann::json& base, const nlohmann::json& next) {
  if (!base.contains("ab") || !next.contains("ab")) return false;
  const auto& a = base.at("ab");
  const auto& b = next.at("ab");
  return a.contains("job") && a.at("job").is_string() && !a.at("job").get<std::string>().empty() &&
         b.contains("job") && b.at("job") == a.at("job");
}

const ConfigResult* find(const std::vector<ConfigResult>& results, const std::string& key) {
  for (const auto& c : results) {
    if (c.key() == key) return &c;
  }
  return nullptr;
}

std::vector<ConfigResult> configs_named(const nlohmann::json& doc, const std::string& name) {
  try {
    return configs_of(doc);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(name + ": " + e.what());
  }
}

}  // namespace

int repetitions_to_reach(double alpha, int configs, bool paired) {
  for (int r = 2; r < 1000; ++r) {
    const auto n = static_cast<std::size_t>(r);
    const double min_p = paired ? stats::min_p_value_paired(n) : stats::min_p_value(n, n);
    if (static_cast<double>(std::max(1, configs)) * min_p < alpha) return r;
  }
  return 1000;
}

CompareReport compare_results(const nlohmann::json& base, const nlohmann::json& next, const CompareOptions& o,
                              const std::string& base_name, const std::string& next_name) {
  CompareReport r;
  struct Row {
    std::string key;
    const Metric* metric;
    double bm, nm, ratio, p;
    bool exact;
    std::size_t bn, nn;
    std::size_t pairs;  // > 0: signed-rank test over this many rounds; 0: Mann-Whitney
    double min_p;       // the smallest p this test could give with these sizes
  };
  const bool paired = same_ab_job(base, next);
  std::vector<Row> rows;
  // Configurations whose status (ok or overloaded) is the comparison: shown first, no numbers.
  struct StatusRow {
    std::string key, base_status, new_status, verdict, markdown;
  };
  std::vector<StatusRow> status_rows;
  int ranked = 0;  // configurations ok on both sides: compared by their numbers (Holm's family)
  const std::vector<ConfigResult> base_results = configs_named(base, base_name);
  const std::vector<ConfigResult> next_results = configs_named(next, next_name);
  using enum ConfigStatus;
  try {
    for (const ConfigResult& b : base_results) {
      const std::string key = b.key();
      const ConfigResult* n = find(next_results, key);
      if (!n) continue;
      const std::string bs = to_string(b.status), ns = to_string(n->status);
      if ((b.status == kOk || b.status == kOverloaded) && (n->status == kOk || n->status == kOverloaded) &&
          b.status != n->status) {
        // Holding the offered rate or not is the comparison: an overloaded side is never
        // ranked by its numbers (nor is it in the Holm family below).
        const bool worse = n->status == kOverloaded;
        ++(worse ? r.regressions : r.improvements);
        ++r.compared_configs;
        status_rows.push_back({key, bs, ns, worse ? "REGRESSION" : "improved",
                               worse ? "**REGRESSION** (now overloaded)" : "improved (no longer overloaded)"});
        continue;
      }
      if (b.status == kOverloaded && n->status == kOverloaded) {
        status_rows.push_back({key, bs, ns, "overloaded in both: not compared", "overloaded in both: not compared"});
        continue;
      }
      if (b.status != kOk || n->status != kOk) continue;
      ++r.compared_configs;
      ++ranked;
      for (const Metric& m : kMetrics) {
        const auto bv = values_of(b, m.name), nv = values_of(*n, m.name);
        if (bv.empty() || nv.empty()) continue;
        const double bm = stats::median(bv), nm = stats::median(nv);
        if (bm <= 0) continue;
        if (paired) {
          // One ab job: A and B of a round ran back to back, so the test is on the per-round
          // log ratio, in which the machine's drift between rounds cancels.
          std::vector<double> d;
          for (const auto& [x, y] : paired_values(b, *n, m.name))
            if (x > 0 && y > 0) d.push_back(std::log(y / x));
          if (d.size() >= 2) {
            const auto test = stats::signed_rank(d);
            // The effect is the median per-round ratio (what the test is about), not the ratio
            // of the two sides' medians, which drift between rounds can move either way.
            // Whether the rounds could ever decide depends on how many there are, not on how
            // many differ: rounds that tie (an open loop's conn/s is the offered rate; p99 from
            // histogram buckets) are evidence of no change, not a design too small to see one.
            rows.push_back({key, &m, bm, nm, std::exp(stats::median(d)), test.p_value, test.exact, bv.size(), nv.size(),
                            d.size(), stats::min_p_value_paired(d.size())});
            continue;
          }
        }
        const auto test = stats::mann_whitney(nv, bv);
        rows.push_back({key, &m, bm, nm, nm / bm, test.p_value, test.exact, bv.size(), nv.size(), 0,
                        stats::min_p_value(nv.size(), bv.size())});
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed results: ") + e.what());
  }
  if (r.compared_configs == 0) {
    throw std::invalid_argument("the two results share no configuration with status ok: nothing to compare");
  }
  // Holm's correction per metric, over the configurations compared.
  std::vector<double> adjusted(rows.size(), 1.0);
  for (const Metric& m : kMetrics) {
    std::vector<std::size_t> idx;
    std::vector<double> p;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].metric == &m) {
        idx.push_back(i);
        p.push_back(rows[i].p);
      }
    }
    const auto adj = stats::holm_adjust(p);
    for (std::size_t k = 0; k < idx.size(); ++k) adjusted[idx[k]] = adj[k];
  }
  // Could these repetitions ever decide? The first Holm step needs k * p_min < alpha.
  std::size_t worst_b = SIZE_MAX, worst_n = SIZE_MAX, worst_pairs = 0;
  double worst_min_p = 0;
  for (const auto& row : rows) {
    if (row.min_p > worst_min_p) {
      worst_min_p = row.min_p;
      worst_b = row.bn;
      worst_n = row.nn;
      worst_pairs = row.pairs;
    }
  }
  const int k = ranked;
  if (!rows.empty() && static_cast<double>(k) * worst_min_p >= o.alpha) {
    r.unreachable = true;
    r.cannot_decide = fmt::format(
        "cannot reach significance at alpha={}: with {} the smallest possible two-sided p is {:.4g}{}, "
        "so no difference could ever be flagged; use at least {} repetitions per side",
        o.alpha,
        worst_pairs > 0 ? fmt::format("{} paired rounds", worst_pairs) : fmt::format("{} vs {} repetitions", worst_b, worst_n),
        worst_min_p, k > 1 ? fmt::format(" and Holm's correction over {} configurations multiplies it by {}", k, k) : "",
        repetitions_to_reach(o.alpha, k, worst_pairs > 0));
  }
  r.table = fmt::format("{:<58} {:<20} {:>12} {:>12} {:>8} {:>8} {:>8}  {}\n", "configuration", "metric", base_name,
                        next_name, "ratio", "p", "p(Holm)", "verdict");
  r.markdown = fmt::format(
      "| configuration | metric | {} | {} | ratio | p | p (Holm) | verdict |\n|---|---|---:|---:|---:|---:|---:|---|\n",
      base_name, next_name);
  for (const StatusRow& st : status_rows) {
    r.rows.push_back({{"key", st.key},
                      {"metric", "status"},
                      {"base_status", st.base_status},
                      {"new_status", st.new_status},
                      {"verdict", st.verdict}});
    r.table += fmt::format("{:<58} {:<20} {:>12} {:>12} {:>8} {:>8} {:>8}  {}\n", st.key.substr(0, 58), "status",
                           st.base_status, st.new_status, "", "", "", st.verdict);
    r.markdown += fmt::format("| `{}` | status | {} | {} | | | | {} |\n", st.key, st.base_status, st.new_status, st.markdown);
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    const Metric& m = *row.metric;
    const double threshold = m.latency ? o.latency_threshold : o.threshold;
    const bool worse = m.higher_is_better ? row.ratio < 1 - threshold : row.ratio > 1 + threshold;
    const bool better = m.higher_is_better ? row.ratio > 1 + threshold : row.ratio < 1 - threshold;
    const bool significant = adjusted[i] < o.alpha;
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
    r.rows.push_back({{"key", row.key},
                      {"metric", m.name},
                      {"base_median", row.bm},
                      {"new_median", row.nm},
                      {"ratio", row.ratio},
                      {"p_value", row.p},
                      {"p_holm", adjusted[i]},
                      {"exact_test", row.exact},
                      {"test", row.pairs > 0 ? "wilcoxon-signed-rank" : "mann-whitney"},
                      {"pairs", row.pairs},
                      {"base_n", row.bn},
                      {"new_n", row.nn},
                      {"threshold", threshold},
                      {"verdict", verdict}});
    r.table += fmt::format("{:<58} {:<20} {:>12.1f} {:>12.1f} {:>8.3f} {:>8.4f} {:>8.4f}  {}\n", row.key.substr(0, 58),
                           m.label, row.bm, row.nm, row.ratio, row.p, adjusted[i], verdict);
    r.markdown += fmt::format("| `{}` | {} | {:.1f} | {:.1f} | {:.3f} | {:.4f} | {:.4f} | {} |\n", row.key, m.label, row.bm,
                              row.nm, row.ratio, row.p, adjusted[i], verdict == "REGRESSION" ? "**REGRESSION**" : verdict);
  }
  const std::string verdict = fmt::format(
      "{} configurations compared: {} regressions, {} improvements (a change of the median beyond {:.0f}% for conn/s "
      "and CPU, {:.0f}% for p99, with p < {} after Holm's correction over the configurations; {}; ok -> overloaded is a "
      "regression, overloaded -> ok an improvement, overloaded ones are not ranked)\n{}",
      r.compared_configs, r.regressions, r.improvements, o.threshold * 100, o.latency_threshold * 100, o.alpha,
      paired ? "one ab job: exact Wilcoxon signed-rank test of the per-round log ratios (A and B of a round ran back to "
               "back, so drift between rounds cancels)"
             : "exact Mann-Whitney U with ties",
      r.unreachable ? "WARNING: " + r.cannot_decide + "\n" : "");
  r.table += verdict;
  r.markdown = "## acceptbench compare\n\n" + r.markdown + "\n" + verdict;
  return r;
}

}  // namespace acceptbench
