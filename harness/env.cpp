#include "env.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "process.hpp"

#ifndef ACCEPTBENCH_GIT_REVISION
#define ACCEPTBENCH_GIT_REVISION "unknown"
#endif
#ifndef ACCEPTBENCH_BUILD_TYPE
#define ACCEPTBENCH_BUILD_TYPE "unknown"
#endif
#ifndef ACCEPTBENCH_CXX_FLAGS
#define ACCEPTBENCH_CXX_FLAGS ""
#endif

namespace acceptbench {

namespace {
std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return "";
  return line;
}

nlohmann::json sysctl(const std::string& name) {
  std::string path = "/proc/sys/" + name;
  for (auto& c : path) c = c == '.' ? '/' : c;
  std::string v = first_line(path);
  for (auto& c : v) c = c == '\t' ? ' ' : c;
  if (v.empty()) return nullptr;
  try {
    std::size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  return v;
}

nlohmann::json sysctls() {
  nlohmann::json out = nlohmann::json::object();
  for (const char* name : {"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_tw_reuse",
                           "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_syncookies", "net.ipv4.ip_local_port_range",
                           "net.ipv4.tcp_fastopen", "kernel.randomize_va_space", "fs.file-max"}) {
    out[name] = sysctl(name);
  }
  return out;
}
}  // namespace

nlohmann::json collect_host() {
  utsname u{};
  ::uname(&u);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::vector<int> allowed;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    for (unsigned c = 0; c < static_cast<unsigned>(CPU_SETSIZE); ++c)
      if (CPU_ISSET(c, &set)) allowed.push_back(static_cast<int>(c));
  }
  return {{"hostname", host},
          {"kernel", std::string(u.sysname) + " " + u.release + " " + u.version},
          {"cores", std::thread::hardware_concurrency()},
          {"cpus_allowed", allowed},
          {"sysctls", sysctls()}};
}

nlohmann::json collect_host_via(const Launcher& launcher, const std::string& probe) {
  nlohmann::json out;
  if (launcher.local()) {
    out = collect_host();
  } else {
    try {
      out = nlohmann::json::parse(run_capture(launcher.wrap({probe, "probe", "--sysctls"}), 30'000)).at("host");
    } catch (const std::exception& e) {
      out = {{"error", std::string(probe) + " probe --sysctls: " + e.what()}};
    }
  }
  out["launcher"] = launcher.describe();
  return out;
}

std::vector<int> cpus_allowed(const nlohmann::json& host) {
  if (!host.is_object() || !host.contains("cpus_allowed")) return {};
  try {
    return host.at("cpus_allowed").get<std::vector<int>>();
  } catch (const nlohmann::json::exception&) {
    return {};
  }
}

nlohmann::json collect_env(const std::vector<int>& server_cpus, const std::vector<int>& client_cpus) {
  utsname u{};
  ::uname(&u);
  std::string cpu_model;
  {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("model name")) {
        cpu_model = line.substr(line.find(':') + 2);
        break;
      }
    }
  }
  std::vector<int> overlap;
  for (int s : server_cpus)
    for (int c : client_cpus)
      if (s == c) overlap.push_back(s);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return {{"kernel", std::string(u.sysname) + " " + u.release + " " + u.version},
          {"machine", u.machine},
          {"hostname", host},
          {"cpu_model", cpu_model},
          {"cores", std::thread::hardware_concurrency()},
          {"governor", first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")},
          {"sysctls", sysctls()},
          {"open_files_limit", ::sysconf(_SC_OPEN_MAX)},
          {"compiler", std::string("g++ ") + __VERSION__},
          {"cxx_flags", ACCEPTBENCH_CXX_FLAGS},
          {"build_type", ACCEPTBENCH_BUILD_TYPE},
          {"git_revision", ACCEPTBENCH_GIT_REVISION},
          {"placement",
           {{"server_cpus", server_cpus},
            {"client_cpus", client_cpus},
            {"disjoint", overlap.empty()},
            {"how", "server: sched_setaffinity before exec; client: pthread_setaffinity_np per loadgen thread"}}}};
}

}  // namespace acceptbench
