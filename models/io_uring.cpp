// io-uring: N threads, each with its own io_uring and SO_REUSEPORT listener. One
// multishot accept request yields a completion per connection (Linux 5.19); each
// connection is served with recv/send requests on the same ring; a 100 ms timeout
// request drives the idle sweep, and a poll on the stop eventfd begins the stop.
// Differs from reuseport by the completion model: no epoll_wait + accept() pair per
// connection. Expect: fewer syscalls per connection (batched submissions).
#include <liburing.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <vector>

#include "common/model.hpp"
#include "sys.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "io-uring",
                       .multi_acceptor = true,
                       .accept_semantics = "N io_uring rings, each its own SO_REUSEPORT listener with multishot accept"};

namespace {

enum Tag : std::uint64_t { kAccept = 1, kRecv = 2, kSend = 3, kTick = 4, kStop = 5 };
std::uint64_t data(Tag t, std::uint32_t id = 0) { return (static_cast<std::uint64_t>(t) << 32) | id; }
constexpr unsigned kEntries = 1024;

struct Conn {
  UniqueFd fd;
  std::string in;
  std::string_view out;  // the response being sent (points into Server::responses)
  bool keep_alive = true;
  bool sending = false;
  std::int64_t last_active_ns = 0;
  std::int64_t request_started_ns = 0;  // first byte of the incomplete request in `in`
  std::unique_ptr<char[]> buf = std::make_unique_for_overwrite<char[]>(http::kReadBufferBytes);
};

class Ring {
 public:
  Ring(Server& server, AcceptorStats& stats, int listen_fd) : server_(server), stats_(stats), listen_fd_(listen_fd) {
    if (const int rc = ::io_uring_queue_init(kEntries, &ring_, 0); rc < 0) throw_errno(-rc, "io_uring_queue_init");
  }
  ~Ring() { ::io_uring_queue_exit(&ring_); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  void run() {
    arm_accept();
    ::io_uring_prep_poll_add(sqe(), server_.stop_event_fd(), POLLIN);
    ::io_uring_sqe_set_data64(last_, data(kStop));
    arm_tick();
    while (!(stopping_ && live_ == 0)) {
      ::io_uring_submit_and_wait(&ring_, 1);
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        on_completion(cqe->user_data, cqe->res, cqe->flags);
      }
      ::io_uring_cq_advance(&ring_, seen);
      if (stopping_ && server_.past_grace()) {
        for (auto& c : conns_)
          if (c && c->fd) ::shutdown(c->fd.get(), SHUT_RDWR);
      }
    }
  }

 private:
  io_uring_sqe* sqe() {
    io_uring_sqe* s = ::io_uring_get_sqe(&ring_);
    while (!s) {  // the submission queue is full: hand it to the kernel and retry
      ::io_uring_submit(&ring_);
      s = ::io_uring_get_sqe(&ring_);
    }
    last_ = s;
    return s;
  }

