#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launcher.hpp"
#include "loadgen.hpp"

namespace acceptbench {

// One configuration of the matrix: a model under one workload.
struct RunConfig {
  std::string model;
  std::string workload = "conn";  // a label: conn, keepalive, cost, ...
  int server_threads = 1;
  int client_threads = 1;
  int connections = 32;       // closed loop
  double rate = 0;            // > 0: open loop (connections per second)
  int requests_per_conn = 1;
  std::uint32_t work_us = 0, sleep_us = 0, response_bytes = 13;
  double duration_s = 2, warmup_s = 0.5;
  int repetitions = 3;
  ClosePolicy close = ClosePolicy::kClient;
  double slow_fraction = 0;  // slowclient workload: see LoadConfig
  int slow_ms = 0;
  std::vector<int> server_cpus, client_cpus;
  std::vector<std::string> server_args;  // extra flags for the server binary
  std::string variant;  // a name for a preset's set of server_args (e.g. a service-time shape)
  int hold = 0;         // idle keep-alive connections held open in the background (c10k)

  // The identity of a configuration, for --resume and compare (not repetitions, duration
  // or placement: those say how it was measured, not what).
  [[nodiscard]] std::string key() const;
  [[nodiscard]] nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& j);  // throws std::invalid_argument
};

struct RunnerOptions {
  std::string server_binary;  // path of the model's binary
  bool multi_acceptor = false;
  int ready_timeout_ms = 10'000;
  int stop_timeout_ms = 5'000;  // after SIGTERM; then SIGKILL and the repetition fails
  // Busy fraction (incl. softirq and steal) of the client's CPUs over the window that flags
  // a saturated client.
  double saturation_threshold = 0.90;
  // Steal time over the server's and client's CPUs, as a fraction of the window, above
  // which a repetition is `disturbed` (the hypervisor took the CPUs away).
  double steal_threshold = 0.02;
  // Open loop: completed in the window below this fraction of the offered is `overloaded`.
  double overload_ratio = 0.98;
  // Open loop: the last connection offered in the window completing more than this long
  // after the window also means `overloaded` (the server was behind its offered load).
  double overload_drain_s = 0.2;
  int drain_ms = 1000;          // measured connections in flight at the window's end: bound
  bool cgroup = true;           // false: no cgroup, server CPU from /proc ticks (`coarse`)
  int snapshot_timeout_ms = 2000;
  // A command the server runs under (its argv is appended), e.g. a wrapper that reports
  // wait4()'s rusage in a test; it must pass SIGTERM and SIGUSR1 on. Empty: none.
  std::vector<std::string> server_wrapper;
  double late_threshold_us = 20;       // open loop: start lateness p99 that flags a late client
  // Where the server runs: local, netns:NAME or ssh:HOST. Its /proc and kernel counters are
  // read by the same code on its side: in-process here, `probe_binary probe ...` elsewhere.
  Launcher launcher;
  std::string probe_binary;  // the acceptbench binary as seen from the server's side
  std::string target_host = "127.0.0.1";  // the address the client connects to (and the server binds)
  // Where the load comes from: empty = the in-process client here (one client host, local).
  // Otherwise loadgen runs on every one of these hosts (through its launcher) with the same
  // configuration each, all started at one wall-clock time with the same window; their
  // results merge exactly (histograms by bucket) and conn/s adds up.
  std::vector<Launcher> client_hosts;
  std::string loadgen_binary;         // loadgen's path here (local and netns client hosts)
  std::string remote_loadgen_binary;  // loadgen's path on ssh client hosts
  std::string acceptbench_binary, remote_acceptbench_binary;  // the probe here, and on ssh hosts
  // Per client host (as client_hosts): the CPUs loadgen may use there, from its probe
  // (collect_run_hosts). loadgen is pinned there to the configuration's client CPUs when they
  // are all among them; else it runs unpinned and the repetition says why.
  std::vector<std::vector<int>> client_host_cpus;
  double client_start_delay_s = 1.5;  // launch to the common start: covers the ssh log-ins
};

// Open loop: did the server hold the offered rate in this repetition? `rate` x `window_s`
// connections were offered; `in_window` completed in the window, `late` in the drain after
// it, `unfinished` were still open when the drain ended, the last one `drain_s` after the
// window. Overloaded: completions in the window below `overload_ratio` of the offered (a
// healthy server has only rate x its latency in flight at the window's end: at 4000/s and
// 1 ms, 4 of 1200 in a 0.3 s window), any unfinished, or a drain over `overload_drain_s`.
// Late completions are kept in the histograms but do not make up for a shortfall: a server
// that finishes half of the window's connections after it was behind its load.
struct OpenLoopVerdict {
  double in_window_ratio = 1;  // completed in the window / offered
  double achieved_ratio = 1;   // completed in the window or the drain / offered
  bool overloaded = false;
};
OpenLoopVerdict judge_open_loop(double rate, double window_s, double in_window, double late, double unfinished,
                                double drain_s, double overload_ratio, double overload_drain_s);

// The hosts of a run (env.hosts): the server's and every client host's description and
// sysctls, each read there by `acceptbench probe --sysctls` through its launcher (here:
// directly), one record per launcher with its `roles`. Fills options.client_host_cpus.
nlohmann::json collect_run_hosts(RunnerOptions& options);

// Runs one repetition. Returns its JSON ("status": "ok", "failed" with "reason", or
// "cannot_hold" with "reason" when the server could not hold `hold` idle connections);
// never throws for a server's fault.
nlohmann::json run_repetition(const RunConfig& config, const RunnerOptions& options);

// Summarizes the repetitions of one configuration (the "summary" and "status" of a
// configuration in results JSON).
nlohmann::json summarize_config(const RunConfig& config, const nlohmann::json& repetitions);

}  // namespace acceptbench
