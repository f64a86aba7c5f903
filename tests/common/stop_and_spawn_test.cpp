// Orderings that only a seam can show (issue 18, item 9). This executable interposes
// shutdown(2) and prctl(2): the server library and the harness library are linked into it
// statically, so their calls bind to the definitions below, which look at the moment of
// the call and then make the real system call.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdarg>
#include <filesystem>
#include <thread>

#include "clock.hpp"
#include "process.hpp"
#include "runner.hpp"
#include "server.hpp"
#include "model_fixture.hpp"

namespace {
// shutdown(): the stop eventfd to look at, and whether it was already readable at a call.
std::atomic<int> g_watch_eventfd{-1};
std::atomic<int> g_shutdowns_after_event{0};
std::atomic<int> g_shutdowns{0};
// prctl(PR_SET_PDEATHSIG): when set, the child kills its parent first and waits until it
// is reparented: the parent died between fork() and prctl().
std::atomic<bool> g_kill_parent_before_pdeathsig{false};
int g_report_pid_fd = -1;
}  // namespace

extern "C" int shutdown(int fd, int how) noexcept {
  const int ev = g_watch_eventfd.load();
  if (ev >= 0) {
    pollfd p{ev, POLLIN, 0};
    g_shutdowns.fetch_add(1);
    if (::poll(&p, 1, 0) == 1) g_shutdowns_after_event.fetch_add(1);
  }
  return static_cast<int>(::syscall(SYS_shutdown, fd, how));
}

extern "C" int prctl(int option, ...) noexcept {
  va_list ap;
  va_start(ap, option);
  const auto a2 = va_arg(ap, unsigned long);
  const auto a3 = va_arg(ap, unsigned long);
  const auto a4 = va_arg(ap, unsigned long);
  const auto a5 = va_arg(ap, unsigned long);
  va_end(ap);
  if (option == PR_SET_PDEATHSIG && g_kill_parent_before_pdeathsig.load()) {
    const pid_t me = ::getpid();
    (void)!::write(g_report_pid_fd, &me, sizeof me);
    const pid_t parent = ::getppid();
    ::kill(parent, SIGKILL);
    while (::getppid() == parent) ::usleep(1000);
  }
  return static_cast<int>(::syscall(SYS_prctl, option, a2, a3, a4, a5));
}

namespace acceptbench {
namespace {

using namespace std::chrono_literals;

const ModelSpec kSpec{.id = "test", .accept_semantics = "test"};

// request_stop() must shut the listeners down before it signals the stop eventfd: a worker
// woken by the eventfd may return and close its listener, and that fd number may be
// reused before a later shutdown() reaches it. (It shuts them down through duplicates of
// its own, which the next test checks.)
TEST(RequestStopTest, ShutsListenersDownBeforeSignallingTheEventfd) {
  Server server(kSpec, ServerOptions{});
  UniqueFd a = server.listen(false, false);
  UniqueFd b = server.listen(false, true);
  g_watch_eventfd = server.stop_event_fd();
  server.request_stop();
  g_watch_eventfd = -1;
  EXPECT_EQ(g_shutdowns.load(), 2);
  EXPECT_EQ(g_shutdowns_after_event.load(), 0) << "the stop eventfd was readable before the listeners were shut down";
  EXPECT_TRUE(server.stopping());
  pollfd p{server.stop_event_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 1);
}

// A model may close its listener as soon as it sees the stop flag; the stop must still shut
// the socket down (through the Server's duplicate) and must not touch whatever reuses the
// number.
TEST(RequestStopTest, ShutsDownThroughItsOwnDuplicateNotAReusedNumber) {
  Server server(kSpec, ServerOptions{});
  UniqueFd listener = server.listen(false, false);
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd other(pair[1]);
  const int number = listener.get();
  listener.reset();  // the model closed it...
  ASSERT_EQ(::dup2(pair[0], number), number);  // ... and the number went to something else
  ::close(pair[0]);
  UniqueFd reused(number);
  server.request_stop();
  // The unrelated socket now holding the number must still work.
  EXPECT_EQ(::send(other.get(), "x", 1, MSG_NOSIGNAL), 1) << "the stop shut down an unrelated descriptor";
  char c = 0;
  EXPECT_EQ(::recv(reused.get(), &c, 1, MSG_DONTWAIT), 1) << "the stop shut down an unrelated descriptor";
}

int open_fd_count() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n - 1;  // the iterator's own descriptor
}

// ServerProcess::start must not leak the first pipe when the second pipe2() fails.
TEST(SpawnTest, NoPipeLeaksWhenTheSecondPipeFails) {
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  const int before = open_fd_count();
  // Find the limit that leaves exactly three free descriptors: one pipe fits, the second
  // does not.
  int limit = 0, free_slots = 0;
  for (int fd = 0; free_slots < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) ++free_slots;
    limit = fd + 1;
  }
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(limit);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  SpawnOptions o;
  o.argv = {"/bin/true"};
  bool threw = false;
  try {
    ServerProcess::start(o);
  } catch (const std::exception&) {
    threw = true;
  }
  ::setrlimit(RLIMIT_NOFILE, &old);
  EXPECT_TRUE(threw) << "start() did not report the failed pipe2";
  EXPECT_EQ(open_fd_count(), before) << "descriptors leaked";
}

