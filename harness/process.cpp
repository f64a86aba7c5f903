#include "process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "clock.hpp"
#include "sys.hpp"

namespace acceptbench {

std::string StopResult::describe() const {
  if (!exited) return "not reaped";
  std::string s = term_signal ? fmt::format("killed by SIG{}", sigabbrev_np(term_signal) ? sigabbrev_np(term_signal) : std::to_string(term_signal).c_str())
                              : fmt::format("exit {}", exit_code);
  if (killed) s += " (SIGKILL after the grace period)";
  return s;
}

namespace {
// execvp's argument vector, pointing into `args` (which must outlive it).
std::vector<char*> exec_argv(std::vector<std::string>& args) {
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  return cargs;
}
}  // namespace

ServerProcess ServerProcess::start(const SpawnOptions& options) {
  if (options.argv.empty()) throw std::invalid_argument("ServerProcess: empty argv");
  // Owned from the start, so that a failed pipe2() or fork() closes what was opened.
  const auto make_pipe = [] {
    int fds[2];
    check(::pipe2(fds, O_CLOEXEC), "pipe2");
    return std::pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
  };
  auto [in_read, in_write] = make_pipe();
  auto [out_read, out_write] = make_pipe();
  auto [err_read, err_write] = make_pipe();
  std::vector<std::string> command = options.argv;
  // Remote: the supervisor there makes the cgroup, pins the server and leaves nothing behind.
  const bool remote = options.launcher.remote();
  if (remote) {
    if (options.supervisor.empty()) throw std::invalid_argument("ServerProcess: a server behind ssh needs the supervisor's path");
    std::vector<std::string> supervise = {options.supervisor, "supervise", "--exit-on-stdin-eof"};
    if (!options.cgroup) supervise.emplace_back("--no-cgroup");
    if (!options.cpus.empty()) supervise.insert(supervise.end(), {"--cpus", fmt::format("{}", fmt::join(options.cpus, ","))});
    supervise.emplace_back("--");
    command.insert(command.begin(), supervise.begin(), supervise.end());
  }
  std::vector<std::string> args = options.launcher.wrap(command, /*keep_stdin=*/true, /*master=*/true);
  std::vector<char*> cargs = exec_argv(args);
  auto cgroup = std::make_unique<ServerCgroup>();
  if (options.cgroup && !options.launcher.remote()) *cgroup = ServerCgroup::create();

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    if (cgroup->cpu_available() && !cgroup->join_in_child()) {
      const char msg[] = "acceptbench: could not join the server's cgroup\n";
      (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    }
    // A server must not outlive a harness that was killed: SIGTERM it when we die (behind
    // ssh this reaches only ssh; there the server's stdin reaching EOF ends it). If we died
    // before the prctl, no signal will come: the child sees a new parent and gives up.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in_read.get(), STDIN_FILENO);
    ::dup2(out_write.get(), STDOUT_FILENO);
    ::dup2(err_write.get(), STDERR_FILENO);
    ::close_range(3, ~0U, 0);  // nothing of ours (or our parent's) leaks into the server
    ::signal(SIGPIPE, SIG_DFL);
    if (options.rlimit_nofile > 0) {
      const rlimit lim{static_cast<rlim_t>(options.rlimit_nofile), static_cast<rlim_t>(options.rlimit_nofile)};
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!options.cpus.empty() && !remote) {  // remote: the server there, not our ssh
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int c : options.cpus) CPU_SET(static_cast<unsigned>(c), &set);
      if (::sched_setaffinity(0, sizeof set, &set) < 0) {
        const char msg[] = "sched_setaffinity failed\n";
        (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
        ::_exit(127);
      }
    }
    ::execvp(cargs[0], cargs.data());
    const std::string msg = fmt::format("exec {}: {}\n", cargs[0], ::strerror(errno));
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here, so that the group exists before we signal it
  in_read.reset();
  out_write.reset();
  err_write.reset();
  ServerProcess p;
  p.pid_ = pid;
  p.launcher_ = options.launcher;
  p.in_ = std::move(in_write);
  p.out_ = std::move(out_read);
  p.err_ = std::move(err_read);
  p.cgroup_ = std::move(cgroup);

  const std::int64_t deadline = now_ns() + options.ready_timeout.count() * 1'000'000;
  for (;;) {
    const std::size_t eol = p.out_buf_.find('\n');
    if (eol != std::string::npos) {
      p.ready_line_ = p.out_buf_.substr(0, eol);
      p.out_buf_.erase(0, eol + 1);
      if (!p.supervisor_) {  // a supervisor (behind ssh, or given in argv) speaks first
        if (auto info = SupervisorInfo::parse(p.ready_line_)) {
          p.supervisor_ = std::move(*info);
          continue;
        }
      }
      unsigned port = 0;
      int server_pid = 0, threads = 0;
      char model[64] = {};
      if (std::sscanf(p.ready_line_.c_str(), "READY port=%u pid=%d model=%63s threads=%d", &port, &server_pid, model,
                      &threads) != 4 ||
          port == 0 || port > 65535) {
        throw std::runtime_error("server printed '" + p.ready_line_ + "' instead of a READY line");
      }
      p.port_ = static_cast<std::uint16_t>(port);
      if (server_pid <= 1) throw std::runtime_error("server printed '" + p.ready_line_ + "': a pid <= 1");
      p.server_pid_ = server_pid;
      p.threads_ = threads;
      p.cgroup_->confirm(pid);  // the child joined before exec, long before READY
      return p;
    }
    if (!p.alive()) {
      p.pump(50);
      const StopResult r = p.finish(false);
      throw std::runtime_error(fmt::format("server exited before READY ({}): {}", r.describe(), r.stderr_text));
    }
    const std::int64_t left_ms = (deadline - now_ns()) / 1'000'000;
    if (left_ms <= 0) {
      const StopResult r = p.kill_now();
      throw std::runtime_error(fmt::format("no READY line within {} ms (server {}): {}", options.ready_timeout.count(),
                                           r.describe(), r.stderr_text));
    }
    p.pump(static_cast<int>(std::min<std::int64_t>(left_ms, 50)));
  }
}

ServerProcess::ServerProcess(ServerProcess&& o) noexcept { *this = std::move(o); }

ServerProcess& ServerProcess::operator=(ServerProcess&& o) noexcept {
  if (this != &o) {
    pid_ = std::exchange(o.pid_, -1);
    server_pid_ = o.server_pid_;
    reaped_ = o.reaped_;
    wait_status_ = o.wait_status_;
    out_ = std::move(o.out_);
    err_ = std::move(o.err_);
    out_buf_ = std::move(o.out_buf_);
    err_buf_ = std::move(o.err_buf_);
    ready_line_ = std::move(o.ready_line_);
    port_ = o.port_;
    threads_ = o.threads_;
    in_ = std::move(o.in_);
    launcher_ = std::move(o.launcher_);
    cgroup_ = std::move(o.cgroup_);
    supervisor_ = std::move(o.supervisor_);
    snapshots_requested_ = o.snapshots_requested_;
  }
  return *this;
}

namespace {
// kill(2) that never reaches every process (-1), the caller's group (0) or init (1).
void kill_one(pid_t pid, int sig) {
  if (pid > 1) ::kill(pid, sig);
}
void kill_group(pid_t pgid, int sig) {
  if (pgid > 1) ::kill(-pgid, sig);
}
}  // namespace

ServerProcess::~ServerProcess() {
  if (pid_ > 1 && !reaped_) {
    if (launcher_.remote()) kill_remote_group();
    kill_group(pid_, SIGKILL);
    ::waitpid(pid_, &wait_status_, 0);
  }
  if (cgroup_) cgroup_->remove();
}

std::string ServerProcess::cgroup_why() const {
  if (launcher_.remote()) {
    if (!supervisor_) return "the server's host said nothing of a cgroup";
    return supervisor_->cgroup.empty() ? "on the server's host: " + supervisor_->why : std::string();
  }
  if (!cgroup_) return "no cgroup";
  return cgroup_->cpu_available() ? std::string() : cgroup_->why().empty() ? "cgroups disabled" : cgroup_->why();
}

std::optional<nlohmann::json> ServerProcess::snapshot(std::chrono::milliseconds timeout) {
  if (!alive()) return std::nullopt;
  // The server numbers its snapshots 1, 2, ...: a late reply to an earlier request that
  // timed out is told apart by its number and dropped.
  const std::uint64_t wanted = ++snapshots_requested_;
  signal_server(SIGUSR1);
  const std::int64_t deadline = now_ns() + timeout.count() * 1'000'000;
  for (;;) {
    for (std::size_t at = out_buf_.find("SNAPSHOT "); at != std::string::npos; at = out_buf_.find("SNAPSHOT ", at)) {
      const std::size_t eol = out_buf_.find('\n', at);
      if (eol == std::string::npos) break;  // not whole yet
      if (at != 0 && out_buf_[at - 1] != '\n') {
        at = eol;
        continue;
      }
      const std::string line = out_buf_.substr(at + 9, eol - at - 9);
      out_buf_.erase(at, eol + 1 - at);
      try {
        nlohmann::json j = nlohmann::json::parse(line);
        if (j.value("seq", std::uint64_t{0}) >= wanted) return j;
      } catch (const nlohmann::json::exception&) {
      }
    }
    if (now_ns() >= deadline || !out_) return std::nullopt;
    pump(5);
  }
}

void ServerProcess::pump(int timeout_ms) {
  pollfd fds[2] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}};
  if (::poll(fds, 2, timeout_ms) <= 0) return;
  char buf[65536];
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
    const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
    if (n > 0) (i == 0 ? out_buf_ : err_buf_).append(buf, static_cast<std::size_t>(n));
    if (n == 0) (i == 0 ? out_ : err_).reset();
  }
}

