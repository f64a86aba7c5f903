// Behaviour of the models beyond the required five.
#include <pthread.h>
#include <sched.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "model_fixture.hpp"
#include "test_client.hpp"

namespace acceptbench::testing {
namespace {

using namespace std::chrono_literals;

// One connection at a time, with pauses: every worker is idle in its wait when it arrives.
void slow_arrivals(std::uint16_t port, int n) {
  for (int i = 0; i < n; ++i) {
    UniqueFd fd = connect_loopback(port);
    ASSERT_TRUE(roundtrip(fd.get(), kGetClose));
    std::this_thread::sleep_for(5ms);
  }
}

struct Wakeups {
  double listen_per_accept = 0;  // listen-fd events epoll_wait reported, per accepted connection
  double ctxt_per_accept = 0;    // voluntary context switches of all server threads, per connection
};

// The herd mostly hides inside the kernel: every epoll set holding the fd gets the event and
// its thread is woken, but epoll_wait re-polls a level-triggered fd before reporting it, so a
// thread that lost the race goes back to sleep without returning. Only the context switches
// show it; the reported-but-empty wakeups (wasted_wakeups) are the part that escapes.
Wakeups wakeups(const std::string& model) {
  ServerProcess server = start_model(model, 4);
  const auto before = sample_proc(server.pid());
  slow_arrivals(server.port(), 60);
  const auto after = sample_proc(server.pid());
  const StopResult stop = server.stop(5s);
  EXPECT_TRUE(stop.stats) << model;
  if (!stop.stats) return {};
  EXPECT_EQ(total(*stop.stats, "accepted"), 60u) << model;
  return {static_cast<double>(total(*stop.stats, "listen_wakeups")) / 60.0,
          static_cast<double>(after.voluntary_ctxt - before.voluntary_ctxt) / 60.0};
}

TEST(HerdTest, EpollSharedWakesManyWorkersExclusiveAndMutexFarFewer) {
  const Wakeups shared = wakeups("epoll-shared");
  const Wakeups exclusive = wakeups("epoll-exclusive");
  const Wakeups mutex = wakeups("epoll-mutex");
  RecordProperty("ctxt_per_accept", fmt::format("epoll-shared {:.2f}, epoll-exclusive {:.2f}, epoll-mutex {:.2f}",
                                                shared.ctxt_per_accept, exclusive.ctxt_per_accept, mutex.ctxt_per_accept));
  // Each connection costs a worker about two wakeups (accept, then the request and the
  // close); with 4 workers sharing the fd, the 3 that lose the race add one each.
  EXPECT_GT(shared.ctxt_per_accept, exclusive.ctxt_per_accept + 1.5);
  EXPECT_GT(shared.ctxt_per_accept, mutex.ctxt_per_accept + 1.5);
  EXPECT_GT(shared.ctxt_per_accept, 1.8 * exclusive.ctxt_per_accept);
  // The listen fd is reported to at least one worker per connection everywhere.
  EXPECT_GE(shared.listen_per_accept, 1.0);
  EXPECT_GE(exclusive.listen_per_accept, 1.0);
  EXPECT_LE(mutex.listen_per_accept, 1.1);
}

TEST(AcceptorDispatchTest, SpreadsConnectionsRoundRobin) {
  ServerProcess server = start_model("acceptor-dispatch", 4);
  const LoadResult load = drive(server.port(), 1, 100, 1);
  EXPECT_EQ(load.failures, 0);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  const auto& acceptors = (*stop.stats)["acceptors"];
  ASSERT_EQ(acceptors.size(), 4u);
  for (const auto& a : acceptors) EXPECT_EQ(a["accepted"], 25) << acceptors.dump();
  EXPECT_EQ(total(*stop.stats, "requests"), 200u);
}

TEST(PreforkTest, EveryProcessAccepts) {
  ServerProcess server = start_model("prefork", 4);
  EXPECT_EQ(count_children(server.pid()), 4);
  slow_arrivals(server.port(), 80);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_EQ(stop.exit_code, 0);
  for (const auto& a : (*stop.stats)["acceptors"]) EXPECT_GT(a["accepted"].get<int>(), 0) << (*stop.stats)["acceptors"].dump();
  EXPECT_EQ(total(*stop.stats, "accepted"), 80u);
}

TEST(SharedAcceptTest, ServesAsManyConnectionsAtOnceAsThreads) {
  ServerProcess server = start_model("shared-accept", 3);
  std::vector<UniqueFd> open;
  for (int i = 0; i < 3; ++i) {  // each held open by one thread, all answered concurrently
    open.push_back(connect_loopback(server.port()));
    ASSERT_TRUE(roundtrip(open.back().get(), kGet)) << "connection " << i;
  }
  UniqueFd fourth = connect_loopback(server.port());
  ASSERT_EQ(write_all(fourth.get(), kGet), 0);
  EXPECT_FALSE(peer_closed(fourth.get(), 300));  // no fourth thread: it waits
  open.front().reset();
  EXPECT_TRUE(read_response(fourth.get()));
  server.stop(5s);
}

TEST(IoUringTest, ServesKeepAliveAndCloseWorkloads) {
  ServerProcess server = start_model("io-uring", 2);
  const LoadResult keep = drive(server.port(), 4, 10, 20);  // 20 keep-alive requests, then close
  EXPECT_EQ(keep.failures, 0);
  EXPECT_EQ(keep.ok_responses, 4 * 10 * 21);
  const LoadResult close = drive(server.port(), 4, 50, 0);  // one request per connection
  EXPECT_EQ(close.failures, 0);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_EQ(total(*stop.stats, "accepted"), 240u);
  EXPECT_EQ(total(*stop.stats, "requests"), 4u * 10 * 21 + 200);
}

// cBPF steering: on loopback the SYN is processed on the connecting thread's CPU, so a
// client pinned to CPU c lands every connection on listener c % N.
TEST(ReuseportCbpfTest, SteersByTheCpuThatTookTheSyn) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs two CPUs";
  ServerProcess server = start_model("reuseport-cbpf", 2);
  for (int cpu : {0, 1}) {
    std::jthread client([&] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(static_cast<unsigned>(cpu), &set);
      ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
      for (int i = 0; i < 20; ++i) {
        UniqueFd fd = connect_loopback(server.port());
        roundtrip(fd.get(), kGetClose);
      }
    });
  }
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_EQ((*stop.stats)["acceptors"][0]["accepted"], 20) << (*stop.stats)["acceptors"].dump();
  EXPECT_EQ((*stop.stats)["acceptors"][1]["accepted"], 20) << (*stop.stats)["acceptors"].dump();
}

TEST(AsioReuseportTest, HasOneListenerPerThreadAndServes) {
  ServerProcess server = start_model("asio-reuseport", 3);
  std::ifstream in("/proc/net/tcp");
  int listening = 0;
  const std::string local = fmt::format(":{:04X} ", server.port());
  for (std::string line; std::getline(in, line);)
    if (line.find(local) != std::string::npos && line.find(" 0A ") != std::string::npos) ++listening;
  EXPECT_EQ(listening, 3);
  EXPECT_EQ(drive(server.port(), 3, 20, 2).failures, 0);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_EQ(total(*stop.stats, "accepted"), 60u);
}

}  // namespace
}  // namespace acceptbench::testing
