#include "supervise.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "cgroup.hpp"
#include "clock.hpp"
#include "sys.hpp"
#include "unique_fd.hpp"

namespace acceptbench {

namespace {
constexpr std::string_view kPrefix = "SUPERVISOR ";

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the harness is gone: the supervision goes on, the cleanup matters
    done += static_cast<std::size_t>(n);
  }
}
}  // namespace

std::string SupervisorInfo::line() const {
  const nlohmann::json j = {{"pid", pid},
                            {"cgroup", cgroup.empty() ? nlohmann::json(nullptr) : nlohmann::json(cgroup)},
                            {"cpu_source", cpu_source},
                            {"resolution_ns", resolution_ns},
                            {"memory_source", memory_source},
                            {"cgroups", cgroups},
                            {"cpus", cpus},
                            {"why", why}};
  return std::string(kPrefix) + j.dump();
}

std::optional<SupervisorInfo> SupervisorInfo::parse(const std::string& line) {
  if (!line.starts_with(kPrefix)) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(line.substr(kPrefix.size()));
    SupervisorInfo s;
    s.pid = j.at("pid").get<pid_t>();
    if (!j.at("cgroup").is_null()) s.cgroup = j.at("cgroup").get<std::string>();
    s.cpu_source = j.at("cpu_source").get<std::string>();
    s.resolution_ns = j.at("resolution_ns").get<std::int64_t>();
    s.memory_source = j.at("memory_source").get<std::string>();
    s.cgroups = j.at("cgroups").get<std::vector<std::string>>();
    s.cpus = j.at("cpus").get<std::vector<int>>();
    s.why = j.at("why").get<std::string>();
    if (s.pid <= 1) throw std::runtime_error("a pid <= 1");
    if (!s.cgroup.empty() && !ServerCgroup::creator_of(s.cgroup)) throw std::runtime_error("a malformed cgroup name");
    if (!s.cgroup.empty() && s.cpu_source.empty()) throw std::runtime_error("a cgroup without a CPU source");
    return s;
  } catch (const std::exception& e) {  // nlohmann's errors and ours
    throw std::runtime_error(fmt::format("malformed supervisor line '{}': {}", line, e.what()));
  }
}

nlohmann::json SupervisorInfo::describe() const {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  return {{"name", cgroup}, {"cgroups", cgroups}, {"cpu_source", or_null(cpu_source)}, {"memory_source", or_null(memory_source)}};
}