bool ServerProcess::alive() {
  if (reaped_ || pid_ <= 0) return false;
  const pid_t r = ::waitpid(pid_, &wait_status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

StopResult ServerProcess::finish(bool killed) {
  in_.reset();
  // Take whatever is left in the pipes (the writers are gone once the group is dead).
  for (int i = 0; i < 100 && (out_ || err_); ++i) pump(10);
  StopResult r;
  r.exited = reaped_;
  r.killed = killed;
  if (reaped_) {
    if (WIFEXITED(wait_status_)) r.exit_code = WEXITSTATUS(wait_status_);
    if (WIFSIGNALED(wait_status_)) r.term_signal = WTERMSIG(wait_status_);
  }
  r.stdout_text = out_buf_;
  r.stderr_text = err_buf_;
  // The stats are the last line that parses as a JSON object.
  std::istringstream lines(out_buf_);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() != '{') continue;
    try {
      r.stats = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
    }
  }
  return r;
}

bool ServerProcess::signal_server(int sig) {
  if (!launcher_.remote()) {
    kill_one(pid_, sig);  // behind netns too: `ip netns exec` execs the server itself
    return pid_ > 1;
  }
  // Remote: only the PID from READY, and nothing before READY (the caller then ends the
  // local ssh, which closes the server's stdin there).
  if (server_pid_ <= 1) return false;
  const char* name = sigabbrev_np(sig);
  if (!name) return false;
  try {
    run_capture(launcher_.wrap({"kill", "-s", name, std::to_string(server_pid_)}), 10'000);
    return true;
  } catch (const std::exception&) {  // the server may be gone already
    return false;
  }
}

void ServerProcess::kill_remote_group() {
  // setsid made the server the leader of its own group there: its fork-model children die
  // with it. Only while our ssh still runs (the group is the server's), never before READY.
  if (!launcher_.remote() || server_pid_ <= 1 || reaped_) return;
  try {
    run_capture(launcher_.wrap({"kill", "-s", "KILL", "--", fmt::format("-{}", server_pid_)}), 10'000);
  } catch (const std::exception&) {
  }
}

StopResult ServerProcess::stop(std::chrono::milliseconds grace) {
  if (!alive()) return finish(false);
  if (!signal_server(SIGTERM)) in_.reset();  // no PID to signal yet: EOF on its stdin
  const std::int64_t deadline = now_ns() + grace.count() * 1'000'000;
  while (alive() && now_ns() < deadline) pump(10);
  bool killed = false;
  if (alive()) {
    kill_remote_group();
    kill_group(pid_, SIGKILL);
    killed = true;
    ::waitpid(pid_, &wait_status_, 0);
    reaped_ = true;
  } else {
    kill_group(pid_, SIGKILL);  // leftovers of the group (orphaned children), if any
  }
  if (cgroup_) cgroup_->remove();  // and of the cgroup, which also holds setsid()ed ones
  return finish(killed);
}

StopResult ServerProcess::kill_now() {
  if (alive()) {
    kill_remote_group();
    kill_group(pid_, SIGKILL);  // behind ssh: ssh ends, the server's stdin there reaches EOF
    ::waitpid(pid_, &wait_status_, 0);
    reaped_ = true;
    if (cgroup_) cgroup_->remove();
    return finish(true);
  }
  if (cgroup_) cgroup_->remove();
  return finish(false);
}

std::string run_capture(const std::vector<std::string>& argv, int timeout_ms) {
  int out_pipe[2];
  check(::pipe2(out_pipe, O_CLOEXEC), "pipe2");
  UniqueFd out(out_pipe[0]), out_write(out_pipe[1]);  // closed on every path, a failed fork too
  std::vector<std::string> args = argv;
  std::vector<char*> cargs = exec_argv(args);
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);  // never the harness's stdin
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(out_write.get(), STDOUT_FILENO);
    ::execvp(cargs[0], cargs.data());
    ::_exit(127);
  }
  out_write.reset();
  std::string text;
  const std::int64_t deadline = now_ns() + std::int64_t{timeout_ms} * 1'000'000;
  char buf[65536];
  for (;;) {
    pollfd p{out.get(), POLLIN, 0};
    const auto left = static_cast<int>((deadline - now_ns()) / 1'000'000);
    if (left <= 0 || ::poll(&p, 1, left) <= 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw std::runtime_error("timed out: " + argv[0]);
    }
    const ssize_t n = ::read(out.get(), buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(fmt::format("'{}' failed ({})", argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return text;
}

std::vector<std::string> run_capture_all(const std::vector<std::vector<std::string>>& argvs, int timeout_ms) {
  struct Child {
    pid_t pid = -1;
    UniqueFd out, err;
    std::string out_text, err_text;
    int status = 0;
  };
  std::vector<Child> children(argvs.size());
  auto kill_all = [&] {
    for (auto& c : children) {
      if (c.pid > 1) {
        ::kill(-c.pid, SIGKILL);
        ::waitpid(c.pid, &c.status, 0);
        c.pid = -1;
      }
    }
  };
  for (std::size_t i = 0; i < argvs.size(); ++i) {
    int out_pipe[2], err_pipe[2];
    check(::pipe2(out_pipe, O_CLOEXEC), "pipe2");
    check(::pipe2(err_pipe, O_CLOEXEC), "pipe2");
    std::vector<std::string> args = argvs[i];
    std::vector<char*> cargs = exec_argv(args);
    const pid_t pid = ::fork();
    if (pid < 0) {
      kill_all();
      throw_errno("fork");
    }
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      const int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::dup2(err_pipe[1], STDERR_FILENO);
      ::signal(SIGPIPE, SIG_DFL);
      ::execvp(cargs[0], cargs.data());
      const std::string msg = fmt::format("exec {}: {}\n", cargs[0], ::strerror(errno));
      (void)!::write(STDERR_FILENO, msg.data(), msg.size());
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    children[i].pid = pid;
    children[i].out.reset(out_pipe[0]);
    children[i].err.reset(err_pipe[0]);
  }
  const std::int64_t deadline = now_ns() + std::int64_t{timeout_ms} * 1'000'000;
  char buf[65536];
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::pair<std::size_t, bool>> owner;  // child, stdout?
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (children[i].out) fds.push_back({children[i].out.get(), POLLIN, 0}), owner.emplace_back(i, true);
      if (children[i].err) fds.push_back({children[i].err.get(), POLLIN, 0}), owner.emplace_back(i, false);
    }
    if (fds.empty()) break;
    const auto left = static_cast<int>((deadline - now_ns()) / 1'000'000);
    if (left <= 0 || ::poll(fds.data(), fds.size(), left) <= 0) {
      kill_all();
      throw std::runtime_error(fmt::format("timed out after {} ms: {}", timeout_ms, argvs.front().front()));
    }
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Child& c = children[owner[k].first];
      const ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
      if (n > 0) {
        (owner[k].second ? c.out_text : c.err_text).append(buf, static_cast<std::size_t>(n));
      } else {
        (owner[k].second ? c.out : c.err).reset();
      }
    }
  }
  std::vector<std::string> outs;
  std::string failure;
  for (std::size_t i = 0; i < children.size(); ++i) {
    Child& c = children[i];
    ::waitpid(c.pid, &c.status, 0);
    c.pid = -1;
    if ((!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) && failure.empty()) {
      failure = fmt::format("'{}' failed ({}): {}", fmt::join(argvs[i], " "),
                            WIFEXITED(c.status) ? fmt::format("exit {}", WEXITSTATUS(c.status)) : std::string("signal"),
                            c.err_text);
    }
    outs.push_back(std::move(c.out_text));
  }
  if (!failure.empty()) throw std::runtime_error(failure);
  return outs;
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::uint64_t status_field(const std::string& status, const std::string& key) {
  const std::size_t at = status.find("\n" + key + ":");
  if (at == std::string::npos) return 0;
  return std::strtoull(status.c_str() + at + key.size() + 2, nullptr, 10);
}

template <typename F>
void for_each_dir_entry(const std::string& dir, F f) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') f(std::string(e->d_name));
  }
  ::closedir(d);
}

