// prefork: N processes, forked at start, block in accept() on the listen fd they inherit
// and serve each connection to completion (Apache's prefork MPM). Counters live in shared
// memory, one slot per process. The process twin of shared-accept.
// Expect: like shared-accept, with a process per worker (no shared heap, more memory).
// Blocking sockets cost two setsockopt() per connection (serve_blocking: a 100 ms read tick to
// see the stop and the deadline, and a send timeout): the one extra the other models lack.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <thread>
#include <vector>

#include "common/model.hpp"
#include "sys.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "prefork",
                       .multi_acceptor = true,
                       .accept_semantics = "N pre-forked processes blocking in accept() on one inherited listen fd"};

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/false);
  std::vector<pid_t> children;
  const pid_t server_pid = ::getpid();
  for (int id = 0; id < server.options().threads; ++id) {
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != server_pid) ::_exit(0);  // the server died before the prctl
      AcceptorStats& stats = server.acceptor(id);
      Acceptor acceptor(listener.get(), stats, /*nonblocking_connections=*/false);
      // The parent's stop shuts the shared listen socket down, which wakes accept() here too.
      while (!server.stopping()) {
        int err = 0;
        if (UniqueFd conn = acceptor.accept_one(&err)) serve_blocking(server, stats, std::move(conn));
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  server.announce_ready(local_port(listener.get()));
  // Reap the workers once the stop has made them exit; past the grace period, kill them.
  for (const pid_t pid : children) {
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (server.stopping() && now_ns() > server.shared().stop_deadline_ns.load(std::memory_order_relaxed) + 500'000'000) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace acceptbench
