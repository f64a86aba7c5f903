// thread-per-conn: one acceptor thread blocks in accept(); each connection gets a new
// thread that serves it and exits. Differs from iterative only in that hand-off.
// Expect: thread create + exit per connection (see the cost model), memory and scheduler
// load growing with concurrent connections; no head-of-line blocking.
// Blocking sockets cost two setsockopt() per connection (serve_blocking: a 100 ms read tick to
// see the stop and the deadline, and a send timeout): the one extra the other models lack.
#include <thread>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "thread-per-conn",
                       .accept_semantics = "one thread: blocking accept(), a new detached thread per connection"};

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/false);
  AcceptorStats& stats = server.acceptor(0);
  Acceptor acceptor(listener.get(), stats, /*nonblocking_connections=*/false);
  server.announce_ready(local_port(listener.get()));

  auto& live = server.shared().live_workers;
  while (!server.stopping()) {
    int err = 0;
    UniqueFd conn = acceptor.accept_one(&err);
    if (!conn) continue;
    live.fetch_add(1);
    try {
      std::thread([&server, &stats, &live, c = std::move(conn)]() mutable {
        serve_blocking(server, stats, std::move(c));
        live.fetch_sub(1);
      }).detach();
    } catch (const std::system_error& e) {  // EAGAIN: no more threads; the connection closes
      live.fetch_sub(1);
      stats.count_error(e.code().value());
    }
  }
  wait_for_workers(server, /*slack_ms=*/500);
}

}  // namespace acceptbench
