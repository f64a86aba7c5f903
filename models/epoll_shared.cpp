// epoll-shared: N epoll workers with the same nonblocking listen fd in each of their epoll
// sets and nothing to arbitrate: one connection wakes every idle worker, all but one of
// whom find nothing to accept (the thundering herd). Most of the herd stays inside the
// kernel (epoll_wait re-polls the fd and sleeps again), so it shows as context switches
// per connection; the wakeups that reach user space are counted as wasted_wakeups.
// Differs from epoll-mutex by having no mutex, from epoll-exclusive by lacking EPOLLEXCLUSIVE.
// Expect: wasted wakeups per accept growing with N when connections arrive slowly.
#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "epoll-shared",
                       .multi_acceptor = true,
                       .event_loop = true,
                       .accept_semantics = "N epoll workers, one shared listen fd in every epoll set, no mutex"};

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/true);
  server.ready_after(server.options().threads, local_port(listener.get()));
  run_threads(server.options().threads, [&](int id) {
    EventLoop loop(server, server.acceptor(id));
    loop.watch_listener(listener.get());
    server.worker_ready();
    loop.run();
  });
}

}  // namespace acceptbench
