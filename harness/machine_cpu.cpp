#include "machine_cpu.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "clock.hpp"

namespace acceptbench {

MachineSample sample_machine() {
  MachineSample s;
  std::ifstream stat("/proc/stat");
  if (!stat) throw std::runtime_error("cannot read /proc/stat");
  for (std::string line; std::getline(stat, line);) {
    if (!line.starts_with("cpu") || line.size() < 4 || line[3] < '0' || line[3] > '9') continue;
    std::istringstream in(line.substr(3));
    std::size_t cpu = 0;
    CpuCounters c;
    in >> cpu >> c.user >> c.nice >> c.system >> c.idle >> c.iowait >> c.irq >> c.softirq >> c.steal;
    if (s.cpus.size() <= cpu) s.cpus.resize(cpu + 1);
    s.cpus[cpu] = c;
  }
  for (std::size_t cpu = 0; cpu < s.cpus.size(); ++cpu) {
    std::int64_t total = 0;
    bool any = false;
    for (int state = 0;; ++state) {
      std::ifstream t(fmt::format("/sys/devices/system/cpu/cpu{}/cpuidle/state{}/time", cpu, state));
      std::int64_t us = 0;
      if (!(t >> us)) break;
      total += us;
      any = true;
    }
    s.cpus[cpu].idle_residency_us = any ? total : -1;
  }
  s.mono_ns = now_ns();
  return s;
}

namespace {

struct CpuDelta {
  double busy_us = 0, idle_us = 0, steal_us = 0;
};

}  // namespace

nlohmann::json machine_delta(const MachineSample& a, const MachineSample& b, const std::vector<int>& server_cpus,
                             const std::vector<int>& client_cpus) {
  const double tick_us = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double wall_us = static_cast<double>(b.mono_ns - a.mono_ns) / 1000.0;
  const std::size_t n = std::min(a.cpus.size(), b.cpus.size());
  // Is the residency trustworthy here? Every CPU must have it and agree with /proc/stat.
  bool residency = n > 0;
  std::vector<CpuDelta> d(n);
  std::vector<double> tick_busy(n);
  for (std::size_t i = 0; i < n; ++i) {
    const CpuCounters& x = a.cpus[i];
    const CpuCounters& y = b.cpus[i];
    auto ticks = [&](std::uint64_t CpuCounters::*f) { return static_cast<double>(y.*f - x.*f) * tick_us; };
    tick_busy[i] = ticks(&CpuCounters::user) + ticks(&CpuCounters::nice) + ticks(&CpuCounters::system) +
                   ticks(&CpuCounters::irq) + ticks(&CpuCounters::softirq);
    const double tick_idle = ticks(&CpuCounters::idle) + ticks(&CpuCounters::iowait);
    d[i].steal_us = ticks(&CpuCounters::steal);
    if (x.idle_residency_us < 0 || y.idle_residency_us < 0) {
      residency = false;
      continue;
    }
    d[i].idle_us = static_cast<double>(y.idle_residency_us - x.idle_residency_us);
    if (std::abs(d[i].idle_us - tick_idle) > 2 * tick_us + 0.05 * wall_us) residency = false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (residency) {
      d[i].busy_us = std::max(0.0, wall_us - d[i].idle_us - d[i].steal_us);
    } else {
      const CpuCounters& x = a.cpus[i];
      const CpuCounters& y = b.cpus[i];
      d[i].busy_us = tick_busy[i];
      d[i].idle_us = static_cast<double>((y.idle + y.iowait) - (x.idle + x.iowait)) * tick_us;
    }
  }
  auto set_json = [&](std::vector<int> cpus) {
    cpus.erase(std::remove_if(cpus.begin(), cpus.end(), [&](int c) { return c < 0 || static_cast<std::size_t>(c) >= n; }),
               cpus.end());
    CpuDelta sum;
    for (const int c : cpus) {
      sum.busy_us += d[static_cast<std::size_t>(c)].busy_us;
      sum.idle_us += d[static_cast<std::size_t>(c)].idle_us;
      sum.steal_us += d[static_cast<std::size_t>(c)].steal_us;
    }
    const double capacity = wall_us * static_cast<double>(cpus.size());
    return nlohmann::json{{"cpus", cpus},
                          {"busy_us", sum.busy_us},
                          {"idle_us", sum.idle_us},
                          {"steal_us", sum.steal_us},
                          {"busy_fraction", capacity > 0 ? (sum.busy_us + sum.steal_us) / capacity : 0.0},
                          {"steal_fraction", capacity > 0 ? sum.steal_us / capacity : 0.0}};
  };
  std::vector<int> all(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = static_cast<int>(i);
  const std::vector<int> server = server_cpus.empty() ? all : server_cpus;
  std::vector<int> client = client_cpus;
  if (client.empty()) {
    for (const int c : all) {
      if (std::find(server.begin(), server.end(), c) == server.end()) client.push_back(c);
    }
    if (client.empty()) client = all;
  }
  double busy = 0;
  std::vector<double> per_cpu;
  for (const auto& x : d) {
    busy += x.busy_us;
    per_cpu.push_back(x.busy_us);
  }
  return {{"source", residency ? "cpuidle-residency" : "proc-stat-ticks"},
          {"resolution_us", residency ? 1.0 : tick_us},
          {"steal_source", "proc-stat-ticks"},
          {"wall_us", wall_us},
          {"busy_us", busy},
          {"per_cpu_busy_us", per_cpu},
          {"server_cpus", set_json(server)},
          {"client_cpus", set_json(client)}};
}

}  // namespace acceptbench
