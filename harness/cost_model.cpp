// cost_model: Google Benchmark micro benchmarks of the primitives the accept models pay
// per connection, on loopback. Output with --benchmark_out=FILE --benchmark_out_format=json
// is Google Benchmark's own JSON (Debian's libbenchmark-tools compare.py reads it as is);
// `acceptbench attach-cost-model` folds it into a results file.
//
// Which model pays what (per connection), for the report:
//   every model      connect + accept + close (BM_ConnectAcceptClose, the client's share included)
//   thread-per-conn  + thread create + exit (BM_ThreadCreateJoin)
//   fork-per-conn    + fork + exit + waitpid (BM_ForkExitWait)
//   acceptor-dispatch + a cross-thread hand-off (BM_Handoff*)
//   epoll models     + an epoll wakeup (BM_EpollWakeRoundTrip); epoll-mutex + a trylock/unlock
//                    (BM_MutexUncontended) and two epoll_ctl per turn (BM_EpollCtlAddDel)
//   shared-accept, prefork, iterative: a blocked accept() woken (BM_AcceptWakeRoundTrip)
//   reuseport        the group lookup, 1 vs N listeners (BM_ReuseportConnect/N)
//   io-uring         accept through the ring (BM_IoUringAccept)
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "socket.hpp"
#include "sys.hpp"
#include "unique_fd.hpp"

namespace acceptbench {
namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Connects (blocking); the handshake completes in the kernel, so connect() returns at once.
UniqueFd connect_to(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in a = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) throw_errno("connect");
  return fd;
}

// Closes with an RST (SO_LINGER 0): no TIME_WAIT piles up over millions of iterations.
void close_rst(UniqueFd& fd) {
  const linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

void BM_ConnectAcceptClose(benchmark::State& state) {
  UniqueFd listener = make_listener({});
  const std::uint16_t port = local_port(listener.get());
  for (auto _ : state) {
    UniqueFd client = connect_to(port);
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    close_rst(client);
    conn.reset();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConnectAcceptClose);

void BM_AcceptReadyBacklog(benchmark::State& state) {
  UniqueFd listener = make_listener({});
  const std::uint16_t port = local_port(listener.get());
  constexpr int kBatch = 64;
  std::vector<UniqueFd> clients(kBatch);
  for (auto _ : state) {
    for (auto& c : clients) c = connect_to(port);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kBatch; ++i) UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kBatch);
    for (auto& c : clients) close_rst(c);
  }
}
BENCHMARK(BM_AcceptReadyBacklog)->UseManualTime();

void BM_ForkExitWait(benchmark::State& state) {
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int status;
    ::waitpid(pid, &status, 0);
  }
}
BENCHMARK(BM_ForkExitWait);

void BM_ThreadCreateJoin(benchmark::State& state) {
  for (auto _ : state) std::thread([] {}).join();
}
BENCHMARK(BM_ThreadCreateJoin);

void BM_MutexUncontended(benchmark::State& state) {
  std::mutex m;
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
}
BENCHMARK(BM_MutexUncontended);

std::mutex g_contended;
void BM_MutexContended(benchmark::State& state) {
  for (auto _ : state) {
    g_contended.lock();
    benchmark::DoNotOptimize(&g_contended);
    g_contended.unlock();
  }
}
BENCHMARK(BM_MutexContended)->Threads(2)->UseRealTime();

// Hand-offs between two threads, timed as a round trip (there and back); one hand-off is
// about half of it.
void BM_HandoffMutexCondvar(benchmark::State& state) {
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 0: main's, 1: the peer's
  bool done = false;
  std::thread peer([&] {
    std::unique_lock lock(m);
    for (;;) {
      cv.wait(lock, [&] { return turn == 1 || done; });
      if (done) return;
      turn = 0;
      cv.notify_all();
    }
  });
  for (auto _ : state) {
    std::unique_lock lock(m);
    turn = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return turn == 0; });
  }
  {
    const std::lock_guard lock(m);
    done = true;
  }
  cv.notify_all();
  peer.join();
}
BENCHMARK(BM_HandoffMutexCondvar)->UseRealTime();

template <bool kPipe>
void BM_HandoffFd(benchmark::State& state) {
  int there[2], back[2];
  if (kPipe) {
    check(::pipe2(there, O_CLOEXEC), "pipe2");
    check(::pipe2(back, O_CLOEXEC), "pipe2");
  } else {
    there[0] = there[1] = check(::eventfd(0, EFD_CLOEXEC), "eventfd");
    back[0] = back[1] = check(::eventfd(0, EFD_CLOEXEC), "eventfd");
  }
  std::atomic<bool> done{false};
  std::thread peer([&] {
    std::uint64_t v;
    while (::read(there[0], &v, sizeof v) == sizeof v && !done) {
      v = 1;
      (void)!::write(back[1], &v, sizeof v);
    }
  });
  std::uint64_t v = 1;
  for (auto _ : state) {
    (void)!::write(there[1], &v, sizeof v);
    (void)!::read(back[0], &v, sizeof v);
  }
  done = true;
  v = 1;
  (void)!::write(there[1], &v, sizeof v);
  peer.join();
  for (int fd : {there[0], there[1], back[0], back[1]}) ::close(fd);
}
void BM_HandoffEventfd(benchmark::State& s) { BM_HandoffFd<false>(s); }
void BM_HandoffPipe(benchmark::State& s) { BM_HandoffFd<true>(s); }
BENCHMARK(BM_HandoffEventfd)->UseRealTime();
BENCHMARK(BM_HandoffPipe)->UseRealTime();

