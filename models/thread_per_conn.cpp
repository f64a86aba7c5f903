// thread-per-conn: one acceptor thread blocks in accept(); each connection gets a new
// thread that serves it and exits. Differs from iterative only in that hand-off.
// At most --max-conns (default 1024; 0 = no cap) connection threads live at once: at the cap
// the acceptor waits for one to finish before it accepts again, and new connections wait in
// the listen backlog. Each thread has a 64 KiB stack (the read buffer is on the heap), not
// the default 8 MiB. The stats report the most threads that were live at once.
// Expect: thread create + exit per connection (see the cost model), memory and scheduler
// load growing with concurrent connections; no head-of-line blocking below the cap.
// Blocking sockets cost two setsockopt() per connection (serve_blocking: a 100 ms read tick to
// see the stop and the deadline, and a send timeout): the one extra the other models lack.
#include <pthread.h>

#include <chrono>
#include <memory>
#include <semaphore>
#include <system_error>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "thread-per-conn",
                       .max_conns = true,
                       .accept_semantics = "one thread: blocking accept(), a new detached thread per connection"};

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t kStackBytes = 1 << 20;  // sanitizers grow frames and need room of their own
#else
constexpr std::size_t kStackBytes = 64 << 10;
#endif

using Slots = std::counting_semaphore<1 << 20>;

struct Job {
  Server* server;
  AcceptorStats* stats;
  std::shared_ptr<Slots> slots;  // null: no cap (shared: a thread may outlive run_model)
  UniqueFd conn;
};

void* serve_job(void* arg) {
  const std::unique_ptr<Job> job(static_cast<Job*>(arg));
  serve_blocking(*job->server, *job->stats, std::move(job->conn));
  job->server->shared().live_workers.fetch_sub(1);
  if (job->slots) job->slots->release();
  return nullptr;
}

// Starts a detached thread with a small stack for `job`; returns the error number or 0.
int start_thread(std::unique_ptr<Job>& job) {
  pthread_attr_t attr;
  if (const int e = ::pthread_attr_init(&attr)) return e;
  ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int e = ::pthread_attr_setstacksize(&attr, kStackBytes);
  pthread_t tid;
  if (e == 0) e = ::pthread_create(&tid, &attr, serve_job, job.get());
  ::pthread_attr_destroy(&attr);
  if (e == 0) (void)job.release();  // the thread owns it now
  return e;
}

}  // namespace

void run_model(Server& server) {
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/false);
  AcceptorStats& stats = server.acceptor(0);
  Acceptor acceptor(listener.get(), stats, /*nonblocking_connections=*/false);
  const int cap = server.options().max_conns;
  const std::shared_ptr<Slots> slots = cap > 0 ? std::make_shared<Slots>(cap) : nullptr;
  server.announce_ready(local_port(listener.get()));

  auto& shared = server.shared();
  bool have_slot = slots == nullptr;
  while (!server.stopping()) {
    // At the cap, wait for a connection thread to finish (waking to notice the stop).
    if (!have_slot) {
      have_slot = slots->try_acquire_for(std::chrono::milliseconds(100));
      continue;
    }
    int err = 0;
    UniqueFd conn = acceptor.accept_one(&err);
    if (!conn) continue;
    shared.worker_started();
    auto job = std::make_unique<Job>(Job{&server, &stats, slots, std::move(conn)});
    if (const int e = start_thread(job)) {  // EAGAIN: no more threads; the connection closes
      shared.live_workers.fetch_sub(1);
      stats.count_error(e);
      continue;  // the slot is still ours
    }
    have_slot = slots == nullptr;
  }
  wait_for_workers(server, /*slack_ms=*/500);
}

}  // namespace acceptbench
