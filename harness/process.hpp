#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgroup.hpp"
#include "json_fields.hpp"
#include "launcher.hpp"
#include "supervise.hpp"
#include "unique_fd.hpp"

namespace acceptbench {

struct SpawnOptions {
  std::vector<std::string> argv;      // argv[0] is the program path
  // Where it runs. Behind ssh, signals go to the PID from READY (never before READY, never
  // a pid <= 1) through the launcher, and the server runs under `SUPERVISOR supervise` there
  // (supervise.hpp: its cgroup on that host, a process group of its own, pinning, nothing
  // left behind).
  Launcher launcher;
  std::string supervisor;             // ssh: the acceptbench binary on the server's host
  std::vector<int> cpus;              // sched_setaffinity before exec (on the server's host); empty: none
  std::chrono::milliseconds ready_timeout{10'000};
  int rlimit_nofile = 0;  // > 0: RLIMIT_NOFILE for the server (a resource-limit test)
  // Put the server in a cgroup of its own (ServerCgroup) before exec: made here (local,
  // netns), or by the supervisor on the server's host (ssh).
  bool cgroup = true;
};

struct StopResult {
  bool exited = false;     // reaped
  int exit_code = -1;      // when it exited normally
  int term_signal = 0;     // when a signal ended it
  bool killed = false;     // we had to SIGKILL it after the grace period
  std::optional<nlohmann::json> stats;  // the JSON line it printed at exit, if valid
  std::string stdout_text;              // what it printed after READY
  std::string stderr_text;
  [[nodiscard]] std::string describe() const;  // "exit 0", "killed by SIGSEGV", ...
};

// A server binary started as a child: its own process group, stdin/stdout/stderr on pipes
// (the write end of stdin stays here, close-on-exec: a server given --exit-on-stdin-eof
// ends when this process dies, however it dies, and behind ssh when the session drops),
// optionally pinned. start() returns once the READY line arrived, or throws
// std::runtime_error with what the server said (stderr) when it exited or timed out first.
// One thread at a time.
class ServerProcess {
 public:
  static ServerProcess start(const SpawnOptions& options);
  ServerProcess(ServerProcess&&) noexcept;
  ServerProcess& operator=(ServerProcess&&) noexcept;
  ~ServerProcess();  // SIGKILLs the group if still running

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] int ready_threads() const { return threads_; }
  [[nodiscard]] const std::string& ready_line() const { return ready_line_; }
  // The PID the server reported (differs from pid() behind a launcher).
  [[nodiscard]] pid_t server_pid() const { return server_pid_; }

  // Still running (not yet reaped)?
  bool alive();
  // SIGTERM, wait up to `grace` for exit; SIGKILL (the whole group) if it is still there.
  StopResult stop(std::chrono::milliseconds grace);
  // SIGKILL the group now (a crash, for tests) and reap.
  StopResult kill_now();

  // Asks the server for a snapshot (SIGUSR1, through the launcher when remote) and waits
  // up to `timeout` for its "SNAPSHOT {json}" line; nullopt if none came.
  std::optional<nlohmann::json> snapshot(std::chrono::milliseconds timeout);
  // The server's cgroup here; nullptr when none could be made, or behind ssh.
  [[nodiscard]] const ServerCgroup* cgroup() const { return cgroup_ && cgroup_->cpu_available() ? cgroup_.get() : nullptr; }
  // Behind ssh: what the supervisor on the server's host said (its cgroup there, if any).
  [[nodiscard]] const SupervisorInfo* supervisor() const { return supervisor_ ? &*supervisor_ : nullptr; }
  // Why there is no cgroup (empty when there is one).
  [[nodiscard]] std::string cgroup_why() const;

 private:
  ServerProcess() = default;
  void pump(int timeout_ms);
  // Sends `sig` to the server (behind ssh: to the PID from READY only); false when there was
  // nobody to signal.
  bool signal_server(int sig);
  void kill_remote_group();  // ssh: SIGKILL the server's process group there
  StopResult finish(bool killed);

  pid_t pid_ = -1;
  pid_t server_pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  UniqueFd out_, err_;
  std::string out_buf_, err_buf_;
  std::string ready_line_;
  std::uint16_t port_ = 0;
  int threads_ = 0;
  UniqueFd in_;  // the server's stdin
  Launcher launcher_;
  std::unique_ptr<ServerCgroup> cgroup_;
  std::optional<SupervisorInfo> supervisor_;
  std::uint64_t snapshots_requested_ = 0;
};

// Runs argv to completion (at most timeout_ms, then SIGKILL) and returns its stdout;
// throws std::runtime_error when it cannot run or exits non-zero.
std::string run_capture(const std::vector<std::string>& argv, int timeout_ms = 10'000);
// Runs several commands at once (each its own process group, stdin /dev/null, all killed
// at the deadline) and returns each one's stdout; throws std::runtime_error naming the
// first that failed, with its stderr.
std::vector<std::string> run_capture_all(const std::vector<std::vector<std::string>>& argvs, int timeout_ms);

// Facts from /proc/PID (Linux).
struct ProcSample {
  double user_s = 0, system_s = 0;                 // this process, all threads
  double children_user_s = 0, children_system_s = 0;  // reaped children (fork-per-conn)
  std::uint64_t voluntary_ctxt = 0, involuntary_ctxt = 0;  // summed over all tasks
  std::uint64_t peak_rss_kb = 0, rss_kb = 0;
  int threads = 0;
  int open_fds = 0;

  // The JSON fields (json_fields.hpp): what `acceptbench probe --pid` prints.
  ACCEPTBENCH_JSON_FIELDS(user_s, system_s, children_user_s, children_system_s, voluntary_ctxt, involuntary_ctxt,
                          peak_rss_kb, rss_kb, threads, open_fds);
  bool operator==(const ProcSample&) const = default;
};
// Reads /proc/PID/stat, status and task/*/status, live children included; throws
// std::runtime_error if gone.
ProcSample sample_proc(pid_t pid);
nlohmann::json to_json(const ProcSample& s);
ProcSample proc_sample_from_json(const nlohmann::json& j);  // throws std::runtime_error
// The same behind `launcher`, by the same code: here (local and netns share the PIDs) it is
// sample_proc; behind ssh it runs `PROBE probe --pid PID` there (PROBE: the acceptbench
// binary on that host), which prints sample_proc's result as JSON.
ProcSample sample_proc_via(const Launcher& launcher, const std::string& probe, pid_t pid);
// A cgroup's CPU time (ns) and memory (bytes) at one moment; nullopt where unreadable.
struct CgroupSample {
  std::optional<std::int64_t> cpu_ns, memory_bytes;
};
CgroupSample sample_cgroup(const ServerCgroup& cgroup);
nlohmann::json to_json(const CgroupSample& s);
CgroupSample cgroup_sample_from_json(const nlohmann::json& j);  // throws std::runtime_error
// The cgroup `name` on the host behind `launcher` (made there by `acceptbench supervise`), read
// by the same code: `PROBE probe --cgroup NAME` runs ServerCgroup::find and sample_cgroup there.
CgroupSample sample_cgroup_via(const Launcher& launcher, const std::string& probe, const std::string& name);

// Children of `pid` that are zombies, and all children.
int count_zombie_children(pid_t pid);
int count_children(pid_t pid);

}  // namespace acceptbench
