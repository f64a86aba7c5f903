#include "connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>

#include <array>
#include <cstring>
#include <memory>

#include "socket.hpp"

namespace acceptbench {

namespace {
constexpr int kTickMs = 100;

}  // namespace

UniqueFd open_spare_descriptor() { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

bool drop_pending_connection(int listen_fd, UniqueFd& spare) {
  if (!spare) {
    spare = open_spare_descriptor();
    return false;
  }
  spare.reset();
  const int dropped = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (dropped >= 0) ::close(dropped);
  spare = open_spare_descriptor();
  return true;
}

Acceptor::Acceptor(int listen_fd, AcceptorStats& stats, bool nonblocking_connections, bool count_accepted)
    : listen_fd_(listen_fd),
      stats_(&stats),
      nonblocking_(nonblocking_connections),
      count_accepted_(count_accepted),
      spare_(open_spare_descriptor()) {}

UniqueFd Acceptor::accept_one(int* err) {
  AcceptorStats::add(stats_->accept_calls);
  const int fd = accept_connection(listen_fd_, nonblocking_);
  if (fd >= 0) {
    if (count_accepted_) AcceptorStats::add(stats_->accepted);
    *err = 0;
    return UniqueFd(fd);
  }
  *err = -fd;
  if (*err == EAGAIN) {
    AcceptorStats::add(stats_->accept_eagain);
    return {};
  }
  if (*err == EINVAL) return {};  // the listener was shut down: the server stops
  stats_->count_error(*err);
  if ((*err == EMFILE || *err == ENFILE) && !drop_pending_connection(listen_fd_, spare_)) {
    // No spare to give back (descriptors are still exhausted): back off instead of spinning.
    const timespec pause{0, 1'000'000};
    ::nanosleep(&pause, nullptr);
  }
  return {};
}

void serve_blocking(Server& server, AcceptorStats& stats, UniqueFd fd) {
  const timeval tick{0, kTickMs * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  const int timeout_ms = server.options().read_timeout_ms;
  const timeval send_timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);

  // The buffer is on the heap: fork-per-conn children and many connection threads would
  // otherwise each touch 20 KiB of stack.
  auto buffer = std::make_unique_for_overwrite<char[]>(http::kReadBufferBytes);
  struct CountClose {
    AcceptorStats& stats;
    ~CountClose() { AcceptorStats::add(stats.closed); }
  } count_close{stats};
  std::size_t len = 0;
  int idle_ms = 0;
  // A request must arrive whole within the timeout of its first byte, so that a client
  // trickling a byte at a time (slowloris) cannot hold the connection forever.
  std::int64_t request_started = 0;
  const std::int64_t timeout_ns = std::int64_t{timeout_ms} * 1'000'000;
  for (;;) {
    // Answer every complete request in the buffer (pipelining).
    for (;;) {
      const http::Request req = http::parse_request({buffer.get(), len});
      if (req.status == http::Parse::kIncomplete) break;
      if (req.status != http::Parse::kComplete) {
        AcceptorStats::add(stats.bad_requests);
        write_all(fd.get(), server.responses().error(req.status));
        return;
      }
      server.simulate_work();
      if (const int err = write_all(fd.get(), server.responses().ok(req.keep_alive))) {
        stats.count_error(err);
        return;
      }
      AcceptorStats::add(stats.requests);
      std::memmove(buffer.get(), buffer.get() + req.length, len - req.length);
      len -= req.length;
      if (!req.keep_alive) {
        return;
      }
    }
    if (server.stopping() && (len == 0 || server.past_grace())) {
      return;  // idle at the stop, or out of grace
    }
    if (len == 0) request_started = 0;
    const ssize_t n = ::read(fd.get(), buffer.get() + len, http::kReadBufferBytes - len);
    if (n > 0) {
      const std::int64_t now = now_ns();
      if (request_started == 0) request_started = now;
      if (now - request_started > timeout_ns) {
        AcceptorStats::add(stats.read_timeouts);
        return;
      }
      len += static_cast<std::size_t>(n);
      idle_ms = 0;
    } else if (n == 0) {
      return;  // the peer closed
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      idle_ms += kTickMs;
      if (idle_ms >= timeout_ms) {
        AcceptorStats::add(stats.read_timeouts);
        return;
      }
    } else if (errno != EINTR) {
      stats.count_error(errno);
      return;
    }
  }
}

}  // namespace acceptbench
