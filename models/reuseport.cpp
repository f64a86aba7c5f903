// reuseport: N worker threads, each with its own SO_REUSEPORT listener on the same port
// and its own epoll loop; the kernel hashes each incoming connection to one listener.
// Differs from epoll-mutex in that nothing is shared: no lock, no herd, no hand-off.
// Expect: the lowest accept overhead and a spread as even as the 4-tuple hash; a busy
// worker's queue is not drained by the others (connections wait behind it).
#include <vector>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "reuseport",
                       .multi_acceptor = true,
                       .event_loop = true,
                       .accept_semantics = "N epoll workers, each with its own SO_REUSEPORT listener"};

void run_model(Server& server) {
  const int n = server.options().threads;
  std::vector<UniqueFd> listeners = server.listen_group(n, /*nonblocking=*/true);
  server.ready_after(n, local_port(listeners.front().get()));

  run_threads(n, [&](int id) {
    EventLoop loop(server, server.acceptor(id));
    loop.watch_listener(listeners[static_cast<std::size_t>(id)].get());
    server.worker_ready();
    loop.run();
  });
}

}  // namespace acceptbench