// A thread blocked in epoll_wait is woken by an eventfd write and answers on another.
void BM_EpollWakeRoundTrip(benchmark::State& state) {
  UniqueFd ping(check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd"));
  UniqueFd pong(check(::eventfd(0, EFD_CLOEXEC), "eventfd"));
  UniqueFd ep(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  epoll_event ev{};
  ev.events = EPOLLIN;
  check(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ping.get(), &ev), "epoll_ctl");
  std::atomic<bool> done{false};
  std::thread peer([&] {
    epoll_event out;
    std::uint64_t v;
    while (!done) {
      if (::epoll_wait(ep.get(), &out, 1, -1) == 1 && ::read(ping.get(), &v, sizeof v) == sizeof v) {
        v = 1;
        (void)!::write(pong.get(), &v, sizeof v);
      }
    }
  });
  std::uint64_t v = 1;
  for (auto _ : state) {
    (void)!::write(ping.get(), &v, sizeof v);
    (void)!::read(pong.get(), &v, sizeof v);
  }
  done = true;
  v = 1;
  (void)!::write(ping.get(), &v, sizeof v);
  peer.join();
}
BENCHMARK(BM_EpollWakeRoundTrip)->UseRealTime();

void BM_EpollCtlAddDel(benchmark::State& state) {
  UniqueFd listener = make_listener({});
  UniqueFd ep(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  epoll_event ev{};
  ev.events = EPOLLIN;
  for (auto _ : state) {
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, listener.get(), &ev);
    ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, listener.get(), nullptr);
  }
}
BENCHMARK(BM_EpollCtlAddDel);

// A thread blocked in accept() is woken by a connection and answers on an eventfd: the
// wake-up of a blocking acceptor (iterative, shared-accept, prefork), round trip.
void BM_AcceptWakeRoundTrip(benchmark::State& state) {
  UniqueFd listener = make_listener({});
  const std::uint16_t port = local_port(listener.get());
  UniqueFd pong(check(::eventfd(0, EFD_CLOEXEC), "eventfd"));
  std::atomic<bool> done{false};
  std::thread peer([&] {
    while (!done) {
      UniqueFd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      const std::uint64_t v = 1;
      (void)!::write(pong.get(), &v, sizeof v);
    }
  });
  std::uint64_t v;
  for (auto _ : state) {
    UniqueFd c = connect_to(port);
    (void)!::read(pong.get(), &v, sizeof v);
    close_rst(c);
  }
  done = true;
  UniqueFd last = connect_to(port);
  peer.join();
}
BENCHMARK(BM_AcceptWakeRoundTrip)->UseRealTime();

// connect + accept + close with a reuseport group of N listeners: the lookup picks one.
void BM_ReuseportConnect(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  ListenerOptions o;
  o.reuseport = true;
  o.nonblocking = true;
  std::vector<UniqueFd> group;
  group.push_back(make_listener(o));
  o.port = local_port(group.front().get());
  for (int i = 1; i < n; ++i) group.push_back(make_listener(o));
  UniqueFd ep(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  for (auto& l : group) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = l.get();
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, l.get(), &ev);
  }
  for (auto _ : state) {
    UniqueFd client = connect_to(o.port);
    epoll_event ev;
    if (::epoll_wait(ep.get(), &ev, 1, 1000) != 1) {
      state.SkipWithError("no listener became ready");
      break;
    }
    UniqueFd conn(::accept4(ev.data.fd, nullptr, nullptr, SOCK_CLOEXEC));
    close_rst(client);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReuseportConnect)->Arg(1)->Arg(4)->Arg(16)->Arg(64);

void BM_IoUringAccept(benchmark::State& state) {
  io_uring ring;
  if (::io_uring_queue_init(8, &ring, 0) < 0) {
    state.SkipWithError("io_uring is not available here");
    for (auto _ : state) {
    }
    return;
  }
  UniqueFd listener = make_listener({});
  const std::uint16_t port = local_port(listener.get());
  for (auto _ : state) {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
    ::io_uring_prep_accept(sqe, listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    ::io_uring_submit(&ring);
    UniqueFd client = connect_to(port);
    io_uring_cqe* cqe = nullptr;
    ::io_uring_wait_cqe(&ring, &cqe);
    UniqueFd conn(cqe->res);
    ::io_uring_cqe_seen(&ring, cqe);
    close_rst(client);
  }
  ::io_uring_queue_exit(&ring);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IoUringAccept);

}  // namespace
}  // namespace acceptbench

BENCHMARK_MAIN();