// Fields of /proc/PID/stat after the command name (which may contain spaces).
std::vector<std::string> stat_fields(pid_t pid) {
  const std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> f;
  for (std::string x; rest >> x;) f.push_back(x);
  return f;  // f[0] is field 3 (state)
}

}  // namespace

namespace {

// Adds one process's CPU time (its own and its reaped children's) and context switches.
void add_process(ProcSample& s, pid_t pid, double tick) {
  const auto f = stat_fields(pid);
  if (f.size() < 20) throw std::runtime_error(fmt::format("short /proc/{}/stat", pid));
  s.user_s += std::stod(f[11]) / tick;  // utime (field 14)
  s.system_s += std::stod(f[12]) / tick;
  s.children_user_s += std::stod(f[13]) / tick;
  s.children_system_s += std::stod(f[14]) / tick;
  // Context switches: the process's status counts only its main thread; sum the tasks.
  for_each_dir_entry(fmt::format("/proc/{}/task", pid), [&](const std::string& tid) {
    try {
      const std::string ts = slurp(fmt::format("/proc/{}/task/{}/status", pid, tid));
      s.voluntary_ctxt += status_field(ts, "voluntary_ctxt_switches");
      s.involuntary_ctxt += status_field(ts, "nonvoluntary_ctxt_switches");
    } catch (const std::exception&) {  // the task exited meanwhile
    }
  });
}

}  // namespace

