#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace acceptbench {

// A cgroup of its own for one server, in every hierarchy that can make one: cgroup v2
// (for cgroup.kill and cpu.stat usage_usec, which exists without the cpu controller),
// v1 cpuacct (cpuacct.usage, ns: the finer source, preferred) and memory (v1
// memory.usage_in_bytes, or v2 memory.current where the memory controller is enabled).
// Each is made as a child of the harness's own cgroup in that hierarchy. The child process
// joins before exec (join_in_child), so every thread and descendant of the server is
// counted, exited and reaped ones included. One thread at a time.
class ServerCgroup {
 public:
  // Makes the cgroups "acceptbench-<harness pid>-<counter>" under `root` (default
  // /sys/fs/cgroup; ACCEPTBENCH_CGROUP_ROOT overrides, for tests). Never throws: when no
  // CPU cgroup can be made, cpu_available() is false and why() says why.
  static ServerCgroup create(const std::string& root = "");
  // The cgroup `name` made by create() in another process that still runs (behind ssh:
  // `acceptbench supervise` on the server's host), found where that process made it (from
  // /proc/<its pid>/cgroup: the PID is in the name) and read by the same code. It is not
  // owned: remove() and the destructor leave it alone. Throws std::runtime_error when it is
  // not there, std::invalid_argument on a name create() does not make.
  static ServerCgroup find(const std::string& name, const std::string& root = "");
  // "acceptbench-<pid>-<n>": the PID of the process that made it; nullopt for anything else.
  static std::optional<pid_t> creator_of(const std::string& name);
  ServerCgroup() = default;
  ServerCgroup(ServerCgroup&&) noexcept;
  ServerCgroup& operator=(ServerCgroup&&) noexcept;
  ServerCgroup(const ServerCgroup&) = delete;
  ServerCgroup& operator=(const ServerCgroup&) = delete;
  ~ServerCgroup();  // remove()

  [[nodiscard]] bool cpu_available() const { return !cpu_file_.empty(); }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& why() const { return why_; }
  // "cgroup-v1-cpuacct" (ns) or "cgroup-v2-cpu.stat" (µs); empty when not available.
  [[nodiscard]] const std::string& cpu_source() const { return cpu_source_; }
  [[nodiscard]] std::int64_t cpu_resolution_ns() const { return cpu_resolution_ns_; }
  [[nodiscard]] const std::string& memory_source() const { return memory_source_; }

  // In the forked child, before exec: joins every cgroup (async-signal-safe: writes "0"
  // to descriptors opened by create()). Returns false if one could not be joined.
  bool join_in_child() const;
  // After the child joined: closes the descriptors and checks that `pid` is listed in
  // the CPU cgroup; if not, the cgroup is dropped (cpu_available() turns false).
  void confirm(pid_t pid);

  // CPU time of everything in the cgroup, ns; nullopt if unreadable.
  [[nodiscard]] std::optional<std::int64_t> cpu_ns() const;
  // Memory charged to the cgroup, bytes; nullopt where no memory cgroup exists.
  [[nodiscard]] std::optional<std::int64_t> memory_bytes() const;

  // SIGKILLs every process left in the cgroups (cgroup.kill on v2; else each listed PID,
  // until none is left, bounded) and removes them. Idempotent; nothing for a found cgroup.
  void remove();
  // Processes still listed (for tests).
  [[nodiscard]] std::vector<pid_t> pids() const;
  [[nodiscard]] nlohmann::json describe() const;  // paths and sources, for the results

 private:
  using DirIn = std::function<std::string(const std::string& mount, const std::string& controller)>;
  void use_hierarchies(const std::string& root, const DirIn& dir_in);

  std::string name_;
  bool owner_ = true;              // made here (create), not found (find)
  std::vector<std::string> dirs_;  // every cgroup made; v2 first when there is one
  std::vector<int> procs_fds_;     // their cgroup.procs, open for writing until confirm()
  std::string v2_dir_;
  std::string cpu_file_, cpu_source_, memory_file_, memory_source_, why_;
  std::int64_t cpu_resolution_ns_ = 0;
};

}  // namespace acceptbench
