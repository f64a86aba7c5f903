// asio-reuseport: Boost.Asio, one io_context per thread, each with its own SO_REUSEPORT
// listener. The listener is made the raw way (socket/setsockopt/bind/listen, as the seed's
// go_reuseport does before net.FileListener) and adopted with acceptor.assign(): the C++
// counterpart of turning a raw fd into the framework's listener.
// Differs from reuseport by the framework: completion handlers and a shared_ptr session per
// connection (the framework's idiom: one allocation each). Sessions read with async_wait +
// a nonblocking read into the worker's buffer (no buffer per session), and one 100 ms timer
// per worker sweeps the deadlines, as the epoll loop does (no timer per session). Its RSS
// was 38 MB after load where the others stay near 5 MB: a 16 KiB buffer in every session,
// and the weak_ptr list pruned only above 1024 entries kept up to 1024 dead sessions' memory
// per thread (make_shared's one block lives while a weak_ptr does): 2 x 1024 x 16.5 KiB.
// Expect: reuseport's spread with the framework's extra cost per connection.
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <array>
#include <memory>
#include <vector>

#include "common/model.hpp"

namespace acceptbench {

const ModelSpec kModel{.id = "asio-reuseport",
                       .multi_acceptor = true,
                       .accept_semantics = "N Boost.Asio io_contexts, each its own SO_REUSEPORT listener adopted with "
                                           "acceptor.assign()"};

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

class Worker;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Worker& worker);
  ~Session();

  void start() { drive(); }
  [[nodiscard]] const http::Exchange& exchange() const { return x_; }
  // Closes the socket: the pending operation ends with operation_aborted and lets go of the
  // session; `timed_out` is counted then.
  void kill(bool timed_out) {
    killed_timed_out_ = timed_out;
    killed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  std::size_t index = 0;  // in Worker::live_

 private:
  void drive();
  void finish(bool timed_out) {
    boost::system::error_code ignored;
    socket_.close(ignored);
    x_.close(timed_out);
    closed_ = true;
  }

  tcp::socket socket_;
  Worker& worker_;
  http::Exchange x_;
  bool killed_ = false;
  bool killed_timed_out_ = false;
  bool closed_ = false;
};

// One thread's io_context: accept loop, sessions, the deadline sweep, and the stop.
class Worker {
 public:
  Worker(Server& server, AcceptorStats& stats, UniqueFd listen_fd)
      : server_(server), stats_(stats), acceptor_(ctx_), stop_watch_(ctx_, ::dup(server.stop_event_fd())) {
    acceptor_.assign(tcp::v4(), listen_fd.release());  // the raw reuseport fd becomes Asio's acceptor
  }

