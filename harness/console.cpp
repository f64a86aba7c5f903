#include "console.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace acceptbench {

std::string fmt_duration(double s) {
  const auto total = static_cast<long>(std::max(0.0, s));
  return total >= 60 ? fmt::format("{}m{:02}s", total / 60, total % 60) : fmt::format("{}s", total);
}

std::string elapsed_and_eta(double elapsed_s, int done, int left, double first_guess_s) {
  const double per_step = done ? elapsed_s / done : first_guess_s;
  return fmt::format("elapsed {}  ETA {}", fmt_duration(elapsed_s), fmt_duration(per_step * left));
}

ProgressLine::ProgressLine(int width) : tty_(::isatty(STDERR_FILENO) != 0), width_(width) {}

void ProgressLine::update(const std::string& line) const {
  if (tty_) {
    fmt::print(stderr, "\r{:<{}}", line, width_);
  } else {
    fmt::print(stderr, "{}\n", line);
  }
}

void ProgressLine::message(const std::string& line) const { fmt::print(stderr, "{}{}\n", tty_ ? "\n" : "", line); }

void ProgressLine::finish() const {
  if (tty_) fmt::print(stderr, "\n");
}

void print_summary(const std::vector<ConfigResult>& results) {
  fmt::print("\n{:<16} {:<10} {:>3} {:>12} {:>9} {:>25} {:>10} {:>9} {:>9} {:>7} {:>6}  {}\n", "model", "workload",
             "thr", "load", "conn/s", "CI of median (coverage)", "p99 us", "cpu us/c", "mach us/c", "wasted", "jain",
             "status");
  bool any_saturated = false, any_coarse = false, any_overloaded = false;
  int disturbed = 0;
  for (const ConfigResult& c : results) {
    const RunConfig& cfg = c.config;
    const std::string load = cfg.rate > 0 ? fmt::format("{:.0f}/s", cfg.rate)
                                          : fmt::format("c={} k={}", cfg.connections, cfg.requests_per_conn);
    if (!c.summary) {
      fmt::print("{:<16} {:<10} {:>3} {:>12}  {}: {}\n", cfg.model, cfg.workload, cfg.server_threads, load,
                 c.status == ConfigStatus::kCannotHold ? "CANNOT HOLD" : "FAILED",
                 c.reason.value_or("").substr(0, 100));
      continue;
    }
    const Summary& s = *c.summary;
    any_saturated = any_saturated || s.client_saturated;
    std::string status = to_string(c.status);
    if (s.client_saturated) status += " (client saturated)";
    if (s.client_late.value_or(false)) {
      status += fmt::format(" (client late: start lateness p99 {:.0f} us)",
                            s.start_lateness_us ? s.start_lateness_us->p99 : 0.0);
    }
    const bool coarse = s.server_cpu_coarse.value_or(false);
    any_coarse = any_coarse || coarse;
    if (coarse) status += " (cpu coarse)";
    any_overloaded = any_overloaded || c.status == ConfigStatus::kOverloaded;
    if (const int d = s.disturbed_repetitions.value_or(0); d > 0) {
      disturbed += d;
      status += fmt::format(" ({} reps disturbed)", d);
    }
    if (!s.crosscheck_within_1pct) status += fmt::format(" (crosscheck {:.1f}%)", 100 * s.crosscheck_max_deviation);
    fmt::print("{:<16} {:<10} {:>3} {:>12} {:>9.0f} {:>25} {:>10.1f} {:>9.1f} {:>9.1f} {:>7.3f} {:>6.3f}  {}\n",
               cfg.model, cfg.workload, cfg.server_threads, load, s.conn_per_s.median,
               fmt::format("[{:.0f}, {:.0f}] {:.1f}%", s.conn_per_s.ci_low, s.conn_per_s.ci_high,
                           100 * s.conn_per_s.ci_coverage),
               s.latency_us.total.p99, s.server_cpu_us_per_conn.median,
               s.machine_cpu_us_per_conn ? s.machine_cpu_us_per_conn->median : 0.0, s.accept.wasted_wakeups_per_accept,
               s.fairness.jain_index, status);
  }
  fmt::print(
      "\nHow to read this: medians over repetitions; the interval of the median is distribution-free (order "
      "statistics) and shown with its actual coverage (95% needs 6 or more repetitions: with 3 it is [min, max] at "
      "75%)."
      "\nRank models by the cost workload (open loop at a fixed offered rate): server CPU us per connection and "
      "latency "
      "from the actual start; 'client late' marks runs whose own start lateness inflates latency from the intended "
      "start.\n"
      "cpu us/c: the server's cgroup CPU (every thread and child, ns) over the window / connections it accepted in the "
      "window (snapshot difference); mach us/c: busy time of every CPU (cpuidle residency, µs, or /proc/stat ticks) / "
      "the same connections.\n"
      "jain: the median over repetitions of each repetition's own index (the worst is in the JSON).\n{}{}{}{}",
      any_coarse ? "'cpu coarse': no cgroup could be made; that server CPU is /proc ticks (10 ms), not comparable.\n"
                 : "",
      any_overloaded ? "'overloaded': the server did not hold the offered rate (completed in the window < 98% of the "
                       "offered with a backlog over 50 ms, connections unfinished after the drain, or a drain over 200 ms); its numbers are kept "
                       "but it is not ranked.\n"
                     : "",
      disturbed ? fmt::format("{} repetitions were disturbed: steal time above the threshold on the measured CPUs.\n",
                              disturbed)
                : "",
      any_saturated ? "Closed-loop conn/s marked 'client saturated' measure the load client's limit, not the server's: "
                      "on loopback the client pays about twice the server's CPU per connection.\n"
                    : "");
}

}  // namespace acceptbench
