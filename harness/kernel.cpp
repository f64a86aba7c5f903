#include "kernel.hpp"

#include <fstream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

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

KernelCounters read_kernel_counters(const std::string& root) {
  KernelCounters c = parse_proc_net_pairs(slurp(root + "/proc/net/snmp"));
  for (auto& [k, v] : parse_proc_net_pairs(slurp(root + "/proc/net/netstat"))) c[k] = v;
  std::istringstream sockstat(slurp(root + "/proc/net/sockstat"));
  for (std::string line; std::getline(sockstat, line);) {
    if (!line.starts_with("TCP:")) continue;
    std::istringstream f(line.substr(4));
    std::string key;
    std::int64_t value;
    while (f >> key >> value) c["Sockstat." + key] = value;
  }
  return c;
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