  void run() {
    accept();
    stop_watch_.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code) {
      stopping_ = true;
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      sweep_now(now_ns());
    });
    arm_sweep();
    ctx_.run();
  }

  Server& server() { return server_; }
  AcceptorStats& stats() { return stats_; }
  std::array<char, kReadChunkBytes>& buffer() { return buffer_; }
  [[nodiscard]] bool stopping() const { return stopping_; }
  void add(Session* s) {
    s->index = live_.size();
    live_.push_back(s);
  }
  void remove(Session* s) {  // O(1): the last takes its place
    live_[s->index] = live_.back();
    live_[s->index]->index = s->index;
    live_.pop_back();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || stopping_) return;
      AcceptorStats::add(stats_.accept_calls);
      if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
        // Out of descriptors: drop one pending connection through the spare descriptor (as
        // Acceptor does) and try again in 10 ms rather than at once: no busy loop.
        stats_.count_error(ec.value());
        drop_pending_connection(acceptor_.native_handle(), spare_);
        backoff_.expires_after(std::chrono::milliseconds(10));
        backoff_.async_wait([this](boost::system::error_code) {
          if (!stopping_) accept();
        });
        return;
      }
      if (ec) {
        stats_.count_error(ec.value());
      } else {
        AcceptorStats::add(stats_.accepted);
        std::make_shared<Session>(std::move(socket), *this)->start();
      }
      accept();
    });
  }

  void arm_sweep() {
    sweep_.expires_after(std::chrono::milliseconds(100));
    sweep_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      // Judged at the time the sweep was due, not after a long handler (a simulate_work())
      // that delayed it: a session whose progress that handler held back is not timed out.
      // steady_clock is CLOCK_MONOTONIC, as now_ns().
      sweep_now(std::chrono::duration_cast<std::chrono::nanoseconds>(sweep_.expiry().time_since_epoch()).count());
      if (!(stopping_ && live_.empty())) arm_sweep();
    });
  }

  // Closes the sessions past their deadline at `now` (the sweep runs after every completion
  // already queued, so an expiry never races a request that completed), and at the stop the
  // idle ones, then all once the grace period is over.
  void sweep_now(std::int64_t now) {
    const bool past_grace = server_.past_grace();
    for (std::size_t i = 0; i < live_.size(); ++i) {
      Session& s = *live_[i];
      const auto e = s.exchange().expiry(now);
      if (e != http::Exchange::Expiry::kNone) s.kill(e == http::Exchange::Expiry::kTimedOut);
      else if (stopping_ && (past_grace || s.exchange().idle())) s.kill(false);
    }
  }

  Server& server_;
  AcceptorStats& stats_;
  // Before ctx_: a session its destruction frees takes itself out of live_.
  std::vector<Session*> live_;  // sessions alive now, for the sweep
  std::array<char, kReadChunkBytes> buffer_;  // every session of this worker reads into it
  asio::io_context ctx_{1};
  tcp::acceptor acceptor_;
  asio::posix::stream_descriptor stop_watch_;
  asio::steady_timer sweep_{ctx_};
  asio::steady_timer backoff_{ctx_};
  UniqueFd spare_ = open_spare_descriptor();
  bool stopping_ = false;
};

Session::Session(tcp::socket socket, Worker& worker) : socket_(std::move(socket)), worker_(worker) {
  socket_.non_blocking(true);
  x_.open(worker.server().responses(), worker.stats(), worker.server().options().read_timeout_ms, now_ns());
  worker.add(this);
}

Session::~Session() {
  if (!closed_) x_.close(killed_ && killed_timed_out_);
  worker_.remove(this);
}

// Does what the HTTP core says until it must wait for the socket.
void Session::drive() {
  for (;;) {
    if (killed_) return;
    switch (x_.next()) {
      case http::Next::kSend: {
        if (x_.take_work()) worker_.server().simulate_work(worker_.stats());
        socket_.async_write_some(asio::buffer(x_.out().data(), x_.out().size()),
                                 [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                                   if (self->killed_) return;
                                   if (ec) {
                                     self->worker_.stats().count_error(ec.value());
                                     return self->finish(false);
                                   }
                                   self->x_.sent(n, now_ns());
                                   self->drive();
                                 });
        return;
      }
      case http::Next::kShutdown: {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        break;
      }
      case http::Next::kClose: return finish(false);
      case http::Next::kRead:
      case http::Next::kLinger: {
        if (worker_.stopping() && x_.idle()) return finish(false);
        boost::system::error_code ec;
        auto& buffer = worker_.buffer();
        const std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
        if (ec == asio::error::would_block) {
          socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code wec) {
            if (self->killed_ || wec) return;
            self->drive();
          });
          return;
        }
        if (ec == asio::error::eof) {
          x_.received({}, now_ns());
        } else if (ec) {
          worker_.stats().count_error(ec.value());
          return finish(false);
        } else {
          x_.received({buffer.data(), n}, now_ns());
        }
        break;
      }
    }
  }
}

}  // namespace

void run_model(Server& server) {
  const int n = server.options().threads;
  std::vector<UniqueFd> listeners = server.listen_group(n, /*nonblocking=*/true);
  server.ready_after(n, local_port(listeners.front().get()));
  run_threads(n, [&](int id) {
    Worker worker(server, server.acceptor(id), std::move(listeners[static_cast<std::size_t>(id)]));
    server.worker_ready();
    worker.run();
  });
}

}  // namespace acceptbench
