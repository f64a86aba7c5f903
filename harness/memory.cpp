#include "memory.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace acceptbench {

namespace {

namespace fs = std::filesystem;

// "Name:   123 kB" -> 123; 0 when absent or unreadable (the process went away meanwhile).
std::uint64_t field(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(name) && line.size() > name.size() && line[name.size()] == ':') {
      try {
        return std::stoull(line.substr(name.size() + 1));
      } catch (const std::exception&) {
        return 0;
      }
    }
  }
  return 0;
}

// Adds `pid` and, recursively, the children of each of its threads.
void add_tree(pid_t pid, TreeMemory& m, int depth) {
  const std::string dir = fmt::format("/proc/{}", pid);
  ++m.processes;
  m.pss_kb += field(dir + "/smaps_rollup", "Pss");
  m.rss_kb += field(dir + "/status", "VmRSS");
  m.threads += static_cast<int>(field(dir + "/status", "Threads"));
  if (depth > 8) return;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(dir + "/task", ec)) {
    std::ifstream in(task.path() / "children");
    long child = 0;
    while (in >> child) add_tree(static_cast<pid_t>(child), m, depth + 1);
  }
}

}  // namespace

TreeMemory sample_tree_memory(pid_t pid) {
  if (!fs::exists(fmt::format("/proc/{}", pid))) throw std::runtime_error(fmt::format("process {} is gone", pid));
  TreeMemory m;
  add_tree(pid, m, 0);
  return m;
}

}  // namespace acceptbench
