// fork-per-conn: one acceptor process blocks in accept(); each connection is served by a
// fork()ed child that exits when it is done; a reaper thread in the parent waits for the
// children, so none is left a zombie. The process twin of thread-per-conn.
// At most --max-conns (default 1024; 0 = no cap) children live at once: at the cap the
// acceptor waits until the reaper has reaped one before it accepts again, and new
// connections wait in the listen backlog. The stats report the most children live at once.
// Expect: fork + exit + wait per connection (copying page tables): the costliest hand-off.
// Blocking sockets cost two setsockopt() per connection (serve_blocking: a 100 ms read tick to
// see the stop and the deadline, and a send timeout): the one extra the other models lack.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <memory>
#include <semaphore>
#include <thread>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "fork-per-conn",
                       .max_conns = true,
                       .accept_semantics = "one process: blocking accept(), a fork()ed child per connection"};

namespace {

using Slots = std::counting_semaphore<1 << 20>;

// Reaps children until asked to stop and none is left, giving back a slot for each. Sleeps
// briefly only when there is no child at all, so an idle server does not spin.
void reap_children(const std::stop_token& stop, std::atomic<std::int64_t>& live, Slots* slots) {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid > 0) {
      live.fetch_sub(1);
      if (slots) slots->release();
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
  auto& shared = server.shared();
  auto& live = shared.live_workers;
  const int cap = server.options().max_conns;
  const std::unique_ptr<Slots> slots = cap > 0 ? std::make_unique<Slots>(cap) : nullptr;
  std::jthread reaper([&live, s = slots.get()](const std::stop_token& stop) { reap_children(stop, live, s); });
  server.announce_ready(local_port(listener.get()));
  const pid_t server_pid = ::getpid();

  bool have_slot = slots == nullptr;
  while (!server.stopping()) {
    // At the cap, wait for the reaper to free a slot (waking to notice the stop).
    if (!have_slot) {
      have_slot = slots->try_acquire_for(std::chrono::milliseconds(100));
      continue;
    }
    int err = 0;
    UniqueFd conn = acceptor.accept_one(&err);
    if (!conn) continue;
    shared.worker_started();  // before fork(), so the reaper never sees the count go negative
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the server (SIGKILL by a harness)
      if (::getppid() != server_pid) ::_exit(0);  // it died before the prctl: no signal will come
      listener.reset();
      serve_blocking(server, stats, std::move(conn));
      ::_exit(0);
    }
    if (pid < 0) {
      live.fetch_sub(1);
      stats.count_error(errno);
      continue;  // the slot is still ours
    }
    have_slot = slots == nullptr;
  }
  wait_for_workers(server, /*slack_ms=*/500);
  reaper.request_stop();
}

}  // namespace acceptbench
