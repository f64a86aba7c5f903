#include "summary.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "histogram.hpp"
#include "stats_math.hpp"

namespace acceptbench {

namespace {

constexpr const char* kStatusNames[] = {"ok", "overloaded", "failed", "running", "cannot_hold"};

LatencySummary latency_summary(const Histogram& h) {
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return {h.count(),
          us(h.percentile(50)),
          us(h.percentile(90)),
          us(h.percentile(99)),
          us(h.percentile(99.9)),
          us(h.percentile(99.99)),
          us(h.max()),
          h.mean() / 1000.0};
}

// Sums `from`'s numbers into `into` by name.
void add_counts(std::map<std::string, double>& into, const nlohmann::json& from) {
  for (const auto& [k, v] : from.items()) into[k] += v.get<double>();
}

}  // namespace

Series Series::of(const std::vector<double>& repetition_values) {
  const auto ci = stats::median_interval(repetition_values);
  return {stats::median(repetition_values), ci.low, ci.high, ci.coverage, stats::cv(repetition_values),
          repetition_values};
}

const char* to_string(ConfigStatus s) { return kStatusNames[static_cast<int>(s)]; }

void to_json(nlohmann::json& j, ConfigStatus s) { j = to_string(s); }

void from_json(const nlohmann::json& j, ConfigStatus& s) {
  const std::string name = j.is_string() ? j.get<std::string>() : "";
  for (std::size_t i = 0; i < std::size(kStatusNames); ++i) {
    if (name == kStatusNames[i]) {
      s = static_cast<ConfigStatus>(i);
      return;
    }
  }
  throw std::invalid_argument("not a configuration status: " + j.dump());
}

nlohmann::json ConfigResult::to_json() const { return json_fields::write(*this); }

ConfigResult ConfigResult::from_json(const nlohmann::json& j) {
  ConfigResult r = json_fields::read<ConfigResult>(j, "configuration");
  if (!r.repetitions.is_array()) throw std::invalid_argument("malformed configuration: repetitions: not an array");
  return r;
}

std::vector<ConfigResult> configs_of(const nlohmann::json& doc) {
  std::vector<ConfigResult> out;
  const auto it = doc.find("configs");
  if (it == doc.end() || !it->is_array()) throw std::invalid_argument("malformed results: no configs array");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& c = (*it)[i];
    try {
      out.push_back(ConfigResult::from_json(c));
    } catch (const std::invalid_argument& e) {
      const nlohmann::json* key =
          c.is_object() && c.contains("config") && c["config"].is_object() && c["config"].contains("key")
              ? &c["config"]["key"]
              : nullptr;
      throw std::invalid_argument(fmt::format("configs[{}]{}: {}", i, key ? " " + key->dump() : "", e.what()));
    }
  }
  return out;
}

