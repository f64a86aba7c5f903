// io-uring: N threads, each with its own io_uring and SO_REUSEPORT listener. One
// multishot accept request yields a completion per connection; each connection is served
// with recv (into a ring-provided buffer: no buffer per connection) and send requests on
// the same ring, and closed by a close request; all of a batch's requests go to the kernel
// in one io_uring_submit_and_wait(). A 100 ms timeout request drives the deadline sweep, a
// poll on the stop eventfd begins the stop. The ring is SINGLE_ISSUER|DEFER_TASKRUN where
// the kernel has them. Connection objects are pooled per ring.
// Differs from reuseport by the completion model: no epoll_wait + accept() pair per
// connection. Expect: fewer syscalls per connection (batched submissions).
#include <liburing.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include <memory>
#include <vector>

#include "common/model.hpp"
#include "sys.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "io-uring",
                       .multi_acceptor = true,
                       .accept_semantics = "N io_uring rings, each its own SO_REUSEPORT listener with multishot accept"};

namespace {

enum Tag : std::uint64_t { kAccept = 1, kRecv = 2, kSend = 3, kTick = 4, kStop = 5, kClose = 6 };
std::uint64_t data(Tag t, std::uint32_t id = 0) { return (static_cast<std::uint64_t>(t) << 32) | id; }
constexpr unsigned kEntries = 1024;
// Ring-provided receive buffers: a recv takes one when data arrives and the batch gives it
// back. More ready recvs in one batch than buffers get ENOBUFS and are retried after it.
constexpr unsigned kBuffers = 512;
constexpr std::size_t kBufferBytes = 2048;
constexpr int kBufferGroup = 0;

struct Conn {
  UniqueFd fd;
  http::Exchange x;
  bool busy = false;     // a recv or send is in flight
  bool killing = false;  // shut down by the sweep or the stop: close at its completion
  bool timed_out = false;
};

class Ring {
 public:
  Ring(Server& server, AcceptorStats& stats, int listen_fd) : server_(server), stats_(stats), listen_fd_(listen_fd) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = ::io_uring_queue_init_params(kEntries, &ring_, &params);
    if (rc == -EINVAL) rc = ::io_uring_queue_init(kEntries, &ring_, 0);  // a kernel before 6.1
    if (rc < 0) throw_errno(-rc, "io_uring_queue_init");
    setup_buffers();
  }
  ~Ring() {
    ::io_uring_queue_exit(&ring_);
    if (buf_ring_) ::munmap(buf_ring_, kBuffers * sizeof(io_uring_buf));
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  void run() {
    arm_accept();
    ::io_uring_prep_poll_add(sqe(), server_.stop_event_fd(), POLLIN);
    ::io_uring_sqe_set_data64(last_, data(kStop));
    arm_tick();
    while (!(stopping_ && live_ == 0)) {
      const int rc = ::io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) throw_errno(-rc, "io_uring_submit_and_wait");
      // Deadlines are judged at the time the kernel was last asked (see the sweep).
      woke_ns_ = now_ = now_ns();
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        on_completion(cqe->user_data, cqe->res, cqe->flags);
      }
      ::io_uring_cq_advance(&ring_, seen);
      if (rc < 0 && rc != -EINTR) {
        stats_.count_error(-rc);
        if (seen == 0) pause_ms(1);  // out of kernel resources: no busy loop
      }
      // Receives that found no free buffer: the batch returned its buffers, so try again.
      for (const std::uint32_t id : std::exchange(retry_, {})) drive(id);
      if (tick_seen_) {
        tick_seen_ = false;
        sweep();
      }
    }
    ::io_uring_submit(&ring_);  // the last closes
  }

 private:
  static void pause_ms(int ms) {
    const timespec t{0, ms * 1'000'000L};
    ::nanosleep(&t, nullptr);
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = ::io_uring_get_sqe(&ring_);
    while (!s) {  // the submission queue is full: hand it to the kernel and retry
      ::io_uring_submit(&ring_);
      s = ::io_uring_get_sqe(&ring_);
    }
    last_ = s;
    return s;
  }

  void setup_buffers() {
    void* mem = ::mmap(nullptr, kBuffers * sizeof(io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) throw_errno(errno, "mmap buffer ring");
    buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = kBuffers;
    reg.bgid = kBufferGroup;
    if (const int rc = ::io_uring_register_buf_ring(&ring_, &reg, 0); rc < 0) throw_errno(-rc, "io_uring_register_buf_ring");
    ::io_uring_buf_ring_init(buf_ring_);
    buffers_ = std::make_unique_for_overwrite<char[]>(kBuffers * kBufferBytes);
    for (unsigned i = 0; i < kBuffers; ++i) give_back(static_cast<std::uint16_t>(i));
  }

  char* buffer(std::uint16_t bid) { return buffers_.get() + std::size_t{bid} * kBufferBytes; }
  void give_back(std::uint16_t bid) {
    ::io_uring_buf_ring_add(buf_ring_, buffer(bid), kBufferBytes, bid, ::io_uring_buf_ring_mask(kBuffers), 0);
    ::io_uring_buf_ring_advance(buf_ring_, 1);
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

  // Does what the HTTP core says until a request is in flight.
  void drive(std::uint32_t id) {
    Conn& c = *conns_[id];
    for (;;) {
      switch (c.x.next()) {
        case http::Next::kSend:
          if (c.x.take_work()) {
            server_.simulate_work(stats_);
            now_ = now_ns();
          }
          ::io_uring_prep_send(sqe(), c.fd.get(), c.x.out().data(), c.x.out().size(), MSG_NOSIGNAL);
          ::io_uring_sqe_set_data64(last_, data(kSend, id));
          c.busy = true;
          return;
        case http::Next::kShutdown: ::shutdown(c.fd.get(), SHUT_WR); break;
        case http::Next::kRead:
        case http::Next::kLinger:
          if (stopping_ && (c.x.idle() || server_.past_grace())) return close(id, false);
          ::io_uring_prep_recv(sqe(), c.fd.get(), nullptr, kBufferBytes, 0);
          last_->flags |= IOSQE_BUFFER_SELECT;
          last_->buf_group = kBufferGroup;
          ::io_uring_sqe_set_data64(last_, data(kRecv, id));
          c.busy = true;
          return;
        case http::Next::kClose: return close(id, false);
      }
    }
  }

  void close(std::uint32_t id, bool timed_out) {
    Conn& c = *conns_[id];
    ::io_uring_prep_close(sqe(), c.fd.release());
    last_->flags |= IOSQE_CQE_SKIP_SUCCESS;
    ::io_uring_sqe_set_data64(last_, data(kClose));
    c.x.close(timed_out);
    free_.push_back(id);
    --live_;
  }

  // A connection with a request in flight is shut down; the request completes and closes it.
  void kill(Conn& c, bool timed_out) {
    if (c.killing) return;
    c.killing = true;
    c.timed_out = timed_out;
    ::shutdown(c.fd.get(), SHUT_RDWR);
  }

  void sweep() {
    for (auto& c : conns_) {
      if (!c->fd) continue;
      if (const auto e = c->x.expiry(woke_ns_); e != http::Exchange::Expiry::kNone) {
        kill(*c, e == http::Exchange::Expiry::kTimedOut);
      } else if (stopping_ && server_.past_grace()) {
        kill(*c, false);
      }
    }
  }

  void on_accept(int res, unsigned flags) {
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
    std::uint32_t id = 0;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = static_cast<std::uint32_t>(conns_.size());
      conns_.push_back(std::make_unique<Conn>());
    }
    Conn& c = *conns_[id];
    c.fd.reset(res);
    c.busy = c.killing = c.timed_out = false;
    c.x.open(server_.responses(), stats_, server_.options().read_timeout_ms, now_);
    ++live_;
    drive(id);
  }

  void on_completion(std::uint64_t user_data, int res, unsigned flags) {
    const auto tag = static_cast<Tag>(user_data >> 32);
    const auto id = static_cast<std::uint32_t>(user_data);
    switch (tag) {
      case kAccept: return on_accept(res, flags);
      case kRecv: {
        Conn& c = *conns_[id];
        c.busy = false;
        std::string_view bytes;
        if (flags & IORING_CQE_F_BUFFER) {
          const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
          if (res > 0) bytes = {buffer(bid), static_cast<std::size_t>(res)};
          c.x.received(bytes, now_);  // copies what it keeps
          give_back(bid);
        }
        if (c.killing) return close(id, c.timed_out);
        if (res == -ENOBUFS) {
          stats_.count_error(ENOBUFS);
          retry_.push_back(id);
          return;
        }
        if (res < 0) {
          stats_.count_error(-res);
          return close(id, false);
        }
        if (res == 0) c.x.received({}, now_);
        return drive(id);
      }
      case kSend: {
        Conn& c = *conns_[id];
        c.busy = false;
        if (c.killing) return close(id, c.timed_out);
        if (res < 0) {
          stats_.count_error(-res);
          return close(id, false);
        }
        c.x.sent(static_cast<std::size_t>(res), now_);
        return drive(id);
      }
      case kTick:
        tick_seen_ = true;
        if (rearm_on_tick_ && !stopping_) {
          rearm_on_tick_ = false;
          arm_accept();
        }
        if (!(stopping_ && live_ == 0)) arm_tick();
        return;
      case kStop:
        stopping_ = true;
        for (auto& c : conns_)
          if (c->fd && c->x.idle()) kill(*c, false);
        return;
      case kClose:
        if (res < 0) stats_.count_error(-res);
        return;
    }
  }

  Server& server_;
  AcceptorStats& stats_;
  int listen_fd_;
  io_uring ring_{};
  io_uring_sqe* last_ = nullptr;
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::unique_ptr<char[]> buffers_;
  __kernel_timespec tick_{};
  std::vector<std::unique_ptr<Conn>> conns_;  // pooled: a closed one waits in free_ for reuse
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> retry_;
  std::size_t live_ = 0;
  std::int64_t now_ = 0;
  std::int64_t woke_ns_ = 0;
  bool stopping_ = false;
  bool tick_seen_ = false;
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