  void arm_accept() {
    ::io_uring_prep_multishot_accept(sqe(), listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    ::io_uring_sqe_set_data64(last_, data(kAccept));
  }

  void arm_tick() {
    tick_ = {0, 100'000'000};
    ::io_uring_prep_timeout(sqe(), &tick_, 0, 0);
    ::io_uring_sqe_set_data64(last_, data(kTick));
  }

  void recv(std::uint32_t id) {
    Conn& c = *conns_[id];
    ::io_uring_prep_recv(sqe(), c.fd.get(), c.buf.get(), http::kReadBufferBytes - c.in.size(), 0);
    ::io_uring_sqe_set_data64(last_, data(kRecv, id));
  }

  void send(std::uint32_t id) {
    Conn& c = *conns_[id];
    c.sending = true;
    ::io_uring_prep_send(sqe(), c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    ::io_uring_sqe_set_data64(last_, data(kSend, id));
  }

  void close(std::uint32_t id) {
    conns_[id].reset();
    free_.push_back(id);
    --live_;
    AcceptorStats::add(stats_.closed);
  }

  // Answers the next complete request in the buffer, or reads more.
  void serve(std::uint32_t id) {
    Conn& c = *conns_[id];
    const http::Request req = http::parse_request(c.in);
    if (req.status == http::Parse::kIncomplete) {
      if (stopping_ && c.in.empty()) return close(id);
      return recv(id);
    }
    if (req.status != http::Parse::kComplete) {
      AcceptorStats::add(stats_.bad_requests);
      c.out = server_.responses().error(req.status);
      c.keep_alive = false;
      c.in.clear();
      return send(id);
    }
    server_.simulate_work();
    c.out = server_.responses().ok(req.keep_alive);
    c.keep_alive = req.keep_alive;
    c.in.erase(0, req.length);
    AcceptorStats::add(stats_.requests);
    send(id);
  }

  void on_completion(std::uint64_t user_data, int res, unsigned flags) {
    const auto tag = static_cast<Tag>(user_data >> 32);
    const auto id = static_cast<std::uint32_t>(user_data);
    const std::int64_t now = now_ns();
    switch (tag) {
      case kAccept: {
        AcceptorStats::add(stats_.accept_calls);
        const bool ended = !(flags & IORING_CQE_F_MORE);
        if (res == -EMFILE || res == -ENFILE) {
          // Out of descriptors: drop one pending connection through the spare descriptor
          // (as Acceptor does), and re-arm on the next tick, not at once: no busy loop.
          stats_.count_error(-res);
          drop_pending_connection(listen_fd_, spare_);
          if (ended) rearm_on_tick_ = true;
          return;
        }
        if (ended && !stopping_) arm_accept();  // the multishot ended: re-arm
        if (res < 0) {
          if (-res != EINVAL && -res != ECANCELED) stats_.count_error(-res);
          return;
        }
        AcceptorStats::add(stats_.accepted);
        if (stopping_) {
          ::close(res);
          return;
        }
        std::uint32_t cid;
        if (!free_.empty()) {
          cid = free_.back();
          free_.pop_back();
        } else {
          cid = static_cast<std::uint32_t>(conns_.size());
          conns_.emplace_back();
        }
        conns_[cid] = std::make_unique<Conn>();
        conns_[cid]->fd.reset(res);
        conns_[cid]->last_active_ns = now;
        ++live_;
        recv(cid);
        return;
      }
      case kRecv: {
        Conn& c = *conns_[id];
        c.last_active_ns = now;
        if (res <= 0) {
          if (res < 0 && -res != ECONNRESET) stats_.count_error(-res);
          if (res == -ECONNRESET) stats_.count_error(ECONNRESET);
          return close(id);
        }
        if (c.in.empty()) c.request_started_ns = now;
        c.in.append(c.buf.get(), static_cast<std::size_t>(res));
        return serve(id);
      }
      case kSend: {
        Conn& c = *conns_[id];
        c.sending = false;
        c.last_active_ns = now;
        if (res < 0) {
          stats_.count_error(-res);
          return close(id);
        }
        c.out.remove_prefix(static_cast<std::size_t>(res));
        if (!c.out.empty()) return send(id);  // a short send: the rest
        if (!c.keep_alive) return close(id);
        return serve(id);
      }
      case kTick: {
        const std::int64_t limit = std::int64_t{server_.options().read_timeout_ms} * 1'000'000;
        for (auto& c : conns_) {
          if (c && !c->sending &&
              (now - c->last_active_ns >= limit || (!c->in.empty() && now - c->request_started_ns >= limit))) {
            AcceptorStats::add(stats_.read_timeouts);
            ::shutdown(c->fd.get(), SHUT_RDWR);  // its pending recv completes with 0: closed there
            c->last_active_ns = now;
          }
        }
        if (rearm_on_tick_ && !stopping_) {
          rearm_on_tick_ = false;
          arm_accept();
        }
        if (!(stopping_ && live_ == 0)) arm_tick();
        return;
      }
      case kStop: {
        stopping_ = true;
        for (auto& c : conns_)
          if (c && c->in.empty() && !c->sending) ::shutdown(c->fd.get(), SHUT_RDWR);
        return;
      }
    }
  }

  Server& server_;
  AcceptorStats& stats_;
  int listen_fd_;
  io_uring ring_{};
  io_uring_sqe* last_ = nullptr;
  __kernel_timespec tick_{};
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::uint32_t> free_;
  std::size_t live_ = 0;
  bool stopping_ = false;
  bool rearm_on_tick_ = false;
  UniqueFd spare_ = open_spare_descriptor();
};

}  // namespace

void run_model(Server& server) {
  const int n = server.options().threads;
  // Nonblocking, so that the EMFILE path's direct accept4() never blocks.
  std::vector<UniqueFd> listeners = server.listen_group(n, /*nonblocking=*/true);
  server.ready_after(n, local_port(listeners.front().get()));
  run_threads(n, [&](int id) {
    Ring ring(server, server.acceptor(id), listeners[static_cast<std::size_t>(id)].get());
    server.worker_ready();
    ring.run();
  });
}

}  // namespace acceptbench