// If the harness dies between fork() and the child's prctl(PR_SET_PDEATHSIG), the signal
// never comes: the child must see that its parent changed and exit instead of running on
// as an orphan server.
TEST(SpawnTest, ChildWhoseParentDiedBeforePdeathsigDoesNotRun) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // the orphan comes to us
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {  // plays the harness
    ::close(report[0]);
    g_report_pid_fd = report[1];
    g_kill_parent_before_pdeathsig = true;
    SpawnOptions o;
    o.argv = {"/bin/sleep", "10"};
    o.ready_timeout = 10s;
    try {
      ServerProcess::start(o);
    } catch (...) {
    }
    ::_exit(0);
  }
  ::close(report[1]);
  pid_t child = -1;
  pollfd p{report[0], POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  ASSERT_EQ(::read(report[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(middle, &status, 0), middle);
  // The child is ours now. Give it a second to notice; it must not be running `sleep 10`.
  pid_t reaped = 0;
  for (int i = 0; i < 100 && reaped == 0; ++i) {
    reaped = ::waitpid(child, &status, WNOHANG);
    if (reaped == 0) std::this_thread::sleep_for(10ms);
  }
  if (reaped == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  EXPECT_EQ(reaped, child) << "the orphaned server child ran on";
}

// A server that exits 0 but says clean_shutdown: false did not finish within its grace
// period: the repetition failed. The server here is a real model behind a wrapper that
// rewrites that one field (and passes SIGTERM and the harness's SIGUSR1 snapshot requests on).
TEST(RunnerTest, UncleanShutdownFailsTheRepetition) {
  const std::string wrapper = "/tmp/acceptbench_unclean_" + std::to_string(::getpid()) + ".py";
  {
    FILE* f = std::fopen(wrapper.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f,
                 "#!/usr/bin/python3\n"
                 "import signal, subprocess, sys\n"
                 "p = subprocess.Popen([%s] + sys.argv[1:], stdout=subprocess.PIPE, text=True)\n"
                 "signal.signal(signal.SIGTERM, lambda *a: p.send_signal(signal.SIGTERM))\n"
                 "signal.signal(signal.SIGUSR1, lambda *a: p.send_signal(signal.SIGUSR1))\n"
                 "for line in p.stdout:\n"
                 "    sys.stdout.write(line.replace('\"clean_shutdown\":true', '\"clean_shutdown\":false'))\n"
                 "    sys.stdout.flush()\n"
                 "sys.exit(p.wait())\n",
                 ("'" + testing::bin_dir() + "/reuseport'").c_str());
    std::fclose(f);
    ::chmod(wrapper.c_str(), 0755);
  }
  RunConfig c;
  c.model = "reuseport";
  c.duration_s = 0.3;
  c.warmup_s = 0;
  c.repetitions = 1;
  RunnerOptions o;
  o.server_binary = wrapper;
  o.multi_acceptor = true;
  const nlohmann::json rep = run_repetition(c, o);
  std::remove(wrapper.c_str());
  EXPECT_EQ(rep.value("status", ""), "failed") << "reason: " << rep.value("reason", "");
  EXPECT_NE(rep.value("reason", "").find("clean"), std::string::npos) << rep.value("reason", "");
}

}  // namespace
}  // namespace acceptbench
