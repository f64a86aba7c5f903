#include "kernel.hpp"

#include <stdexcept>

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "process.hpp"

namespace acceptbench {

KernelCounters parse_proc_net_pairs(const std::string& text) {
  KernelCounters out;
  std::istringstream in(text);
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    std::istringstream n(names), v(values);
    std::string group, group2;
    n >> group;
    v >> group2;
    if (group != group2 || group.empty() || group.back() != ':') continue;  // out of step: skip
    group.pop_back();
    std::string name, value;
    while (n >> name && v >> value) {
      try {
        out[group + "." + name] = std::stoll(value);
      } catch (const std::exception&) {
      }
    }
  }
  return out;
}

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

namespace {
KernelCounters from_texts(const std::string& snmp, const std::string& netstat, const std::string& sockstat_text) {
  KernelCounters c = parse_proc_net_pairs(snmp);
  for (auto& [k, v] : parse_proc_net_pairs(netstat)) c[k] = v;
  std::istringstream sockstat(sockstat_text);
  for (std::string line; std::getline(sockstat, line);) {
    if (!line.starts_with("TCP:")) continue;
    std::istringstream f(line.substr(4));
    std::string key;
    std::int64_t value;
    while (f >> key >> value) c["Sockstat." + key] = value;
  }
  return c;
}
}  // namespace

KernelCounters read_kernel_counters(const std::string& root) {
  return from_texts(slurp(root + "/proc/net/snmp"), slurp(root + "/proc/net/netstat"), slurp(root + "/proc/net/sockstat"));
}

KernelCounters read_kernel_counters_via(const Launcher& launcher, const std::string& probe) {
  if (launcher.local()) return read_kernel_counters();
  // The same reader, run there: `acceptbench probe --kernel` prints read_kernel_counters().
  const std::string text = run_capture(launcher.wrap({probe, "probe", "--kernel"}));
  try {
    return nlohmann::json::parse(text).at("kernel").get<KernelCounters>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{} probe --kernel through {}: {}", probe, launcher.describe(), e.what()));
  }
}

nlohmann::json kernel_deltas(const KernelCounters& before, const KernelCounters& after) {
  nlohmann::json j = nlohmann::json::object();
  for (const char* name : kReportedCounters) {
    const auto b = before.find(name), a = after.find(name);
    if (b != before.end() && a != after.end()) j[name] = a->second - b->second;
  }
  if (after.contains("Sockstat.tw")) j["time_wait_after"] = after.at("Sockstat.tw");
  return j;
}

}  // namespace acceptbench
