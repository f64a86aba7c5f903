// shared-accept: N threads all block in accept() on one listen fd and each serves the
// connection it got to completion (the seed's third pattern). The kernel wakes one
// waiter per connection (exclusive wait queue since Linux 2.6), so there is no herd.
// Differs from iterative only in having N of it. Expect: no wasted wakeups, up to N
// connections served at once, a slow client stalls only its own thread.
// Blocking sockets cost two setsockopt() per connection (serve_blocking: a 100 ms read tick to
// see the stop and the deadline, and a send timeout): the one extra the other models lack.
#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "shared-accept",
                       .multi_acceptor = true,
                       .accept_semantics = "N threads blocking in accept() on one listen fd, each serving what it got"};

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/false);
  server.ready_after(server.options().threads, local_port(listener.get()));

  run_threads(server.options().threads, [&](int id) {
    AcceptorStats& stats = server.acceptor(id);
    Acceptor acceptor(listener.get(), stats, /*nonblocking_connections=*/false);
    server.worker_ready();
    while (!server.stopping()) {
      int err = 0;
      if (UniqueFd conn = acceptor.accept_one(&err)) serve_blocking(server, stats, std::move(conn));
    }
  });
}

}  // namespace acceptbench
