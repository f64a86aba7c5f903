#pragma once
// A configuration's result in results JSON (acceptbench/2, results/SCHEMA.md): its
// configuration, status, the summary over its repetitions and the repetitions themselves.
// Each struct lists its JSON fields once (json_fields.hpp). Required fields are in every
// acceptbench/2 file; the optional ones (std::optional members) came later, or exist only for
// some configurations (hold): an older file reads back without them and writes out the same.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_fields.hpp"
#include "run_config.hpp"

namespace acceptbench {

// A figure over the repetitions: the median, its distribution-free interval with the
// interval's actual coverage, the coefficient of variation and the values.
struct Series {
  double median = 0, ci_low = 0, ci_high = 0, ci_coverage = 0, cv = 0;
  std::vector<double> values;

  static Series of(const std::vector<double>& repetition_values);
  ACCEPTBENCH_JSON_FIELDS(median, ci_low, ci_high, ci_coverage, cv, values);
  bool operator==(const Series&) const = default;
};

// One latency histogram (microseconds; the repetitions' histograms merged).
struct LatencySummary {
  std::uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0, mean = 0;

  ACCEPTBENCH_JSON_FIELDS(count, p50, p90, p99, p999, p9999, max, mean);
  bool operator==(const LatencySummary&) const = default;
};

struct Latencies {
  LatencySummary connect, ttfb, total, total_uncorrected;

  ACCEPTBENCH_JSON_FIELDS(connect, ttfb, total, total_uncorrected);
  bool operator==(const Latencies&) const = default;
};

// How evenly the acceptors shared the connections; Jain's index per repetition.
struct Fairness {
  std::vector<double> per_acceptor_accepted;  // summed over the repetitions
  double jain_index = 0;                      // the median of the repetitions' own
  std::optional<double> jain_worst;
  std::optional<std::vector<double>> jain_per_repetition;
  std::optional<std::string> source;    // snapshot or exit-stats
  std::optional<double> max_min_ratio;  // null when an acceptor accepted none
  double cv = 0;

  ACCEPTBENCH_JSON_FIELDS_AND_OPTIONAL((per_acceptor_accepted, jain_index, max_min_ratio, cv),
                                       (jain_worst, jain_per_repetition, source));
  bool operator==(const Fairness&) const = default;
};

// The servers' accept counters over the repetitions.
struct AcceptCounters {
  double accepted = 0, wasted_wakeups_per_accept = 0, eagain_per_accept = 0, listen_wakeups_per_accept = 0,
         epoll_wakeups_per_accept = 0, mutex_acquired = 0, mutex_contended = 0;

  ACCEPTBENCH_JSON_FIELDS(accepted, wasted_wakeups_per_accept, eagain_per_accept, listen_wakeups_per_accept,
                          epoll_wakeups_per_accept, mutex_acquired, mutex_contended);
  bool operator==(const AcceptCounters&) const = default;
};

struct ErrorTotals {
  std::map<std::string, double> client, server;  // by kind, summed over the repetitions

  ACCEPTBENCH_JSON_FIELDS(client, server);
  bool operator==(const ErrorTotals&) const = default;
};

// The open-loop client's start lateness (µs), its repetitions merged.
struct StartLateness {
  double p50 = 0, p99 = 0, max = 0;

  ACCEPTBENCH_JSON_FIELDS(p50, p99, max);
  bool operator==(const StartLateness&) const = default;
};

// Idle keep-alive connections held in the background (c10k).
struct HoldSummary {
  double held_min = 0;
  std::optional<Series> server_bytes_per_conn;  // null without a memory reading
  Series client_bytes_per_conn;
  double server_threads_max = 0, server_processes_max = 0;

