#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include <nlohmann/json_fwd.hpp>

namespace acceptbench {

inline constexpr int kMaxAcceptors = 256;
inline constexpr int kMaxErrno = 134;  // glibc's errno values end at EHWPOISON (133)

// Counters of one acceptor (thread or process). They live in MAP_SHARED memory so that
// forked processes update them too; relaxed atomics, as each slot has one writer except
// fork-per-conn's children, which share slot 0 (an uncontended lock add costs far less
// than the syscalls it sits beside).
struct alignas(64) AcceptorStats {
  using Counter = std::atomic<std::uint64_t>;
  Counter accepted{0};         // connections accept() returned
  Counter accept_calls{0};     // accept() calls, successful or not
  Counter accept_eagain{0};    // accept() found nothing (EAGAIN)
  Counter listen_wakeups{0};   // epoll reported the listen fd readable to this acceptor
  Counter wasted_wakeups{0};   // ... and the first accept() then found nothing: the herd
  Counter epoll_wakeups{0};    // epoll_wait() returns with at least one event
  Counter mutex_acquired{0};   // accept mutex taken (epoll-mutex)
  Counter mutex_contended{0};  // accept mutex try that failed (epoll-mutex)
  Counter requests{0};         // 200 responses handed whole to the kernel (http_core.hpp)
  Counter bad_requests{0};     // 400/413/431 responses handed whole to the kernel
  Counter read_timeouts{0};    // connections closed by the deadline rule of http_core.hpp
  Counter closed{0};           // connections closed by the server, for any reason
  Counter slept{0};            // requests that waited --sleep-us (--sleep-fraction of them)
  Counter stalls{0};           // --stall-ms stalls of the --stall-worker
  std::array<Counter, kMaxErrno> errors{};  // by errno, from accept/read/write

  static void add(Counter& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
  void count_error(int err) {
    if (err > 0 && err < kMaxErrno) add(errors[static_cast<std::size_t>(err)]);
  }
};

// Everything the server's acceptors share. One instance per server, in shared memory.
struct SharedState {
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> stop_deadline_ns{0};  // CLOCK_MONOTONIC, set with `stopping`
  // epoll-mutex's invariant: how many epoll sets hold the listen fd now, and the most seen.
  std::atomic<int> listen_in_sets{0};
  std::atomic<int> listen_in_sets_max{0};
  std::atomic<std::int64_t> live_workers{0};  // threads/children serving connections now
  std::atomic<std::int64_t> live_workers_peak{0};  // the most live_workers ever was
  std::atomic<std::uint64_t> work_seq{0};       // requests that reached simulate_work (--sleep-fraction)
  std::atomic<std::int64_t> next_stall_ns{0};   // --stall-worker's next stall, CLOCK_MONOTONIC
  std::array<AcceptorStats, kMaxAcceptors> acceptors{};

  // A thread or child starts serving a connection (the acceptor's thread only).
  void worker_started() {
    const std::int64_t now = live_workers.fetch_add(1) + 1;
    if (now > live_workers_peak.load(std::memory_order_relaxed)) live_workers_peak.store(now, std::memory_order_relaxed);
  }
};

// Maps a zeroed SharedState into MAP_SHARED anonymous memory (inherited across fork()).
SharedState* map_shared_state();

// The stats object a server prints at exit: per-acceptor counters and their totals.
nlohmann::json stats_json(const SharedState& state, int acceptors);

}  // namespace acceptbench
