// Each model's own behaviour, verified from outside (/proc) where possible, not assumed.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "model_fixture.hpp"
#include "test_client.hpp"

namespace acceptbench::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Inodes of the listening TCP sockets on `port`, from /proc/net/tcp.
std::vector<std::string> listening_inodes(std::uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::string> inodes;
  const std::string local = fmt::format(":{:04X}", port);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local_addr, remote, state, queues, timer, retr, uid, timeout, inode;
    f >> sl >> local_addr >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
    if (state == "0A" && local_addr.ends_with(local)) inodes.push_back(inode);
  }
  return inodes;
}

int wait_until(std::chrono::milliseconds limit, const std::function<int()>& value, int want) {
  int v = value();
  for (auto t = 0ms; v != want && t < limit; t += 20ms) {
    std::this_thread::sleep_for(20ms);
    v = value();
  }
  return v;
}

bool wait_all_tasks_stopped(const std::string& pid_dir) {
  for (int attempt = 0; attempt < 20000; ++attempt) {  // up to 2 s on a loaded machine
    bool all = true;
    for (const auto& task : fs::directory_iterator(pid_dir + "/task")) {
      std::ifstream in(task.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const auto close = stat.rfind(')');
      if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'T' && stat[close + 2] != 't') {
        all = false;
      }
    }
    if (all) return true;
    std::this_thread::sleep_for(100us);
  }
  return false;
}

TEST(ReuseportTest, HasOneListenerPerWorkerAndSpreadsAccepts) {
  ServerProcess server = start_model("reuseport", 4);
  EXPECT_EQ(listening_inodes(server.port()).size(), 4u);
  const LoadResult load = drive(server.port(), 4, 50, 0);
  EXPECT_EQ(load.failures, 0);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  int workers_that_accepted = 0;
  for (const auto& a : (*stop.stats)["acceptors"]) workers_that_accepted += a["accepted"].get<int>() > 0;
  EXPECT_GT(workers_that_accepted, 1);
  EXPECT_EQ(total(*stop.stats, "accepted"), 200u);
}

// nginx's scheme, seen in the system calls (strace): one worker always takes the mutex, so
// after its first ADD it never touches the listen fd again (it was ADD + DEL every turn).
TEST(EpollMutexTest, ListenFdIsAddedOnTakingAndRemovedOnlyOnLosing) {
  ServerProcess server = start_model("epoll-mutex", 1);
  const auto inodes = listening_inodes(server.port());
  ASSERT_EQ(inodes.size(), 1u);
  std::string listen_fd;
  for (const auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", server.pid()))) {
    std::error_code ec;
    if (fs::read_symlink(e.path(), ec).string() == "socket:[" + inodes[0] + "]") listen_fd = e.path().filename();
  }
  ASSERT_FALSE(listen_fd.empty());
  const std::string trace = fmt::format("/tmp/acceptbench_strace_{}.txt", ::getpid());
  const std::string pid = std::to_string(server.pid());
  std::vector<std::string> args = {"strace", "-f", "-qq", "-e", "trace=epoll_ctl", "-o", trace, "-p", pid};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t tracer = -1;
  if (::posix_spawnp(&tracer, "strace", nullptr, nullptr, argv.data(), environ) != 0) GTEST_SKIP() << "no strace";
  std::this_thread::sleep_for(500ms);  // attached
  const LoadResult load = drive(server.port(), 1, 20, 0);
  std::this_thread::sleep_for(300ms);  // two idle sweeps as well
  ::kill(tracer, SIGINT);
  int status = 0;
  ::waitpid(tracer, &status, 0);
  std::ifstream in(trace);
  int calls = 0, on_listener = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find("epoll_ctl(") == std::string::npos) continue;
    ++calls;
    on_listener += line.find("_ADD, " + listen_fd + ",") != std::string::npos ||
                   line.find("_DEL, " + listen_fd + ",") != std::string::npos;
  }
  std::remove(trace.c_str());
  if (calls == 0) GTEST_SKIP() << "strace saw nothing (ptrace not permitted?)";
  EXPECT_EQ(load.failures, 0);
  EXPECT_EQ(on_listener, 0) << "epoll_ctl on the listen fd although its only worker never lost the mutex";
}

