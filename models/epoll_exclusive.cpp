// epoll-exclusive: epoll-shared with EPOLLEXCLUSIVE (Linux 4.5) on the listen fd: the
// kernel wakes one (or a few) of the waiting epoll sets per event instead of all.
// Differs from epoll-shared by that one flag. Expect: far fewer wasted wakeups than
// epoll-shared, no lock, and a spread that favours recently idle workers.
#include <sys/epoll.h>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "epoll-exclusive",
                       .multi_acceptor = true,
                       .event_loop = true,
                       .accept_semantics = "N epoll workers, one shared listen fd added with EPOLLEXCLUSIVE"};

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/true);
  server.ready_after(server.options().threads, local_port(listener.get()));
  run_threads(server.options().threads, [&](int id) {
    EventLoop loop(server, server.acceptor(id));
    loop.watch_listener(listener.get(), EPOLLEXCLUSIVE);
    server.worker_ready();
    loop.run();
  });
}

}  // namespace acceptbench
