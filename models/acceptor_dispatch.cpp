// acceptor-dispatch: one acceptor thread blocks in accept() and hands each connection,
// round-robin, to one of N event-loop threads through a locked queue and an eventfd
// (the muduo / netty / memcached design). Stats: worker i's `accepted` counts the
// connections handed to it; accept calls and errors are counted on worker 0.
// Differs from reuseport by the hand-off: an even spread, one extra wakeup per connection.
// Expect: a cross-thread hand-off (eventfd write + wakeup) per connection, one acceptor's limit.
#include <sys/eventfd.h>

#include <mutex>
#include <vector>

#include "common/model.hpp"
#include "sys.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "acceptor-dispatch",
                       .multi_acceptor = true,
                       .accept_semantics = "one acceptor thread, blocking accept(), round-robin hand-off to N epoll "
                                           "loops (queue + eventfd)"};

namespace {

// Connections waiting for one loop. push: the acceptor thread; drain: the loop's thread.
struct Inbox {
  std::mutex mutex;
  std::vector<UniqueFd> fds;
  UniqueFd wakeup{check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")};

  void push(UniqueFd fd) {
    {
      const std::lock_guard lock(mutex);
      fds.push_back(std::move(fd));
    }
    const std::uint64_t one = 1;
    (void)!::write(wakeup.get(), &one, sizeof one);
  }
  std::vector<UniqueFd> take() {
    std::uint64_t n = 0;
    (void)!::read(wakeup.get(), &n, sizeof n);
    const std::lock_guard lock(mutex);
    return std::exchange(fds, {});
  }
};

}  // namespace

void run_model(Server& server) {
  const int n = server.options().threads;
  UniqueFd listener = server.listen(/*reuseport=*/false, /*nonblocking=*/false);
  std::vector<Inbox> inboxes(static_cast<std::size_t>(n));
  server.ready_after(n + 1, local_port(listener.get()));

  run_threads(n + 1, [&](int id) {
    if (id == n) {  // the acceptor
      Acceptor acceptor(listener.get(), server.acceptor(0), /*nonblocking_connections=*/true, /*count_accepted=*/false);
      server.worker_ready();
      for (std::size_t next = 0; !server.stopping();) {
        int err = 0;
        UniqueFd conn = acceptor.accept_one(&err);
        if (!conn) continue;
        AcceptorStats::add(server.acceptor(static_cast<int>(next)).accepted);
        inboxes[next].push(std::move(conn));
        next = (next + 1) % inboxes.size();
      }
      return;
    }
    EventLoop loop(server, server.acceptor(id));
    Inbox& inbox = inboxes[static_cast<std::size_t>(id)];
    loop.watch_other(inbox.wakeup.get(), [&] {
      for (auto& fd : inbox.take()) loop.adopt(std::move(fd));
    });
    server.worker_ready();
    loop.run();
  });
}

}  // namespace acceptbench