  ACCEPTBENCH_JSON_FIELDS(held_min, server_bytes_per_conn, client_bytes_per_conn, server_threads_max,
                          server_processes_max);
  bool operator==(const HoldSummary&) const = default;
};

// The "summary" of a configuration with at least one successful repetition.
struct Summary {
  int repetitions_ok = 0;
  Series conn_per_s, req_per_s;
  Latencies latency_us;
  Series p99_total_us;
  Fairness fairness;
  AcceptCounters accept;
  Series server_cpu_us_per_conn;
  std::optional<bool> server_cpu_coarse;
  std::optional<std::vector<std::string>> server_cpu_source;
  std::optional<Series> machine_cpu_us_per_conn;
  std::optional<std::vector<std::string>> machine_cpu_source;
  std::optional<Series> client_cpu_us_per_conn, client_cpus_busy_fraction;
  std::optional<int> overloaded_repetitions, disturbed_repetitions;
  std::optional<std::uint64_t> late_completions;
  Series server_cpu_utilization, ctx_switches_per_conn;
  std::map<std::string, double> kernel_deltas_sum;
  ErrorTotals errors;
  Series client_max_thread_utilization;
  bool client_saturated = false;
  std::optional<StartLateness> start_lateness_us;
  std::optional<bool> client_late;
  std::optional<int> client_late_repetitions;
  double crosscheck_max_deviation = 0;
  bool crosscheck_within_1pct = false;
  std::optional<HoldSummary> hold;

  ACCEPTBENCH_JSON_FIELDS_AND_OPTIONAL((repetitions_ok, conn_per_s, req_per_s, latency_us, p99_total_us, fairness,
                                        accept, server_cpu_us_per_conn, server_cpu_utilization, ctx_switches_per_conn,
                                        kernel_deltas_sum, errors, client_max_thread_utilization, client_saturated,
                                        crosscheck_max_deviation, crosscheck_within_1pct),
                                       (server_cpu_coarse, server_cpu_source, machine_cpu_us_per_conn,
                                        machine_cpu_source, client_cpu_us_per_conn, client_cpus_busy_fraction,
                                        overloaded_repetitions, disturbed_repetitions, late_completions,
                                        start_lateness_us, client_late, client_late_repetitions, hold));
  bool operator==(const Summary&) const = default;
};

// ok: ranked; overloaded: did not hold its offered rate (kept, never ranked); failed; running
// (repetitions still to come); cannot_hold: the server could not hold its idle background.
enum class ConfigStatus { kOk, kOverloaded, kFailed, kRunning, kCannotHold };
const char* to_string(ConfigStatus s);
void to_json(nlohmann::json& j, ConfigStatus s);
void from_json(const nlohmann::json& j, ConfigStatus& s);  // throws std::invalid_argument

// One element of a results file's "configs".
struct ConfigResult {
  RunConfig config;  // with its derived mode and key (RunConfig::to_json)
  ConfigStatus status = ConfigStatus::kRunning;
  std::optional<std::string> reason;                     // failed, overloaded, cannot_hold: why
  std::optional<Summary> summary;                        // null until complete, and without a successful repetition
  nlohmann::json repetitions = nlohmann::json::array();  // the raw per-repetition records
  std::optional<int> repetitions_skipped;                // cannot_hold: repetitions not run

  [[nodiscard]] std::string key() const { return config.key(); }
  [[nodiscard]] nlohmann::json to_json() const;
  static ConfigResult from_json(const nlohmann::json& j);  // throws std::invalid_argument

  ACCEPTBENCH_JSON_FIELDS_AND_OPTIONAL((config, status, summary, repetitions), (reason, repetitions_skipped));
  bool operator==(const ConfigResult&) const = default;
};

// The configurations of a results document (load_results); throws std::invalid_argument
// naming the configuration and the field that is malformed.
std::vector<ConfigResult> configs_of(const nlohmann::json& doc);

// Summarizes the repetitions of one configuration: its status, reason and summary (config and
// repetitions are the caller's to set).
ConfigResult summarize_config(const RunConfig& config, const nlohmann::json& repetitions);

}  // namespace acceptbench