ProcSample sample_proc(pid_t pid) {
  ProcSample s;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  add_process(s, pid, tick);
  // Live child processes (prefork's workers, fork-per-conn's children in flight) count too:
  // their time reaches the parent's "children" fields only once they are reaped, and a
  // child reaped between two samples then shows its whole life in the second, its part
  // so far in the first: the difference is right.
  for_each_dir_entry("/proc", [&](const std::string& name) {
    if (name.find_first_not_of("0123456789") != std::string::npos) return;
    try {
      const auto child = static_cast<pid_t>(std::stoi(name));
      const auto f = stat_fields(child);
      if (f.size() > 1 && std::stoi(f[1]) == pid && f[0] != "Z") {
        ProcSample c;
        add_process(c, child, tick);
        s.children_user_s += c.user_s + c.children_user_s;
        s.children_system_s += c.system_s + c.children_system_s;
        s.voluntary_ctxt += c.voluntary_ctxt;
        s.involuntary_ctxt += c.involuntary_ctxt;
      }
    } catch (const std::exception&) {  // gone meanwhile
    }
  });
  const std::string status = slurp(fmt::format("/proc/{}/status", pid));
  s.peak_rss_kb = status_field(status, "VmHWM");
  s.rss_kb = status_field(status, "VmRSS");
  s.threads = static_cast<int>(status_field(status, "Threads"));
  for_each_dir_entry(fmt::format("/proc/{}/fd", pid), [&](const std::string&) { ++s.open_fds; });
  return s;
}

