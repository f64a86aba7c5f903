// fork-per-conn: one acceptor process blocks in accept(); each connection is served by a
// fork()ed child that exits when it is done; a reaper thread in the parent waits for the
// children, so none is left a zombie. The process twin of thread-per-conn.
// Expect: fork + exit + wait per connection (copying page tables): the costliest hand-off.
// Blocking sockets cost two setsockopt() per connection (serve_blocking: a 100 ms read tick to
// see the stop and the deadline, and a send timeout): the one extra the other models lack.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <thread>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "fork-per-conn",
                       .accept_semantics = "one process: blocking accept(), a fork()ed child per connection"};

namespace {

// Reaps children until asked to stop and none is left. Sleeps briefly only when there is
// no child at all, so an idle server does not spin.
void reap_children(const std::stop_token& stop, std::atomic<std::int64_t>& live) {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid > 0) {
      live.fetch_sub(1);
    } else if (errno == ECHILD) {
      if (stop.stop_requested()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/false);
  AcceptorStats& stats = server.acceptor(0);
  Acceptor acceptor(listener.get(), stats, /*nonblocking_connections=*/false);
  auto& live = server.shared().live_workers;
  std::jthread reaper([&live](const std::stop_token& stop) { reap_children(stop, live); });
  server.announce_ready(local_port(listener.get()));

  while (!server.stopping()) {
    int err = 0;
    UniqueFd conn = acceptor.accept_one(&err);
    if (!conn) continue;
    live.fetch_add(1);  // before fork(), so the reaper never sees the count go negative
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the server (SIGKILL by a harness)
      listener.reset();
      serve_blocking(server, stats, std::move(conn));
      ::_exit(0);
    }
    if (pid < 0) {
      live.fetch_sub(1);
      stats.count_error(errno);
    }
  }
  wait_for_workers(server, /*slack_ms=*/500);
  reaper.request_stop();
}

}  // namespace acceptbench
