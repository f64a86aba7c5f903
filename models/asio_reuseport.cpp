// asio-reuseport: Boost.Asio, one io_context per thread, each with its own SO_REUSEPORT
// listener. The listener is made the raw way (socket/setsockopt/bind/listen, as the seed's
// go_reuseport does before net.FileListener) and adopted with acceptor.assign(): the C++
// counterpart of turning a raw fd into the framework's listener.
// Differs from reuseport by the framework: completion handlers, shared_ptr sessions, timers.
// Expect: reuseport's spread with the framework's extra cost per connection.
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <list>
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

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server& server, AcceptorStats& stats)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(server), stats_(stats) {}
  ~Session() { AcceptorStats::add(stats_.closed); }

  void start() { read(); }
  [[nodiscard]] bool idle() const { return in_.empty() && !writing_; }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

 private:
  // The timer runs from the start of a request (or of the idle wait) until the request is
  // complete: a client trickling bytes (slowloris) does not restart it.
  void read() {
    if (!timer_armed_) {
      timer_armed_ = true;
      timer_.expires_after(std::chrono::milliseconds(server_.options().read_timeout_ms));
      timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec) return;  // cancelled: the request completed, or closed
        AcceptorStats::add(self->stats_.read_timeouts);
        self->close();
      });
    }
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        self->timer_.cancel();
        if (ec != asio::error::eof && ec != asio::error::operation_aborted) self->stats_.count_error(ec.value());
        return;
      }
      self->in_.append(self->buf_.data(), n);
      self->process();
    });
  }

  void process() {
    const http::Request req = http::parse_request(in_);
    if (req.status == http::Parse::kIncomplete) {
      if (server_.stopping() && in_.empty()) return close();
      return read();
    }
    const bool ok = req.status == http::Parse::kComplete;
    timer_.cancel();
    timer_armed_ = false;
    if (ok) server_.simulate_work();
    const std::string_view response = ok ? server_.responses().ok(req.keep_alive) : server_.responses().error(req.status);
    const bool keep = ok && req.keep_alive;
    in_.erase(0, ok ? req.length : in_.size());
    writing_ = true;
    asio::async_write(socket_, asio::buffer(response.data(), response.size()),
                      [self = shared_from_this(), ok, keep](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (ec) {
                          self->stats_.count_error(ec.value());
                          return;
                        }
                        AcceptorStats::add(ok ? self->stats_.requests : self->stats_.bad_requests);
                        if (keep) self->process();  // pipelined requests, or read the next
                        else self->close();
                      });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  Server& server_;
  AcceptorStats& stats_;
  std::array<char, 16384> buf_{};
  std::string in_;
  bool writing_ = false;
  bool timer_armed_ = false;
};

// One thread's io_context: accept loop, sessions, and the stop.
class Worker {
 public:
  Worker(Server& server, AcceptorStats& stats, UniqueFd listen_fd)
      : server_(server), stats_(stats), acceptor_(ctx_), stop_watch_(ctx_, ::dup(server.stop_event_fd())), grace_(ctx_) {
    acceptor_.assign(tcp::v4(), listen_fd.release());  // the raw reuseport fd becomes Asio's acceptor
  }

  void run() {
    accept();
    stop_watch_.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code) { begin_stop(); });
    ctx_.run();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || server_.stopping()) return;
      AcceptorStats::add(stats_.accept_calls);
      if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
        // Out of descriptors: drop one pending connection through the spare descriptor (as
        // Acceptor does) and try again in 10 ms rather than at once: no busy loop.
        stats_.count_error(ec.value());
        drop_pending_connection(acceptor_.native_handle(), spare_);
        backoff_.expires_after(std::chrono::milliseconds(10));
        backoff_.async_wait([this](boost::system::error_code) {
          if (!server_.stopping()) accept();
        });
        return;
      }
      if (ec) {
        stats_.count_error(ec.value());
      } else {
        AcceptorStats::add(stats_.accepted);
        auto s = std::make_shared<Session>(std::move(socket), server_, stats_);
        sessions_.push_back(s);
        s->start();
      }
      if (sessions_.size() > 1024) std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
      accept();
    });
  }

  void begin_stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& w : sessions_)
      if (auto s = w.lock(); s && s->idle()) s->close();
    const auto left = server_.shared().stop_deadline_ns.load() - now_ns();
    grace_.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(left, 0)));
    grace_.async_wait([this](boost::system::error_code) {
      for (auto& w : sessions_)
        if (auto s = w.lock()) s->close();
    });
    // run() returns once the last session is gone; the grace timer would keep it alive, so
    // a poll cancels it when no session is left.
    poll_done();
  }

  void poll_done() {
    std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
    if (sessions_.empty()) {
      grace_.cancel();
      return;
    }
    auto t = std::make_shared<asio::steady_timer>(ctx_, std::chrono::milliseconds(5));
    t->async_wait([this, t](boost::system::error_code) { poll_done(); });
  }

  Server& server_;
  AcceptorStats& stats_;
  asio::io_context ctx_{1};
  tcp::acceptor acceptor_;
  asio::posix::stream_descriptor stop_watch_;
  asio::steady_timer grace_;
  asio::steady_timer backoff_{ctx_};
  UniqueFd spare_ = open_spare_descriptor();
  std::list<std::weak_ptr<Session>> sessions_;
};

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
