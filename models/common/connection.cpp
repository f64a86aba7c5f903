#include "connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>

#include <array>
#include <cstring>
#include <mutex>

#include "socket.hpp"

namespace acceptbench {

namespace {
constexpr int kTickMs = 100;

// The Acceptors' spare descriptor: one per process. Threads share the descriptor table, so
// one free slot is all the cure needs, and one spare per acceptor could fill a small table
// by itself (eight acceptors under a limit of 16 left no slot for any connection).
// Borrowed under the mutex, never held across accept(): an acceptor that finds it
// borrowed opens another if it can (the surplus is closed when both are back).
struct SpareDescriptor {
  std::mutex mutex;
  UniqueFd fd;
};

SpareDescriptor& process_spare() {
  static SpareDescriptor spare;
  return spare;
}

UniqueFd borrow_spare() {
  SpareDescriptor& s = process_spare();
  const std::lock_guard lock(s.mutex);
  return std::move(s.fd);
}

void give_back_spare(UniqueFd fd) {
  if (!fd) return;
  SpareDescriptor& s = process_spare();
  const std::lock_guard lock(s.mutex);
  if (!s.fd) s.fd = std::move(fd);
}

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
      count_accepted_(count_accepted) {
  UniqueFd spare = borrow_spare();
  give_back_spare(spare ? std::move(spare) : open_spare_descriptor());
}

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
  if (*err == EMFILE || *err == ENFILE) return accept_with_spare(err);
  return {};
}

UniqueFd Acceptor::accept_with_spare(int* err) {
  UniqueFd spare = borrow_spare();
  if (!spare) {
    // No spare to give back (descriptors are still exhausted, or another acceptor has it):
    // make one if we can, else back off instead of spinning.
    spare = open_spare_descriptor();
    if (!spare) {
      const timespec pause{0, 1'000'000};
      ::nanosleep(&pause, nullptr);
    }
    give_back_spare(std::move(spare));
    return {};
  }
  // accept() takes its descriptor before it looks for a connection, so EMFILE does not
  // mean one is pending: on a blocking listener this accept waits for the next one, and by
  // then descriptors may have been freed. Only if the table is still full (the spare cannot
  // be reopened) is the connection closed unserved; otherwise it is served.
  spare.reset();
  AcceptorStats::add(stats_->accept_calls);
  const int fd = accept_connection(listen_fd_, nonblocking_);
  spare = open_spare_descriptor();
  const bool room = spare.valid();
  give_back_spare(std::move(spare));
  if (fd < 0) return {};  // EAGAIN (nonblocking: nothing pending) or the stop
  if (room) {
    if (count_accepted_) AcceptorStats::add(stats_->accepted);
    *err = 0;
    return UniqueFd(fd);
  }
  ::close(fd);  // the peer sees a close instead of waiting in the backlog
  give_back_spare(open_spare_descriptor());
  return {};
}

void serve_blocking(Server& server, AcceptorStats& stats, UniqueFd fd) {
  // The blocking way's own cost, two setsockopt() per connection: reads wake every 100 ms to
  // see the stop and the deadline; a send that makes no progress for the timeout fails.
  const timeval tick{0, kTickMs * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  const int timeout_ms = server.options().read_timeout_ms;
  const timeval send_timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);

  // Reused by every connection this thread (or process) serves.
  thread_local http::Exchange x;
  thread_local std::array<char, kReadChunkBytes> buffer;
  x.open(server.responses(), stats, timeout_ms, now_ns());
  for (;;) {
    switch (x.next()) {
      case http::Next::kSend: {
        if (x.take_work()) server.simulate_work(stats);
        const ssize_t n = ::send(fd.get(), x.out().data(), x.out().size(), MSG_NOSIGNAL);
        if (n >= 0) {
          x.sent(static_cast<std::size_t>(n), now_ns());
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return x.close(/*timed_out=*/true);  // SO_SNDTIMEO: no progress for the timeout
        } else if (errno != EINTR) {
          stats.count_error(errno);
          return x.close(false);
        }
        break;
      }
      case http::Next::kShutdown: ::shutdown(fd.get(), SHUT_WR); break;
      case http::Next::kClose: return x.close(false);
      case http::Next::kRead:
      case http::Next::kLinger: {
        if (server.stopping() && (x.idle() || server.past_grace())) return x.close(false);
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        const std::int64_t now = now_ns();
        if (n >= 0) {
          x.received({buffer.data(), static_cast<std::size_t>(n)}, now);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          stats.count_error(errno);
          return x.close(false);
        }
        if (const auto e = x.expiry(now); e != http::Exchange::Expiry::kNone) {
          return x.close(e == http::Exchange::Expiry::kTimedOut);
        }
        break;
      }
    }
  }
}

}  // namespace acceptbench
