#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace acceptbench {

// One CPU's counters at one moment.
struct CpuCounters {
  // /proc/stat, in USER_HZ ticks (10 ms): the kernel keeps ns but prints ticks.
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  // cpuidle residency summed over the CPU's idle states, µs (-1: no cpuidle here). An idle
  // period still in progress is counted when it ends.
  std::int64_t idle_residency_us = -1;
};

struct MachineSample {
  std::int64_t mono_ns = 0;
  std::vector<CpuCounters> cpus;  // index = CPU number (offline CPUs: zeros)
};

// Reads /proc/stat and /sys/devices/system/cpu/cpu*/cpuidle/state*/time. Throws
// std::runtime_error when /proc/stat cannot be read.
MachineSample sample_machine();

// The busy, idle and steal time of every CPU between two samples, and of the server's and
// the client's CPUs (empty lists: every CPU for the server; every CPU not the server's, or
// every CPU if that leaves none, for the client). Busy = wall - idle - steal from the
// cpuidle residency (µs) where it agrees with /proc/stat's idle to within 2 ticks + 5%;
// else user+nice+system+irq+softirq from /proc/stat (ticks). Steal is always in ticks.
// The JSON: {"source", "resolution_us", "wall_us", "busy_us", "per_cpu_busy_us",
//  "server_cpus": {...}, "client_cpus": {...}} where a CPU set has "cpus", "busy_us",
//  "idle_us", "steal_us", "busy_fraction" (incl. steal: no headroom), "steal_fraction".
nlohmann::json machine_delta(const MachineSample& a, const MachineSample& b, const std::vector<int>& server_cpus,
                             const std::vector<int>& client_cpus);

}  // namespace acceptbench
