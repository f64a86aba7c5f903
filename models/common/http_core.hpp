#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "http.hpp"
#include "stats.hpp"

namespace acceptbench::http {

// What a serving loop does next for one connection (Exchange::next()).
enum class Next {
  kRead,      // read into the worker's buffer and pass the bytes to received()
  kSend,      // send out() (first simulate_work() if take_work() says so), then sent()
  kShutdown,  // shutdown(SHUT_WR) now (after a 4xx), then ask again
  kLinger,    // read and pass to received(), which discards: the drain after a 4xx
  kClose,     // close the connection, then close(false)
};

// One connection's HTTP state, without I/O: every serving loop (serve_blocking, EventLoop,
// asio-reuseport, io-uring) feeds it the bytes it read and the bytes the kernel took, with
// the time, and does what next() says. So every model:
//  - counts a request (200) or a bad request (4xx) when the last byte of its response has
//    been handed to the kernel, and a close in close();
//  - times out a connection that made no progress in either direction (no byte read, no
//    byte sent) for the timeout, or whose request is incomplete the timeout after its first
//    byte (slowloris); that request deadline restarts when the previous request completes;
//  - after a 4xx: shuts its write side down and drains the client's input, until the peer
//    closes or for at most min(timeout, 1 s), so that the close does not reset (RST) the
//    connection and destroy the 4xx;
//  - reads no more while a response is unsent, so a client that pipelines without reading
//    holds at most one request's bytes.
// `now` is CLOCK_MONOTONIC in ns (now_ns()). One thread at a time.
class Exchange {
 public:
  // Starts a connection; the object and its buffer may be reused for the next one.
  void open(const Responses& responses, AcceptorStats& stats, int timeout_ms, std::int64_t now);

  [[nodiscard]] Next next();
  // Bytes read (an empty view: the peer closed its side).
  void received(std::string_view bytes, std::int64_t now);
  // The unsent rest of the response while next() is kSend.
  [[nodiscard]] std::string_view out() const { return out_; }
  // True once per 200 response: call Server::simulate_work() before sending it.
  [[nodiscard]] bool take_work() { return std::exchange(work_, false); }
  // The kernel took n bytes of out().
  void sent(std::size_t n, std::int64_t now);

  enum class Expiry { kNone, kTimedOut, kLingerOver };
  [[nodiscard]] Expiry expiry(std::int64_t now) const;
  // When expiry() turns from kNone at the earliest (for a timer).
  [[nodiscard]] std::int64_t deadline() const;
  // Nothing in flight: at the stop it may be closed at once.
  [[nodiscard]] bool idle() const { return (state_ == State::kReading && in_.empty()) || state_ == State::kLinger; }
  // Counts the close (and the read timeout when `timed_out`). Call once per connection.
  void close(bool timed_out);

 private:
  enum class State { kReading, kSending, kShutdown, kLinger, kDone };
  const Responses* responses_ = nullptr;
  AcceptorStats* stats_ = nullptr;
  std::int64_t timeout_ns_ = 0;
  std::string in_;        // received bytes not yet answered
  std::string_view out_;  // the unsent rest of the response (points into Responses)
  State state_ = State::kDone;
  bool keep_alive_ = true;
  bool error_ = false;  // out_ is a 4xx
  bool eof_ = false;
  bool work_ = false;
  std::int64_t last_progress_ns_ = 0;
  std::int64_t request_started_ns_ = 0;  // 0: no partial request
  std::int64_t linger_started_ns_ = 0;
};

}  // namespace acceptbench::http
