// reuseport-cbpf: reuseport with a classic BPF program (SO_ATTACH_REUSEPORT_CBPF) that
// picks the listener by the CPU that processes the SYN: listener = cpu % N. Worker i
// pins itself to CPU i % (allowed CPUs; no pinning if they cannot be read) so that, on a machine where NIC queues are
// spread over CPUs, a connection stays on one core from interrupt to application.
// Differs from reuseport by that choice. Expect on loopback: the SYN is processed on the
// *client's* CPU, so the listener the client's CPU maps to takes everything (shown by
// the fairness figure): CPU steering helps only with multi-queue NICs.
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <vector>

#include <fmt/format.h>

#include "common/model.hpp"
#include "sys.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "reuseport-cbpf",
                       .multi_acceptor = true,
                       .event_loop = true,
                       .accept_semantics = "N epoll workers with SO_REUSEPORT listeners; a cBPF program picks "
                                           "listener = CPU of the SYN % N"};

namespace {

void attach_cpu_steering(int fd, std::uint32_t n) {
  sock_filter code[] = {
      {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_CPU)},  // A = cpu
      {BPF_ALU | BPF_MOD | BPF_K, 0, 0, n},                                                  // A %= n
      {BPF_RET | BPF_A, 0, 0, 0},                                                            // return A
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
  check(::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog), "setsockopt SO_ATTACH_REUSEPORT_CBPF");
}

}  // namespace

void run_model(Server& server) {
  const int n = server.options().threads;
  std::vector<UniqueFd> listeners = server.listen_group(n, /*nonblocking=*/true);
  const std::uint16_t port = local_port(listeners.front().get());
  // The program is shared by the group; the index it returns is the listener's position in
  // the group, which is the order of listen().
  attach_cpu_steering(listeners.front().get(), static_cast<std::uint32_t>(n));
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<int> cpus;  // empty: the allowed CPUs are unknown, the workers are not pinned
  if (::sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    for (std::size_t c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &allowed)) cpus.push_back(static_cast<int>(c));
  } else {
    fmt::print(stderr, "reuseport-cbpf: sched_getaffinity: {}; workers not pinned\n", errno_name(errno));
  }
  server.ready_after(n, port);

  run_threads(n, [&](int id) {
    if (!cpus.empty()) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(static_cast<unsigned>(cpus[static_cast<std::size_t>(id) % cpus.size()]), &one);
      ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
    }
    EventLoop loop(server, server.acceptor(id));
    loop.watch_listener(listeners[static_cast<std::size_t>(id)].get());
    server.worker_ready();
    loop.run();
  });
}

}  // namespace acceptbench