int supervise(const SuperviseOptions& o) {
  if (o.argv.empty()) throw std::invalid_argument("supervise: no server command");
  // The signals that end a supervision arrive through a signalfd, so that the cleanup always
  // runs; a harness gone away must not end us by SIGPIPE before it either.
  sigset_t ends;
  sigemptyset(&ends);
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&ends, sig);
  check(::sigprocmask(SIG_BLOCK, &ends, nullptr), "sigprocmask");
  ::signal(SIGPIPE, SIG_IGN);

  ServerCgroup cgroup = o.cgroup ? ServerCgroup::create() : ServerCgroup();
  // Two handshakes with the child: it says when it has joined the cgroup (so that confirm()
  // sees it there), and waits for the go once the SUPERVISOR line is out (so that the line
  // comes before the server's READY).
  int fds_joined[2], fds_go[2];
  check(::pipe2(fds_joined, O_CLOEXEC), "pipe2");
  UniqueFd joined_read(fds_joined[0]), joined_write(fds_joined[1]);
  check(::pipe2(fds_go, O_CLOEXEC), "pipe2");
  UniqueFd go_read(fds_go[0]), go_write(fds_go[1]);
  std::vector<std::string> args = o.argv;
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);

  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) throw_errno("fork");
  if (child == 0) {
    // The server leads a session and process group of its own: the harness's group kill
    // (kill -- -PID) reaches it and its fork-model children, not this supervisor.
    ::setsid();
    if (cgroup.cpu_available() && !cgroup.join_in_child()) {
      const char msg[] = "acceptbench supervise: could not join the server's cgroup\n";
      (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    joined_read.reset();
    go_write.reset();
    (void)!::write(joined_write.get(), "j", 1);
    char c = 0;
    while (::read(go_read.get(), &c, 1) < 0 && errno == EINTR) {
    }
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!o.cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (const int cpu : o.cpus) CPU_SET(static_cast<unsigned>(cpu), &set);
      if (::sched_setaffinity(0, sizeof set, &set) < 0) {
        const std::string msg = fmt::format("acceptbench supervise: sched_setaffinity: {}\n", ::strerror(errno));
        (void)!::write(STDERR_FILENO, msg.data(), msg.size());
        ::_exit(127);
      }
    }
    ::execvp(cargs[0], cargs.data());
    const std::string msg = fmt::format("exec {}: {}\n", cargs[0], ::strerror(errno));
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  go_read.reset();
  joined_write.reset();
  char c = 0;
  while (::read(joined_read.get(), &c, 1) < 0 && errno == EINTR) {  // 0 bytes: the child died
  }
  cgroup.confirm(child);
  SupervisorInfo info;
  info.pid = ::getpid();
  info.cpus = o.cpus;
  if (cgroup.cpu_available()) {
    info.cgroup = cgroup.name();
    info.cpu_source = cgroup.cpu_source();
    info.resolution_ns = cgroup.cpu_resolution_ns();
    info.memory_source = cgroup.memory_source();
    info.cgroups = cgroup.describe()["cgroups"].get<std::vector<std::string>>();
  } else {
    info.why = o.cgroup ? cgroup.why() : "--no-cgroup";
  }
  write_all(STDOUT_FILENO, info.line() + "\n");
  go_write.reset();

  // On an error from here on (signalfd, poll), nothing of the server's may stay behind.
  struct Guard {
    pid_t child;
    ServerCgroup& cgroup;
    bool armed = true;
    ~Guard() {
      if (!armed) return;
      ::kill(-child, SIGKILL);
      ::kill(child, SIGKILL);
      cgroup.remove();
      ::waitpid(child, nullptr, 0);
    }
  } guard{child, cgroup};
  const UniqueFd signals(check(::signalfd(-1, &ends, SFD_CLOEXEC), "signalfd"));
  // The server's exit, as an event (Linux 5.3); else a short poll.
  const UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  bool watch_stdin = o.exit_on_stdin_eof;
  std::int64_t kill_at = -1;  // when the grace period ends; -1: not ending
  auto begin_end = [&](bool terminate) {
    if (kill_at >= 0) return;
    if (terminate) ::kill(child, SIGTERM);
    kill_at = now_ns() + std::int64_t{o.grace_ms} * 1'000'000;
  };
  int status = 0;
  bool reaped = false;
  for (;;) {
    // Exited but not reaped (WNOWAIT): while the server is a zombie its PID, and so its
    // process group's ID, cannot be reused, so the group kill below cannot reach a stranger.
    siginfo_t exit_info{};
    if (::waitid(P_PID, static_cast<id_t>(child), &exit_info, WEXITED | WNOHANG | WNOWAIT) == 0 && exit_info.si_pid == child) break;
    std::vector<pollfd> fds = {{signals.get(), POLLIN, 0}};
    if (exited) fds.push_back({exited.get(), POLLIN, 0});
    if (watch_stdin) fds.push_back({STDIN_FILENO, POLLIN, 0});
    int timeout = exited ? -1 : 100;
    if (kill_at >= 0) {
      const auto left = static_cast<int>(std::max<std::int64_t>(0, (kill_at - now_ns()) / 1'000'000));
      timeout = timeout < 0 ? left : std::min(timeout, left);
      if (left == 0) {
        ::kill(-child, SIGKILL);
        ::kill(child, SIGKILL);
        cgroup.remove();
        ::waitpid(child, &status, 0);
        reaped = true;
        break;
      }
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) throw_errno("poll");
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == signals.get()) {
        signalfd_siginfo si{};
        (void)!::read(signals.get(), &si, sizeof si);
        begin_end(true);
      } else if (p.fd == STDIN_FILENO) {
        char buf[4096];
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
          // The harness or its session is gone. The server, given --exit-on-stdin-eof too,
          // ends by itself; if it does not within the grace period it is killed.
          watch_stdin = false;
          begin_end(false);
        }
      }
    }
  }
  // Whatever outlived the server: its group (fork-model children), and the cgroup's rest
  // (which also holds any that left the group); then the cgroup goes.
  ::kill(-child, SIGKILL);
  cgroup.remove();
  if (!reaped) ::waitpid(child, &status, 0);
  guard.armed = false;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace acceptbench
