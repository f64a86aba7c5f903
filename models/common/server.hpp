#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "clock.hpp"
#include "http.hpp"
#include "stats.hpp"
#include "unique_fd.hpp"

namespace acceptbench {

// What a model is, for the shared main: which flags apply, and how it accepts.
struct ModelSpec {
  std::string_view id;
  bool multi_acceptor = false;   // --threads N applies (N acceptors); otherwise exactly one
  bool event_loop = false;       // nonblocking epoll loops: --accept-batch applies
  bool accept_mutex = false;     // --accept-mutex-delay-ms applies
  bool max_conns = false;        // a thread or process per connection: --max-conns applies
  std::string_view accept_semantics;  // one line for the stats: how accept is arranged
};

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;
  int threads = 1;
  int backlog = 0;  // 0: /proc/sys/net/core/somaxconn
  std::uint32_t work_us = 0;
  std::uint32_t sleep_us = 0;
  double sleep_fraction = 1;  // of requests that wait --sleep-us (evenly spaced, exact count)
  int stall_worker = -1;      // this acceptor's first request after each --stall-every-ms ...
  std::uint32_t stall_ms = 0;  // ... blocks this long (a worker that sometimes blocks)
  std::uint32_t stall_every_ms = 1000;
  std::uint32_t response_bytes = 13;
  int read_timeout_ms = 5000;  // an idle or stalled connection is closed after this
  int grace_ms = 2000;         // after SIGTERM: time to finish in-flight requests
  int accept_batch = 1;        // accepts per listen-fd wakeup; 0 = until EAGAIN
  int accept_mutex_delay_ms = 500;  // nginx's accept_mutex_delay
  bool exit_on_stdin_eof = false;   // stop (as on SIGTERM) when stdin reaches EOF: dies with its harness
  int max_conns = 1024;  // thread-per-conn, fork-per-conn: connections served at once; 0 = no cap
};

// Parses argv into options for `spec`. Prints help and exits 0 on --help; prints the error
// and exits 2 on a bad or inapplicable flag.
ServerOptions parse_server_options(int argc, char** argv, const ModelSpec& spec);

// The state one server run shares between its main thread and its model.
class Server {
 public:
  Server(const ModelSpec& spec, ServerOptions options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] const ModelSpec& spec() const { return spec_; }
  [[nodiscard]] const ServerOptions& options() const { return options_; }
  [[nodiscard]] const http::Responses& responses() const { return responses_; }
  [[nodiscard]] SharedState& shared() { return *shared_; }
  [[nodiscard]] AcceptorStats& acceptor(int i) { return shared_->acceptors[static_cast<std::size_t>(i)]; }

  // Acquire: pairs with the release in the stop, so that the deadline written before it is
  // seen by any thread (or forked process) that sees the stop.
  [[nodiscard]] bool stopping() const { return shared_->stopping.load(std::memory_order_acquire); }
  // True once stopping and the grace period is over: in-flight work must be dropped.
  [[nodiscard]] bool past_grace() const;
  // An eventfd that becomes readable when the stop begins (for epoll sets). Any thread.
  [[nodiscard]] int stop_event_fd() const { return stop_event_.get(); }

  // A listener made from the options (--bind, --port or `port` when non-zero, --backlog),
  // registered for the stop. Any thread, before announce_ready().
  UniqueFd listen(bool reuseport, bool nonblocking, std::uint16_t port = 0);

  // n SO_REUSEPORT listeners on one port (the first picks it when --port is 0), in the order
  // of listen(), which is also their index in the kernel's reuseport group.
  std::vector<UniqueFd> listen_group(int n, bool nonblocking);

  // A listen fd that the stop will shutdown(), which wakes a thread blocked in accept().
  // Keeps a duplicate of it (one descriptor) until the process exits. Throws if it cannot.
  // Any thread, before announce_ready().
  void register_listener(int fd);
  // Prints the READY line once all listeners listen. Model thread, once.
  void announce_ready(std::uint16_t port);
  // For models whose workers set up state of their own (an epoll set, a ring, a spare
  // descriptor): READY is printed when the n-th worker calls worker_ready(), so that no
  // connection arrives before every worker can take it (a worker's epoll_create1 could
  // otherwise fail with EMFILE under a low descriptor limit). Model thread, once.
  void ready_after(int n_workers, std::uint16_t port);
  void worker_ready();  // any worker thread, once each

  // The simulated per-request cost: --work-us of CPU spin, then --sleep-us of blocking wait
  // for --sleep-fraction of the requests, and the periodic --stall-ms of one worker. `stats`
  // is the serving acceptor's slot: it names the worker and counts the waits. Serving thread.
  void simulate_work(AcceptorStats& stats) const;

  // Main thread: begins the stop (signal received): the stop flag, then shutdown() of every
  // registered listener, then the stop eventfd. The listeners are shut down through
  // duplicates the Server keeps, so a model that closes its listener once it sees the flag
  // cannot have that fd number reused by something else before the shutdown() reaches it.
  void request_stop();

  // A worker failed: the first failure is kept and stops the server at once (no grace);
  // server_main then exits 2 with the message. Any thread.
  void fail(const std::string& message);
  [[nodiscard]] bool failed() const { return failed_.load(std::memory_order_acquire); }
  [[nodiscard]] std::string failure() const;

  // The Server of this process (the last one made), for run_threads. Null before one exists.
  static Server* current();

 private:
  const ModelSpec& spec_;
  ServerOptions options_;
  http::Responses responses_;
  SharedState* shared_;
  UniqueFd stop_event_;
  std::mutex listeners_mutex_;
  std::vector<UniqueFd> listeners_;  // duplicates: never closed before the process exits
  std::atomic<int> pending_workers_{0};
  std::uint16_t ready_port_ = 0;
  std::atomic<bool> stop_begun_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex failure_mutex_;
  std::string failure_;

  void begin_stop(int grace_ms);
};

// The reply to a snapshot request (SIGUSR1): the acceptors' counters now (stats_json), plus
// getrusage(RUSAGE_SELF) and (RUSAGE_CHILDREN) and the context switches of live child
// processes, so that the harness can difference two snapshots around its window.
nlohmann::json snapshot_json(const SharedState& state, int acceptors, std::uint64_t seq);

// The shared main of every model binary: options, signals, the model on its own thread,
// READY, and the stats JSON at exit. `run` is the model; it returns once stopped.
int server_main(int argc, char** argv, const ModelSpec& spec, void (*run)(Server&));

// Runs body(0) .. body(n-1) on n threads and joins them. The first exception a body throws
// stops the server (Server::current()->fail(), so the other bodies see stopping() and
// return) and is rethrown after all have joined.
void run_threads(int n, const std::function<void(int)>& body);

// Waits until shared().live_workers is 0 or the grace period (plus `slack_ms`) is over.
void wait_for_workers(Server& server, int slack_ms = 0);

}  // namespace acceptbench
