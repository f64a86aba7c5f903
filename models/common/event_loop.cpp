#include "event_loop.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <algorithm>
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
  std::string in;   // bytes of an incomplete request, kept between reads (usually empty)
  std::string out;  // response bytes the socket did not take yet
  bool close_after_out = false;
  std::int64_t last_active_ns = 0;
  std::int64_t request_started_ns = 0;  // first byte of the incomplete request in `in`
};

EventLoop::EventLoop(Server& server, AcceptorStats& stats)
    : server_(&server),
      stats_(&stats),
      epoll_(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
      scratch_(std::make_unique_for_overwrite<char[]>(http::kReadBufferBytes)),
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
  if (!conns_[index]) conns_[index] = std::make_unique<Conn>();
  Conn& c = *conns_[index];
  c.fd = std::move(fd);
  c.in.clear();
  c.out.clear();
  c.close_after_out = false;
  c.last_active_ns = now_ns_;
  ++live_;
}

void EventLoop::close_conn(int fd) {
  Conn& c = *conns_[static_cast<std::size_t>(fd)];
  c.fd.reset();  // close() also removes it from the epoll set
  AcceptorStats::add(stats_->closed);
  c.in.clear();
  c.out.clear();
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

bool EventLoop::send(Conn& c, std::string_view data) {
  if (c.out.empty()) {
    const ssize_t n = ::send(c.fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      stats_->count_error(errno);
      return false;
    }
    if (n > 0) data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty()) return true;
    // The socket is full: wait for EPOLLOUT and stop reading until it drains, so that a
    // client that pipelines without reading cannot grow `out` without bound.
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = tag(Kind::kConnection, c.fd.get());
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
  }
  c.out.append(data);
  return true;
}

void EventLoop::serve_buffer(Conn& c) {
  const int fd = c.fd.get();
  while (c.out.empty()) {
    const http::Request req = http::parse_request(c.in);
    if (req.status == http::Parse::kIncomplete) return;
    if (req.status != http::Parse::kComplete) {
      AcceptorStats::add(stats_->bad_requests);
      c.in.clear();
      c.close_after_out = true;
      if (send(c, server_->responses().error(req.status)) && c.out.empty()) close_conn(fd);
      return;
    }
    server_->simulate_work();
    const bool ok = send(c, server_->responses().ok(req.keep_alive));
    if (ok) AcceptorStats::add(stats_->requests);
    c.in.erase(0, req.length);
    if (!ok || !req.keep_alive) {
      c.close_after_out = true;
      if (!ok || c.out.empty()) close_conn(fd);
      return;
    }
  }
}

void EventLoop::on_connection(int fd, std::uint32_t events) {
  Conn& c = *conns_[static_cast<std::size_t>(fd)];
  if (!c.fd) return;  // closed earlier in this batch of events
  c.last_active_ns = now_ns_;
  if (!c.out.empty()) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      close_conn(fd);
      return;
    }
    const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      stats_->count_error(errno);
      close_conn(fd);
      return;
    }
    if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
    if (!c.out.empty()) return;
    if (c.close_after_out) {
      close_conn(fd);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = tag(Kind::kConnection, fd);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    serve_buffer(c);  // requests that arrived pipelined meanwhile
    return;
  }
  const ssize_t n = ::read(fd, scratch_.get(), http::kReadBufferBytes - c.in.size());
  if (n > 0) {
    if (c.in.empty()) c.request_started_ns = now_ns_;
    c.in.append(scratch_.get(), static_cast<std::size_t>(n));
    serve_buffer(c);
    if (c.fd && !c.in.empty() && c.in.size() < static_cast<std::size_t>(n)) c.request_started_ns = now_ns_;
  } else if (n == 0) {
    close_conn(fd);  // the peer closed
  } else if (errno != EAGAIN && errno != EINTR) {
    stats_->count_error(errno);
    close_conn(fd);
  }
}

void EventLoop::expire_idle(std::int64_t now) {
  const std::int64_t limit = std::int64_t{server_->options().read_timeout_ms} * 1'000'000;
  for (auto& slot : conns_) {
    // Idle too long, or a request still incomplete too long after its first byte (slowloris).
    if (slot && slot->fd &&
        (now - slot->last_active_ns >= limit || (!slot->in.empty() && now - slot->request_started_ns >= limit))) {
      AcceptorStats::add(stats_->read_timeouts);
      close_conn(slot->fd.get());
    }
  }
}

int EventLoop::poll_once(int timeout_ms, const std::function<void()>& after_accepts) {
  auto& events = events_;
  const int wait_ms = (timeout_ms < 0 || timeout_ms > kSweepMs) ? kSweepMs : timeout_ms;
  const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
  now_ns_ = now_ns();
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
  if (now_ns_ - last_sweep_ns_ >= std::int64_t{kSweepMs} * 1'000'000) {
    last_sweep_ns_ = now_ns_;
    expire_idle(now_ns_);
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
      if (slot && slot->fd && slot->in.empty() && slot->out.empty()) close_conn(slot->fd.get());
    }
  };
  close_idle();
  while (live_ > 0 && !server_->past_grace()) {
    poll_once(10);
    close_idle();
  }
  for (auto& slot : conns_) {
    if (slot && slot->fd) close_conn(slot->fd.get());
  }
}

}  // namespace acceptbench
