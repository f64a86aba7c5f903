#include "event_loop.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

#include "sys.hpp"

namespace acceptbench {

namespace {
// epoll_event.data.u64: the fd in the low half, what it is in the high half.
enum class Kind : std::uint64_t { kConnection = 0, kListener = 1, kStop = 2, kOther = 3 };
std::uint64_t tag(Kind kind, int fd) { return (static_cast<std::uint64_t>(kind) << 32) | static_cast<std::uint32_t>(fd); }
constexpr int kMaxEvents = 256;
constexpr int kSweepMs = 100;
}  // namespace

struct EventLoop::Conn {
  UniqueFd fd;
  http::Exchange x;
  bool want_out = false;  // in the epoll set for EPOLLOUT (the socket was full)
};

EventLoop::EventLoop(Server& server, AcceptorStats& stats)
    : server_(&server),
      stats_(&stats),
      epoll_(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
      events_(kMaxEvents) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag(Kind::kStop, server.stop_event_fd());
  check(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, server.stop_event_fd(), &ev), "epoll_ctl ADD stop eventfd");
  now_ns_ = last_sweep_ns_ = now_ns();
}

EventLoop::~EventLoop() = default;

void EventLoop::watch_listener(int listen_fd, int extra_epoll_flags) {
  const auto index = static_cast<std::size_t>(listen_fd);
  if (acceptors_.size() <= index) acceptors_.resize(index + 1);
  if (!acceptors_[index]) acceptors_[index] = std::make_unique<Acceptor>(listen_fd, *stats_, true);
  epoll_event ev{};
  ev.events = EPOLLIN | static_cast<std::uint32_t>(extra_epoll_flags);
  ev.data.u64 = tag(Kind::kListener, listen_fd);
  check(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_fd, &ev), "epoll_ctl ADD listener");
  watched_.push_back(listen_fd);
}

void EventLoop::unwatch_listener(int listen_fd) {
  check(::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listen_fd, nullptr), "epoll_ctl DEL listener");
  std::erase(watched_, listen_fd);
}

void EventLoop::watch_other(int fd, std::function<void()> on_ready) {
  const auto index = static_cast<std::size_t>(fd);
  if (others_.size() <= index) others_.resize(index + 1);
  others_[index] = std::move(on_ready);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag(Kind::kOther, fd);
  check(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev), "epoll_ctl ADD");
}

void EventLoop::adopt(UniqueFd fd) {
  const int raw = fd.get();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = tag(Kind::kConnection, raw);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev) < 0) {
    stats_->count_error(errno);
    return;
  }
  const auto index = static_cast<std::size_t>(raw);
  if (conns_.size() <= index) conns_.resize(index + 1);
  if (!conns_[index]) conns_[index] = std::make_unique<Conn>();  // then reused by the next on this fd
  Conn& c = *conns_[index];
  c.fd = std::move(fd);
  c.want_out = false;
  c.x.open(server_->responses(), *stats_, server_->options().read_timeout_ms, now_ns_);
  ++live_;
}

void EventLoop::close_conn(int fd, bool timed_out) {
  Conn& c = *conns_[static_cast<std::size_t>(fd)];
  c.fd.reset();  // close() also removes it from the epoll set
  c.x.close(timed_out);
  --live_;
}

void EventLoop::on_listener_ready(int listen_fd) {
  AcceptorStats::add(stats_->listen_wakeups);
  Acceptor& acceptor = *acceptors_[static_cast<std::size_t>(listen_fd)];
  const int batch = server_->options().accept_batch;
  for (int i = 0; batch == 0 || i < batch; ++i) {
    int err = 0;
    UniqueFd fd = acceptor.accept_one(&err);
    if (fd) {
      adopt(std::move(fd));
      continue;
    }
    if (err == EAGAIN && i == 0) AcceptorStats::add(stats_->wasted_wakeups);
    if (err != EINTR && err != ECONNABORTED) break;
  }
}

void EventLoop::watch_output(Conn& c, bool want_out) {
  if (c.want_out == want_out) return;
  c.want_out = want_out;
  epoll_event ev{};
  ev.events = want_out ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP);
  ev.data.u64 = tag(Kind::kConnection, c.fd.get());
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
}