ConfigResult summarize_config(const RunConfig& config, const nlohmann::json& reps) {
  std::vector<double> conn_rate, req_rate, cpu_per_conn, ctx_per_conn, p99, client_util, server_util, machine_cpu,
      client_cpu, jain, client_busy;
  int overloaded = 0, disturbed = 0, coarse = 0, from_exit_stats = 0;
  std::uint64_t late_completions = 0;
  std::set<std::string> cpu_sources, machine_sources;
  Histogram connect, ttfb, total, total_uncorrected, lateness;
  int late_reps = 0;
  std::vector<double> per_acceptor;
  double wasted = 0, accepted = 0, eagain = 0, listen_wakeups = 0, epoll_wakeups = 0, mutex_acq = 0, mutex_cont = 0;
  std::map<std::string, double> kernel;
  ErrorTotals errors;
  bool saturated = false;
  double worst_crosscheck = 0;
  std::vector<std::string> failures;
  std::string cannot_hold;
  std::vector<double> server_bytes, client_bytes;
  double held_min = -1, hold_threads = 0, hold_processes = 0;
  int ok = 0;
  for (const auto& rep : reps) {
    if (rep.value("status", "") == "cannot_hold" && cannot_hold.empty()) cannot_hold = rep.value("reason", "");
    if (rep.value("status", "") != "ok") {
      failures.push_back(rep.value("reason", "unknown"));
      continue;
    }
    ++ok;
    if (rep.contains("hold")) {
      const auto& h = rep["hold"];
      if (!h["server_bytes_per_conn"].is_null()) server_bytes.push_back(h["server_bytes_per_conn"]);
      client_bytes.push_back(h["client_bytes_per_conn"]);
      const double n = h["held"];
      held_min = held_min < 0 ? n : std::min(held_min, n);
      hold_threads = std::max(hold_threads, h["server_threads"].get<double>());
      hold_processes = std::max(hold_processes, h["server_processes"].get<double>());
    }
    const auto& d = rep["derived"];
    conn_rate.push_back(d["conn_per_s"]);
    req_rate.push_back(d["req_per_s"]);
    cpu_per_conn.push_back(d["server_cpu_us_per_conn"]);
    ctx_per_conn.push_back(d["ctx_switches_per_conn"]);
    p99.push_back(d["p99_total_us"]);
    client_util.push_back(d["client_max_thread_utilization"]);
    server_util.push_back(d["server_cpu_utilization"]);
    saturated = saturated || d["client_saturated"].get<bool>();
    machine_cpu.push_back(d.value("machine_cpu_us_per_conn", 0.0));
    client_cpu.push_back(d.value("client_cpu_us_per_conn", 0.0));
    client_busy.push_back(d.value("client_cpus_busy_fraction", 0.0));
    overloaded += d.value("overloaded", false);
    disturbed += d.value("disturbed", false);
    coarse += d.value("server_cpu_coarse", true);
    late_completions += d.value("late_completions", std::uint64_t{0});
    if (rep.contains("server_cpu")) cpu_sources.insert(rep["server_cpu"]["source"].get<std::string>());
    if (rep.contains("machine")) machine_sources.insert(rep["machine"]["source"].get<std::string>());
    // Fairness per repetition, from the window's snapshot difference: an imbalance that flips
    // between repetitions must not cancel out in a sum.
    std::vector<double> reps_acceptors;
    if (d.contains("per_acceptor_accepted")) {
      reps_acceptors = d["per_acceptor_accepted"].get<std::vector<double>>();
      from_exit_stats += d.value("counters_source", "") != "snapshot";
    } else {
      for (const auto& a : rep["server"]["acceptors"]) reps_acceptors.push_back(a["accepted"].get<double>());
      ++from_exit_stats;
    }
    jain.push_back(stats::jain_index(reps_acceptors));
    const double ratio = d["crosscheck"]["ratio"];
    worst_crosscheck = std::max(worst_crosscheck, std::abs(1.0 - ratio));
    const auto& l = rep["client"]["latency_ns"];
    connect.merge(Histogram::from_json(l["connect"]));
    ttfb.merge(Histogram::from_json(l["ttfb"]));
    total.merge(Histogram::from_json(l["total"]));
    total_uncorrected.merge(Histogram::from_json(l["total_uncorrected"]));
    if (l.contains("start_lateness")) lateness.merge(Histogram::from_json(l["start_lateness"]));
    late_reps += d.value("client_late", false) ? 1 : 0;
    if (per_acceptor.size() < reps_acceptors.size()) per_acceptor.resize(reps_acceptors.size(), 0);
    for (std::size_t i = 0; i < reps_acceptors.size(); ++i) per_acceptor[i] += reps_acceptors[i];
    const auto& t = rep.contains("snapshot") ? rep["snapshot"]["totals"] : rep["server"]["totals"];
    wasted += t["wasted_wakeups"].get<double>();
    accepted += t["accepted"].get<double>();
    eagain += t["accept_eagain"].get<double>();
    listen_wakeups += t["listen_wakeups"].get<double>();
    epoll_wakeups += t["epoll_wakeups"].get<double>();
    mutex_acq += t["mutex_acquired"].get<double>();
    mutex_cont += t["mutex_contended"].get<double>();
    add_counts(kernel, rep["kernel"]);
    add_counts(errors.client, rep["client"]["errors"]);
    add_counts(errors.server, rep["server"]["totals"]["errors"]);
  }
  ConfigResult out;
  out.config = config;
  out.repetitions = reps;
  if (!cannot_hold.empty()) {
    // A model that cannot hold the background is a finding, not a failure: no figures.
    out.status = ConfigStatus::kCannotHold;
    out.reason = cannot_hold;
    return out;
  }
  if (ok == 0) {
    out.status = ConfigStatus::kFailed;
    out.reason = failures.empty() ? "no repetitions" : failures.front();
    return out;
  }
  double max_acc = 0, min_acc = per_acceptor.empty() ? 0 : per_acceptor[0];
  for (double a : per_acceptor) {
    max_acc = std::max(max_acc, a);
    min_acc = std::min(min_acc, a);
  }
  auto per_accept = [&](double n) { return accepted > 0 ? n / accepted : 0.0; };
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  Summary& s = out.summary.emplace();
  s.repetitions_ok = ok;
  s.conn_per_s = Series::of(conn_rate);
  s.req_per_s = Series::of(req_rate);
  s.latency_us = {latency_summary(connect), latency_summary(ttfb), latency_summary(total),
                  latency_summary(total_uncorrected)};
  s.p99_total_us = Series::of(p99);
  s.fairness.per_acceptor_accepted = per_acceptor;
  s.fairness.jain_index = stats::median(jain);
  s.fairness.jain_worst = *std::min_element(jain.begin(), jain.end());
  s.fairness.jain_per_repetition = jain;
  s.fairness.source = from_exit_stats == 0 ? "snapshot" : "exit-stats";
  if (min_acc > 0) s.fairness.max_min_ratio = max_acc / min_acc;
  s.fairness.cv = stats::cv(per_acceptor);
  s.accept = {accepted,  per_accept(wasted), per_accept(eagain), per_accept(listen_wakeups), per_accept(epoll_wakeups),
              mutex_acq, mutex_cont};
  s.server_cpu_us_per_conn = Series::of(cpu_per_conn);
  s.server_cpu_coarse = coarse > 0;
  s.server_cpu_source = std::vector<std::string>(cpu_sources.begin(), cpu_sources.end());
  s.machine_cpu_us_per_conn = Series::of(machine_cpu);
  s.machine_cpu_source = std::vector<std::string>(machine_sources.begin(), machine_sources.end());
  s.client_cpu_us_per_conn = Series::of(client_cpu);
  s.client_cpus_busy_fraction = Series::of(client_busy);
  s.overloaded_repetitions = overloaded;
  s.disturbed_repetitions = disturbed;
  s.late_completions = late_completions;
  s.server_cpu_utilization = Series::of(server_util);
  s.ctx_switches_per_conn = Series::of(ctx_per_conn);
  s.kernel_deltas_sum = kernel;
  s.errors = errors;
  s.client_max_thread_utilization = Series::of(client_util);
  s.client_saturated = saturated;
  s.start_lateness_us = StartLateness{us(lateness.percentile(50)), us(lateness.percentile(99)), us(lateness.max())};
  s.client_late = late_reps > 0;
  s.client_late_repetitions = late_reps;
  s.crosscheck_max_deviation = worst_crosscheck;
  s.crosscheck_within_1pct = worst_crosscheck <= 0.01;
  if (held_min >= 0) {
    s.hold = HoldSummary{held_min, server_bytes.empty() ? std::nullopt : std::optional(Series::of(server_bytes)),
                         Series::of(client_bytes), hold_threads, hold_processes};
  }
  if (failures.empty() && 2 * overloaded >= ok) {
    // It could not hold the offered rate in most repetitions: its numbers are kept but it
    // is never ranked with the others.
    out.status = ConfigStatus::kOverloaded;
    out.reason = fmt::format(
        "{} of {} repetitions were behind their offered rate (completed in the window < the overload ratio of "
        "the offered with a backlog over 50 ms, connections unfinished after the drain, or a drain over 200 ms)",
        overloaded, ok);
  } else if (failures.empty()) {
    out.status = ConfigStatus::kOk;
  } else {
    out.status = ConfigStatus::kFailed;
    out.reason = fmt::format("{} of {} repetitions failed; first: {}", failures.size(), reps.size(), failures.front());
  }
  return out;
}

}  // namespace acceptbench
