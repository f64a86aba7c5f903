#pragma once

#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connection.hpp"
#include "server.hpp"
#include "unique_fd.hpp"

namespace acceptbench {

// One epoll loop: listeners, connections and the server's stop eventfd, level-triggered.
// Every call is for the loop's own thread, except where a comment says otherwise.
class EventLoop {
 public:
  EventLoop(Server& server, AcceptorStats& stats);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // Adds or removes a listen fd (nonblocking) from this loop's epoll set. While it is in,
  // its readiness makes the loop accept up to --accept-batch connections.
  void watch_listener(int listen_fd, int extra_epoll_flags = 0);
  void unwatch_listener(int listen_fd);

  // Waits up to `timeout_ms` (-1: no limit) for events, sweeping the deadlines every 100 ms
  // meanwhile without ending the wait; then: accepts on ready listeners, calls
  // `after_accepts` (epoll-mutex releases its mutex there, as nginx does before it serves),
  // then serves ready connections. Returns the number of events.
  int poll_once(int timeout_ms, const std::function<void()>& after_accepts = {});

  // poll_once() until the stop; then drain().
  void run();
  // After the stop: keep serving in-flight requests until each connection is idle or the
  // grace period ends, then close all. Unwatches the listeners first.
  void drain();

  // Takes a connection (nonblocking) into this loop.
  void adopt(UniqueFd fd);
  [[nodiscard]] std::size_t connections() const { return live_; }
  [[nodiscard]] int epoll_fd() const { return epoll_.get(); }
  [[nodiscard]] AcceptorStats& stats() { return *stats_; }

  // A further fd whose readiness calls `on_ready` (acceptor-dispatch's queue eventfd).
  void watch_other(int fd, std::function<void()> on_ready);

 private:
  struct Conn;
  void on_listener_ready(int listen_fd);
  void on_connection(int fd, std::uint32_t events);
  void watch_output(Conn& c, bool want_out);
  void close_conn(int fd, bool timed_out);
  void expire(std::int64_t now);

  Server* server_;
  AcceptorStats* stats_;
  UniqueFd epoll_;
  std::vector<std::unique_ptr<Conn>> conns_;  // indexed by fd
  std::vector<std::unique_ptr<Acceptor>> acceptors_;  // indexed by listen fd
  std::vector<std::function<void()>> others_;         // indexed by fd
  std::vector<int> watched_;                          // listen fds in the epoll set now
  std::size_t live_ = 0;
  std::int64_t now_ns_ = 0;
  std::int64_t last_sweep_ns_ = 0;
  std::array<char, kReadChunkBytes> scratch_;  // every connection reads into it
  std::vector<epoll_event> events_;  // epoll_wait's output, reused
};

}  // namespace acceptbench