// nginx's scheme: a worker ADDs the listen fd when it takes the mutex while not watching
// it, and DELs it only when a later try fails; so the fd is in the sets of the holder and
// of former holders that have not tried again yet, never in more sets than workers, and in
// some set most of the time.
TEST(EpollMutexTest, ListenFdIsOnlyInTheSetsOfRecentHolders) {
  ServerProcess server = start_model("epoll-mutex", 4, {"--accept-mutex-delay-ms", "1"});
  const auto inodes = listening_inodes(server.port());
  ASSERT_EQ(inodes.size(), 1u);
  const std::string pid_dir = fmt::format("/proc/{}", server.pid());
  std::set<std::string> listen_fds;  // the model's fd and the Server's duplicate (for the stop)
  std::vector<std::string> epoll_fds;
  // READY comes once the listener listens; the workers make their epoll sets just after.
  for (int attempt = 0; attempt < 300 && epoll_fds.size() < 4; ++attempt) {
    if (attempt) std::this_thread::sleep_for(10ms);
    epoll_fds.clear();
    for (const auto& e : fs::directory_iterator(pid_dir + "/fd")) {
      std::error_code ec;
      const std::string target = fs::read_symlink(e.path(), ec).string();
      if (target == "socket:[" + inodes[0] + "]") listen_fds.insert(e.path().filename());
      if (target == "anon_inode:[eventpoll]") epoll_fds.push_back(e.path().filename());
    }
  }
  ASSERT_FALSE(listen_fds.empty());
  ASSERT_EQ(epoll_fds.size(), 4u);

  std::atomic<bool> done{false};
  std::jthread load([&] {
    while (!done) drive(server.port(), 2, 20, 0);
  });
  // Freeze the server (SIGSTOP) for an exact snapshot of every epoll set, many times.
  int max_sets = 0, snapshots_with_one = 0;
  for (int i = 0; i < 200; ++i) {
    ::kill(server.pid(), SIGSTOP);
    // kill() returns before every thread has stopped: wait until all are in state T.
    ASSERT_TRUE(wait_all_tasks_stopped(pid_dir)) << "server did not stop for the snapshot";
    int sets = 0;
    for (const auto& ep : epoll_fds) {
      std::ifstream in(pid_dir + "/fdinfo/" + ep);
      for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string key, fd;
        f >> key >> fd;
        if (key == "tfd:" && listen_fds.count(fd)) ++sets;
      }
    }
    ::kill(server.pid(), SIGCONT);
    max_sets = std::max(max_sets, sets);
    snapshots_with_one += sets == 1;
    std::this_thread::sleep_for(2ms);
  }
  done = true;
  load.join();
  EXPECT_LE(max_sets, 4);
  EXPECT_GT(snapshots_with_one, 0) << "the listen fd was never seen in an epoll set: the check saw nothing";
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_LE((*stop.stats)["listen_in_epoll_sets_max"].get<int>(), 4);
  EXPECT_GE((*stop.stats)["listen_in_epoll_sets_max"].get<int>(), 1);
  EXPECT_GT(total(*stop.stats, "mutex_acquired"), 0u);
}

TEST(ForkPerConnTest, LeavesNoZombieBehind) {
  ServerProcess server = start_model("fork-per-conn");
  const LoadResult load = drive(server.port(), 4, 25, 1);
  EXPECT_EQ(load.failures, 0);
  EXPECT_EQ(wait_until(3s, [&] { return count_children(server.pid()); }, 0), 0);
  EXPECT_EQ(count_zombie_children(server.pid()), 0);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_EQ(total(*stop.stats, "accepted"), 100u);
  EXPECT_EQ(total(*stop.stats, "requests"), 200u);  // counted by the children, in shared memory
}

TEST(ThreadPerConnTest, ReturnsToItsBaselineThreadCount) {
  ServerProcess server = start_model("thread-per-conn");
  const int baseline = sample_proc(server.pid()).threads;
  {
    std::vector<UniqueFd> open;
    for (int i = 0; i < 20; ++i) {
      open.push_back(connect_loopback(server.port()));
      ASSERT_TRUE(roundtrip(open.back().get(), kGet));
    }
    EXPECT_EQ(sample_proc(server.pid()).threads, baseline + 20);
  }
  EXPECT_EQ(wait_until(3s, [&] { return sample_proc(server.pid()).threads; }, baseline), baseline);
  server.stop(5s);
}

TEST(IterativeTest, ServesOneConnectionAtATime) {
  ServerProcess server = start_model("iterative");
  UniqueFd first = connect_loopback(server.port());
  ASSERT_TRUE(roundtrip(first.get(), kGet));
  UniqueFd second = connect_loopback(server.port());
  ASSERT_EQ(write_all(second.get(), kGet), 0);
  // While the first connection stays open, the second is not served...
  EXPECT_FALSE(peer_closed(second.get(), 300));
  char c;
  EXPECT_LT(::recv(second.get(), &c, 1, MSG_DONTWAIT), 0) << "second connection served concurrently";
  // ...and once the first closes, it is.
  first.reset();
  const auto resp = read_response(second.get());
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  server.stop(5s);
}

}  // namespace
}  // namespace acceptbench::testing
