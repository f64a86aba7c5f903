#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace acceptbench {

// `acceptbench supervise -- SERVER ARGS...`: what the harness runs on the server's host behind
// ssh, so that a remote server is measured like a local one. It makes the server's cgroup
// there with ServerCgroup (the code a local server's cgroup comes from), forks the server into
// it (a session and process group of its own, optionally pinned), and reports the cgroup's name
// on its first line; `acceptbench probe --cgroup NAME` then reads its CPU and memory there by
// the same code. When the server exits, whatever is left in its cgroup and its process group is
// SIGKILLed and the cgroup removed. With --exit-on-stdin-eof it also ends the server (SIGTERM,
// then SIGKILL after the grace period) when its stdin (the ssh session) reaches EOF, and on
// SIGTERM, SIGINT or SIGHUP: a dropped session or a killed harness leaves nothing behind.
struct SuperviseOptions {
  std::vector<std::string> argv;  // the server's command
  bool cgroup = true;             // false: no cgroup (the harness then reads /proc ticks)
  std::vector<int> cpus;          // sched_setaffinity of the server before exec; empty: none
  bool exit_on_stdin_eof = false;
  int grace_ms = 3000;  // after EOF or a signal: how long the server has to exit by itself
};

// The supervisor's first line on stdout, before anything of the server's:
// "SUPERVISOR {json}". The harness reads it before the server's READY line.
struct SupervisorInfo {
  pid_t pid = -1;                    // the supervisor's PID on the server's host
  std::string cgroup;                // the cgroup's name there; empty: none (see why)
  std::string cpu_source, memory_source, why;
  std::int64_t resolution_ns = 0;
  std::vector<std::string> cgroups;  // its folders there
  std::vector<int> cpus;             // the server's pinning, as applied

  [[nodiscard]] std::string line() const;
  // nullopt for a line that is not a SUPERVISOR line; throws std::runtime_error for one that
  // is but does not parse.
  static std::optional<SupervisorInfo> parse(const std::string& line);
  // The cgroup's record, shaped as ServerCgroup::describe().
  [[nodiscard]] nlohmann::json describe() const;
};

// Runs the supervision; returns the server's exit code (128 + the signal that ended it).
// Throws std::system_error when the server cannot be started.
int supervise(const SuperviseOptions& options);

}  // namespace acceptbench
