// epoll-mutex: N worker threads share one nonblocking listen fd; it is in the epoll set of
// the accept mutex's holder: nginx's accept_mutex. Each loop turn a worker try-locks; if it
// wins while not watching the listener it ADDs the fd, waits, accepts, and unlocks before it
// serves; if it loses while watching, it DELs the fd (nginx's ngx_trylock_accept_mutex), so
// a worker that keeps winning makes no epoll_ctl at all. A loser waits at most
// --accept-mutex-delay-ms (nginx: accept_mutex_delay, 500 ms) before it tries again.
// Differs from epoll-shared by the mutex: no herd, but the holder keeps winning.
// Expect: almost no wasted wakeups, epoll_ctl only when the holder changes, uneven spread.
#include <mutex>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "epoll-mutex",
                       .multi_acceptor = true,
                       .event_loop = true,
                       .accept_mutex = true,
                       .accept_semantics = "N epoll workers, one shared listen fd, nginx-style accept mutex "
                                           "(trylock + delay; fd in the holder's epoll set only)"};

namespace {

// Counts how many epoll sets hold the listen fd, and keeps the most ever seen: the test
// checks it never exceeds 1 (and checks /proc/PID/fdinfo from outside as well).
void note_in_set(SharedState& shared, int delta) {
  const int now = shared.listen_in_sets.fetch_add(delta) + delta;
  int seen = shared.listen_in_sets_max.load();
  while (now > seen && !shared.listen_in_sets_max.compare_exchange_weak(seen, now)) {
  }
}

}  // namespace

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/true);
  std::mutex accept_mutex;
  server.ready_after(server.options().threads, local_port(listener.get()));

  run_threads(server.options().threads, [&](int id) {
    EventLoop loop(server, server.acceptor(id));
    AcceptorStats& stats = loop.stats();
    const int delay_ms = server.options().accept_mutex_delay_ms;
    server.worker_ready();
    bool watching = false;  // the listen fd is in this worker's epoll set
    while (!server.stopping()) {
      // A unique_lock: an exception before the unlock cannot leave the mutex held.
      std::unique_lock lock(accept_mutex, std::try_to_lock);
      const bool holding = lock.owns_lock();
      AcceptorStats::add(holding ? stats.mutex_acquired : stats.mutex_contended);
      if (holding != watching) {
        watching = holding;
        if (holding) loop.watch_listener(listener.get());
        else loop.unwatch_listener(listener.get());
        note_in_set(server.shared(), holding ? +1 : -1);
      }
      loop.poll_once(holding ? -1 : delay_ms, [&] {
        if (lock.owns_lock()) lock.unlock();
      });
    }
    loop.drain();
  });
}

}  // namespace acceptbench
