// iterative: one thread calls accept() and serves that connection to completion before it
// accepts the next. No concurrency: the baseline every other model is measured against.
// Expect: per-connection cost of accept + serve only, and head-of-line blocking: one slow
// or stalled client (up to --read-timeout-ms) holds up every connection behind it.
// Blocking sockets cost two setsockopt() per connection (serve_blocking: a 100 ms read tick to
// see the stop and the deadline, and a send timeout): the one extra the other models lack.
#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "iterative", .accept_semantics = "one thread: blocking accept(), serve, repeat"};

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/false);
  AcceptorStats& stats = server.acceptor(0);
  Acceptor acceptor(listener.get(), stats, /*nonblocking_connections=*/false);
  server.announce_ready(local_port(listener.get()));

  while (!server.stopping()) {
    int err = 0;
    if (UniqueFd conn = acceptor.accept_one(&err)) serve_blocking(server, stats, std::move(conn));
  }
}

}  // namespace acceptbench
