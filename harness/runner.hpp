#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launcher.hpp"
#include "loadgen.hpp"
#include "run_config.hpp"

namespace acceptbench {

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
// window. Overloaded: completions in the window below `overload_ratio` of the offered while
// the backlog they leave is more than `overload_backlog_s` of offered load (a healthy server
// has only rate x its latency in flight at the window's end: at 4000/s and 1 ms, 4 of 1200 in
// a 0.3 s window; a short hiccup of a busy machine leaves a few ms), any unfinished, or a drain
// over `overload_drain_s`. Late completions are kept in the histograms but do not make up for
// a shortfall: a server that finishes half of the window's connections after it was behind
// its load.
struct OpenLoopVerdict {
  double in_window_ratio = 1;  // completed in the window / offered
  double backlog_s = 0;        // (offered - completed in the window) / rate
  double achieved_ratio = 1;   // completed in the window or the drain / offered
  bool overloaded = false;
};
OpenLoopVerdict judge_open_loop(double rate, double window_s, double in_window, double late, double unfinished,
                                double drain_s, double overload_ratio, double overload_drain_s,
                                double overload_backlog_s = 0.05);

// The hosts of a run (env.hosts): the server's and every client host's description and
// sysctls, each read there by `acceptbench probe --sysctls` through its launcher (here:
// directly), one record per launcher with its `roles`. Fills options.client_host_cpus.
nlohmann::json collect_run_hosts(RunnerOptions& options);

// Runs one repetition. Returns its JSON ("status": "ok", "failed" with "reason", or
// "cannot_hold" with "reason" when the server could not hold `hold` idle connections);
// never throws for a server's fault.
nlohmann::json run_repetition(const RunConfig& config, const RunnerOptions& options);

}  // namespace acceptbench