// Does what the HTTP core says until it needs the socket to become ready again. One read()
// per readiness event: level-triggered epoll reports the rest.
void EventLoop::on_connection(int fd, std::uint32_t events) {
  Conn& c = *conns_[static_cast<std::size_t>(fd)];
  if (!c.fd) return;  // closed earlier in this batch of events
  if (c.want_out && (events & (EPOLLERR | EPOLLHUP))) return close_conn(fd, false);
  bool may_read = true;
  for (;;) {
    switch (c.x.next()) {
      case http::Next::kSend: {
        if (c.x.take_work()) {
          server_->simulate_work(*stats_);
          now_ns_ = now_ns();
        }
        const ssize_t n = ::send(fd, c.x.out().data(), c.x.out().size(), MSG_NOSIGNAL);
        if (n >= 0) {
          c.x.sent(static_cast<std::size_t>(n), now_ns_);
          if (!c.x.out().empty()) return watch_output(c, true);  // the socket is full
        } else if (errno == EAGAIN) {
          return watch_output(c, true);
        } else if (errno != EINTR) {
          stats_->count_error(errno);
          return close_conn(fd, false);
        }
        break;
      }
      case http::Next::kShutdown: ::shutdown(fd, SHUT_WR); break;
      case http::Next::kClose: return close_conn(fd, false);
      case http::Next::kRead:
      case http::Next::kLinger: {
        watch_output(c, false);
        if (!may_read) return;
        may_read = false;
        const ssize_t n = ::read(fd, scratch_.data(), scratch_.size());
        if (n >= 0) {
          c.x.received({scratch_.data(), static_cast<std::size_t>(n)}, now_ns_);
        } else if (errno == EAGAIN || errno == EINTR) {
          return;
        } else {
          stats_->count_error(errno);
          return close_conn(fd, false);
        }
        break;
      }
    }
  }
}

void EventLoop::expire(std::int64_t now) {
  for (auto& slot : conns_) {
    if (!slot || !slot->fd) continue;
    if (const auto e = slot->x.expiry(now); e != http::Exchange::Expiry::kNone) {
      close_conn(slot->fd.get(), e == http::Exchange::Expiry::kTimedOut);
    }
  }
}

int EventLoop::poll_once(int timeout_ms, const std::function<void()>& after_accepts) {
  auto& events = events_;
  // Wait up to timeout_ms (none: until an event) for an event; the deadline sweep runs
  // every 100 ms meanwhile without ending the wait, so that the timeout means what it says.
  now_ns_ = now_ns();
  const std::int64_t until = timeout_ms < 0 ? INT64_MAX : now_ns_ + std::int64_t{timeout_ms} * 1'000'000;
  int n = 0;
  for (;;) {
    const std::int64_t next_sweep = last_sweep_ns_ + std::int64_t{kSweepMs} * 1'000'000;
    const std::int64_t wake = std::min(until, next_sweep);
    const std::int64_t wait_ns = std::max<std::int64_t>(wake - now_ns_, 0);
    const int wait_ms = static_cast<int>((wait_ns + 999'999) / 1'000'000);
    n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
    now_ns_ = now_ns();
    if (n != 0 || now_ns_ >= until) break;
    if (now_ns_ >= next_sweep) {
      last_sweep_ns_ = now_ns_;
      expire(now_ns_);
    }
  }
  // Deadlines are judged at the time the kernel was last asked (not after a long
  // simulate_work()), so that a request that arrived meanwhile is read before its
  // connection can be timed out.
  const std::int64_t woke_ns = now_ns_;
  if (n < 0) {
    if (errno != EINTR) stats_->count_error(errno);
    if (after_accepts) after_accepts();
    return 0;
  }
  if (n > 0) AcceptorStats::add(stats_->epoll_wakeups);
  for (int i = 0; i < n; ++i) {
    const auto& ev = events[static_cast<std::size_t>(i)];
    if (static_cast<Kind>(ev.data.u64 >> 32) == Kind::kListener) {
      on_listener_ready(static_cast<int>(ev.data.u64 & 0xffffffffu));
    }
  }
  if (after_accepts) after_accepts();
  for (int i = 0; i < n; ++i) {
    const auto& ev = events[static_cast<std::size_t>(i)];
    const int fd = static_cast<int>(ev.data.u64 & 0xffffffffu);
    switch (static_cast<Kind>(ev.data.u64 >> 32)) {
      case Kind::kConnection: on_connection(fd, ev.events); break;
      case Kind::kOther: others_[static_cast<std::size_t>(fd)](); break;
      case Kind::kListener:
      case Kind::kStop: break;  // the stop is seen through server_->stopping()
    }
  }
  if (woke_ns - last_sweep_ns_ >= std::int64_t{kSweepMs} * 1'000'000) {
    last_sweep_ns_ = woke_ns;
    expire(woke_ns);
  }
  return n;
}

void EventLoop::run() {
  while (!server_->stopping()) poll_once(-1);
  drain();
}

void EventLoop::drain() {
  // The stop eventfd stays readable: out of the set, or every wait would return at once.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, server_->stop_event_fd(), nullptr);
  while (!watched_.empty()) unwatch_listener(watched_.back());
  // Close idle connections now; the rest get until the grace deadline.
  auto close_idle = [this] {
    for (auto& slot : conns_) {
      if (slot && slot->fd && slot->x.idle()) close_conn(slot->fd.get(), false);
    }
  };
  close_idle();
  while (live_ > 0 && !server_->past_grace()) {
    poll_once(10);
    close_idle();
  }
  for (auto& slot : conns_) {
    if (slot && slot->fd) close_conn(slot->fd.get(), false);
  }
}

}  // namespace acceptbench