nlohmann::json to_json(const ProcSample& s) { return json_fields::write(s); }

ProcSample proc_sample_from_json(const nlohmann::json& j) {
  try {
    return json_fields::read<ProcSample>(j, "process sample");
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
}

ProcSample sample_proc_via(const Launcher& launcher, const std::string& probe, pid_t pid) {
  if (launcher.same_pids()) return sample_proc(pid);
  if (pid <= 1) throw std::runtime_error("no server PID to sample");
  const std::string text = run_capture(launcher.wrap({probe, "probe", "--pid", std::to_string(pid)}));
  try {
    return proc_sample_from_json(nlohmann::json::parse(text).at("proc"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{} probe through {}: {}", probe, launcher.describe(), e.what()));
  }
}

CgroupSample sample_cgroup(const ServerCgroup& cgroup) { return {cgroup.cpu_ns(), cgroup.memory_bytes()}; }

nlohmann::json to_json(const CgroupSample& s) {
  auto or_null = [](const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"cpu_ns", or_null(s.cpu_ns)}, {"memory_bytes", or_null(s.memory_bytes)}};
}

CgroupSample cgroup_sample_from_json(const nlohmann::json& j) {
  try {
    CgroupSample s;
    if (!j.at("cpu_ns").is_null()) s.cpu_ns = j.at("cpu_ns").get<std::int64_t>();
    if (!j.at("memory_bytes").is_null()) s.memory_bytes = j.at("memory_bytes").get<std::int64_t>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("malformed cgroup sample: ") + e.what());
  }
}

CgroupSample sample_cgroup_via(const Launcher& launcher, const std::string& probe, const std::string& name) {
  const std::string text = run_capture(launcher.wrap({probe, "probe", "--cgroup", name}));
  try {
    return cgroup_sample_from_json(nlohmann::json::parse(text).at("cgroup"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{} probe --cgroup through {}: {}", probe, launcher.describe(), e.what()));
  }
}

namespace {
template <typename Pred>
int count_children_if(pid_t parent, Pred pred) {
  int n = 0;
  for_each_dir_entry("/proc", [&](const std::string& name) {
    if (name.find_first_not_of("0123456789") != std::string::npos) return;
    try {
      const auto f = stat_fields(static_cast<pid_t>(std::stoi(name)));
      if (f.size() > 1 && std::stoi(f[1]) == parent && pred(f[0])) ++n;
    } catch (const std::exception&) {
    }
  });
  return n;
}
}  // namespace

int count_zombie_children(pid_t pid) {
  return count_children_if(pid, [](const std::string& state) { return state == "Z"; });
}
int count_children(pid_t pid) {
  return count_children_if(pid, [](const std::string&) { return true; });
}

}  // namespace acceptbench
